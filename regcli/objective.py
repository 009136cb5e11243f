"""The cost of one pyramid level as a function of the transform parameters.

One evaluation of :class:`LevelObjective` at scaled parameters ``x``::

    x ─ params = x / transform.param_scales(level shape) ─ M = transform.matrix(params)
      ─ SampleGrid: the fixed pixels evaluated (all of them, or every stride-th row/column)
      ─ resampler: the moving image at M of those pixels (bilinear, float32; at the finest
        level from a 2x upsampled copy, :mod:`regcli.refine`)
      ─ overlap mask: pixels of the fixed domain at least one pixel inside the moving domain
        (``margins``: how far inside each image's domain)
      ─ metric: cost and d cost / d warped pixel (a least-squares metric is computed here)
      ─ chain rule: d cost / d params = sum_k dM_k : G,
          G[i, j] = sum_pixels dC/dw * grad_i(moving)(M x) * (x, y, 1)_j
      ─ Gauss-Newton-type Hessian from the second moments of the image gradients (lm)

The moving image's gradient at ``M x`` comes from the gradient of the warped image:
``grad w(x) = A^T grad m(M x)`` for the linear part ``A`` of ``M``, and ``A^-T`` is applied to
the 2x3 sums ``G`` rather than to every pixel, so an evaluation costs one warp and a few
vectorised sums.  The overlap mask keeps one pixel away from the moving image's border so that
these differences never reach the zero fill.

The pieces a level sets up once: the :class:`SampleGrid` (:func:`sample_stride`), the
resampler (:func:`choose_resampler`; both in :mod:`regcli.sampling`) and, on first use,
the curvature and the Hessian factor (:func:`measure_curvature`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from regcli.domain import Domain
from regcli.metrics import METRICS, Metric
from regcli.resample import inside_mask
from regcli.sampling import (  # noqa: F401  (SampleGrid and the rest: their home before)
    FAST_WARP_PIXELS,
    MAX_SAMPLES,
    SampleGrid,
    choose_resampler,
    sample_stride,
)
from regcli.transforms import Transform, implausible

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "LevelObjective",
    "SampleGrid",
    "choose_resampler",
    "measure_curvature",
    "sample_stride",
]

#: The curvature is measured on at most about this many pixels (a subsample of big images):
#: an average over 65k pixels is plenty, and for MI at 1024^2 the measurement at 2^18 took
#: half of the registration.
CURVATURE_PIXELS = 1 << 16
#: The ratio of a metric's curvature to SSD's (lm's Hessian model) is measured on at most
#: about this many pixels.
HESSIAN_FACTOR_PIXELS = 1 << 14
#: The factor of an upsampled moving image (:mod:`regcli.refine`): ``upsampled[i, j]`` is the
#: moving image at pixel ``(j / 2, i / 2)``.
UPSAMPLED = 2
#: Below this fraction of overlapping pixels the cost is treated as undefined (infinite),
#: unless the level starts with less (a start the global search found on a small overlap):
#: then the cost is undefined below half of the starting overlap.
MIN_OVERLAP = 0.1
#: The fewest pixels a cost is ever computed on.
MIN_PIXELS = 16
#: Default (fixed, moving) margins: pixels this close to an image's border (or its domain's,
#: in its level's pixels) are not compared.  The pyramid's smoothing spreads an edge a pixel
#: or two at every level, and a moving image made by warping with zero fill has the fill's
#: edge exactly on the fixed image's border: with no margin its leak biased the coarse levels
#: and made the model-fit test see a misfit (20 of 295 correct zero-filled pairs flagged).
MARGINS = (2.0, 2.0)
#: A margin is at most this fraction of its image's shorter side (an 8-pixel-thin image keeps
#: rows to compare: 1 px).
MAX_MARGIN_FRACTION = 1 / 8
#: Transform families whose matrices can be implausible (flips, near-singular, huge scales):
#: their costs are infinite there (:func:`regcli.transforms.implausible`).
_SHAPE_CHANGING = ("similarity", "affine")

#: The cost whose Gauss-Newton Hessian lm's model scales for every metric: the least-squares
#: one (the mean squared difference).
_LEAST_SQUARES_COST = next(m.cost for m in METRICS.values() if m.least_squares)


# --------------------------------------------------------------------------- curvature


def measure_curvature(
    fixed: np.ndarray,
    cost: Callable[..., float],
    options: dict | None = None,
    *,
    pixels: int = CURVATURE_PIXELS,
) -> float:
    """Second derivative of ``cost`` for a one-pixel shift of ``fixed`` against itself.

    For a quadratic cost ``C(d) = C(0) + curvature * d**2 / 2``; measured with integer
    shifts (no interpolation), averaged over x and y, on every few rows (columns) of a big
    image (about ``pixels`` of them).  Metric-agnostic, so the step rules' learning rates mean
    the same for every metric and image.  1 when the measurement is not a positive number.

    Parameters
    ----------
    fixed : (rows, cols) array
    cost : callable
        ``cost(fixed, warped, mask, **options) -> float`` (:attr:`Metric.cost`).
    options : dict, optional
        Keyword options of ``cost``.
    """
    opts = options or {}
    stride = max(1, math.ceil(fixed.size / pixels))
    values = []
    if fixed.shape[1] > 1:
        rows = fixed[::stride, :]
        base = cost(rows, rows, None, **opts)
        values.append(cost(rows[:, 1:], rows[:, :-1], None, **opts) - base)
    if fixed.shape[0] > 1:
        cols = fixed[:, ::stride]
        base = cost(cols, cols, None, **opts)
        values.append(cost(cols[1:, :], cols[:-1, :], None, **opts) - base)
    curvature = 2.0 * float(np.mean(values)) if values else 1.0
    if not (math.isfinite(curvature) and curvature > 0):
        curvature = 1.0
    return curvature


def _central_differences(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.gradient(image)`` (rows, then columns; one-sided at the borders), same dtype,
    written out: four times faster than numpy's general version on a 256^2 float32 image."""
    half = image.dtype.type(0.5)
    d_rows, d_cols = np.empty_like(image), np.empty_like(image)
    for d, src in ((d_rows, image), (d_cols.T, image.T)):  # (the columns: as rows of .T)
        size = src.shape[0]
        if size < 2:
            d[...] = 0
            continue
        if size > 2:
            np.subtract(src[2:], src[:-2], out=d[1:-1])
            d[1:-1] *= half
        np.subtract(src[1], src[0], out=d[0])
        np.subtract(src[-1], src[-2], out=d[-1])
    return d_rows, d_cols


# --------------------------------------------------------------------------- the objective


class LevelObjective:
    """The cost of one pyramid level as a function of scaled parameters ``x``.

    ``x = params * transform.param_scales(shape)``, so a unit change moves pixels by about one
    pixel of this level.  Provides what the optimisers use: ``cost``, ``cost_gradient``,
    ``gauss_newton``, ``grid_aligned``, ``curvature`` and ``max_displacement``.

    Parameters
    ----------
    fixed, moving : (rows, cols) float32 arrays
        The level's images (intensities scaled to [0, 1]).
    transform : Transform
        Transform with its centre in this level's coordinates.
    metric : Metric
        Needs ``cost_gradient`` for the gradient methods.
    options : dict, optional
        Metric options (:meth:`Metric.prepare_options`: ``bins``, ``moving_range``...).
    max_samples : int, optional
        Metrics other than least-squares ones (histogram statistics, correlation) are
        evaluated on a regular subsample of the fixed pixels (every ``stride``-th row and
        column) when the level has more than this many pixels; default :data:`MAX_SAMPLES`.
        A least-squares metric (SSD) always uses every pixel.
    domains : (Domain, Domain), optional
        Where the level's fixed and moving images have data (default: their rectangles).
    min_pixels : int, optional
        The cost is infinite when fewer pixels overlap; default :data:`MIN_OVERLAP` of the
        evaluated pixels in use.
    upsampled : (2 rows, 2 cols) float32 array, optional
        The moving image at half-pixel steps (:func:`regcli.refine.upsample`: sample
        ``(i, j)`` at pixel ``(i / 2, j / 2)``): the warps read it instead of ``moving``
        (bilinear on it is close to cubic B-spline interpolation of ``moving``).
    margins : (fixed, moving), optional
        How many pixels inside its domain a pixel of each image must lie to be compared
        (default :data:`MARGINS`).
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
        domains: tuple[Domain, Domain] | None = None,
        min_pixels: int | None = None,
        upsampled: np.ndarray | None = None,
        margins: tuple[float, float] = MARGINS,
    ):
        self.fixed = fixed
        self.moving = moving
        self.transform = transform
        self.metric = metric
        self.options = dict(options or {})
        self.shape = fixed.shape
        #: Scaled parameters per parameter: ``x = params * scales``.
        self.scales = transform.param_scales(fixed.shape)
        self.least_squares = metric.least_squares
        self.has_gradient = metric.cost_gradient is not None
        stride = sample_stride(self.shape, max_samples, least_squares=self.least_squares)
        self.grid = SampleGrid.for_level(self.shape, stride)
        self.fixed_samples = self.grid.samples(fixed)
        source, factor = moving, 1
        if upsampled is not None:
            source, factor = upsampled, UPSAMPLED
            if upsampled.shape != tuple(UPSAMPLED * n for n in moving.shape):
                raise ValueError(f"upsampled: shape {upsampled.shape} for {moving.shape}")
        #: Moving pixel -> pixel of the image the warps read (the upsampled copy, if any).
        self._to_source = np.diag([float(factor), float(factor), 1.0])
        self._source, self._resample = choose_resampler(source, self.grid.shape, pixels=moving.size)
        if stride > 1:
            # On a sparse grid the warped image's differences are not the image gradient:
            # warp the moving image's gradient instead (two more warps, each 1/stride**2).
            gy, gx = np.gradient(self._source)
            if factor != 1:
                gy *= factor
                gx *= factor
            self._moving_gradient = (gx, gy)
        self.max_displacement = float(math.hypot(*self.shape))
        fixed_domain, self.moving_domain = domains or (Domain.of(fixed), Domain.of(moving))
        if min_pixels is None:  # of the pixels in use: a sparse mask keeps few of the grid
            in_use = fixed_domain.count() / fixed.size
            min_pixels = int(MIN_OVERLAP * in_use * self.fixed_samples.size)
        self.min_pixels = max(MIN_PIXELS, int(min_pixels))
        self._fixed_margin, self._margin = (
            min(float(m), MAX_MARGIN_FRACTION * min(image.shape))
            for m, image in zip(margins, (fixed, moving), strict=True)
        )
        if self._fixed_margin > 0:
            valid = fixed_domain.inside(np.eye(3), self.shape, margin=self._fixed_margin)
            self._fixed_valid = self.grid.samples(valid)
        elif fixed_domain.full:
            self._fixed_valid = None
        else:
            self._fixed_valid = self.grid.samples(fixed_domain.valid())
        self._check_plausible = transform.name in _SHAPE_CHANGING
        self.evaluations = 0

    @property
    def stride(self) -> int:
        """Every how many rows and columns the cost is evaluated (:class:`SampleGrid`)."""
        return self.grid.stride

    # Measured on first use: lm on SSD never needs them, and at 256^2 they cost as much as
    # an evaluation.
    @functools.cached_property
    def curvature(self) -> float:
        """The cost's second derivative for a one-pixel shift (:func:`measure_curvature`)."""
        return measure_curvature(self.fixed, self.metric.cost, self.options)

    @functools.cached_property
    def hessian_factor(self) -> float:
        """Scale from SSD's Gauss-Newton Hessian to this metric's (1 for SSD itself)."""
        if self.least_squares:
            return 1.0
        # A ratio that only sizes lm's model (its damping adapts): a smaller sample than the
        # step rules' curvature does (MI's four histograms on 2^16 px were half of an MI
        # registration's first evaluation at each big level).
        pixels = HESSIAN_FACTOR_PIXELS
        ssd_curvature = measure_curvature(self.fixed, _LEAST_SQUARES_COST, pixels=pixels)
        metric_curvature = measure_curvature(
            self.fixed, self.metric.cost, self.options, pixels=pixels
        )
        if ssd_curvature > 0 and math.isfinite(ssd_curvature):
            return metric_curvature / ssd_curvature
        return 1.0

    # ------------------------------------------------------------------ geometry
    def to_params(self, x: ArrayLike) -> np.ndarray:
        """Transform parameters (n_params,) of the scaled parameters ``x``."""
        return np.asarray(x, dtype=float) / self.scales

    def matrix(self, x: ArrayLike) -> np.ndarray:
        """The (3, 3) fixed -> moving matrix (level pixels) of the scaled parameters ``x``."""
        return self.transform.matrix(self.to_params(x))

    def grid_aligned(self, x: ArrayLike) -> bool:
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

    def _mask(self, m: np.ndarray) -> np.ndarray:
        # Points at least one pixel inside the moving domain, so that the central differences
        # of the warped image never reach the zero fill outside it, and in the fixed domain.
        # ``m`` is the matrix of the evaluated grid (see _warp).
        if self.moving_domain.full:
            mask = inside_mask(m, self.grid.shape, self.moving.shape, margin=self._margin)
        else:
            mask = self.moving_domain.inside(m, self.grid.shape, margin=self._margin)
        if self._fixed_valid is not None:
            mask &= self._fixed_valid
        return mask

    def overlap(self, x: ArrayLike) -> int:
        """How many evaluated pixels overlap at scaled parameters ``x``."""
        m = self.matrix(x)
        if self.grid.stride > 1:
            m = m @ self.grid.matrix
        return int(np.count_nonzero(self._mask(m)))

    def refused(self, m: np.ndarray) -> bool:
        """True where the matrix cannot be an alignment (flip, near-singular, huge scale):
        the cost is infinite there, so no optimiser steps into it."""
        return self._check_plausible and implausible(self.transform.to_physical(m)) is not None

    def _warp(self, m):
        """The moving image sampled at ``M`` of the evaluated pixels, their overlap mask, and
        the matrix of the evaluated grid (``M`` itself when every pixel is used)."""
        if self.grid.stride > 1:
            m = m @ self.grid.matrix
        warped = self._resample(self._source, self._to_source @ m)
        return warped, self._mask(m), m

    # ------------------------------------------------------------------ evaluation
    def cost(self, x: ArrayLike) -> float:
        """The cost at scaled parameters ``x`` (``inf`` when too few pixels overlap)."""
        self.evaluations += 1
        m = self.matrix(x)
        if self.refused(m):
            return math.inf
        warped, mask, _ = self._warp(m)
        n = int(np.count_nonzero(mask))
        if n < self.min_pixels:
            return math.inf
        if self.least_squares:
            residual = np.where(mask, warped - self.fixed_samples, np.float32(0.0))
            return float(np.einsum("ij,ij->", residual, residual, dtype=np.float64)) / n
        return float(self.metric.cost(self.fixed_samples, warped, mask, **self.options))

    def cost_gradient(self, x: ArrayLike) -> tuple[float, np.ndarray]:
        """Cost and its gradient (n_params,) with respect to the scaled parameters ``x``."""
        cost, gradient, _ = self._evaluate(x, hessian=False)
        return cost, gradient

    def gauss_newton(self, x: ArrayLike) -> tuple[float, np.ndarray, np.ndarray]:
        """Cost, gradient (n_params,) and a Gauss-Newton Hessian (n_params, n_params).

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

    def _evaluate(self, x, *, hessian: bool):
        """Cost, gradient and (optionally) the Gauss-Newton-type Hessian at ``x``.

        Chain rule: ``d cost / d M[i, j] = sum_pixels dC/dw * grad_i m(M x) * (x, y, 1)_j``.
        The moving image's gradient at ``M x`` is ``A^-T grad w(x)`` (``A`` the linear part of
        ``M``, ``w`` the warped image), and ``A^-T`` is applied to the 2x3 sums, not per pixel.
        On a subsampled grid (``stride > 1``) the moving image's gradient images are warped
        instead.
        """
        self.evaluations += 1
        p = self.to_params(x)
        m = self.transform.matrix(p)
        k = self.scales.size
        if self.refused(m):
            return math.inf, np.zeros(k), np.eye(k)
        warped, mask, grid_matrix = self._warp(m)
        n = int(np.count_nonzero(mask))
        if n < self.min_pixels:
            return math.inf, np.zeros(k), np.eye(k)
        if self.grid.stride > 1:
            source_matrix = self._to_source @ grid_matrix
            gx = self._resample(self._moving_gradient[0], source_matrix)
            gy = self._resample(self._moving_gradient[1], source_matrix)
            inverse_transposed = None
        else:
            gy, gx = _central_differences(warped)
            inverse_transposed = np.linalg.inv(m[:2, :2]).T
        if self.least_squares:
            # d cost / d w = 2 r / n: the sums below take ``r`` and the factor comes after.
            residual = np.subtract(warped, self.fixed_samples, out=warped)
            residual *= mask  # (a multiply is 3x cheaper than np.where)
            cost = float(np.einsum("ij,ij->", residual, residual, dtype=np.float64)) / n
            dcost, dcost_scale = residual, 2.0 / n
        else:
            cost, dcost = self.metric.cost_gradient(
                self.fixed_samples, warped, mask, **self.options
            )
            dcost = np.where(mask, dcost, 0.0).astype(np.float32, copy=False)
            dcost_scale = 1.0
        grid = self.grid
        sums = np.array([grid.first_moments(dcost, gx), grid.first_moments(dcost, gy)])
        # d x / d (sums of the warped image's gradient): dM/dx, then A^-T on the gradient index
        d_matrix = self.transform.matrix_derivatives(p)[:, :2, :] / self.scales[:, None, None]
        if inverse_transposed is not None:
            d_matrix = np.einsum("kia,il->kla", d_matrix, inverse_transposed)
        d_matrix = d_matrix.reshape(-1, 6)
        gradient = d_matrix @ (dcost_scale * sums).ravel()
        if not hessian:
            return float(cost), gradient, None
        gx *= mask  # (fresh arrays: the warps or _central_differences made them)
        gy *= mask
        # J^T J = D gram D^T: the Gram matrix of the six images d w / d M[i, j]
        gram = grid.gradient_gram(gx, gy)
        hessian_matrix = (2.0 * self.hessian_factor / n) * (d_matrix @ gram @ d_matrix.T)
        return float(cost), gradient, hessian_matrix
