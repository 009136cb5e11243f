"""Geometric transforms: one contract for every transform, and the ``TRANSFORMS`` registry.

Conventions (see README, "Conventions"):

* a point is ``(x, y)``: ``x`` the column, ``y`` the row, origin at the centre of the top-left
  pixel; ``y`` points down, so a positive angle turns the picture clockwise on screen;
* a transform is a 3x3 homogeneous matrix ``M`` that maps a point of the **fixed** image to the
  point of the **moving** image that shows the same anatomy: ``aligned(x) = moving(M @ x)``;
* angles are radians here (degrees only in the CLI and in JSON, as ``angle_deg``).

Every transform is affine and written about a centre ``c``::

    M @ x = A(p) @ (x - c) + c + t(p)

so a transform class only says how its parameters ``p`` give the linear part ``A`` and the
translation ``t`` (and their derivatives).  The optimisers need nothing else: the derivative of
a cost with respect to ``p`` is the image-gradient-weighted sum over pixels of ``dM/dp @ x``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from regcli._validate import affine_matrix, finite_number, shape_pair
from regcli.errors import InputError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "TRANSFORMS",
    "Affine",
    "Rigid",
    "Rotation",
    "Similarity",
    "Transform",
    "Translation",
    "check_matrix",
    "compose",
    "implausible",
    "make_transform",
    "mean_displacement",
    "resolve_center",
    "rotation_matrix",
    "scaling_matrix",
    "similarity_matrix",
    "translation_matrix",
]


# --------------------------------------------------------------------------- matrix helpers


def translation_matrix(dx: float, dy: float) -> np.ndarray:
    """Matrix of ``(x, y) -> (x + dx, y + dy)``."""
    m = np.eye(3)
    m[0, 2], m[1, 2] = finite_number(dx, "dx"), finite_number(dy, "dy")
    return m


def rotation_matrix(angle_rad: float, center: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """Matrix of the rotation by ``angle_rad`` **radians** about ``center = (x, y)``
    (``np.radians(degrees)`` for an angle in degrees, as ``params["angle_deg"]`` gives it).

    The linear part is ``[[cos, -sin], [sin, cos]]`` in ``(x, y)``; with ``y`` pointing down a
    positive angle turns clockwise on screen.
    """
    angle_rad = finite_number(angle_rad, "angle_rad")  # (NaN gave a matrix of NaN)
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return _about_center(np.array([[c, -s], [s, c]]), np.zeros(2), center)


def scaling_matrix(scale: float, center: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """Matrix of the isotropic scaling by ``scale`` about ``center = (x, y)``."""
    return _about_center(np.eye(2) * finite_number(scale, "scale"), np.zeros(2), center)


def similarity_matrix(
    angle_rad: float,
    scale: float = 1.0,
    center: Sequence[float] = (0.0, 0.0),
    to: Sequence[float] | None = None,
) -> np.ndarray:
    """Matrix of ``x -> scale * R(angle_rad) @ (x - center) + to``.

    A rotation by ``angle_rad`` **radians** and an isotropic scaling about
    ``center = (x, y)``, after which ``center`` lands on ``to`` (default: it stays).  This is
    how an image's centre is turned onto another image's centre.

    >>> similarity_matrix(math.pi / 2, 2.0, center=(1.0, 1.0), to=(5.0, 0.0)) @ [2.0, 1.0, 1.0]
    array([5., 2., 1.])
    """
    angle_rad, scale = finite_number(angle_rad, "angle_rad"), finite_number(scale, "scale")
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    linear = scale * np.array([[c, -s], [s, c]])
    source = np.asarray(center, dtype=float)
    target = source if to is None else np.asarray(to, dtype=float)
    m = np.eye(3)
    m[:2, :2] = linear
    m[:2, 2] = target - linear @ source
    return m


def _about_center(linear: np.ndarray, shift: np.ndarray, center) -> np.ndarray:
    """``x -> linear @ (x - center) + center + shift`` as a 3x3 matrix."""
    c = np.asarray(center, dtype=float)
    m = np.eye(3)
    m[:2, :2] = linear
    m[:2, 2] = c - linear @ c + shift
    return m


def compose(*matrices: np.ndarray) -> np.ndarray:
    """Chain point maps: ``compose(a, b)`` applies ``a`` first, then ``b`` (``= b @ a``).

    If ``a`` maps image 1 to image 2 and ``b`` maps image 2 to image 3, ``compose(a, b)`` maps
    image 1 to image 3.

    >>> compose(translation_matrix(1, 0), translation_matrix(0, 2))
    array([[1., 0., 1.],
           [0., 1., 2.],
           [0., 0., 1.]])
    >>> point = compose(translation_matrix(1, 0), rotation_matrix(math.pi / 2)) @ [0, 0, 1]
    >>> np.round(point, 12) + 0.0  # (0, 0) moved to (1, 0), then turned a quarter to (0, 1)
    array([0., 1., 1.])
    """
    matrices = [affine_matrix(m, f"matrices[{i}]") for i, m in enumerate(matrices)]
    out = np.eye(3)
    for m in matrices:
        out = m @ out
    return out


def check_matrix(
    matrix: ArrayLike, *, name: str = "matrix", param: str | None = None
) -> np.ndarray:
    """Return ``matrix`` as a float 3x3 array, or raise :class:`InputError` saying what is wrong.

    Accepts a 3x3 homogeneous matrix or its top 2x3 rows.  Messages start with ``name``;
    ``param`` (the Python argument the matrix came from, if any) goes to
    :attr:`InputError.param`.
    """

    def error(message: str) -> InputError:
        return InputError(f"{name}: {message}", param=param)

    try:
        m = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise error(f"expected a 3x3 matrix of numbers, got {matrix!r}") from None
    if m.shape == (2, 3):
        m = np.vstack([m, [0.0, 0.0, 1.0]])
    if m.shape != (3, 3):
        raise error(f"expected a 3x3 (or 2x3) matrix, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise error("the matrix has NaN or infinite entries")
    if not np.allclose(m[2], [0.0, 0.0, 1.0]):
        raise error(f"the last row of an affine matrix must be [0, 0, 1], got {m[2]}")
    if abs(np.linalg.det(m[:2, :2])) < 1e-12:
        raise error("the matrix is singular (not invertible)")
    return m


#: A linear part whose singular values leave [1 / MAX_SCALE, MAX_SCALE], or whose larger one
#: exceeds MAX_ANISOTROPY times the smaller, is refused by the registration (the optimiser
#: does not step there): no pair of images of one scene is related that way, and such a map
#: collapses the image onto a line.
MAX_SCALE = 16.0
MAX_ANISOTROPY = 8.0


def implausible(
    matrix: ArrayLike, *, max_scale: float = MAX_SCALE, max_anisotropy: float = MAX_ANISOTROPY
) -> str | None:
    """Why a fixed -> moving ``matrix`` cannot be the alignment of two images, or None.

    Refused: a linear part that flips the image (determinant <= 0), one that shrinks or
    enlarges it more than ``max_scale`` times in some direction, and one that stretches one
    direction more than ``max_anisotropy`` times the other (nearly singular).

    >>> implausible(np.diag([1.0, -1.0, 1.0]))
    'it mirrors the image (determinant -1)'
    >>> implausible(np.eye(3)) is None
    True
    """
    m = np.asarray(matrix, dtype=float)
    if not np.all(np.isfinite(m)):
        return "it has NaN or infinite entries"
    det = float(np.linalg.det(m[:2, :2]))
    if det <= 0:
        return f"it mirrors the image (determinant {det:.2g})"
    low, high = (float(v) for v in np.linalg.svd(m[:2, :2], compute_uv=False)[::-1])
    if high > max_scale or low < 1.0 / max_scale:
        return (
            f"it scales the image by {low:.3g} to {high:.3g} "
            f"(allowed: 1/{max_scale:g} to {max_scale:g})"
        )
    if high > max_anisotropy * low:
        return (
            f"it stretches one direction {high / low:.3g} times more than the other "
            "(nearly singular)"
        )
    return None


def mean_displacement(matrix_a: ArrayLike, matrix_b: ArrayLike, shape: Sequence[int]) -> float:
    """Mean distance in pixels between where ``matrix_a`` and ``matrix_b`` send the pixels.

    The mean is over the pixel centres of an image of ``shape = (rows, cols)`` (on a regular
    grid of at most 256 x 256 of them, which gives the same mean to well under 0.01 px).
    This is how recovered transforms are scored against the truth.
    """
    rows, cols = shape_pair(shape, "shape", limit=False)
    matrix_a, matrix_b = affine_matrix(matrix_a, "matrix_a"), affine_matrix(matrix_b, "matrix_b")
    xs = np.linspace(0.0, cols - 1.0, min(cols, 256))
    ys = np.linspace(0.0, rows - 1.0, min(rows, 256))
    x, y = np.meshgrid(xs, ys)
    d = np.asarray(matrix_a, float) - np.asarray(matrix_b, float)
    dx = d[0, 0] * x + d[0, 1] * y + d[0, 2]
    dy = d[1, 0] * x + d[1, 1] * y + d[1, 2]
    return float(np.mean(np.hypot(dx, dy)))


def resolve_center(
    center: str | Sequence[float], shape: Sequence[int] | None = None
) -> tuple[float, float]:
    """Turn a centre specification into ``(x, y)``.

    ``center`` is ``"topleft"`` (pixel (0, 0)), ``"center"`` (``((w-1)/2, (h-1)/2)``, needs
    ``shape = (rows, cols)``), a string ``"X,Y"`` or a pair of numbers.  Errors carry
    ``param="center"``.

    >>> resolve_center("center", (60, 80)), resolve_center("3,4.5")
    ((39.5, 29.5), (3.0, 4.5))
    """
    if isinstance(center, str):
        key = center.strip().lower()
        if key in ("topleft", "top-left", "origin"):
            return (0.0, 0.0)
        if key in ("center", "centre"):
            if shape is None:
                raise InputError("center: 'center' needs the image shape", param="center")
            return ((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
        parts = key.split(",")
        if len(parts) == 2:
            try:
                x, y = float(parts[0]), float(parts[1])
            except ValueError:
                pass
            else:
                if math.isfinite(x) and math.isfinite(y):
                    return (x, y)
        raise InputError(
            f"center: expected 'topleft', 'center' or 'X,Y', got {center!r}", param="center"
        )
    try:
        x, y = (float(v) for v in center)
    except (TypeError, ValueError):
        raise InputError(
            f"center: expected 'topleft', 'center' or a pair (x, y), got {center!r}",
            param="center",
        ) from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InputError(f"center: coordinates must be finite, got {center!r}", param="center")
    return (x, y)


# --------------------------------------------------------------------------- the contract


class Transform(abc.ABC):
    """A family of affine transforms ``M(p) @ x = A(p) @ (x - c) + c + t(p)``.

    Subclasses set :attr:`name`, :attr:`param_names` (and, if need be,
    :attr:`default_center`, :attr:`angle_params` and :meth:`identity`) and implement the three
    hooks :meth:`_linear` (``A``, ``t``), :meth:`_derivatives` (``dA/dp``, ``dt/dp``) and
    :meth:`_params_from_linear`.  A subclass that leaves a hook out cannot be instantiated;
    one that implements them all but does not set ``name`` and ``param_names`` cannot even be
    defined.

    Parameters
    ----------
    center : (x, y)
        Centre of rotation / scaling, in fixed-image pixel coordinates.
    """

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    #: Where the centre goes when the user does not say: ``"topleft"`` or ``"center"``.
    default_center: ClassVar[str] = "center"
    #: Parameters that are angles (radians inside, degrees when shown).
    angle_params: ClassVar[tuple[str, ...]] = ()

    _HOOKS: ClassVar[tuple[str, ...]] = ("_linear", "_derivatives", "_params_from_linear")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if any(getattr(getattr(cls, hook), "__isabstractmethod__", False) for hook in cls._HOOKS):
            return  # still abstract: an intermediate base class
        name = getattr(cls, "name", None)
        param_names = getattr(cls, "param_names", None)
        if not (isinstance(name, str) and name):
            raise TypeError(f"transform class {cls.__qualname__} must set a non-empty 'name'")
        if not (
            isinstance(param_names, tuple)
            and param_names
            and all(isinstance(n, str) for n in param_names)
        ):
            raise TypeError(
                f"transform class {cls.__qualname__} must set 'param_names' to a non-empty "
                "tuple of str"
            )

    def __init__(self, center: Sequence[float] = (0.0, 0.0)):
        self.center = np.array(resolve_center(center), dtype=float)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(center=({self.center[0]:g}, {self.center[1]:g}))"

    @property
    def n_params(self) -> int:
        """Number of parameters."""
        return len(self.param_names)

    def identity(self) -> np.ndarray:
        """Parameters of the identity transform."""
        return np.zeros(self.n_params)

    # subclass hooks ---------------------------------------------------------------------
    @abc.abstractmethod
    def _linear(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The linear part ``A`` (2, 2) and the translation ``t`` (2,) of parameters ``p``."""

    @abc.abstractmethod
    def _derivatives(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``dA/dp`` (n_params, 2, 2) and ``dt/dp`` (n_params, 2) at ``p``."""

    @abc.abstractmethod
    def _params_from_linear(self, linear: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """The parameters (n_params,) whose ``A``, ``t`` are closest to ``linear``, ``shift``."""

    # public -----------------------------------------------------------------------------
    def matrix(self, params: ArrayLike) -> np.ndarray:
        """3x3 matrix (fixed -> moving) of ``params``."""
        linear, shift = self._linear(np.asarray(params, dtype=float))
        return _about_center(linear, shift, self.center)

    def matrix_derivatives(self, params: ArrayLike) -> np.ndarray:
        """``dM/dp_k`` for every parameter: an array of shape ``(n_params, 3, 3)``."""
        d_linear, d_shift = self._derivatives(np.asarray(params, dtype=float))
        out = np.zeros((self.n_params, 3, 3))
        out[:, :2, :2] = d_linear
        out[:, :2, 2] = d_shift - d_linear @ self.center
        return out

    def jacobian(self, params: ArrayLike, points: ArrayLike) -> np.ndarray:
        """``d(M @ x)/dp`` at ``points`` (shape ``(n, 2)`` of ``(x, y)``): shape ``(n, 2, k)``."""
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        homo = np.column_stack([pts, np.ones(len(pts))])
        dm = self.matrix_derivatives(params)[:, :2, :]  # (k, 2, 3)
        return np.einsum("kij,nj->nik", dm, homo)

    @property
    def pixel_center(self) -> np.ndarray:
        """The centre in fixed-image pixels (:attr:`center`; a transform with pixel spacing,
        :class:`regcli.spacing.PhysicalTransform`, keeps its centre in physical units)."""
        return self.center

    def to_physical(self, matrix: ArrayLike) -> np.ndarray:
        """A fixed -> moving pixel ``matrix`` in the coordinates the parameters describe:
        pixels here (physical units for :class:`regcli.spacing.PhysicalTransform`)."""
        return np.asarray(matrix, dtype=float)

    def params_from_matrix(self, matrix: ArrayLike) -> np.ndarray:
        """Parameters whose matrix is closest to ``matrix`` (exact when it is of this family)."""
        m = np.asarray(matrix, dtype=float)
        linear = m[:2, :2]
        shift = m[:2, 2] - self.center + linear @ self.center
        return self._params_from_linear(linear, shift)

    def param_scales(self, shape: Sequence[int]) -> np.ndarray:
        """Typical displacement in pixels caused by a unit change of each parameter.

        Translations move every pixel by one pixel per unit; an angle, a scale or a matrix
        entry moves a pixel by its distance from the centre, so their scale is the RMS distance
        of the pixels of an image of ``shape = (rows, cols)`` from :attr:`center`.  Optimisers
        work on ``p * param_scales`` so that a step of one is about one pixel whatever the
        parameter.

        Returns
        -------
        (n_params,) ndarray
        """
        rows, cols = shape[0], shape[1]
        cx, cy = self.center
        # RMS distance of a uniform grid from (cx, cy): per axis, variance + squared offset.
        var_x = (cols**2 - 1) / 12.0 + ((cols - 1) / 2.0 - cx) ** 2
        var_y = (rows**2 - 1) / 12.0 + ((rows - 1) / 2.0 - cy) ** 2
        radius = math.sqrt(var_x + var_y)
        return np.array([1.0 if n in ("tx", "ty") else radius for n in self.param_names])

    def describe(self, params: ArrayLike) -> dict:
        """Named parameters for people and JSON: angles as ``angle_deg``, plus the centre."""
        out = {}
        for name, value in zip(self.param_names, np.asarray(params, dtype=float), strict=True):
            if name in self.angle_params:
                out[f"{name}_deg"] = math.degrees(value)
            else:
                out[name] = float(value)
        out["center"] = [float(self.center[0]), float(self.center[1])]
        return out


def _rotation_and_derivative(angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]]), np.array([[-s, -c], [c, -s]])


def _nearest_angle(linear: np.ndarray) -> float:
    """Angle of the rotation nearest to ``linear`` (polar decomposition in 2-D)."""
    return math.atan2(linear[1, 0] - linear[0, 1], linear[0, 0] + linear[1, 1])


class Translation(Transform):
    """Shift only: ``M @ x = x + (tx, ty)``."""

    name = "translation"
    param_names = ("tx", "ty")

    def _linear(self, p):
        return np.eye(2), p[:2].copy()

    def _derivatives(self, p):
        return np.zeros((2, 2, 2)), np.eye(2)

    def _params_from_linear(self, linear, shift):
        return shift.copy()


class Rotation(Transform):
    """Rotation only, about :attr:`center` (by default the top-left pixel, as in the course)."""

    name = "rotation"
    param_names = ("angle",)
    angle_params = ("angle",)
    default_center = "topleft"

    def _linear(self, p):
        return _rotation_and_derivative(p[0])[0], np.zeros(2)

    def _derivatives(self, p):
        return _rotation_and_derivative(p[0])[1][None], np.zeros((1, 2))

    def _params_from_linear(self, linear, shift):
        return np.array([_nearest_angle(linear)])


class Rigid(Transform):
    """Rotation about :attr:`center` followed by a translation ``(tx, ty)``."""

    name = "rigid"
    param_names = ("angle", "tx", "ty")
    angle_params = ("angle",)

    def _linear(self, p):
        return _rotation_and_derivative(p[0])[0], p[1:3].copy()

    def _derivatives(self, p):
        d_lin = np.zeros((3, 2, 2))
        d_lin[0] = _rotation_and_derivative(p[0])[1]
        d_shift = np.zeros((3, 2))
        d_shift[1:] = np.eye(2)
        return d_lin, d_shift

    def _params_from_linear(self, linear, shift):
        return np.array([_nearest_angle(linear), shift[0], shift[1]])


class Similarity(Transform):
    """Rigid plus an isotropic ``scale`` about :attr:`center` (identity: ``scale = 1``)."""

    name = "similarity"
    param_names = ("angle", "scale", "tx", "ty")
    angle_params = ("angle",)

    def identity(self) -> np.ndarray:
        return np.array([0.0, 1.0, 0.0, 0.0])

    def _linear(self, p):
        return p[1] * _rotation_and_derivative(p[0])[0], p[2:4].copy()

    def _derivatives(self, p):
        rot, d_rot = _rotation_and_derivative(p[0])
        d_lin = np.zeros((4, 2, 2))
        d_lin[0] = p[1] * d_rot
        d_lin[1] = rot
        d_shift = np.zeros((4, 2))
        d_shift[2:] = np.eye(2)
        return d_lin, d_shift

    def _params_from_linear(self, linear, shift):
        angle = _nearest_angle(linear)
        rot = _rotation_and_derivative(angle)[0]
        scale = float(np.trace(rot.T @ linear)) / 2.0
        return np.array([angle, scale, shift[0], shift[1]])


class Affine(Transform):
    """General affine: ``A = [[a, b], [c, d]]`` about :attr:`center`, then ``(tx, ty)``."""

    name = "affine"
    param_names = ("a", "b", "c", "d", "tx", "ty")

    def identity(self) -> np.ndarray:
        return np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])

    def _linear(self, p):
        return p[:4].reshape(2, 2).copy(), p[4:6].copy()

    def _derivatives(self, p):
        d_lin = np.zeros((6, 2, 2))
        d_lin[:4] = np.eye(4).reshape(4, 2, 2)
        d_shift = np.zeros((6, 2))
        d_shift[4:] = np.eye(2)
        return d_lin, d_shift

    def _params_from_linear(self, linear, shift):
        return np.concatenate([linear.ravel(), shift])


#: Transform classes by name, fewest parameters first.  Feeds the CLI choices and the tests.
TRANSFORMS: dict[str, type[Transform]] = {
    cls.name: cls for cls in (Translation, Rotation, Rigid, Similarity, Affine)
}


def make_transform(
    name: str,
    *,
    center: str | Sequence[float] | None = None,
    shape: Sequence[int] | None = None,
) -> Transform:
    """Build the transform called ``name`` with its centre resolved for an image of ``shape``.

    ``center=None`` takes the transform's default (``topleft`` for ``rotation``, as in the
    course assignment; the image centre for the others, which keeps angle and shift decoupled).
    ``shape`` is ``(rows, cols)``.  An unknown name raises :class:`InputError` with
    ``param="transform"``.

    >>> rigid = make_transform("rigid", shape=(60, 80))
    >>> rigid, rigid.param_names
    (Rigid(center=(39.5, 29.5)), ('angle', 'tx', 'ty'))
    >>> rigid.matrix([0.0, 3.0, -2.0]) + 0.0  # (+ 0.0: no "-0." in the printout)
    array([[ 1.,  0.,  3.],
           [ 0.,  1., -2.],
           [ 0.,  0.,  1.]])
    """
    try:
        cls = TRANSFORMS[name]
    except (KeyError, TypeError):
        raise InputError(
            f"transform: unknown transform {name!r}; choose one of {', '.join(TRANSFORMS)}",
            param="transform",
        ) from None
    return cls(resolve_center(cls.default_center if center is None else center, shape))
