"""``register()``: intensity-based registration of two 2-D images, coarse to fine.

Data flow::

    fixed, moving ─ check (2-D, same shape) ─ every other argument checked once (_Settings;
      the metric's options prepared for images in [0, 1]: Metric.prepare_options)
      ─ intensities to [0, 1] by robust bounds (_validate.normalize_pair: each its own, or
        both the same for a metric that compares intensities as they are)
      ─ domains (domain.py): where each image has data, the one place masks would join
      ─ Gaussian pyramids (pyramid.py)
      ─ global start (initialize.py): initial_matrix, the identity, or the search (search.py,
        on a pyramid level: every transform), which keeps its candidates for the quality
      ─ per level, coarsest first (_coarse_to_fine, a driver that knows no metric or optimiser):
          the matrix handed over in the level's pixels: pyramid.to_level / pyramid.from_level
                                             (S @ M @ inv(S), S = pyramid.level_scaling)
          _solve_level: the metric set up once for the level: LevelObjective (objective.py),
                        x = params * transform.param_scales(level shape)
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

from regcli import convergence, initialize
from regcli import pyramid as _pyramid
from regcli._validate import (
    check_image,
    check_same_shape,
    integer,
    normalize_pair,
)
from regcli.domain import Domain
from regcli.errors import InputError
from regcli.initialize import InitMethod
from regcli.metrics import Metric, get_metric
from regcli.objective import MIN_PIXELS, LevelObjective
from regcli.optimizers import (
    DEFAULT_GRADIENT_OPTIMIZER,
    OPTIMIZERS,
    Optimizer,
    get_optimizer,
)
from regcli.quality import Evidence, assess
from regcli.resample import warp
from regcli.result import RegistrationResult
from regcli.transforms import Transform, check_matrix, make_transform

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["LevelObjective", "RegistrationResult", "check_options", "register"]

#: The optimiser for metrics without an analytic gradient when none is named.
DERIVATIVE_FREE_OPTIMIZER = "powell"
#: Levels given by ``levels=`` never shrink an image below this many pixels a side.
MIN_LEVEL_SIDE = 8


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
        transform (the global search, for every transform).  ``"none"`` starts from
        ``initial_matrix`` or the identity.
    initial_matrix : (3, 3) array, optional
        Fixed -> moving matrix to start from.
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

    Returns
    -------
    RegistrationResult

    Raises
    ------
    InputError
        Bad images (not 2-D, different shapes, constant) or option values; unknown names.
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
    fixed_arr = check_image(fixed, name="fixed")
    moving_arr = check_image(moving, name="moving")
    # (Different shapes would need only this check lifted: every stage below takes the
    # moving image's shape from the moving image and its domain.)
    check_same_shape(fixed_arr, moving_arr, names=("fixed", "moving"))
    settings = _settings(
        fixed_arr.shape,
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
    )
    fixed_n, moving_n = normalize_pair(fixed_arr, moving_arr, joint=settings.metric.same_modality)
    # Where each image has data: its rectangle.  The one place where user masks (or NaN
    # pixels) would be AND-ed in; every stage below restricts itself to these domains.
    domains = (Domain.of(fixed_arr), Domain.of(moving_arr))
    fixed_levels = _pyramid.gaussian_pyramid(fixed_n, settings.levels)
    moving_levels = _pyramid.gaussian_pyramid(moving_n, settings.levels)
    start = _start(settings, fixed_levels, moving_levels, domains)
    family = settings.family
    solve_level = functools.partial(
        _solve_level,
        family=family,
        metric=settings.metric,
        options=settings.metric_options,
        optimizer=settings.optimizer,
        run_options=settings.run_options,
        callback=settings.callback,
        domains=domains,
    )
    run = _coarse_to_fine(
        fixed_levels,
        moving_levels,
        family.matrix(family.params_from_matrix(start.matrix)),  # in the family
        solve_level,
    )
    quality = assess(_evidence(settings, fixed_levels, moving_levels, domains, start, run))
    return _result(settings, run, moving_arr, started, quality)


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
    _settings(_CHECK_SHAPE, **arguments)


@dataclass(frozen=True)
class _Settings:
    """``register``'s arguments, checked once, in the form the stages use."""

    #: The transform at full resolution (its centre resolved for the images).
    family: Transform
    metric: Metric
    #: The metric's cost options for images scaled to [0, 1] (Metric.prepare_options).
    metric_options: dict
    optimizer: Optimizer
    #: Keyword options of ``optimizer.run`` (learning_rate, iterations, tolerance, ...).
    run_options: dict
    #: Pyramid levels to build.
    levels: int
    #: How the start is found; None when ``initial_matrix`` gives it.
    init: InitMethod | None
    initial_matrix: np.ndarray | None
    callback: Callable[[int, float, dict], None] | None


def _settings(
    shape: tuple[int, int],
    *,
    transform,
    metric,
    optimizer,
    learning_rate,
    iterations,
    levels,
    center,
    init,
    initial_matrix,
    callback,
    gamma,
    beta,
    bins,
    sigma,
    tolerance,
) -> _Settings:
    """Check every argument of :func:`register` but the images (each ``InputError`` names
    its argument in ``param``)."""
    family = make_transform(transform, center=center, shape=shape)
    metric_obj = get_metric(metric)
    opt = _choose_optimizer(metric_obj, optimizer)
    run_options = opt.run_options(
        learning_rate=learning_rate,
        iterations=iterations,
        tolerance=tolerance,
        gamma=gamma,
        beta=beta,
    )
    metric_options = metric_obj.prepare_options(
        metric_obj.check_options(bins=bins, sigma=sigma),
        moving_range=(0.0, 1.0),  # register() scales intensities to [0, 1]
    )
    method, start = _check_start(family, init, initial_matrix)
    if callback is not None and not callable(callback):
        raise InputError(
            f"callback: expected a function callback(iteration, cost, params), got {callback!r}",
            param="callback",
        )
    return _Settings(
        family=family,
        metric=metric_obj,
        metric_options=metric_options,
        optimizer=opt,
        run_options=run_options,
        levels=_level_count(shape, levels, method),
        init=method,
        initial_matrix=start,
        callback=callback,
    )


def _choose_optimizer(metric: Metric, optimizer: str | None) -> Optimizer:
    """The optimiser to use: the one named (checked), or the default for ``metric``."""
    if optimizer is None:
        if metric.cost_gradient is not None:
            return OPTIMIZERS[DEFAULT_GRADIENT_OPTIMIZER]
        if DERIVATIVE_FREE_OPTIMIZER in OPTIMIZERS:
            return OPTIMIZERS[DERIVATIVE_FREE_OPTIMIZER]
        raise InputError(
            f"metric: {metric.name!r} has no analytic gradient and no derivative-free "
            f"optimizer is available; choose one of {', '.join(OPTIMIZERS)} explicitly",
            param="metric",
        )
    opt = get_optimizer(optimizer)
    if opt.needs_gradient and metric.cost_gradient is None:
        raise InputError(
            f"optimizer: {optimizer!r} needs the gradient of the cost, which metric "
            f"{metric.name!r} does not provide; choose a derivative-free optimizer "
            f"({', '.join(n for n, o in OPTIMIZERS.items() if not o.needs_gradient) or 'none'})"
            " or a metric with a gradient",
            param="optimizer",
        )
    return opt


def _check_start(
    family: Transform, init, initial_matrix
) -> tuple[InitMethod | None, np.ndarray | None]:
    """The init method (None when ``initial_matrix`` gives the start) and the start matrix."""
    if initial_matrix is not None:
        if init not in (None, "none"):
            raise InputError(
                f"init: give either an initial matrix or init={init!r}, not both", param="init"
            )
        return None, check_matrix(initial_matrix, name="initial_matrix", param="initial_matrix")
    method = initialize.default_method(family) if init is None else init
    return initialize.get_init_method(method), None


def _level_count(shape: tuple[int, int], levels, init: InitMethod | None) -> int:
    """Pyramid levels: ``levels`` (checked, at most as many as leave :data:`MIN_LEVEL_SIDE`
    pixels a side), or automatic down to the coarsest side the init method leaves work for."""
    if levels is None:
        count = _pyramid.auto_levels(shape)
        if init is not None and init.coarsest_side is not None:
            count = min(count, _pyramid.auto_levels(shape, min_side=init.coarsest_side))
        return count
    count = integer(levels, "levels", 1)
    return min(count, max(1, _pyramid.auto_levels(shape, min_side=MIN_LEVEL_SIDE)))


# --------------------------------------------------------------------------- start


def _start(settings: _Settings, fixed_levels, moving_levels, domains) -> initialize.Start:
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
    center = _pyramid.level_scaling(level) @ np.array([family.center[0], family.center[1], 1.0])
    transform = make_transform(family.name, center=center[:2])
    level_domains = (domains[0].level(level), domains[1].level(level))
    objective = LevelObjective(fixed, moving, transform, metric, options, domains=level_domains)
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


def _evidence(settings: _Settings, fixed_levels, moving_levels, domains, start, run) -> Evidence:
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
    settings: _Settings, run: _CoarseToFine, moving: np.ndarray, started: float, quality
) -> RegistrationResult:
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
        warped=functools.partial(_resample_moving, moving, matrix),
    )


def _resample_moving(moving: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The moving image on the fixed grid (cubic), float64: ``RegistrationResult.warped``."""
    return warp(np.asarray(moving, dtype=np.float64), matrix, order=3)
