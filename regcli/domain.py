"""Where each image has data: the domain every cost, score and quality measure is restricted to.

A pixel outside an image's domain is not content: not zero, not the background colour.  A
registration compares ``fixed(x)`` with ``moving(M x)`` only over the **overlap**, the fixed
pixels ``x`` in the fixed domain whose ``M x`` lies in the moving domain, so a white (or any)
background cut off by the frame weighs nothing, and a candidate whose overlap is small is
judged on that overlap alone.

A domain is the image's rectangle and, optionally, a boolean mask: a user's mask AND-ed with
the image's non-NaN pixels (:func:`regcli.masks.valid_pixels`).  ``register()`` builds each
image's domain in one place (:meth:`Domain.of`) and every stage, the global search, the
per-level objective and the quality assessment, uses it through :meth:`Domain.level`,
:meth:`Domain.downsampled`, :meth:`Domain.valid` and :meth:`Domain.inside`; fixed and moving
images of different shapes are two domains of different shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from regcli import pyramid
from regcli.resample import inside_mask, warp_linear

__all__ = ["Domain", "overlap"]

#: A warped mask keeps a point when at least this fraction of what it interpolates is data
#: (the interpolated value then comes from data pixels alone).
KEEP_FRACTION = 0.99
#: A reduced mask keeps a coarse pixel when most of what it averages is data (the coarse
#: image is the mean of the data pixels under it: :func:`regcli.masks.masked_pyramid`).
MOSTLY_VALID = 0.5
#: A mask is eroded for a margin (differences of neighbouring samples then read data alone)
#: when that keeps at least this fraction of it.
KEEP_ERODED = 0.5


@dataclass(frozen=True, eq=False)
class Domain:
    """The pixels of an image of ``shape = (rows, cols)`` that hold data.

    Attributes
    ----------
    shape : (rows, cols)
    mask : (rows, cols) bool ndarray or None
        True where the image has data; None: every pixel of the rectangle.
    """

    shape: tuple[int, int]
    mask: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def of(cls, image: np.ndarray, mask: np.ndarray | None = None) -> Domain:
        """The domain of ``image``: its rectangle, AND-ed with ``mask`` (a boolean image: the
        pixels with data, :func:`regcli.masks.valid_pixels`) when one is given."""
        shape = (int(np.shape(image)[0]), int(np.shape(image)[1]))
        if mask is None or bool(np.all(mask)):
            return cls(shape)
        return cls(shape, np.asarray(mask, dtype=bool))

    @property
    def full(self) -> bool:
        """True when every pixel of the rectangle is data."""
        return self.mask is None

    def valid(self) -> np.ndarray:
        """The domain as a boolean image."""
        return np.ones(self.shape, dtype=bool) if self.mask is None else self.mask

    def count(self) -> int:
        """How many pixels hold data."""
        return self.shape[0] * self.shape[1] if self.mask is None else int(self.mask.sum())

    def level(self, level: int) -> Domain:
        """The domain at pyramid ``level`` (:func:`regcli.pyramid.level_shape`)."""
        shape = pyramid.level_shape(self.shape, level)
        if self.mask is None or level == 0:
            return Domain(shape, self.mask)
        key = ("level", level)
        if key not in self._cache:
            reduced = pyramid.gaussian_pyramid(self.mask.astype(np.float32), level + 1)[-1]
            self._cache[key] = Domain(shape, reduced >= MOSTLY_VALID)
        return self._cache[key]

    def downsampled(self, factor, shape: Sequence[int]) -> Domain:
        """The domain of the image :func:`regcli.pyramid.downsample` reduces by ``factor`` (a
        number or ``(fy, fx)``) to ``shape``."""
        shape = (int(shape[0]), int(shape[1]))
        if self.mask is None:
            return Domain(shape)
        reduced = pyramid.downsample(self.mask.astype(np.float32), factor)
        return Domain(shape, reduced >= MOSTLY_VALID)

    def inside(
        self, matrix: np.ndarray, output_shape: Sequence[int], *, margin: float = 0.0
    ) -> np.ndarray:
        """The output pixels ``x`` (of ``output_shape``) whose ``matrix @ x`` lands in the
        domain (interpolated from data pixels alone), at least ``margin`` pixels inside it:
        inside the rectangle, and inside a mask eroded by ``margin`` when that leaves most of
        the mask (a mask of scattered pixels is not eroded)."""
        out = inside_mask(matrix, output_shape, self.shape, margin=margin)
        if self.mask is not None:
            out &= warp_linear(self._weights(margin), matrix, output_shape) >= KEEP_FRACTION
        return out

    def _weights(self, margin: float) -> np.ndarray:
        """The mask as float64, eroded by ``margin`` pixels (rounded up) when that keeps at
        least :data:`KEEP_ERODED` of it (cached)."""
        steps = max(0, int(np.ceil(margin)))
        key = ("weights", steps)
        if key not in self._cache:
            mask = self.mask
            if steps:
                eroded = ndimage.binary_erosion(
                    mask, np.ones((3, 3), bool), iterations=steps, border_value=1
                )
                if np.count_nonzero(eroded) >= KEEP_ERODED * np.count_nonzero(mask):
                    mask = eroded
            self._cache[key] = mask.astype(np.float64)
        return self._cache[key]


def overlap(
    fixed: Domain, moving: Domain, matrix: np.ndarray, *, margin: float = 0.0
) -> np.ndarray:
    """The fixed pixels where both images have data under ``matrix`` (fixed -> moving)."""
    out = moving.inside(matrix, fixed.shape, margin=margin)
    if fixed.mask is not None:
        out &= fixed.mask
    return out
