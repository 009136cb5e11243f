"""The coarse image pair the global search runs on (:mod:`regcli.search`).

:func:`coarse_pair` reduces both images (or reuses a pyramid level) so that the fixed image's
longest side is about the search's size; :class:`CoarsePair` holds them with their domains,
their feature images (intensities, gradient magnitudes), the masked correlators of the fixed
features, and the map between coarse and full-resolution pixels.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from regcli import pyramid
from regcli.domain import Domain
from regcli.spectra import gradient_magnitude
from regcli.transforms import Transform, compose, scaling_matrix, translation_matrix
from regcli.xcorr import MaskedCorrelator

__all__ = [
    "MIN_CANDIDATE_OVERLAP",
    "MIN_CANDIDATE_PIXELS",
    "SEARCH_SIZE",
    "CoarsePair",
    "coarse_pair",
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
    """

    fixed: np.ndarray
    moving: np.ndarray
    factor: float
    fixed_center: np.ndarray
    moving_center: np.ndarray
    fixed_domain: Domain
    moving_domain: Domain

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
        return (transform.center - (self.factor - 1) / 2.0) / self.factor

    def to_full(self, coarse: np.ndarray, transform: Transform) -> np.ndarray:
        """A coarse fixed -> moving matrix as the full-resolution matrix, in ``transform``'s
        family (the projection is exact for the families searched)."""
        s = self.scaling()
        full = s @ coarse @ np.linalg.inv(s)
        return transform.matrix(transform.params_from_matrix(full))

    def to_full_matrix(self, coarse: np.ndarray) -> np.ndarray:
        """A coarse matrix in full-resolution pixels (no projection onto a family)."""
        s = self.scaling()
        return s @ coarse @ np.linalg.inv(s)

    def to_coarse(self, full: np.ndarray) -> np.ndarray:
        """A full-resolution matrix in coarse pixels."""
        s = self.scaling()
        return np.linalg.inv(s) @ full @ s

    def scaling(self) -> np.ndarray:
        """The coarse grid in full-resolution pixels: ``x_full = S @ x_coarse``."""
        offset = (self.factor - 1) / 2.0
        return compose(scaling_matrix(self.factor), translation_matrix(offset, offset))


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
    given = _halvings_match(coarse, factor, fixed.shape, moving.shape)
    if given is not None:
        small_fixed, small_moving = given
    else:
        small_fixed = pyramid.downsample(fixed, factor)
        small_moving = pyramid.downsample(moving, factor)
    if domains is None:
        domains = (Domain.of(fixed), Domain.of(moving))
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
