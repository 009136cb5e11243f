"""Where a level's cost is evaluated, and how the moving image is sampled there.

:class:`SampleGrid`: the fixed pixels a level's objective evaluates (all of them, or every
``stride``-th row and column: :func:`sample_stride`) and the sums over them (moments, the
gradients' Gram matrix) that its gradient and Hessian are made of.  :func:`choose_resampler`:
the bilinear warp of the moving image onto that grid (scikit-image's compiled kernel, or
scipy.ndimage for big levels).  Used by :class:`regcli.objective.LevelObjective`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from regcli.resample import warp, warp_linear

__all__ = [
    "FAST_WARP_PIXELS",
    "MAX_SAMPLES",
    "SampleGrid",
    "choose_resampler",
    "sample_stride",
]

#: Metrics other than SSD are evaluated on at most about this many pixels per level (a regular
#: subsample): histogram statistics need no more, and MI at 1024^2 gets 10x cheaper.
MAX_SAMPLES = 1 << 16
#: Levels up to this many pixels are resampled by scikit-image's affine bilinear warp on a
#: float64 copy of the moving image: 2.3x faster than scipy.ndimage at 64^2-256^2 (the same
#: values to 1e-13 wherever the objective reads them), ~10 % at 1024^2; bigger levels keep
#: ndimage on float32, which needs half the memory.
FAST_WARP_PIXELS = 1 << 21

# --------------------------------------------------------------------------- sample grid


def sample_stride(
    shape: Sequence[int], max_samples: int | None = None, *, least_squares: bool = False
) -> int:
    """Every how many rows and columns a level of ``shape = (rows, cols)`` is evaluated.

    1 for a least-squares metric (SSD uses every pixel) and for levels of at most
    ``max_samples`` pixels (default :data:`MAX_SAMPLES`); otherwise the smallest stride that
    leaves about that many.
    """
    rows, cols = int(shape[0]), int(shape[1])
    limit = MAX_SAMPLES if max_samples is None else max(int(max_samples), 1)
    if least_squares or rows * cols <= limit:
        return 1
    return math.ceil(math.sqrt(rows * cols / limit))


@dataclass(frozen=True)
class SampleGrid:
    """The fixed pixels a level's cost is evaluated on, and pixel sums over them.

    Pixel ``(i, j)`` of the grid is the fixed pixel ``(x, y) = (start + stride * j,
    start + stride * i)``.

    Attributes
    ----------
    stride, start : int
        Every ``stride``-th row and column, from ``start = (stride - 1) // 2``.
    shape : (rows, cols)
        Shape of the grid.
    xs : (cols,) float64 ndarray
        The ``x`` of each grid column, in level pixels.
    ys : (rows,) float64 ndarray
        The ``y`` of each grid row.
    matrix : (3, 3) ndarray
        Grid index ``(j, i, 1)`` -> level pixel ``(x, y, 1)``.
    """

    stride: int
    start: int
    shape: tuple[int, int]
    xs: np.ndarray
    ys: np.ndarray
    matrix: np.ndarray

    @classmethod
    def for_level(cls, shape: Sequence[int], stride: int = 1) -> SampleGrid:
        """The grid of every ``stride``-th pixel of a level of ``shape = (rows, cols)``."""
        start = (stride - 1) // 2
        rows = len(range(start, int(shape[0]), stride))
        cols = len(range(start, int(shape[1]), stride))
        return cls(
            stride=stride,
            start=start,
            shape=(rows, cols),
            xs=start + stride * np.arange(cols, dtype=np.float64),
            ys=start + stride * np.arange(rows, dtype=np.float64),
            matrix=np.array([[stride, 0.0, start], [0.0, stride, start], [0.0, 0.0, 1.0]]),
        )

    def samples(self, image: np.ndarray) -> np.ndarray:
        """The grid's pixels of a ``(rows, cols)`` level image (the image itself at stride 1)."""
        if self.stride == 1:
            return image
        return image[self.start :: self.stride, self.start :: self.stride]

    def first_moments(self, image: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """``[sum I x, sum I y, sum I]`` over the grid for ``I = image`` (times ``weights``,
        without forming the product), for float32 images of the grid's shape.

        The row and column sums accumulate in single precision (rows and columns of at most a
        few thousand pixels), the moments in double: several times faster than double
        accumulators, which make numpy cast every pixel.
        """
        if weights is None:
            cols, rows = image.sum(axis=0), image.sum(axis=1)
        else:
            cols = np.einsum("ij,ij->j", image, weights)
            rows = np.einsum("ij,ij->i", image, weights)
        cols, rows = cols.astype(np.float64), rows.astype(np.float64)
        return np.array([cols @ self.xs, rows @ self.ys, cols.sum()])

    def gradient_gram(self, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        """The (6, 6) Gram matrix of the images ``g_i * u`` for ``g`` in ``(gx, gy)`` and
        ``u`` in ``(x, y, 1)``, indexed ``(i, u) -> 3 * i + u``: ``sum g_i g_k u v``.

        One product image at a time in one buffer (three at once would add two level-sized
        temporaries); row and column sums accumulated as in :meth:`first_moments`, and the
        three products' moments then together.
        """
        rows, cols = gx.shape
        col_sums = np.empty((3, cols), dtype=np.float32)
        row_sums = np.empty((3, rows), dtype=np.float32)
        row_x = np.empty((3, rows), dtype=np.float32)
        product = np.empty(gx.shape, dtype=np.float32)
        for k, (a, b) in enumerate(((gx, gx), (gx, gy), (gy, gy))):
            np.multiply(a, b, out=product)
            product.sum(axis=0, out=col_sums[k])
            product.sum(axis=1, out=row_sums[k])
            np.einsum("ij,j->i", product, self._xs_single, out=row_x[k])
        # [sum P x^2, sum P x, sum P] and [sum P y^2, sum P y, sum P] of the three products
        x_moments = np.einsum("kc,cm->km", col_sums.astype(np.float64), self._powers[0])
        y_moments = np.einsum("kr,rm->km", row_sums.astype(np.float64), self._powers[1])
        xy = np.einsum("kr,r->k", row_x.astype(np.float64), self.ys)
        blocks = np.empty((3, 3, 3))
        blocks[:, 0, 0], blocks[:, 1, 1], blocks[:, 2, 2] = (
            x_moments[:, 0],
            y_moments[:, 0],
            x_moments[:, 2],
        )
        blocks[:, 0, 1] = blocks[:, 1, 0] = xy
        blocks[:, 0, 2] = blocks[:, 2, 0] = x_moments[:, 1]
        blocks[:, 1, 2] = blocks[:, 2, 1] = y_moments[:, 1]
        gram = np.empty((6, 6))
        gram[:3, :3], gram[3:, 3:] = blocks[0], blocks[2]
        gram[:3, 3:] = gram[3:, :3] = blocks[1]  # (each block is symmetric)
        return gram

    @functools.cached_property
    def _powers(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x^2, x, 1)`` per column and ``(y^2, y, 1)`` per row, as (n, 3) arrays."""
        return tuple(np.column_stack([v * v, v, np.ones_like(v)]) for v in (self.xs, self.ys))

    @functools.cached_property
    def _xs_single(self) -> np.ndarray:
        return self.xs.astype(np.float32)


# --------------------------------------------------------------------------- resampler


def _sample_fast(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return warp_linear(image, matrix, shape).astype(np.float32)


def _sample_single(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return warp_linear(image, matrix, shape, dtype=np.float32)


def _sample_ndimage(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return warp(image, matrix, order=1, output_shape=shape)


def choose_resampler(
    moving: np.ndarray, shape: tuple[int, int], *, pixels: int | None = None
) -> tuple[np.ndarray, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """The copy of ``moving`` a level samples, and the function that samples it.

    ``sample(image, M)`` is ``image`` (the moving image or one of its gradients) sampled
    bilinearly at ``M`` of the grid pixels, as a float32 array of ``shape = (rows, cols)``.
    Levels of at most :data:`FAST_WARP_PIXELS` pixels (``pixels``, default ``moving.size``)
    use scikit-image's affine kernel: on a float64 copy, or in single precision on a float32
    ``moving`` of more than ``pixels`` pixels (an upsampled image, :mod:`regcli.refine`: half
    the memory traffic); bigger ones scipy.ndimage on the float32 image.  Only pixels of the
    overlap mask (one pixel inside the image) are ever read, so the two resamplers' border
    conventions do not matter.
    """
    pixels = moving.size if pixels is None else pixels
    if pixels <= FAST_WARP_PIXELS:
        if moving.dtype == np.float32 and moving.size > pixels:
            return moving, functools.partial(_sample_single, shape=shape)
        return moving.astype(np.float64), functools.partial(_sample_fast, shape=shape)
    return moving, functools.partial(_sample_ndimage, shape=shape)
