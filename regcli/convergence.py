"""Convergence that means something: an optimiser's stop is checked before it is called one.

Optimisers stop when their steps become small (or the cost stops changing).  That is
convergence only if the steps are small *because the optimum is near*: a vanishing learning
rate (``gd`` with ``learning_rate=1e-6`` stops at once, "steps below 0.001 px") or a run that
ends where it did not want to be also makes them small.  At the finest level
:func:`check` therefore asks the objective itself:

* the cost at the end of the level must not be above the cost at its start;
* the distance to the optimum that the local slope implies, ``|gradient| / curvature`` in
  pixels (the exact distance for a quadratic cost), must be below :data:`GRADIENT_LIMIT`.
  Metrics without an analytic gradient get central differences one pixel wide.

``lm`` is exempt from the slope test: its stop is a Gauss-Newton step (a model of the
distance to the optimum) below its tolerance, or no step that lowers the cost.
"""

from __future__ import annotations

import math

import numpy as np

from regcli.optimizers._base import curvature_of

__all__ = ["GRADIENT_LIMIT", "check", "distance_to_optimum"]

#: A run that stops further than this from the optimum (pixels, by the local slope) at the
#: finest level has not converged.  Converged runs of every optimiser on the sample and
#: benchmark pairs end below 0.02 px.
GRADIENT_LIMIT = 0.1
#: Step (pixels) of the central differences for metrics without an analytic gradient.
PROBE_STEP = 1.0
#: The cost may end this much (relative) above where the finest level started, or as much as
#: a move of RISE_PIXELS away from a quadratic optimum costs.
RISE_TOLERANCE = 1e-3
RISE_PIXELS = 0.25
#: Optimisers whose own stopping rule already measures the distance to the optimum.
TRUSTED = ("lm",)


def distance_to_optimum(objective, x) -> float:
    """``|gradient| / curvature`` at scaled parameters ``x``: pixels to the optimum for a
    quadratic cost (central differences when the metric has no analytic gradient)."""
    x = np.asarray(x, dtype=float)
    if objective.has_gradient:
        cost, gradient = objective.cost_gradient(x)
    else:
        cost = objective.cost(x)
        gradient = np.zeros(x.size)
        for i in range(x.size):
            step = np.zeros(x.size)
            step[i] = PROBE_STEP
            gradient[i] = (objective.cost(x + step) - objective.cost(x - step)) / (2 * PROBE_STEP)
    if not (math.isfinite(cost) and np.all(np.isfinite(gradient))):
        return math.inf
    return float(np.linalg.norm(gradient)) / curvature_of(objective)


def _rise_tolerance(objective, start: float) -> float:
    """How much the cost may rise over a level: what a move of :data:`RISE_PIXELS` from the
    optimum costs (noise and interpolation ripple near an optimum), or a relative
    :data:`RISE_TOLERANCE`."""
    return max(
        RISE_TOLERANCE * abs(start),
        0.5 * curvature_of(objective) * RISE_PIXELS**2,
        1e-15,
    )


def check(objective, outcome, optimizer, run_options: dict) -> tuple[bool, str]:
    """``(converged, message)`` for an outcome that its optimiser calls converged."""
    costs = [float(c) for c in outcome.costs]
    rose = len(costs) >= 2 and costs[-1] > costs[0] + RISE_TOLERANCE * abs(costs[0])
    # (the curvature costs an evaluation or two: measured only when the cost rose at all)
    if rose and costs[-1] > costs[0] + _rise_tolerance(objective, costs[0]):
        return False, (
            f"{optimizer.name}: the cost rose during the finest level ({costs[0]:.6g} -> "
            f"{costs[-1]:.6g}): the run ended further from the optimum than it started; "
            "try a smaller learning rate or another optimizer"
        )
    if optimizer.name in TRUSTED:
        return True, outcome.message
    distance = distance_to_optimum(objective, outcome.x)
    if distance <= GRADIENT_LIMIT:
        return True, outcome.message
    learning_rate = run_options.get("learning_rate")
    where = f"about {distance:.2g} px from the optimum by the local slope"
    if learning_rate is None:
        return False, (
            f"{optimizer.name}: stopped while the gradient is still large ({where}); "
            "try another optimizer or more iterations"
        )
    default = optimizer.default_learning_rate
    return False, (
        f"{optimizer.name}: the steps became small while the gradient is still large "
        f"({where}): the learning rate {learning_rate:g} is too small; try a larger one "
        f"(the default is {default:g})"
    )
