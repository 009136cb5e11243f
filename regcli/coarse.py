"""The coarse image pair the global search runs on (:mod:`regcli.search`).

:func:`coarse_pair` reduces both images (or reuses a pyramid level) so that the fixed image's
longest side is about the search's size; :class:`CoarsePair` holds them with their domains,
their feature images (intensities, gradient magnitudes), the masked correlators of the fixed
features, and the map between coarse and full-resolution pixels.  The two images may have
different shapes; masked pixels are left out of the reduction (:mod:`regcli.masks`).  With
pixel spacing (:func:`physical_coarse_pair`) both images are resampled to square pixels of one
physical size, so that a physically rigid transform is rigid on the coarse pair.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from regcli import pyramid
from regcli.domain import Domain
from regcli.masks import masked_downsample
from regcli.spectra import gradient_magnitude
from regcli.transforms import Transform, compose, scaling_matrix, translation_matrix
from regcli.xcorr import MaskedCorrelator

__all__ = [
    "MIN_CANDIDATE_OVERLAP",
    "MIN_CANDIDATE_PIXELS",
    "SEARCH_SIZE",
    "CoarsePair",
    "coarse_pair",
    "physical_coarse_pair",
    "whole_halvings",
]

#: Longest side (pixels) of the coarse images the search runs on.
SEARCH_SIZE = 64
#: A candidate whose overlap is less than this fraction of the fixed domain is unusable.
MIN_CANDIDATE_OVERLAP = 0.01
MIN_CANDIDATE_PIXELS = 16


# --------------------------------------------------------------------------- coarse images


@dataclass(frozen=True, eq=False)
class CoarsePair:
    """The two images the search runs on, their domains, and the geometry they share.

    Attributes
    ----------
    fixed, moving : (rows, cols) float64 ndarrays
        The coarse images.
    factor : float
        Full-resolution pixels per coarse pixel: coarse pixel ``x`` is the full-resolution
        point ``factor * x + (factor - 1) / 2``.
    fixed_center, moving_center : (2,) ndarrays
        The images' centres ``(x, y)`` in coarse pixels.
    fixed_domain, moving_domain : Domain
        Where each coarse image has data.
    fixed_grid, moving_grid : (3, 3) ndarrays or None
        Coarse pixel -> full-resolution pixel of each image, when it is not the ``factor``
        map above (pixel spacing: :func:`physical_coarse_pair`).
    """

    fixed: np.ndarray
    moving: np.ndarray
    factor: float
    fixed_center: np.ndarray
    moving_center: np.ndarray
    fixed_domain: Domain
    moving_domain: Domain
    fixed_grid: np.ndarray | None = None
    moving_grid: np.ndarray | None = None

    @functools.cached_property
    def min_pixels(self) -> int:
        """The smallest overlap a candidate may have."""
        return max(MIN_CANDIDATE_PIXELS, int(MIN_CANDIDATE_OVERLAP * self.fixed_domain.count()))

    @functools.cached_property
    def _features(self) -> dict:
        return {"intensity": (self.fixed, self.moving)}

    def feature(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(fixed, moving) images of a feature: ``"intensity"``, or ``"gradient"`` (gradient
        magnitudes: edges coincide across modalities even where intensities do not)."""
        if name not in self._features:
            self._features[name] = (gradient_magnitude(self.fixed), gradient_magnitude(self.moving))
        return self._features[name]

    @functools.cached_property
    def _correlators(self) -> dict:
        return {}

    def correlator(
        self, feature: str, moving_shape, dtype=np.float32, max_shift=None
    ) -> MaskedCorrelator:
        """The masked correlator of the fixed ``feature`` image against moving images of
        ``moving_shape`` (made once per feature, shape, precision and shift range)."""
        key = (feature, tuple(moving_shape), np.dtype(dtype).name, max_shift)
        if key not in self._correlators:
            mask = None if self.fixed_domain.full else self.fixed_domain.valid()
            self._correlators[key] = MaskedCorrelator(
                self.feature(feature)[0], mask, moving_shape, dtype=dtype, max_shift=max_shift
            )
        return self._correlators[key]

    def center_of(self, transform: Transform) -> np.ndarray:
        """The transform's centre in coarse pixels."""
        center = np.asarray(transform.pixel_center, dtype=float)
        return (np.linalg.inv(self.scaling()) @ np.array([center[0], center[1], 1.0]))[:2]

    def to_full(self, coarse: np.ndarray, transform: Transform) -> np.ndarray:
        """A coarse fixed -> moving matrix as the full-resolution matrix, in ``transform``'s
        family (the projection is exact for the families searched)."""
        return transform.matrix(transform.params_from_matrix(self.to_full_matrix(coarse)))

    def to_full_matrix(self, coarse: np.ndarray) -> np.ndarray:
        """A coarse matrix in full-resolution pixels (no projection onto a family)."""
        return self.moving_scaling() @ coarse @ np.linalg.inv(self.scaling())

    def to_coarse(self, full: np.ndarray) -> np.ndarray:
        """A full-resolution matrix in coarse pixels."""
        return np.linalg.inv(self.moving_scaling()) @ full @ self.scaling()

    def scaling(self) -> np.ndarray:
        """The fixed coarse grid in full-resolution pixels: ``x_full = S @ x_coarse``."""
        if self.fixed_grid is not None:
            return self.fixed_grid
        offset = (self.factor - 1) / 2.0
        return compose(scaling_matrix(self.factor), translation_matrix(offset, offset))

    def moving_scaling(self) -> np.ndarray:
        """The moving coarse grid in full-resolution pixels."""
        return self.scaling() if self.moving_grid is None else self.moving_grid


def coarse_pair(
    fixed: np.ndarray,
    moving: np.ndarray,
    size: int = SEARCH_SIZE,
    coarse: tuple[np.ndarray, np.ndarray] | None = None,
    domains: tuple[Domain, Domain] | None = None,
) -> CoarsePair:
    """Both images reduced so that the fixed image's longest side is about ``size`` pixels.

    ``coarse`` is the pair already reduced (a pyramid level), used when the reduction is a
    whole number of halvings and the shapes are theirs; otherwise :func:`pyramid.downsample`
    reduces ``fixed`` and ``moving`` (``(rows, cols)`` arrays).  ``domains`` are the full
    resolution (fixed, moving) domains (default: the rectangles).
    """
    factor = max(1.0, max(fixed.shape) / float(size))
    if domains is None:
        domains = (Domain.of(fixed), Domain.of(moving))
    given = _halvings_match(coarse, factor, fixed.shape, moving.shape)
    if given is not None:
        small_fixed, small_moving = given
    else:  # (a pyramid level is already reduced from the data pixels alone)
        small_fixed = masked_downsample(fixed, domains[0].mask, factor)
        small_moving = masked_downsample(moving, domains[1].mask, factor)
    rows, cols = small_fixed.shape
    mr, mc = small_moving.shape
    return CoarsePair(
        fixed=small_fixed,
        moving=small_moving,
        factor=factor,
        fixed_center=np.array([(cols - 1) / 2.0, (rows - 1) / 2.0]),
        moving_center=np.array([(mc - 1) / 2.0, (mr - 1) / 2.0]),
        fixed_domain=domains[0].downsampled(factor, small_fixed.shape),
        moving_domain=domains[1].downsampled(factor, small_moving.shape),
    )


def physical_coarse_pair(
    fixed: np.ndarray,
    moving: np.ndarray,
    spacings,
    size: int = SEARCH_SIZE,
    domains: tuple[Domain, Domain] | None = None,
) -> CoarsePair:
    """Both images resampled to square pixels of one physical size, the fixed image's longest
    physical side about ``size`` of them (``spacings``: the images' ``(sy, sx)``).

    On this pair a transform that is rigid (similar) in physical units is rigid (similar) in
    pixels, so the search runs as without spacing; :meth:`CoarsePair.to_full` takes its result
    back to full-resolution pixels through each image's own grid.
    """
    if domains is None:
        domains = (Domain.of(fixed), Domain.of(moving))
    fixed_spacing = spacings[0]
    rows, cols = fixed.shape
    side = max(rows * fixed_spacing[0], cols * fixed_spacing[1]) / float(size)
    images, grids, reduced = [], [], []
    for image, spacing, domain in zip((fixed, moving), spacings, domains, strict=True):
        factors = (side / spacing[0], side / spacing[1])  # full pixels per coarse pixel
        small = masked_downsample(image, domain.mask, factors)
        images.append(small)
        reduced.append(domain.downsampled(factors, small.shape))
        grid = np.diag([factors[1], factors[0], 1.0])
        grid[:2, 2] = [(factors[1] - 1) / 2.0, (factors[0] - 1) / 2.0]
        grids.append(grid)
    (fr, fc), (mr, mc) = images[0].shape, images[1].shape
    return CoarsePair(
        fixed=images[0],
        moving=images[1],
        factor=max(side / fixed_spacing[0], side / fixed_spacing[1]),
        fixed_center=np.array([(fc - 1) / 2.0, (fr - 1) / 2.0]),
        moving_center=np.array([(mc - 1) / 2.0, (mr - 1) / 2.0]),
        fixed_domain=reduced[0],
        moving_domain=reduced[1],
        fixed_grid=grids[0],
        moving_grid=grids[1],
    )


def whole_halvings(factor: float) -> int | None:
    """``k`` if ``factor == 2**k`` for a whole ``k >= 1``, else None."""
    halvings = round(math.log2(factor)) if factor >= 2 else 0
    if halvings < 1 or 2.0**halvings != factor:
        return None
    return halvings


def _halvings_match(coarse, factor: float, fixed_shape, moving_shape):
    """``coarse`` as two float64 images if it is ``factor`` (a power of two) worth of
    halvings of images of these shapes, else None."""
    if coarse is None:
        return None
    halvings = whole_halvings(factor)
    if halvings is None:
        return None
    out = []
    for image, shape in zip(coarse, (fixed_shape, moving_shape), strict=True):
        image = np.asarray(image)
        if image.shape != pyramid.level_shape(shape, halvings):
            return None
        out.append(image.astype(np.float64))
    return out
