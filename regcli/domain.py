"""Where each image has data: the domain every cost, score and quality measure is restricted to.

A pixel outside an image's domain is not content: not zero, not the background colour.  A
registration compares ``fixed(x)`` with ``moving(M x)`` only over the **overlap**, the fixed
pixels ``x`` in the fixed domain whose ``M x`` lies in the moving domain, so a white (or any)
background cut off by the frame weighs nothing, and a candidate whose overlap is small is
judged on that overlap alone.

Today a domain is the image's rectangle.  :class:`Domain` also carries an optional boolean
mask, so that user masks (a region of interest, NaN pixels) and fixed and moving images of
different shapes need no other change: build each image's domain with :meth:`Domain.of`
(``register()`` does it in one place) and every stage, the global search, the per-level
objective and the quality assessment, uses it through :meth:`Domain.level`,
:meth:`Domain.downsampled`, :meth:`Domain.valid` and :meth:`Domain.inside`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from regcli import pyramid
from regcli.resample import inside_mask, warp_linear

__all__ = ["Domain", "overlap"]

#: A reduced mask keeps a coarse pixel when at least this fraction of what it averages is data.
KEEP_FRACTION = 0.99


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

    @classmethod
    def of(cls, image: np.ndarray, mask: np.ndarray | None = None) -> Domain:
        """The domain of ``image``: its rectangle, AND-ed with ``mask`` when one is given.

        This is where a user mask, or the NaN pixels of an image, would be added.
        """
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
        reduced = pyramid.gaussian_pyramid(self.mask.astype(np.float32), level + 1)[-1]
        return Domain(shape, reduced >= KEEP_FRACTION)

    def downsampled(self, factor: float, shape: Sequence[int]) -> Domain:
        """The domain of the image :func:`regcli.pyramid.downsample` reduces by ``factor`` to
        ``shape``."""
        shape = (int(shape[0]), int(shape[1]))
        if self.mask is None:
            return Domain(shape)
        reduced = pyramid.downsample(self.mask.astype(np.float32), factor)
        return Domain(shape, reduced >= KEEP_FRACTION)

    def inside(
        self, matrix: np.ndarray, output_shape: Sequence[int], *, margin: float = 0.0
    ) -> np.ndarray:
        """The output pixels ``x`` (of ``output_shape``) whose ``matrix @ x`` lands in the
        domain, at least ``margin`` pixels inside the rectangle."""
        out = inside_mask(matrix, output_shape, self.shape, margin=margin)
        if self.mask is not None:
            warped = warp_linear(self.mask.astype(np.float64), matrix, output_shape)
            out &= warped >= KEEP_FRACTION
        return out


def overlap(
    fixed: Domain, moving: Domain, matrix: np.ndarray, *, margin: float = 0.0
) -> np.ndarray:
    """The fixed pixels where both images have data under ``matrix`` (fixed -> moving)."""
    out = moving.inside(matrix, fixed.shape, margin=margin)
    if fixed.mask is not None:
        out &= fixed.mask
    return out
