"""Pixel spacing: transforms that are rigid (or similar) in physical units.

A pixel of size ``(sy, sx)`` (along rows, along columns; any unit, the same for both images)
sits at the physical point ``p = S x`` with ``S = diag(sx, sy, 1)``: pixel (0, 0) at the
origin.  A transform that is rigid in physical units is not rigid in pixels when the pixels
are not square, or not of one size in both images; its pixel matrix (fixed pixel -> moving
pixel, the matrix regcli always returns) is

    M_px = S_m^-1 @ M_phys @ S_f

:class:`PhysicalTransform` wraps any :class:`~regcli.transforms.Transform` (whose parameters,
centre and translation are then physical) and conjugates its matrix and derivatives with the
two spacing matrices: every transform family and every optimiser works on it unchanged.  On a
pyramid level the pixels are ``2**level`` times bigger (``S @ inv(L)`` with ``L`` the level's
:func:`~regcli.pyramid.level_scaling`: :meth:`PhysicalTransform.at_level`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from regcli import pyramid
from regcli._validate import MAX_SPACING_RATIO, spacing_pair
from regcli.errors import InputError
from regcli.transforms import Transform, make_transform

__all__ = [
    "PhysicalTransform",
    "check_spacings",
    "grid_scales",
    "level_transform",
    "spacing_matrix",
]


def spacing_matrix(spacing: Sequence[float]) -> np.ndarray:
    """``diag(sx, sy, 1)``: pixel ``(x, y)`` -> physical point, for ``spacing = (sy, sx)``."""
    return np.diag([float(spacing[1]), float(spacing[0]), 1.0])


def check_spacings(fixed_spacing, moving_spacing) -> tuple | None:
    """``(fixed (sy, sx), moving (sy, sx))`` checked, or None when neither is given or both
    are 1 x 1 (pixels are the unit: nothing to convert).  One not given is 1 x 1."""
    fixed = spacing_pair(fixed_spacing, "fixed_spacing")
    moving = spacing_pair(moving_spacing, "moving_spacing")
    if fixed is None and moving is None:
        return None
    fixed, moving = fixed or (1.0, 1.0), moving or (1.0, 1.0)
    if fixed == (1.0, 1.0) and moving == (1.0, 1.0):
        return None
    for name, value in (("fixed_spacing", fixed), ("moving_spacing", moving)):
        if max(value) > MAX_SPACING_RATIO * min(value):
            raise InputError(
                f"{name}: pixels of {value[0]:g} x {value[1]:g} (height x width) are "
                f"{max(value) / min(value):.3g} times longer one way than the other (at most "
                f"{MAX_SPACING_RATIO:g}); check the values and their order (SY,SX)",
                param=name,
            )
    values = (*fixed, *moving)
    if max(values) > MAX_SPACING_RATIO * min(values):
        name = (
            "moving_spacing"
            if max(moving) / min(moving) >= max(fixed) / min(fixed)
            else ("fixed_spacing")
        )
        raise InputError(
            f"{name}: pixel sizes {fixed} (fixed) and {moving} (moving) differ more than "
            f"{MAX_SPACING_RATIO:g} times; give both in the same unit",
            param=name,
        )
    return fixed, moving


def grid_scales(derivatives: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """RMS displacement (pixels) over the pixels of an image of ``shape`` per unit change of
    each parameter, from ``derivatives`` (n, 3, 3): ``sqrt(trace(D G D^T))`` with ``G`` the
    second moments of the pixel coordinates ``(x, y, 1)``."""
    rows, cols = int(shape[0]), int(shape[1])
    mx, my = (cols - 1) / 2.0, (rows - 1) / 2.0
    xx, yy = (cols - 1) * (2 * cols - 1) / 6.0, (rows - 1) * (2 * rows - 1) / 6.0
    moments = np.array([[xx, mx * my, mx], [mx * my, yy, my], [mx, my, 1.0]])
    d = np.asarray(derivatives, dtype=float)[:, :2, :]
    values = np.einsum("kij,jl,kil->k", d, moments, d)
    return np.sqrt(np.maximum(values, 1e-24))


class PhysicalTransform:
    """``base`` (a transform of physical coordinates) acting on pixel coordinates.

    ``matrix(p) = inv(P_m) @ base.matrix(p) @ P_f`` with ``P_f``, ``P_m`` the affine maps from
    each image's pixels (of the current pyramid level) to physical coordinates.  Parameters,
    the centre and :meth:`describe` are physical (angles in radians inside, degrees shown;
    shifts in the spacing's unit); matrices are in pixels.

    Parameters
    ----------
    base : Transform
        The family, with its centre in physical coordinates.
    fixed_to_physical, moving_to_physical : (3, 3) arrays
        Pixel -> physical point of each image.
    spacings : ((sy, sx), (sy, sx))
        The full-resolution pixel sizes (fixed, moving), kept for the record.
    """

    def __init__(self, base: Transform, fixed_to_physical, moving_to_physical, spacings):
        self.base = base
        self.fixed_to_physical = np.asarray(fixed_to_physical, dtype=float)
        self.moving_to_physical = np.asarray(moving_to_physical, dtype=float)
        self._from_moving = np.linalg.inv(self.moving_to_physical)
        self._from_fixed = np.linalg.inv(self.fixed_to_physical)
        self.spacings = spacings

    @classmethod
    def of(cls, family: Transform, spacings) -> PhysicalTransform:
        """``family`` (a pixel transform: its centre in fixed pixels) made physical for
        ``spacings = (fixed (sy, sx), moving (sy, sx))``."""
        to_fixed, to_moving = spacing_matrix(spacings[0]), spacing_matrix(spacings[1])
        center = to_fixed @ np.array([family.center[0], family.center[1], 1.0])
        base = make_transform(family.name, center=center[:2])
        return cls(base, to_fixed, to_moving, spacings)

    def __repr__(self) -> str:
        return f"PhysicalTransform({self.base!r}, spacings={self.spacings})"

    # the Transform contract ------------------------------------------------------------
    name = property(lambda self: self.base.name)
    param_names = property(lambda self: self.base.param_names)
    angle_params = property(lambda self: self.base.angle_params)
    n_params = property(lambda self: self.base.n_params)
    center = property(lambda self: self.base.center, doc="The centre, physical.")

    @property
    def pixel_center(self) -> np.ndarray:
        """The centre in fixed pixels (of this level)."""
        return (self._from_fixed @ np.array([*self.base.center, 1.0]))[:2]

    def identity(self) -> np.ndarray:
        return self.base.identity()

    def matrix(self, params) -> np.ndarray:
        return self._from_moving @ self.base.matrix(params) @ self.fixed_to_physical

    def matrix_derivatives(self, params) -> np.ndarray:
        d = self.base.matrix_derivatives(params)
        return np.einsum("ij,kjl,lm->kim", self._from_moving, d, self.fixed_to_physical)

    def jacobian(self, params, points) -> np.ndarray:
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        homo = np.column_stack([pts, np.ones(len(pts))])
        return np.einsum("kij,nj->nik", self.matrix_derivatives(params)[:, :2, :], homo)

    def to_physical(self, matrix) -> np.ndarray:
        """A pixel matrix (fixed -> moving) in physical coordinates."""
        return self.moving_to_physical @ np.asarray(matrix, dtype=float) @ self._from_fixed

    def params_from_matrix(self, matrix) -> np.ndarray:
        return self.base.params_from_matrix(self.to_physical(matrix))

    def param_scales(self, shape: Sequence[int]) -> np.ndarray:
        """Pixels moved (RMS over an image of ``shape``) per unit of each parameter."""
        return grid_scales(self.matrix_derivatives(self.identity()), shape)

    def describe(self, params) -> dict:
        """:meth:`Transform.describe` of the physical parameters (centre physical too)."""
        return self.base.describe(params)

    def at_level(self, level: int) -> PhysicalTransform:
        """This (full-resolution) transform on pyramid ``level``'s pixels."""
        to_full = np.linalg.inv(pyramid.level_scaling(level))
        return PhysicalTransform(
            self.base,
            self.fixed_to_physical @ to_full,
            self.moving_to_physical @ to_full,
            self.spacings,
        )


Transform.register(PhysicalTransform)


def level_transform(family: Transform, level: int) -> Transform:
    """``family`` (full resolution) on pyramid ``level``'s pixels: its centre moved there, or
    for a :class:`PhysicalTransform` its pixel maps."""
    if isinstance(family, PhysicalTransform):
        return family.at_level(level)
    if level == 0:
        return family
    center = pyramid.level_scaling(level) @ np.array([family.center[0], family.center[1], 1.0])
    return make_transform(family.name, center=center[:2])


def square_pixel_size(shape: Sequence[int], spacing: Sequence[float], size: int) -> float:
    """The physical size of the square pixels of a grid whose longest side covers the image's
    longest physical side in ``size`` pixels."""
    rows, cols = int(shape[0]), int(shape[1])
    return max(rows * float(spacing[0]), cols * float(spacing[1])) / float(size)
