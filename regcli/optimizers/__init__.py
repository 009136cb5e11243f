"""Optimisers in one contract, and the ``OPTIMIZERS`` registry.

An optimiser minimises an *objective* over a parameter vector ``x``.  The registration engine
hands it objectives in **scaled** parameters (``x = params * transform.scales(shape)``): a unit
change of any component moves the pixels by about one pixel (of the current pyramid level), so
one learning rate and one tolerance fit translations, angles and scales alike.

The contract
------------
* The objective is an :class:`Objective`: ``cost(x) -> float``, ``cost_gradient(x) ->
  (float, ndarray)`` (the same function), ``curvature`` (the cost's second derivative for a
  one-pixel shift, measured once per pyramid level, see :mod:`regcli.registration`) and
  ``max_displacement`` (how far the parameters may move before the run counts as diverged).
  The step rules divide the gradient by ``curvature``, so the *normalised gradient*
  ``g / curvature`` is in pixels: near the optimum of a quadratic cost it is the distance to
  the optimum.  A :class:`GaussNewtonObjective` also offers ``gauss_newton(x) -> (cost,
  gradient, hessian)`` (exact Gauss-Newton for SSD, a scaled one for the other metrics) and
  ``grid_aligned(x)``; ``lm`` uses them.
* Each optimiser is an :class:`Optimizer` record in :data:`OPTIMIZERS`.
  ``opt.run(objective, x0, *, callback=None, learning_rate=None, iterations=None,
  tolerance=None, **hyper)`` returns an :class:`OptimizeOutcome`; ``None`` means the
  optimiser's default, and :meth:`Optimizer.run_options` checks and completes the options
  (raising :class:`~regcli.errors.InputError` with ``param`` set to the option's name).
  ``callback(iteration, cost, x)`` is called once per recorded cost.
* The implementations live in private modules that import only ``_base`` (the contract):
  ``_step_rules`` (gd ... adam), ``_lm`` (lm) and ``_scipy`` (powell, nelder-mead, lbfgs, which
  import ``scipy.optimize`` only when they run).  This module assembles the registry.

What ``learning_rate`` means
----------------------------
* ``gd``: step = ``lr * g / curvature`` pixels; ``lr = 1`` is a Newton step for a translation
  on a quadratic cost (``lr >= 2`` oscillates or diverges).
* ``momentum`` and ``nag``: the same normalised step fed into a velocity that keeps the fraction
  ``gamma`` of the previous one (heavy ball; ``nag`` takes the gradient at the look-ahead point,
  Sutskever et al. 2013).
* ``adagrad``, ``rmsprop``, ``adam``: ``lr`` is the largest step in pixels per iteration and per
  component (the gradient is divided by its running RMS).  Once the normalised gradient falls
  below ``epsilon`` they turn into gradient descent with rate ``lr / epsilon``, which is
  what lets them settle instead of oscillating by ``lr`` forever; ``epsilon`` is 0.1 px for
  rmsprop and adam and 1 px for adagrad, so that at each rule's default ``lr`` (0.1, 0.1, 1)
  that rate is 1, a Newton step (adagrad at 10 overshot tenfold at the start of every finer
  pyramid level, where its sum restarts at zero).
  ``beta`` is the decay of the squared-gradient average (rmsprop, adam's ``beta2``); ``gamma``
  is adam's first-moment decay (``beta1``).
* ``lm`` (the fast default) has no learning rate: Levenberg-Marquardt, i.e. Gauss-Newton steps
  with a damping that grows when a step raises the cost and shrinks when it lowers it, on the
  objective's ``gauss_newton`` Hessian; a step is accepted only if it lowers the cost, and
  the model is scaled up to the curvature measured along the last accepted step (the
  gradient's change) when that is higher (at most twice the model).  It
  usually needs 2-10 iterations per level.  On objectives that are not a
  :class:`GaussNewtonObjective` it runs BFGS with a backtracking line search.  ``lm`` stops
  when its step is below ``tolerance`` (by default :data:`LM_TOLERANCE`, 0.01 px) or when no
  damping lowers the cost.
* ``nelder-mead``: ``lr`` is the size of the starting simplex in pixels.  ``powell`` and
  ``lbfgs`` have no learning rate.

Every optimiser stops when its step stays below ``tolerance`` pixels for a few iterations or
the cost stops changing (``converged = True``), when it reaches ``iterations``
(``converged = False``), or when it diverges: NaN or infinite cost or gradient, a cost far
above the starting one, or parameters that left the image (``converged = False`` with a
message suggesting a smaller learning rate).  Nothing is random: the same input gives the same
output.
"""

from __future__ import annotations

from regcli.errors import InputError
from regcli.optimizers._base import (
    DEFAULT_TOLERANCE,
    REGISTRY,
    GaussNewtonObjective,
    Objective,
    OptimizeOutcome,
    Optimizer,
)
from regcli.optimizers._lm import LM_TOLERANCE, run_lm
from regcli.optimizers._scipy import (
    FINITE_DIFFERENCE_STEP,
    run_lbfgs,
    run_nelder_mead,
    run_powell,
)
from regcli.optimizers._step_rules import (
    run_adagrad,
    run_adam,
    run_gd,
    run_momentum,
    run_nag,
    run_rmsprop,
)

__all__ = [
    "DEFAULT_GRADIENT_OPTIMIZER",
    "DEFAULT_TOLERANCE",
    "LM_TOLERANCE",
    "OPTIMIZERS",
    "GaussNewtonObjective",
    "Objective",
    "OptimizeOutcome",
    "Optimizer",
    "get_optimizer",
]

_ENTRIES = (
    Optimizer(
        name="gd",
        label="gradient descent",
        run=run_gd,
        needs_gradient=True,
        default_learning_rate=1.0,
        default_iterations=300,
    ),
    Optimizer(
        name="momentum",
        label="gradient descent with momentum",
        run=run_momentum,
        needs_gradient=True,
        default_learning_rate=0.5,
        default_iterations=300,
        hyperparameters=("gamma",),
        defaults={"gamma": 0.5},
    ),
    Optimizer(
        name="nag",
        label="Nesterov accelerated gradient",
        run=run_nag,
        needs_gradient=True,
        default_learning_rate=0.5,
        default_iterations=300,
        hyperparameters=("gamma",),
        defaults={"gamma": 0.5},
    ),
    Optimizer(
        name="adagrad",
        label="AdaGrad",
        run=run_adagrad,
        needs_gradient=True,
        default_learning_rate=1.0,
        default_iterations=300,
    ),
    Optimizer(
        name="rmsprop",
        label="RMSprop",
        run=run_rmsprop,
        needs_gradient=True,
        default_learning_rate=0.1,
        default_iterations=300,
        hyperparameters=("beta",),
        defaults={"beta": 0.9},
    ),
    Optimizer(
        name="adam",
        label="Adam",
        run=run_adam,
        needs_gradient=True,
        default_learning_rate=0.1,
        default_iterations=300,
        hyperparameters=("gamma", "beta"),
        defaults={"gamma": 0.9, "beta": 0.999},
    ),
    Optimizer(
        name="lm",
        label="Levenberg-Marquardt (Gauss-Newton with adaptive damping): the fast default",
        run=run_lm,
        needs_gradient=True,
        default_learning_rate=None,
        default_iterations=100,
        default_tolerance=LM_TOLERANCE,
    ),
    Optimizer(
        name="powell",
        label="Powell's method (scipy, derivative-free)",
        run=run_powell,
        needs_gradient=False,
        default_learning_rate=None,
        default_iterations=100,
    ),
    Optimizer(
        name="nelder-mead",
        label="Nelder-Mead simplex (scipy, derivative-free; learning rate: simplex size in px)",
        run=run_nelder_mead,
        needs_gradient=False,
        default_learning_rate=2.0,
        default_iterations=600,
    ),
    Optimizer(
        name="lbfgs",
        label="L-BFGS-B (scipy; analytic gradient, else finite differences)",
        run=run_lbfgs,
        needs_gradient=False,
        default_learning_rate=None,
        default_iterations=200,
        hyperparameters=("step",),
        defaults={"step": FINITE_DIFFERENCE_STEP},
    ),
)

#: Optimisers by name.  Feeds the CLI choices (``--opt``) and the tests' parametrize.  (The
#: dict is made empty in ``_base`` so that option errors can name the optimisers that take an
#: option; it is filled here, once the implementations are imported.)
OPTIMIZERS: dict[str, Optimizer] = REGISTRY
OPTIMIZERS.update((entry.name, entry) for entry in _ENTRIES)

#: The optimiser ``register(optimizer=None)`` uses for metrics with an analytic gradient.
DEFAULT_GRADIENT_OPTIMIZER = "lm"


def get_optimizer(name: str) -> Optimizer:
    """The registered optimiser ``name``, or an :class:`InputError` listing the choices."""
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise InputError(
            f"optimizer: unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}",
            param="optimizer",
        ) from None
