"""``register()``: intensity-based registration of two 2-D images, coarse to fine.

Data flow::

    fixed, moving ─ check (2-D, same shape, not constant) ─ intensities to [0, 1] each
      ─ Gaussian pyramids (pyramid.py) ─ per level, coarsest first:
          matrix carried between levels: M_level = S @ M @ inv(S)   (S: pyramid.level_scaling)
          LevelObjective(x):  x = params * transform.scales(level shape)   (~ pixels)
              warp moving by M(x) (linear, float32) ─ overlap mask ─ metric.cost_gradient
              ─ chain rule: d cost / d params = sum_k dM_k : G,
                G[i, j] = sum_pixels dC/dw * grad_i(moving)(M x) * (x, y, 1)_j
          ─ optimiser.run (optimizers.py) ─ costs recorded per iteration
      ─ final warp of the original moving image (cubic) ─ RegistrationResult

The moving image's gradient at ``M x`` comes from the gradient of the warped image:
``grad w(x) = A^T grad m(M x)`` for the linear part ``A`` of ``M``, and ``A^-T`` is applied to
the 2x3 sums ``G`` rather than to every pixel, so an evaluation costs one warp and a few
vectorised sums.  The overlap mask keeps one pixel away from the moving image's border so that
these differences never reach the zero fill.  The fast default ``lm`` also gets a
Gauss-Newton-type Hessian (:meth:`LevelObjective.gauss_newton`) from the same sums.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from regcli import pyramid as _pyramid
from regcli._validate import check_image, check_same_shape, normalize
from regcli.errors import InputError
from regcli.metrics import METRICS, Metric
from regcli.optimizers import DEFAULT_GRADIENT_OPTIMIZER, LM_TOLERANCE, OPTIMIZERS
from regcli.resample import inside_mask, warp, warp_linear
from regcli.transforms import (
    TRANSFORMS,
    Transform,
    check_matrix,
    make_transform,
    resolve_center,
)

__all__ = ["LevelObjective", "RegistrationResult", "register"]

#: The curvature is measured on at most about this many pixels (a subsample of big images):
#: an average over 65k pixels is plenty, and for MI at 1024^2 the measurement at 2^18 took
#: half of the registration.
CURVATURE_PIXELS = 1 << 16
#: The ratio of a metric's curvature to SSD's (lm's Hessian model) is measured on at most
#: about this many pixels.
HESSIAN_FACTOR_PIXELS = 1 << 14
#: Metrics other than SSD are evaluated on at most about this many pixels per level (a regular
#: subsample): histogram statistics need no more, and MI at 1024^2 gets 10x cheaper.
MAX_SAMPLES = 1 << 16
#: Levels up to this many pixels are resampled by scikit-image's affine bilinear warp on a
#: float64 copy of the moving image: 2.3x faster than scipy.ndimage at 64^2-256^2 (the same
#: values to 1e-13 wherever the objective reads them), ~10 % at 1024^2; bigger levels keep
#: ndimage on float32, which needs half the memory.
FAST_WARP_PIXELS = 1 << 21
#: Below this fraction of overlapping pixels the cost is treated as undefined (infinite).
MIN_OVERLAP = 0.1


# --------------------------------------------------------------------------- result


@dataclass
class RegistrationResult:
    """Everything :func:`register` found.

    Attributes
    ----------
    matrix : (3, 3) ndarray
        Fixed -> moving matrix at full resolution: ``aligned = regcli.warp(moving, matrix)``.
    transform : str
        Transform name (``"rigid"``...).
    params : dict
        Named parameters (:meth:`Transform.describe`: ``angle_deg``, ``tx``..., ``center``).
    metric : str
        Metric name.
    cost_label : str
        What the cost is (``"ssd per pixel"``, ``"-correlation"``...).
    optimizer : str
        Optimiser name.
    learning_rate : float or None
        Learning rate used (``None`` for optimisers without one).
    cost_history : (n,) ndarray
        The cost at every iteration over all levels, coarse to fine.  Costs are computed on
        intensities scaled to [0, 1] and on the pyramid level's pixels.
    level_starts : list of int
        Index in ``cost_history`` where each level begins.
    level_shapes : list of (rows, cols)
        Image shape of each level, coarse to fine.
    iterations : int
        Total iterations over all levels (``len(cost_history)``).
    converged : bool
        True if the finest level met its stopping tolerance and no level diverged.
    message : str
        Why it stopped.
    seconds : float
        Time spent registering (not reading or writing files, nor resampling ``warped``).
    warped : ndarray
        The moving image resampled onto the fixed grid (cubic), in the moving image's units.
        :func:`register` hands over a function that makes it, called on first access (a
        cubic resampling costs as much as the whole registration of a 256^2 pair, and
        callers that only need the matrix never pay for it); an array is kept as given.
    """

    matrix: np.ndarray
    transform: str
    params: dict
    metric: str
    cost_label: str
    optimizer: str
    learning_rate: float | None
    cost_history: np.ndarray
    level_starts: list[int]
    level_shapes: list[tuple[int, int]]
    iterations: int
    converged: bool
    message: str
    seconds: float
    warped: np.ndarray = field(repr=False)

    @property
    def initial_cost(self) -> float:
        """First recorded cost (coarsest level), NaN if none was recorded."""
        return float(self.cost_history[0]) if len(self.cost_history) else math.nan

    @property
    def final_cost(self) -> float:
        """Last recorded cost (finest level), NaN if none was recorded."""
        return float(self.cost_history[-1]) if len(self.cost_history) else math.nan

    def _get_warped(self) -> np.ndarray:
        value = self.__dict__.get("_warped")
        if callable(value):
            value = self.__dict__["_warped"] = value()
        return value

    def _set_warped(self, value) -> None:
        self.__dict__["_warped"] = value

    def to_dict(self) -> dict:
        """JSON-able dict of every field except ``warped``."""
        return {
            "matrix": np.asarray(self.matrix, dtype=float).tolist(),
            "transform": self.transform,
            "params": {
                k: (list(map(float, v)) if isinstance(v, (list, tuple)) else float(v))
                for k, v in self.params.items()
            },
            "metric": self.metric,
            "cost_label": self.cost_label,
            "optimizer": self.optimizer,
            "learning_rate": None if self.learning_rate is None else float(self.learning_rate),
            "cost_history": [float(c) for c in self.cost_history],
            "level_starts": [int(i) for i in self.level_starts],
            "level_shapes": [[int(r), int(c)] for r, c in self.level_shapes],
            "iterations": int(self.iterations),
            "converged": bool(self.converged),
            "message": self.message,
            "seconds": float(self.seconds),
            "initial_cost": self.initial_cost,
            "final_cost": self.final_cost,
        }


# ``warped`` stays a dataclass field (constructor argument, dataclasses.fields) but is read
# through a property, so that it can be computed on first access.
RegistrationResult.warped = property(
    RegistrationResult._get_warped, RegistrationResult._set_warped, doc="Resampled moving image."
)


# --------------------------------------------------------------------------- objective


def _central_differences(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.gradient(image)`` (rows, then columns; one-sided at the borders), same dtype,
    written out: four times faster than numpy's general version on a 256^2 float32 image."""
    rows, cols = image.shape
    out = []
    for axis, size in ((0, rows), (1, cols)):
        d = np.empty_like(image)
        if size < 2:
            d[...] = 0
            out.append(d)
            continue
        moved, src = np.moveaxis(d, axis, 0), np.moveaxis(image, axis, 0)
        if size > 2:
            np.subtract(src[2:], src[:-2], out=moved[1:-1])
            moved[1:-1] *= image.dtype.type(0.5)
        np.subtract(src[1], src[0], out=moved[0])
        np.subtract(src[-1], src[-2], out=moved[-1])
        out.append(d)
    return out[0], out[1]


class LevelObjective:
    """The cost of one pyramid level as a function of scaled parameters ``x``.

    ``x = params * transform.scales(shape)``, so a unit change moves pixels by about one pixel
    of this level.  Provides what the optimisers use: ``cost``, ``cost_gradient``,
    ``gauss_newton``, ``grid_aligned``, ``curvature`` and ``max_displacement``.

    Parameters
    ----------
    fixed, moving : (rows, cols) float32 arrays
        The level's images (intensities scaled to [0, 1]).
    transform : Transform
        Transform with its centre in this level's coordinates.
    metric : Metric
        Needs ``cost_gradient`` for the gradient methods.
    options : dict
        Metric options (``bins``, ``moving_range``...).
    max_samples : int, optional
        Metrics other than SSD (histogram statistics, correlation) are evaluated on a regular
        subsample of the fixed pixels (every ``stride``-th row and column) when the level has
        more than this many pixels; default :data:`MAX_SAMPLES`.  SSD always uses every pixel.
    """

    def __init__(
        self,
        fixed: np.ndarray,
        moving: np.ndarray,
        transform: Transform,
        metric: Metric,
        options: dict | None = None,
        *,
        max_samples: int | None = None,
    ):
        self.fixed = fixed
        self.moving = moving
        self.transform = transform
        self.metric = metric
        self.options = dict(options or {})
        self.shape = fixed.shape
        self.scales = transform.param_scales(fixed.shape)
        self.least_squares = metric.name == "ssd"
        rows, cols = self.shape
        limit = MAX_SAMPLES if max_samples is None else max(int(max_samples), 1)
        stride = 1
        if not self.least_squares and rows * cols > limit:
            stride = math.ceil(math.sqrt(rows * cols / limit))
        self.stride = stride
        # The evaluated pixels: (x, y) = (start + stride * j, start + stride * i).
        start = (stride - 1) // 2
        self._sample_grid = np.array([[stride, 0.0, start], [0.0, stride, start], [0.0, 0.0, 1.0]])
        self.fixed_samples = fixed[start::stride, start::stride] if stride > 1 else fixed
        self.sample_shape = self.fixed_samples.shape
        self._xs = start + stride * np.arange(self.sample_shape[1], dtype=np.float64)
        self._ys = start + stride * np.arange(self.sample_shape[0], dtype=np.float64)
        self._fast_warp = moving.size <= FAST_WARP_PIXELS
        self._source = moving.astype(np.float64) if self._fast_warp else moving
        if stride > 1:
            # On a sparse grid the warped image's differences are not the image gradient:
            # warp the moving image's gradient instead (two more warps, each 1/stride**2).
            gy, gx = np.gradient(self._source)
            self._moving_gradient = (gx, gy)
        self.max_displacement = float(math.hypot(rows, cols))
        self.min_pixels = max(4, int(MIN_OVERLAP * self.fixed_samples.size))
        self.evaluations = 0

    # Measured on first use: lm on SSD never needs them, and at 256^2 they cost as much as
    # an evaluation.
    @functools.cached_property
    def curvature(self) -> float:
        """The cost's second derivative for a one-pixel shift (see _measure_curvature)."""
        return self._measure_curvature()

    @functools.cached_property
    def hessian_factor(self) -> float:
        """Scale from SSD's Gauss-Newton Hessian to this metric's (1 for SSD itself)."""
        if self.least_squares:
            return 1.0
        # A ratio that only sizes lm's model (its damping adapts): a smaller sample than the
        # step rules' curvature does (MI's four histograms on 2^16 px were half of an MI
        # registration's first evaluation at each big level).
        pixels = HESSIAN_FACTOR_PIXELS
        ssd_curvature = self._measure_curvature(METRICS["ssd"].cost, pixels=pixels)
        metric_curvature = self._measure_curvature(pixels=pixels)
        if ssd_curvature > 0 and math.isfinite(ssd_curvature):
            return metric_curvature / ssd_curvature
        return 1.0

    # ------------------------------------------------------------------ geometry
    def params(self, x) -> np.ndarray:
        return np.asarray(x, dtype=float) / self.scales

    def matrix(self, x) -> np.ndarray:
        return self.transform.matrix(self.params(x))

    def _mask(self, m: np.ndarray) -> np.ndarray:
        # Points at least one pixel inside the moving image, so that the central differences
        # of the warped image never reach the zero fill outside it.  ``m`` is the matrix of
        # the evaluated grid (see _warp).
        return inside_mask(m, self.sample_shape, self.moving.shape, margin=1.0)

    def _measure_curvature(self, cost=None, *, pixels: int = CURVATURE_PIXELS) -> float:
        """Second derivative of the cost for a one-pixel shift of the fixed image vs itself.

        For a quadratic cost ``C(d) = C(0) + curvature * d**2 / 2``; measured with integer
        shifts (no interpolation), averaged over x and y.  Metric-agnostic, so the step rules'
        learning rates mean the same for every metric and image.
        """
        f = self.fixed
        opts = self.options if cost is None else {}
        if cost is None:
            cost = METRICS["ssd"].cost if self.least_squares else self.metric.cost
        # On big images every few rows (columns) are enough for a statistic like this.
        stride = max(1, math.ceil(f.size / pixels))
        values = []
        if f.shape[1] > 1:
            rows = f[::stride, :]
            base = cost(rows, rows, None, **opts)
            values.append(cost(rows[:, 1:], rows[:, :-1], None, **opts) - base)
        if f.shape[0] > 1:
            cols = f[:, ::stride]
            base = cost(cols, cols, None, **opts)
            values.append(cost(cols[1:, :], cols[:-1, :], None, **opts) - base)
        curvature = 2.0 * float(np.mean(values)) if values else 1.0
        if not (math.isfinite(curvature) and curvature > 0):
            curvature = 1.0
        return curvature

    # ------------------------------------------------------------------ evaluation
    def _warp(self, m):
        """The moving image sampled at ``M`` of the evaluated pixels, their overlap mask, and
        the matrix of the evaluated grid (``M`` itself when every pixel is used)."""
        if self.stride > 1:
            m = m @ self._sample_grid
        warped = self._resample(self._source, m)
        return warped, self._mask(m), m

    def _resample(self, image: np.ndarray, m: np.ndarray) -> np.ndarray:
        """``image`` (the moving image or one of its gradients) sampled bilinearly at ``M`` of
        the evaluated pixels, as float32.  Only pixels of the overlap mask (one pixel inside
        the image) are ever read, so the two resamplers' border conventions do not matter."""
        if not self._fast_warp:
            return warp(image, m, order=1, output_shape=self.sample_shape)
        out = warp_linear(image, m, self.sample_shape)
        return out.astype(np.float32)

    def cost(self, x) -> float:
        self.evaluations += 1
        m = self.matrix(x)
        warped, mask, _ = self._warp(m)
        n = int(np.count_nonzero(mask))
        if n < self.min_pixels:
            return math.inf
        if self.least_squares:
            residual = np.where(mask, warped - self.fixed_samples, np.float32(0.0))
            return float(np.einsum("ij,ij->", residual, residual, dtype=np.float64)) / n
        return float(self.metric.cost(self.fixed_samples, warped, mask, **self.options))

    def _evaluate(self, x, *, hessian: bool):
        """Cost, gradient and (optionally) the Gauss-Newton-type Hessian at ``x``.

        Chain rule: ``d cost / d M[i, j] = sum_pixels dC/dw * grad_i m(M x) * (x, y, 1)_j``.
        The moving image's gradient at ``M x`` is ``A^-T grad w(x)`` (``A`` the linear part of
        ``M``, ``w`` the warped image), and ``A^-T`` is applied to the 2x3 sums, not per pixel.
        On a subsampled grid (``stride > 1``) the moving image's gradient images are warped
        instead.
        """
        self.evaluations += 1
        p = self.params(x)
        m = self.transform.matrix(p)
        warped, mask, grid_matrix = self._warp(m)
        n = int(np.count_nonzero(mask))
        k = self.scales.size
        if n < self.min_pixels:
            return math.inf, np.zeros(k), np.eye(k)
        if self.least_squares:
            residual = warped - self.fixed_samples
            residual *= mask  # (a multiply is 3x cheaper than np.where)
            cost = float(np.einsum("ij,ij->", residual, residual, dtype=np.float64)) / n
            dcost = residual * np.float32(2.0 / n)
        else:
            cost, dcost = self.metric.cost_gradient(
                self.fixed_samples, warped, mask, **self.options
            )
            dcost = np.where(mask, dcost, 0.0).astype(np.float32, copy=False)
        if self.stride > 1:
            gx = self._resample(self._moving_gradient[0], grid_matrix)
            gy = self._resample(self._moving_gradient[1], grid_matrix)
            inverse_transposed = np.eye(2)
        else:
            gy, gx = _central_differences(warped)
            inverse_transposed = np.linalg.inv(m[:2, :2]).T
        sums = np.array([self._first_moments(dcost * gx), self._first_moments(dcost * gy)])
        d_matrix = self.transform.matrix_derivatives(p)[:, :2, :].reshape(-1, 6)
        d_matrix = d_matrix / self.scales[:, None]
        gradient = d_matrix @ (inverse_transposed @ sums).ravel()
        if not hessian:
            return float(cost), gradient, None
        gx *= mask  # (fresh arrays: the warps or _central_differences made them)
        gy *= mask
        # Gram matrix of the six base images d w / d M[i, j] = grad_i w * (x, y, 1)_j,
        # indexed (i, j) -> 3 * i + j; then A^-T on the gradient index, and
        # J^T J = D gram D^T with D = dM/dx.
        gram = np.empty((6, 6))
        for (i, j), image in (((0, 0), gx * gx), ((0, 1), gx * gy), ((1, 1), gy * gy)):
            block = self._second_moments(image)
            gram[3 * i : 3 * i + 3, 3 * j : 3 * j + 3] = block
            gram[3 * j : 3 * j + 3, 3 * i : 3 * i + 3] = block.T
        to_moving = np.kron(inverse_transposed, np.eye(3))
        gram = to_moving @ gram @ to_moving.T
        hessian_matrix = (2.0 * self.hessian_factor / n) * (d_matrix @ gram @ d_matrix.T)
        return float(cost), gradient, hessian_matrix

    def grid_aligned(self, x) -> bool:
        """True if ``M(x)`` maps every pixel centre onto a pixel centre (interpolation exact).

        That is: the linear part is a signed permutation (identity, quarter turns, flips)
        and the translation is whole pixels, to within 1e-6 px.
        """
        m = self.matrix(x)
        linear = m[:2, :2]
        rounded = np.rint(m[:2, :])
        if not np.allclose(m[:2, :], rounded, atol=1e-6, rtol=0.0):
            return False
        return (
            bool(np.all(np.abs(rounded[:, :2]).sum(axis=0) == 1))
            and bool(np.all(np.abs(rounded[:, :2]).sum(axis=1) == 1))
            and abs(abs(np.linalg.det(linear)) - 1.0) < 1e-6
        )

    def cost_gradient(self, x) -> tuple[float, np.ndarray]:
        """Cost and its gradient with respect to the scaled parameters ``x``."""
        cost, gradient, _ = self._evaluate(x, hessian=False)
        return cost, gradient

    def gauss_newton(self, x) -> tuple[float, np.ndarray, np.ndarray]:
        """Cost, gradient and a Gauss-Newton Hessian in scaled parameters.

        For SSD this is the exact Gauss-Newton matrix ``2/n J^T J`` (``J``: d residual / d x).
        For the other metrics it is the same matrix times :attr:`hessian_factor`, the ratio of
        the metric's curvature to SSD's measured on the fixed image: near the optimum a
        monomodal similarity behaves like a scaled SSD, so this is a good model of its
        Hessian and lets Levenberg-Marquardt take well-sized steps for any metric.
        ``J`` (pixels x parameters) is never formed: ``J^T J = D B D^T`` where ``B`` needs
        only weighted pixel sums of ``gx**2``, ``gx*gy``, ``gy**2`` against the monomials
        ``1, x, y, x**2, xy, y**2``.
        """
        return self._evaluate(x, hessian=True)

    def _first_moments(self, image: np.ndarray) -> np.ndarray:
        """``[sum I x, sum I y, sum I]`` over the pixels."""
        cols = image.sum(axis=0, dtype=np.float64)
        rows = image.sum(axis=1, dtype=np.float64)
        return np.array([cols @ self._xs, rows @ self._ys, cols.sum()])

    def _second_moments(self, image: np.ndarray) -> np.ndarray:
        """``sum I * u * v`` for ``u, v`` in ``(x, y, 1)``: a symmetric 3x3 matrix."""
        cols = image.sum(axis=0, dtype=np.float64)
        rows = image.sum(axis=1, dtype=np.float64)
        xs, ys = self._xs, self._ys
        s1 = cols.sum()
        sx, sy = cols @ xs, rows @ ys
        sxx, syy = cols @ (xs * xs), rows @ (ys * ys)
        sxy = float(np.einsum("ij,i,j->", image, ys, xs, dtype=np.float64))
        return np.array([[sxx, sxy, sx], [sxy, syy, sy], [sx, sy, s1]])


# --------------------------------------------------------------------------- register


def _resample_moving(moving: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The moving image on the fixed grid (cubic), float64: ``RegistrationResult.warped``."""
    return warp(np.asarray(moving, dtype=np.float64), matrix, order=3)


def _positive_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name}: expected a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def _integer(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _accepts(function, keyword: str) -> bool:
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _search_level(fixed_levels, moving_levels):
    """The pyramid level the global search runs on, if it is one (else None): the search
    then skips reducing the full images again (1 ms at 256^2, 7 ms at 1024^2)."""
    from regcli.initialize import SEARCH_SIZE

    factor = max(fixed_levels[0].shape) / SEARCH_SIZE
    level = round(math.log2(factor)) if factor >= 2 else 0
    if level < 1 or 2.0**level != factor or level >= len(fixed_levels):
        return None
    return fixed_levels[level], moving_levels[level]


def _searched(transform_name, init, initial_matrix) -> bool:
    """True if the start comes from the global search (``init="search"`` or its default)."""
    if initial_matrix is not None:
        return False
    if init is None:
        from regcli.initialize import default_method

        init = default_method(transform_name)
    return init == "search"


def _initial_matrix(fixed, moving, transform_name, metric_name, init, initial_matrix, **kw):
    """The full-resolution start: ``initial_matrix``, the identity, or regcli.initialize."""
    from regcli.initialize import INIT_METHODS, default_method
    from regcli.initialize import initial_matrix as find_initial

    if initial_matrix is not None:
        if init not in (None, "none"):
            raise InputError(f"init: give either an initial matrix or init={init!r}, not both")
        return check_matrix(initial_matrix, name="initial_matrix")
    if init is None:
        init = default_method(transform_name)
    if not isinstance(init, str) or init not in INIT_METHODS:
        raise InputError(
            f"init (--init): unknown method {init!r}; choose one of {', '.join(INIT_METHODS)}"
        )
    if init == "none":
        return np.eye(3)
    return check_matrix(
        find_initial(fixed, moving, transform_name, metric_name, init, **kw), name="init"
    )


def register(
    fixed,
    moving,
    *,
    transform: str = "rigid",
    metric: str = "ssd",
    optimizer: str | None = None,
    learning_rate: float | None = None,
    iterations: int | None = None,
    levels: int | None = None,
    center=None,
    init: str | None = None,
    initial_matrix=None,
    callback: Callable[[int, float, np.ndarray], None] | None = None,
    gamma: float | None = None,
    beta: float | None = None,
    bins: int | None = None,
    sigma: float | None = None,
    tolerance: float | None = None,
) -> RegistrationResult:
    """Find the transform that aligns ``moving`` onto ``fixed`` by minimising a cost.

    Parameters
    ----------
    fixed, moving : (rows, cols) arrays
        Grey images of the same shape, any numeric dtype.  Each is scaled to [0, 1] by its own
        range before registering, so costs and learning rates do not depend on bit depth.
    transform : {"translation", "rotation", "rigid", "similarity", "affine"}
        Transform family (:data:`regcli.transforms.TRANSFORMS`).
    metric : str
        Cost (:data:`regcli.metrics.METRICS`), e.g. ``"ssd"``, ``"correlation"``.
    optimizer : str, optional
        Optimiser (:data:`regcli.optimizers.OPTIMIZERS`).  Default: ``"lm"``
        (Levenberg-Marquardt / BFGS) for metrics with an analytic gradient, otherwise a
        derivative-free method (``"powell"``) when available.
    learning_rate : float, optional
        Step size of the step-rule optimisers (see :mod:`regcli.optimizers` for what it means);
        default: the optimiser's own.
    iterations : int, optional
        Maximum iterations *per pyramid level*; default: the optimiser's own.
    levels : int, optional
        Pyramid levels (1 = full resolution only); default: coarsest side >= 32 pixels, or
        >= 64 pixels when the global search (``init="search"``) gives the start.  More levels
        than leave 8 pixels a side are not used.
    center : {"topleft", "center"} or (x, y), optional
        Centre of rotation/scaling in fixed-image pixels; default: the transform's
        (``topleft`` for ``rotation``, the image centre otherwise).
    init : str, optional
        Initialisation method (:data:`regcli.initialize.INIT_METHODS`: ``"search"``,
        ``"moments"``, ``"none"``); default :func:`regcli.initialize.default_method` of the
        transform (a global search for rigid and similarity).  ``"none"`` starts from
        ``initial_matrix`` or the identity.
    initial_matrix : (3, 3) array, optional
        Fixed -> moving matrix to start from.
    callback : callable, optional
        ``callback(iteration, cost, params)`` after every iteration, ``iteration`` counting
        over all levels from 0 and ``params`` the transform parameters at full resolution
        (radians, as :meth:`Transform.matrix` takes them).
    gamma, beta : float, optional
        Momentum (``momentum``, ``nag``, adam's first moment) and squared-gradient decay
        (``rmsprop``, ``adam``), in [0, 1).
    bins : int, optional
        Histogram bins of MI-like metrics.
    sigma : float, optional
        Smoothing scale (pixels) of metrics that take one (``gradient``, ``pluim``).
    tolerance : float, optional
        Stop when steps stay below this many pixels of the current level (default: the
        optimiser's own, 1e-3 for the step rules and scipy methods, 1e-2 for ``lm``).

    Returns
    -------
    RegistrationResult

    Raises
    ------
    InputError
        Bad images (not 2-D, different shapes, constant) or option values; unknown names.
        A run that diverges does not raise: it returns ``converged=False`` and a message.
    """
    started = time.perf_counter()
    fixed_arr = check_image(fixed, name="fixed")
    moving_arr = check_image(moving, name="moving")
    check_same_shape(fixed_arr, moving_arr, names=("fixed", "moving"))
    if transform not in TRANSFORMS:
        raise InputError(f"unknown transform {transform!r}; choose one of {', '.join(TRANSFORMS)}")
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    metric_obj = METRICS[metric]
    optimizer = _choose_optimizer(metric, optimizer)
    opt = OPTIMIZERS[optimizer]
    lr, iters, run_options = _run_options(
        opt, learning_rate, iterations, tolerance, gamma=gamma, beta=beta
    )
    options = _metric_options(metric_obj, bins=bins, sigma=sigma)

    shape = fixed_arr.shape
    center_xy = resolve_center(
        TRANSFORMS[transform].default_center if center is None else center, shape
    )
    full_transform = make_transform(transform, center=center_xy)
    if levels is None:
        n_levels = _pyramid.auto_levels(shape)
        if _searched(transform, init, initial_matrix):
            # The global search leaves the start within about a pixel of a 64 px image: a
            # coarser level has nothing left to find (and MI gets noisier there).
            from regcli.initialize import SEARCH_SIZE

            n_levels = min(n_levels, _pyramid.auto_levels(shape, min_side=SEARCH_SIZE))
    else:
        n_levels = _integer("levels (--levels)", levels, 1)
        # Never shrink an image below a few pixels a side.
        n_levels = min(n_levels, max(1, _pyramid.auto_levels(shape, min_side=8)))
    fixed_n = normalize(fixed_arr, "fixed")
    moving_n = normalize(moving_arr, "moving")
    fixed_levels = _pyramid.gaussian_pyramid(fixed_n, n_levels)
    moving_levels = _pyramid.gaussian_pyramid(moving_n, n_levels)
    start = _initial_matrix(
        fixed_arr,
        moving_arr,
        transform,
        metric,
        init,
        initial_matrix,
        center=center_xy,
        metric_options=options,
        coarse=_search_level(fixed_levels, moving_levels),
    )
    run = _coarse_to_fine(
        fixed_levels,
        moving_levels,
        full_transform.matrix(full_transform.params_from_matrix(start)),  # in the family
        full_transform,
        metric_obj,
        options,
        opt,
        callback=callback,
        learning_rate=lr,
        iterations=iters,
        **run_options,
    )
    params = full_transform.params_from_matrix(run.matrix)
    matrix = full_transform.matrix(params)
    return RegistrationResult(
        matrix=matrix,
        transform=transform,
        params=full_transform.describe(params),
        metric=metric,
        cost_label=metric_obj.cost_label,
        optimizer=optimizer,
        learning_rate=None if lr is None else float(lr),
        cost_history=np.asarray(run.costs, dtype=float),
        level_starts=run.level_starts,
        level_shapes=run.level_shapes,
        iterations=len(run.costs),
        converged=run.converged,
        message=run.message,
        seconds=time.perf_counter() - started,
        # Made on first access; a partial of a module function keeps the result picklable.
        warped=functools.partial(_resample_moving, moving_arr, matrix),
    )


def _choose_optimizer(metric: str, optimizer: str | None) -> str:
    """The optimiser name to use: checked, or the default for ``metric``."""
    metric_obj = METRICS[metric]
    if optimizer is None:
        if metric_obj.cost_gradient is not None:
            return DEFAULT_GRADIENT_OPTIMIZER
        if "powell" in OPTIMIZERS:
            return "powell"
        raise InputError(
            f"metric {metric!r} has no analytic gradient and no derivative-free optimizer "
            f"is available; choose one of {', '.join(OPTIMIZERS)} explicitly"
        )
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if OPTIMIZERS[optimizer].needs_gradient and metric_obj.cost_gradient is None:
        raise InputError(
            f"optimizer {optimizer!r} needs the gradient of the cost, which metric {metric!r} "
            "does not provide; choose a derivative-free optimizer "
            f"({', '.join(n for n, o in OPTIMIZERS.items() if not o.needs_gradient) or 'none'})"
            " or a metric with a gradient"
        )
    return optimizer


def _run_options(opt, learning_rate, iterations, tolerance, *, gamma, beta):
    """Checked ``(learning rate, iterations, extra keyword options)`` for ``opt.run``."""
    if learning_rate is not None:
        learning_rate = _positive_number("learning rate (--lr)", learning_rate)
        if opt.default_learning_rate is None:
            raise InputError(
                f"learning rate (--lr): optimizer {opt.name!r} has no learning rate; "
                "leave it out or choose a step rule ("
                + ", ".join(n for n, o in OPTIMIZERS.items() if o.default_learning_rate)
                + ")"
            )
    lr = opt.default_learning_rate if learning_rate is None else learning_rate
    iters = _integer(
        "iterations (--iters)", opt.default_iterations if iterations is None else iterations, 1
    )
    extra = {}
    if tolerance is None and opt.name == "lm":
        tolerance = LM_TOLERANCE
    if tolerance is not None:  # None: the optimiser's own default
        tol = tolerance
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
            raise InputError(f"tolerance: expected a number >= 0, got {tol!r}")
        if _accepts(opt.run, "tolerance"):
            extra["tolerance"] = float(tol)
    for key, value in (("gamma", gamma), ("beta", beta)):
        if value is None:
            continue
        if key not in opt.hyperparameters:
            raise InputError(
                f"--{key} does not apply to optimizer {opt.name!r} "
                f"(it takes: {', '.join(opt.hyperparameters) or 'no extra options'})"
            )
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise InputError(f"--{key}: expected a number in [0, 1), got {value!r}")
        extra[key] = float(value)
    return lr, iters, extra


def _metric_options(metric_obj: Metric, *, bins, sigma) -> dict:
    """The keyword options passed to the metric's cost functions."""
    options = {}
    if bins is not None:
        if "bins" not in metric_obj.options:
            raise InputError(f"bins: metric {metric_obj.name!r} does not use histogram bins")
        options["bins"] = _integer("bins", bins, 2)
    if sigma is not None:
        if "sigma" not in metric_obj.options:
            raise InputError(
                f"sigma: metric {metric_obj.name!r} has no smoothing scale (metrics that take "
                f"one: {', '.join(n for n, m in METRICS.items() if 'sigma' in m.options)})"
            )
        options["sigma"] = _positive_number("sigma", sigma)
    if "moving_range" in metric_obj.options:
        options["moving_range"] = (0.0, 1.0)  # register() scales intensities to [0, 1]
    return options


@dataclass
class _CoarseToFine:
    matrix: np.ndarray
    costs: list[float]
    level_starts: list[int]
    level_shapes: list[tuple[int, int]]
    converged: bool
    message: str


def _coarse_to_fine(
    fixed_levels,
    moving_levels,
    matrix,
    full_transform: Transform,
    metric: Metric,
    options: dict,
    opt,
    *,
    callback,
    **run_options,
) -> _CoarseToFine:
    """Optimise level by level, coarsest first, carrying the full-resolution ``matrix``."""
    out = _CoarseToFine(matrix, [], [], [], True, "")
    center = full_transform.center
    for level in range(len(fixed_levels) - 1, -1, -1):
        scaling = _pyramid.level_scaling(level)
        to_full = np.linalg.inv(scaling)
        level_center = scaling @ np.array([center[0], center[1], 1.0])
        level_transform = make_transform(full_transform.name, center=level_center[:2])
        objective = LevelObjective(
            fixed_levels[level], moving_levels[level], level_transform, metric, options
        )
        x0 = level_transform.params_from_matrix(scaling @ out.matrix @ to_full)
        out.level_starts.append(len(out.costs))
        out.level_shapes.append(tuple(int(n) for n in fixed_levels[level].shape))

        level_callback = _level_callback(
            callback, objective, to_full, scaling, len(out.costs), full_transform
        )
        outcome = opt.run(objective, x0 * objective.scales, callback=level_callback, **run_options)
        out.costs.extend(float(c) for c in outcome.costs)
        out.matrix = to_full @ objective.matrix(outcome.x) @ scaling
        if getattr(outcome, "diverged", False):
            rows, cols = out.level_shapes[-1]
            out.converged = False
            out.message = f"level {level} ({rows}x{cols}): {outcome.message}"
            break
        if level == 0:
            out.converged = bool(outcome.converged)
            out.message = outcome.message
    return out


def _level_callback(callback, objective, to_full, scaling, offset, full_transform):
    """The optimiser's ``callback(i, cost, x)`` as the user's ``callback(iteration, cost,
    params)``: iterations counted over all levels, parameters at full resolution."""
    if callback is None:
        return None

    def level_callback(iteration, cost, x):
        m_full = to_full @ objective.matrix(x) @ scaling
        callback(offset + iteration, float(cost), full_transform.params_from_matrix(m_full))

    return level_callback
