"""``register()``'s arguments, checked once, in the form the stages use (:class:`Settings`).

Every argument but the images is checked here, before any work, and each
:class:`~regcli.errors.InputError` names its argument in ``param``;
:func:`regcli.registration.check_options` runs the same checks without images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from regcli import initialize
from regcli import pyramid as _pyramid
from regcli._limits import MAX_CENTER
from regcli._validate import integer
from regcli.errors import InputError
from regcli.initialize import InitMethod
from regcli.metrics import Metric, get_metric
from regcli.optimizers import DEFAULT_GRADIENT_OPTIMIZER, OPTIMIZERS, Optimizer, get_optimizer
from regcli.spacing import PhysicalTransform, check_spacings
from regcli.transforms import Transform, check_matrix, make_transform

__all__ = [
    "DERIVATIVE_FREE_OPTIMIZER",
    "MIN_LEVEL_SIDE",
    "Settings",
    "check_initial_matrix",
    "settings",
]

#: The optimiser for metrics without an analytic gradient when none is named.
DERIVATIVE_FREE_OPTIMIZER = "powell"
#: Levels given by ``levels=`` never shrink an image below this many pixels a side.
MIN_LEVEL_SIDE = 8


@dataclass(frozen=True)
class Settings:
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
    #: The pixel sizes ``((sy, sx) fixed, (sy, sx) moving)``, or None (pixels are the unit).
    spacings: tuple | None = None


def settings(
    shape: tuple[int, int],
    moving_shape: tuple[int, int] | None = None,
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
    fixed_spacing=None,
    moving_spacing=None,
) -> Settings:
    """Check every argument of :func:`register` but the images (each ``InputError`` names
    its argument in ``param``); ``shape`` and ``moving_shape`` are the images' (the moving
    one's default: the fixed one's).

    With pixel spacing the family is a :class:`~regcli.spacing.PhysicalTransform` (rigid in
    physical units), its centre still given in fixed pixels.
    """
    family = make_transform(transform, center=center, shape=shape)
    spacings = check_spacings(fixed_spacing, moving_spacing)
    if spacings is not None:
        family = PhysicalTransform.of(family, spacings)
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
    return Settings(
        family=family,
        metric=metric_obj,
        metric_options=metric_options,
        optimizer=opt,
        run_options=run_options,
        levels=_level_count(_smaller(shape, moving_shape or shape), levels, method),
        init=method,
        initial_matrix=start,
        callback=callback,
        spacings=spacings,
    )


def _smaller(a, b) -> tuple[int, int]:
    """The shape whose pyramid stops first: the smaller side of the two along each axis."""
    return (min(int(a[0]), int(b[0])), min(int(a[1]), int(b[1])))


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
        return None, check_initial_matrix(initial_matrix)
    method = initialize.default_method(family) if init is None else init
    return initialize.get_init_method(method), None


def check_initial_matrix(matrix) -> np.ndarray:
    """``initial_matrix`` as a float 3x3 array: an invertible affine matrix whose translation
    is within :data:`~regcli._limits.MAX_CENTER` pixels (the bound of a centre of rotation),
    else an :class:`InputError` on ``initial_matrix``.  A start a million pixels away leaves
    the images without overlap whatever they are (a shift in the wrong units, a typo), and
    a translation of 1e300 overflows the single-precision warps."""
    m = check_matrix(matrix, name="initial_matrix", param="initial_matrix")
    tx, ty = float(m[0, 2]), float(m[1, 2])
    if max(abs(tx), abs(ty)) > MAX_CENTER:
        raise InputError(
            f"initial_matrix: its translation (tx={tx:.6g}, ty={ty:.6g} pixels) is beyond "
            f"{MAX_CENTER:g} pixels, so the images would not overlap; give a start that "
            "leaves them overlapping (a shift in pixels, not in physical units)",
            param="initial_matrix",
        )
    return m


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
