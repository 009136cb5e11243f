"""``register()``: intensity-based registration of two 2-D images, coarse to fine.

Data flow::

    fixed, moving ─ check (2-D, any two shapes) ─ every other argument checked once
      (settings.py; the metric's options prepared for images in [0, 1]:
      Metric.prepare_options; with pixel spacing the family made physical: spacing.py)
      ─ the pixels in use (masks.valid_pixels: the user's masks AND the non-NaN pixels)
      ─ intensities to [0, 1] by robust bounds of those pixels (_validate.normalize_pair: each
        its own, or both the same for a metric that compares intensities as they are)
      ─ domains (domain.py): where each image has data, the one place masks join
      ─ Gaussian pyramids of the pixels in use (masks.masked_pyramid)
      ─ global start (initialize.py): initial_matrix, the identity, or the search (search.py,
        on a pyramid level: every transform), which keeps its candidates for the quality
      ─ per level, coarsest first (_coarse_to_fine, a driver that knows no metric or optimiser):
          the matrix handed over in the level's pixels: pyramid.to_level / pyramid.from_level
                                             (S @ M @ inv(S), S = pyramid.level_scaling)
          _solve_level: the metric set up once for the level: LevelObjective (objective.py),
                        x = params * transform.param_scales(level shape); at the finest
                        level refine.finest_objective: the moving image upsampled 2x by
                        cubic B-spline (and, for SSD / correlation, both images smoothed),
                        so bilinear sampling no longer pulls the optimum to whole pixels
              objective(x): warp moving by M(x) ─ overlap of the domains
                  ─ metric cost and d cost / d pixel ─ chain rule: gradient
                  ─ Gauss-Newton-type Hessian (lm)
              ─ optimiser steps (optimizers.py), costs recorded per iteration
              ─ finest level: convergence.check (no rise, a small slope)
      ─ quality.assess: verdict ok | suspect, reasons, measures
      ─ RegistrationResult (result.py): matrix, params, cost history, quality, lazy warped
        image
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from regcli import convergence, initialize, refine
from regcli import pyramid as _pyramid
from regcli._validate import check_image, normalize_pair
from regcli.domain import Domain
from regcli.errors import InputError
from regcli.masks import masked_pyramid, valid_pixels
from regcli.metrics import Metric
from regcli.objective import MIN_PIXELS, LevelObjective
from regcli.optimizers import Optimizer
from regcli.quality import Evidence, assess
from regcli.resample import warp_keeping_nan
from regcli.result import RegistrationResult
from regcli.settings import Settings, settings
from regcli.spacing import level_transform
from regcli.transforms import Transform, check_matrix

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["LevelObjective", "RegistrationResult", "check_options", "register"]


def register(
    fixed: ArrayLike,
    moving: ArrayLike,
    *,
    transform: str = "rigid",
    metric: str = "ssd",
    optimizer: str | None = None,
    learning_rate: float | None = None,
    iterations: int | None = None,
    levels: int | None = None,
    center: str | Sequence[float] | None = None,
    init: str | None = None,
    initial_matrix: ArrayLike | None = None,
    callback: Callable[[int, float, dict], None] | None = None,
    gamma: float | None = None,
    beta: float | None = None,
    bins: int | None = None,
    sigma: float | None = None,
    tolerance: float | None = None,
    fixed_mask: ArrayLike | None = None,
    moving_mask: ArrayLike | None = None,
    fixed_spacing: Sequence[float] | None = None,
    moving_spacing: Sequence[float] | None = None,
) -> RegistrationResult:
    """Find the transform that aligns ``moving`` onto ``fixed`` by minimising a cost.

    Parameters
    ----------
    fixed, moving : (rows, cols) arrays
        Grey images, any numeric dtype, of any shapes (the result is on the fixed image's
        grid).  Each is scaled to [0, 1] by its own range before registering, so costs and
        learning rates do not depend on bit depth.  NaN pixels are left out, as if outside a
        mask.
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
        transform (the global search, for every transform).  ``"none"`` starts from
        ``initial_matrix`` or the identity.
    initial_matrix : (3, 3) array, optional
        Fixed -> moving matrix to start from; its translation within 10^6 pixels
        (:data:`regcli._limits.MAX_CENTER`).
    callback : callable, optional
        ``callback(iteration, cost, params)`` after every iteration, ``iteration`` counting
        over all levels from 0 and ``params`` the transform's named parameters at full
        resolution, as in ``result.params`` (``{"angle_deg": ..., "tx": ..., "ty": ...,
        "center": [x, y]}``: angles in degrees).
    gamma, beta : float, optional
        Momentum (``momentum``, ``nag``, adam's first moment) and squared-gradient decay
        (``rmsprop``, ``adam``), in [0, 1).
    bins : int, optional
        Histogram bins of MI-like metrics, from :data:`regcli.metrics.MIN_COST_BINS` (4) to
        :data:`regcli.metrics.MAX_COST_BINS` (1024).
    sigma : float, optional
        Smoothing scale (pixels) of metrics that take one (``gradient``, ``pluim``).
    tolerance : float, optional
        Stop when steps stay below this many pixels of the current level (default: the
        optimiser's own, 1e-3 for the step rules and scipy methods, 1e-2 for ``lm``).
    fixed_mask, moving_mask : (rows, cols) arrays, optional
        The pixels of each image to use (non-zero = use; any dtype), of its image's shape: a
        region of interest, or everything but a label, a corrupted region or a static
        pattern.  The search, the cost and its gradient and the quality measures compare only
        pixels inside both masks (the fixed mask and the moving mask carried through the
        transform), and the intensity scaling looks at those pixels only.
    fixed_spacing, moving_spacing : (sy, sx), optional
        Pixel sizes along rows and columns, in one unit for both images (default 1 x 1).
        ``rotation``, ``rigid`` and ``similarity`` are then rigid (similar) in physical units;
        the matrix stays in pixels (fixed pixel -> moving pixel:
        ``inv(S_moving) @ M_physical @ S_fixed`` with ``S = diag(sx, sy, 1)``), while
        ``result.params`` are physical: ``angle_deg``, ``tx``, ``ty`` and the ``center`` in
        the spacing's unit.

    Returns
    -------
    RegistrationResult

    Raises
    ------
    InputError
        Bad images (not 2-D, constant, infinite pixels), masks (another shape than their image,
        or fewer than 64 pixels left) or option values; unknown names.
        An error about an argument names it in :attr:`InputError.param` (``"learning_rate"``,
        ``"bins"``...), and every argument is checked before any work is done.  A run that
        diverges does not raise: it returns ``converged=False`` and a message.

    Examples
    --------
    A smooth blob whose copy is moved 3 pixels right and 2 up:

    >>> from regcli.resample import translate
    >>> y, x = np.mgrid[:64, :64]
    >>> fixed = np.exp(-((x - 30.0) ** 2 + (y - 34.0) ** 2) / 120.0)
    >>> moving = translate(fixed, 3.0, -2.0)
    >>> result = register(fixed, moving, transform="translation")
    >>> result.converged, round(result.params["tx"], 2), round(result.params["ty"], 2)
    (True, 3.0, -2.0)
    """
    started = time.perf_counter()
    fixed_arr = check_image(fixed, name="fixed", allow_nan=True)
    moving_arr = check_image(moving, name="moving", allow_nan=True)
    run_settings = settings(
        fixed_arr.shape,
        moving_arr.shape,
        transform=transform,
        metric=metric,
        optimizer=optimizer,
        learning_rate=learning_rate,
        iterations=iterations,
        levels=levels,
        center=center,
        init=init,
        initial_matrix=initial_matrix,
        callback=callback,
        gamma=gamma,
        beta=beta,
        bins=bins,
        sigma=sigma,
        tolerance=tolerance,
        fixed_spacing=fixed_spacing,
        moving_spacing=moving_spacing,
    )
    # Where each image has data: the user's mask AND its non-NaN pixels (None: everywhere).
    # Every stage below restricts itself to these domains.
    valid = (
        valid_pixels(fixed_arr, fixed_mask, name="fixed", mask_name="fixed_mask"),
        valid_pixels(moving_arr, moving_mask, name="moving", mask_name="moving_mask"),
    )
    fixed_n, moving_n = normalize_pair(
        fixed_arr, moving_arr, joint=run_settings.metric.same_modality, masks=valid
    )
    domains = (Domain.of(fixed_arr, valid[0]), Domain.of(moving_arr, valid[1]))
    fixed_levels = masked_pyramid(fixed_n, valid[0], run_settings.levels)
    moving_levels = masked_pyramid(moving_n, valid[1], run_settings.levels)
    start = _start(run_settings, fixed_levels, moving_levels, domains)
    family = run_settings.family
    solve_level = functools.partial(
        _solve_level,
        family=family,
        metric=run_settings.metric,
        options=run_settings.metric_options,
        optimizer=run_settings.optimizer,
        run_options=run_settings.run_options,
        callback=run_settings.callback,
        domains=domains,
    )
    run = _coarse_to_fine(
        fixed_levels,
        moving_levels,
        family.matrix(family.params_from_matrix(start.matrix)),  # in the family
        solve_level,
    )
    quality = assess(_evidence(run_settings, fixed_levels, moving_levels, domains, start, run))
    return _result(run_settings, run, (fixed_arr, moving_arr), started, quality)


#: ``register``'s signature, read once (``check_options`` binds options to it).
_REGISTER_SIGNATURE = inspect.signature(register)


# --------------------------------------------------------------------------- settings


#: The image shape :func:`check_options` checks options against (any shape would do: no
#: option's validity depends on it).
_CHECK_SHAPE = (256, 256)


def check_options(**options) -> None:
    """Check keyword options of :func:`register` without images, as ``register`` would.

    For callers that run many registrations with the same options (``regcli batch``, the
    CLI before it reads any image): a bad value fails once, before any work.

    Raises
    ------
    InputError
        With ``param`` naming the option, for an unknown option name or a bad value.

    Examples
    --------
    >>> check_options(metric="mi", bins=3)
    Traceback (most recent call last):
    ...
    regcli.errors.InputError: bins: expected a whole number from 4 to 1024, got 3
    """
    try:
        bound = _REGISTER_SIGNATURE.bind(None, None, **options)
    except TypeError:
        known = list(_REGISTER_SIGNATURE.parameters)[2:]
        unknown = sorted(set(options) - set(known))
        raise InputError(
            f"{unknown[0]}: not an option of register(); the options are {', '.join(known)}",
            param=unknown[0],
        ) from None
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    del arguments["fixed"], arguments["moving"]
    for name in ("fixed_mask", "moving_mask"):  # their shapes are checked with the images
        mask = arguments.pop(name)
        if mask is not None:
            check_image(mask, name=name, allow_nan=True)
    settings(_CHECK_SHAPE, **arguments)


# --------------------------------------------------------------------------- start


def _start(settings: Settings, fixed_levels, moving_levels, domains) -> initialize.Start:
    """The full-resolution start: ``initial_matrix``, or the init method's (the search is
    handed the pyramids, whose levels it reuses)."""
    if settings.initial_matrix is not None:
        return initialize.Start(settings.initial_matrix)
    start = settings.init.start(
        fixed_levels[0],
        moving_levels[0],
        settings.family,
        settings.metric,
        settings.metric_options,
        domains=domains,
        pyramids=(fixed_levels, moving_levels),
    )
    return initialize.Start(check_matrix(start.matrix, name="init"), start.search)


# --------------------------------------------------------------------------- coarse to fine


@dataclass
class _LevelOutcome:
    """What a level solver found."""

    #: The level's fixed -> moving matrix, in the level's pixels.
    matrix: np.ndarray
    costs: list[float]
    converged: bool
    diverged: bool
    message: str
    #: True when the level was not optimised (too little overlap at its resolution).
    skipped: bool = False


#: ``solve_level(level, fixed, moving, start, first_iteration) -> _LevelOutcome``: optimise
#: one level from ``start`` (a matrix in the level's pixels); ``first_iteration`` counts the
#: iterations of the coarser levels.
SolveLevel = Callable[[int, np.ndarray, np.ndarray, np.ndarray, int], _LevelOutcome]


@dataclass
class _CoarseToFine:
    matrix: np.ndarray
    costs: list[float]
    level_starts: list[int]
    level_shapes: list[tuple[int, int]]
    converged: bool
    message: str


def _coarse_to_fine(
    fixed_levels: list[np.ndarray],
    moving_levels: list[np.ndarray],
    start: np.ndarray,
    solve_level: SolveLevel,
) -> _CoarseToFine:
    """Solve level by level, coarsest first, carrying the full-resolution matrix between them.

    Knows nothing of metrics or optimisers: ``solve_level`` does the work of a level, and a
    level that diverges ends the run with its message.  A level the solver skips (too coarse
    to see the overlap) is left out of the record.
    """
    out = _CoarseToFine(start, [], [], [], True, "")
    for level in range(len(fixed_levels) - 1, -1, -1):
        fixed = fixed_levels[level]
        out.level_starts.append(len(out.costs))
        out.level_shapes.append(tuple(int(n) for n in fixed.shape))
        outcome = solve_level(
            level, fixed, moving_levels[level], _pyramid.to_level(out.matrix, level), len(out.costs)
        )
        if outcome.skipped:
            out.level_starts.pop()
            out.level_shapes.pop()
            continue
        out.costs.extend(outcome.costs)
        out.matrix = _pyramid.from_level(outcome.matrix, level)
        if outcome.diverged:
            rows, cols = out.level_shapes[-1]
            out.converged = False
            out.message = f"level {level} ({rows}x{cols}): {outcome.message}"
            break
        if level == 0:
            out.converged = outcome.converged
            out.message = outcome.message
    return out


def _solve_level(
    level: int,
    fixed: np.ndarray,
    moving: np.ndarray,
    start: np.ndarray,
    first_iteration: int,
    *,
    family: Transform,
    metric: Metric,
    options: dict,
    optimizer: Optimizer,
    run_options: dict,
    callback,
    domains,
) -> _LevelOutcome:
    """One level: the objective of the level's images, optimised from ``start``; at the
    finest level a reported convergence is checked (:func:`regcli.convergence.check`)."""
    transform = level_transform(family, level)
    level_domains = (domains[0].level(level), domains[1].level(level))
    # (the finest level compares smoothed images, the moving one upsampled: refine.py)
    make_objective = refine.finest_objective if level == 0 else LevelObjective
    objective = make_objective(fixed, moving, transform, metric, options, domains=level_domains)
    x0 = transform.params_from_matrix(start) * objective.scales
    # A start on a small overlap (found by the global search) may be refined where it is, but
    # the optimiser may not shrink the overlap much further; a coarse level too small to see
    # it is skipped.
    start_overlap = objective.overlap(x0)
    if level > 0 and start_overlap < 2 * MIN_PIXELS:
        return _LevelOutcome(start, [], True, False, "skipped: too little overlap", True)
    objective.min_pixels = max(MIN_PIXELS, min(objective.min_pixels, start_overlap // 2))
    level_callback = _level_callback(callback, objective, level, first_iteration, family)
    outcome = optimizer.run(objective, x0, callback=level_callback, **run_options)
    converged, message = bool(outcome.converged), outcome.message
    diverged = bool(getattr(outcome, "diverged", False))
    if level == 0 and converged and not diverged:
        converged, message = convergence.check(objective, outcome, optimizer, run_options)
    return _LevelOutcome(
        matrix=objective.matrix(outcome.x),
        costs=[float(c) for c in outcome.costs],
        converged=converged,
        diverged=diverged,
        message=message,
    )


def _level_callback(callback, objective, level: int, offset: int, family: Transform):
    """The optimiser's ``callback(i, cost, x)`` as the user's ``callback(iteration, cost,
    params)``: iterations counted over all levels, parameters at full resolution."""
    if callback is None:
        return None

    def level_callback(iteration, cost, x):
        m_full = _pyramid.from_level(objective.matrix(x), level)
        callback(
            offset + iteration, float(cost), family.describe(family.params_from_matrix(m_full))
        )

    return level_callback


# --------------------------------------------------------------------------- result


def _evidence(settings: Settings, fixed_levels, moving_levels, domains, start, run) -> Evidence:
    """What the quality assessment looks at."""
    family = settings.family
    return Evidence(
        fixed_levels=fixed_levels,
        moving_levels=moving_levels,
        domains=domains,
        matrix=family.matrix(family.params_from_matrix(run.matrix)),
        family=family,
        metric=settings.metric,
        metric_options=settings.metric_options,
        search=start.search,
        converged=run.converged,
        message=run.message,
    )


def _result(
    settings: Settings, run: _CoarseToFine, images, started: float, quality
) -> RegistrationResult:
    fixed, moving = images
    family = settings.family
    params = family.params_from_matrix(run.matrix)
    matrix = family.matrix(params)
    learning_rate = settings.run_options.get("learning_rate")
    return RegistrationResult(
        matrix=matrix,
        transform=family.name,
        params=family.describe(params),
        metric=settings.metric.name,
        cost_label=settings.metric.cost_label,
        optimizer=settings.optimizer.name,
        learning_rate=None if learning_rate is None else float(learning_rate),
        cost_history=np.asarray(run.costs, dtype=float),
        level_starts=run.level_starts,
        level_shapes=run.level_shapes,
        iterations=len(run.costs),
        converged=run.converged,
        message=run.message,
        quality=quality,
        seconds=time.perf_counter() - started,
        # Made on first access; a partial of a module function keeps the result picklable.
        warped=functools.partial(_resample_moving, moving, matrix, fixed.shape),
        fixed_spacing=None if settings.spacings is None else settings.spacings[0],
        moving_spacing=None if settings.spacings is None else settings.spacings[1],
    )


def _resample_moving(moving: np.ndarray, matrix: np.ndarray, shape) -> np.ndarray:
    """The moving image on the fixed grid (cubic), float64: ``RegistrationResult.warped``.

    Pixels whose value comes from a NaN pixel of the moving image are NaN (the NaN pixels are
    filled for the interpolation, so that they spread no further than that)."""
    values = np.asarray(moving, dtype=np.float64)
    return warp_keeping_nan(values, matrix, output_shape=shape, order=3)
