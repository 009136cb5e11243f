"""Gaussian image pyramids for coarse-to-fine registration.

Level ``k`` of a pyramid with ``downscale = f`` samples the image every ``f**k`` pixels, with
pixel *centres* kept consistent (an image's pixel ``i`` covers ``[i - 0.5, i + 0.5]``)::

    x_coarse = (x_fine + 0.5) / f**k - 0.5

:func:`level_scaling` is the 3x3 matrix ``S`` of that map; a fixed -> moving matrix ``M`` at
full resolution becomes ``S @ M @ inv(S)`` at level ``k`` (both images share ``S``):
:func:`to_level`, and back with :func:`from_level`.  :func:`downsample` reduces one image by
any factor with the same pixel-centre geometry.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from regcli._validate import check_image
from regcli.errors import InputError

__all__ = [
    "auto_levels",
    "downsample",
    "from_level",
    "gaussian_pyramid",
    "level_scaling",
    "level_shape",
    "smooth",
    "to_level",
]

#: The automatic number of levels keeps the coarsest image at least this many pixels a side.
MIN_COARSE_SIDE = 32


def auto_levels(
    shape: Sequence[int], *, downscale: float = 2.0, min_side: int = MIN_COARSE_SIDE
) -> int:
    """Number of levels (full resolution included) whose coarsest side is ``>= min_side``.

    An image already smaller than ``min_side`` gets one level (itself).

    >>> auto_levels((256, 256))
    4
    >>> auto_levels((20, 300))
    1
    """
    smallest = min(int(shape[0]), int(shape[1]))
    if smallest <= min_side:
        return 1
    return 1 + math.floor(math.log(smallest / min_side, downscale) + 1e-9)


def level_scaling(level: int, *, downscale: float = 2.0) -> np.ndarray:
    """Matrix ``S`` mapping full-resolution pixel coordinates to those of pyramid ``level``."""
    factor = float(downscale) ** int(level)
    s = np.eye(3)
    s[0, 0] = s[1, 1] = 1.0 / factor
    s[0, 2] = s[1, 2] = 0.5 / factor - 0.5
    return s


def to_level(matrix: np.ndarray, level: int, *, downscale: float = 2.0) -> np.ndarray:
    """A full-resolution fixed -> moving ``matrix`` in the pixels of pyramid ``level``.

    ``S @ M @ inv(S)`` with ``S = level_scaling(level)``; :func:`from_level` undoes it.

    >>> to_level(np.array([[1.0, 0, 8], [0, 1, -4], [0, 0, 1]]), 2)[:2, 2]  # a shift / 4
    array([ 2., -1.])
    """
    scaling = level_scaling(level, downscale=downscale)
    return scaling @ matrix @ np.linalg.inv(scaling)


def from_level(matrix: np.ndarray, level: int, *, downscale: float = 2.0) -> np.ndarray:
    """A fixed -> moving ``matrix`` in the pixels of pyramid ``level`` at full resolution.

    ``inv(S) @ M @ S`` with ``S = level_scaling(level)``: the inverse of :func:`to_level`.
    """
    scaling = level_scaling(level, downscale=downscale)
    return np.linalg.inv(scaling) @ matrix @ scaling


def level_shape(shape: Sequence[int], level: int) -> tuple[int, int]:
    """Shape ``(rows, cols)`` of level ``level`` of a pyramid of halvings of ``shape``.

    >>> level_shape((256, 199), 2)
    (64, 50)
    """
    rows, cols = int(shape[0]), int(shape[1])
    for _ in range(int(level)):
        rows, cols = max(1, -(-rows // 2)), max(1, -(-cols // 2))
    return rows, cols


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` blurred by an isotropic Gaussian of ``sigma`` pixels (same dtype)."""
    if sigma <= 0:
        return image
    return ndimage.gaussian_filter(image, sigma, mode="nearest")


def _halve_axis(image: np.ndarray, axis: int) -> np.ndarray:
    """Binomial ``[1, 3, 3, 1] / 8`` filter evaluated at ``2 i + 0.5`` along ``axis``.

    The kernel is centred between fine pixels ``2i`` and ``2i + 1``, i.e. at the coarse pixel
    centre, so smoothing and decimation are one pass over half the output; edges repeat the
    border pixel.  Its standard deviation is 0.87 fine pixels and it cancels the highest
    frequency (a checkerboard becomes flat).
    """
    n = image.shape[axis]
    m = max(1, math.ceil(n / 2))
    pad = [(0, 0), (0, 0)]
    pad[axis] = (1, 2 * m + 2 - n)
    padded = np.pad(image, pad, mode="edge")

    def taps(first):
        index = [slice(None), slice(None)]
        index[axis] = slice(first, first + 2 * m, 2)
        return padded[tuple(index)]

    out = taps(0) + taps(3)
    out += 3 * (taps(1) + taps(2))
    out *= out.dtype.type(0.125)
    return out


def _halve(image: np.ndarray) -> np.ndarray:
    """One pyramid step of ``downscale = 2``: :func:`_halve_axis` along rows, then columns."""
    return _halve_axis(_halve_axis(image, 0), 1)


@contextlib.contextmanager
def _diagonal_matrix_ok():
    """Older SciPy warns that a 1-D ``matrix`` (the diagonal: a zoom and a shift) has meant
    that since SciPy 0.18; it is what is meant here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The behavior of affine_transform", UserWarning)
        yield


def _reduce(image: np.ndarray, downscale: float, sigma: float | None) -> np.ndarray:
    """Smooth (anti-alias) then sample at the coarse pixel centres ``f * (i + 0.5) - 0.5``."""
    if downscale == 2 and sigma is None:
        return _halve(image)
    if sigma is None:
        sigma = 2.0 * downscale / 6.0
    smoothed = smooth(image, sigma)
    shape = tuple(max(1, math.ceil(n / downscale)) for n in image.shape)
    offset = 0.5 * (downscale - 1.0)
    with _diagonal_matrix_ok():
        return ndimage.affine_transform(
            smoothed,
            np.array([downscale, downscale]),
            offset=(offset, offset),
            output_shape=shape,
            output=image.dtype,
            order=1,
            mode="nearest",
            prefilter=False,
        )


def downsample(image: np.ndarray, factor) -> np.ndarray:
    """``image`` anti-aliased and sampled at the points ``factor * x + (factor - 1) / 2``.

    Whole halvings use the pyramid's one-pass binomial filter (the geometry of
    :func:`gaussian_pyramid`, far cheaper than a wide Gaussian on the full image), in float32
    unless the values would overflow it; what is left of the factor (< 2) is a Gaussian of
    ``factor / 2`` pixels and linear sampling on the already small image.

    Parameters
    ----------
    image : (rows, cols) array
    factor : float or (fy, fx)
        Full-resolution pixels per output pixel (1 or less: a float64 copy); a pair reduces
        the rows by ``fy`` and the columns by ``fx`` (pixels that are not square).

    Returns
    -------
    (rows / factor, cols / factor) float64 ndarray
        About that shape: each halving rounds up, the rest rounds to nearest.

    >>> downsample(np.ones((256, 200)), 4.6875).shape
    (55, 43)
    >>> downsample(np.ones((256, 200)), (4.0, 2.0)).shape
    (64, 100)
    """
    if np.ndim(factor) == 1:
        fy, fx = (float(f) for f in factor)
        if fy != fx:
            return _downsample_axes(np.asarray(image), [fy, fx])
        factor = fy
    img = np.asarray(image)
    if factor <= 1.0:
        return img.astype(np.float64)
    if factor >= 2.0 - 1e-9 and (img.dtype != np.float64 or float(np.max(np.abs(img))) < 1e30):
        # The halvings in float32 (twice as fast; a search needs no more), unless the values
        # would overflow it.
        img = img.astype(np.float32)
    else:
        img = img.astype(np.float64)
    while factor >= 2.0 - 1e-9 and min(img.shape) >= 2:
        img = _halve(img)
        factor /= 2.0
    img = img.astype(np.float64)
    if factor <= 1.0 + 1e-9:
        return img
    smoothed = ndimage.gaussian_filter(img, sigma=0.5 * factor, mode="nearest")
    shape = tuple(max(1, round(n / factor)) for n in img.shape)
    offset = (factor - 1.0) / 2.0
    with _diagonal_matrix_ok():
        return ndimage.affine_transform(
            smoothed,
            [factor, factor],
            offset=[offset, offset],
            output_shape=shape,
            order=1,
            mode="nearest",
        )


def _downsample_axes(img: np.ndarray, factors: list[float]) -> np.ndarray:
    """:func:`downsample` by a different factor along each axis (float64)."""
    img = img.astype(np.float64)
    for axis in (0, 1):
        while factors[axis] >= 2.0 - 1e-9 and img.shape[axis] >= 2:
            img = _halve_axis(img, axis)
            factors[axis] /= 2.0
    rest = list(factors)  # (< 1: finer sampling along that axis)
    if all(abs(f - 1.0) <= 1e-9 for f in rest):
        return img
    sigma = [0.5 * f if f > 1.0 + 1e-9 else 0.0 for f in rest]
    smoothed = ndimage.gaussian_filter(img, sigma=sigma, mode="nearest")
    shape = tuple(max(1, round(n / f)) for n, f in zip(img.shape, rest, strict=True))
    with _diagonal_matrix_ok():
        return ndimage.affine_transform(
            smoothed,
            rest,
            offset=[(f - 1.0) / 2.0 for f in rest],
            output_shape=shape,
            order=1,
            mode="nearest",
        )


def gaussian_pyramid(
    image: np.ndarray,
    levels: int | None = None,
    *,
    downscale: float = 2.0,
    sigma: float | None = None,
) -> list[np.ndarray]:
    """Gaussian pyramid of ``image``, finest level first.

    Parameters
    ----------
    image : (rows, cols) array
        Grey image; integer images are converted to float64, float32 stays float32.
    levels : int, optional
        Number of levels including the full-resolution image; ``None`` chooses
        :func:`auto_levels` (coarsest side at least 32 pixels).
    downscale : float
        Size ratio between consecutive levels (> 1).
    sigma : float, optional
        Standard deviation (in pixels of the finer level) of the Gaussian applied before each
        downsampling, then sampled linearly.  Default: for ``downscale = 2``, the binomial
        filter ``[1, 3, 3, 1] / 8`` evaluated at the coarse pixel centres (standard deviation
        0.87 px, smoothing and decimation in one cheap pass); otherwise ``2 * downscale / 6``
        (as :func:`skimage.transform.pyramid_gaussian`).

    Returns
    -------
    list of ndarray
        ``levels`` images; level ``k`` has about ``shape / downscale**k`` pixels and pixel
        centres related by :func:`level_scaling`.

    Examples
    --------
    >>> [p.shape for p in gaussian_pyramid(np.ones((64, 50)), 3)]
    [(64, 50), (32, 25), (16, 13)]
    """
    img = check_image(image)
    img = img if img.dtype in (np.float32, np.float64) else img.astype(np.float64)
    if not (isinstance(downscale, (int, float)) and downscale > 1 and math.isfinite(downscale)):
        raise InputError(f"downscale: expected a number > 1, got {downscale!r}")
    if levels is None:
        levels = auto_levels(img.shape, downscale=downscale)
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise InputError(f"levels: expected an integer >= 1, got {levels!r}")
    if sigma is not None and not (math.isfinite(sigma) and sigma >= 0):
        raise InputError(f"sigma: expected a number >= 0, got {sigma!r}")
    out = [img]
    for _ in range(int(levels) - 1):
        out.append(_reduce(out[-1], downscale, sigma))
    return out
