"""``lm``: Levenberg-Marquardt on a :class:`GaussNewtonObjective`, BFGS on other objectives."""

from __future__ import annotations

import math

import numpy as np

from regcli.optimizers._base import (
    GaussNewtonObjective,
    Objective,
    OptimizeOutcome,
    curvature_of,
    diverged_outcome,
    report,
)

__all__ = ["LM_TOLERANCE", "run_lm"]

#: ``lm``'s default stopping step (pixels of the current level).  Every pyramid level starts
#: within a few hundredths of a pixel of its optimum (the coarser level found it), below a
#: hundredth of a pixel the interpolation ripple of noisy images decides more than the images
#: do (the benchmark's errors are 0.005-0.02 px), and each extra step costs a full-size
#: evaluation: 4 -> 2 at the finest level.
LM_TOLERANCE = 1e-2
#: ``lm`` relaxes its model Hessian down to this fraction when steps keep beating the model.
MIN_MODEL_SCALE = 1e-3
#: Shortest Gauss-Newton step (pixels) from a grid-aligned start that ``lm`` still probes
#: along (whatever the stopping tolerance): there the cusp of the cost shortens the step.
PROBE_MIN_STEP = 1e-3
#: Step lengths (pixels) ``lm`` probes along its direction when no damped step lowers the cost.
PROBE_LENGTHS = (0.25, 0.5, 1.0)
#: Damped steps ``lm`` tries per iteration, raising the damping each time.
DAMPING_TRIES = 12
#: At most this factor is put on the model Hessian when the curvature measured along the last
#: step (the gradients' change) is higher than the model's.  On the benchmark's noisy pairs the
#: Gauss-Newton matrix (central differences of the warped image) is 20-30 % below the cost's
#: curvature at the coarse levels, so every undamped step overshot by a quarter and the next
#: one came back: 3-5 evaluations per level instead of 2-3.
MAX_CURVATURE_BOOST = 2.0


def run_lm(
    objective: Objective,
    x0,
    *,
    callback=None,
    learning_rate=None,
    iterations: int,
    tolerance: float,
) -> OptimizeOutcome:
    """Levenberg-Marquardt on a :class:`GaussNewtonObjective`, else BFGS with a line search.

    ``learning_rate`` is always None: the damping adapts itself.
    """
    if isinstance(objective, GaussNewtonObjective):
        return _levenberg_marquardt(objective, x0, iterations, callback, tolerance)
    return _bfgs(objective, x0, iterations, callback, tolerance)


def _solve_damped(hessian: np.ndarray, gradient: np.ndarray, damping: float) -> np.ndarray:
    diag = np.diag(hessian).copy()
    diag[diag <= 0] = max(float(np.max(diag)), 1e-12) * 1e-6
    try:
        return -np.linalg.solve(hessian + damping * np.diag(diag), gradient)
    except np.linalg.LinAlgError:
        return -gradient / diag


def _damped_step(objective, x, x0, cost, gradient, model, damping, tolerance, limit):
    """Raise the damping until a step lowers the cost.

    Returns ``(step, trial, evaluation, first_step, damping)``: ``evaluation`` is
    ``objective.gauss_newton(trial)`` of the accepted step, or None (and ``step``, ``trial``
    meaningless) when no step was accepted; ``first_step`` is the least damped step.
    """
    first_step = step = trial = None
    for _ in range(DAMPING_TRIES):
        step = _solve_damped(model, gradient, damping)
        if first_step is None:
            first_step = step
        if np.linalg.norm(step) < tolerance:
            break
        trial = x + step
        if np.linalg.norm(trial - x0) > limit:
            damping = max(10.0 * damping, 1.0)
            continue
        evaluation = objective.gauss_newton(trial)
        if math.isfinite(evaluation[0]) and evaluation[0] <= cost:
            return step, trial, evaluation, first_step, damping
        damping = max(10.0 * damping, 1.0)
    return step, trial, None, first_step, damping


def _probe_long_steps(objective, x, x0, cost, direction, length, limit):
    """Steps of :data:`PROBE_LENGTHS` pixels along ``direction`` (of norm ``length``).

    At a grid-aligned start (the identity, say) interpolation is exact and the cost has a cusp
    there (for MI any interpolation changes the histogram) which short steps cannot leave.
    Returns ``(step, trial, evaluation)`` of the first probe that lowers the cost, or None.
    """
    for probe in PROBE_LENGTHS:
        trial = x + direction * (probe / length)
        if np.linalg.norm(trial - x0) > limit:
            break
        evaluation = objective.gauss_newton(trial)
        if math.isfinite(evaluation[0]) and evaluation[0] < cost:
            return trial - x, trial, evaluation
    return None


def _levenberg_marquardt(
    objective: GaussNewtonObjective, x0, iterations, callback, tolerance
) -> OptimizeOutcome:
    x = np.array(x0, dtype=float)
    limit = float(objective.max_displacement)
    cost, gradient, hessian = objective.gauss_newton(x)
    if not math.isfinite(cost):
        return diverged_outcome("lm", None, "the cost is NaN or infinite at the start", x, [])
    damping = 1e-3
    # Multiplies the model Hessian.  Far from the optimum a similarity such as NMI is much
    # flatter than its Gauss-Newton-type model says, and undamped steps would crawl: when a
    # step lowers the cost by well over the model's prediction the model is relaxed (longer
    # steps next time); when the prediction is poor it is restored.
    model_scale = 1.0
    # Multiplies the model too, from the curvature measured along the last accepted step: the
    # secant ``s . (g1 - g0)`` against the model's ``s . H s`` (only ever raised: a flatter
    # cost is the model scale's business).
    boost = 1.0
    costs: list[float] = []
    for iteration in range(iterations):
        costs.append(float(cost))
        report(callback, iteration, cost, x)
        start_damping = damping
        model = (model_scale * boost) * hessian
        step, trial, evaluation, first_step, damping = _damped_step(
            objective, x, x0, cost, gradient, model, damping, tolerance, limit
        )
        first_length = float(np.linalg.norm(first_step))
        if (
            evaluation is None
            and first_length >= min(tolerance, PROBE_MIN_STEP)
            and iteration == 0
            and objective.grid_aligned(x)
        ):
            # Only at a grid-aligned start: elsewhere a long probe lands in the ripple that
            # linear interpolation puts into the cost of noisy images (a noisy 1024^2 pair
            # ended 0.5 px off).
            probed = _probe_long_steps(objective, x, x0, cost, first_step, first_length, limit)
            if probed is not None:
                step, trial, evaluation = probed
        if evaluation is None:
            if first_length < tolerance:
                # The last Gauss-Newton step is taken (unevaluated): it is the model's best
                # estimate of the optimum, and stopping short of it left up to the tolerance
                # (0.01 px) of error.
                x = x + first_step
                reason = f"step below {tolerance:g} px"
            else:
                reason = "no step lowers the cost"
            return OptimizeOutcome(x, costs, len(costs), True, f"lm: converged ({reason})")
        t_cost, t_gradient, t_hessian = evaluation
        predicted = -float(gradient @ step + 0.5 * step @ model @ step)
        actual = cost - t_cost
        if predicted > 0 and actual > 1.5 * predicted:
            model_scale = max(model_scale * 0.5, MIN_MODEL_SCALE)
        elif predicted > 0 and actual < 0.5 * predicted:
            model_scale = min(model_scale * 2.0, 1.0)
        boost = _curvature_boost(step, t_gradient - gradient, model_scale * hessian)
        x, cost, gradient, hessian = trial, t_cost, t_gradient, t_hessian
        # Relax the damping only after an undamped success: when this iteration had to raise
        # it, the next step starts from the damping that worked (dividing by 10 again made
        # MI's steps alternate between an overshoot and a damped retry).
        damping = max(damping / 10.0, 1e-7) if damping <= start_damping else damping
    return OptimizeOutcome(
        x,
        costs,
        len(costs),
        False,
        f"lm: stopped at the iteration limit ({iterations}) before the steps fell below "
        f"{tolerance:g} px; raise the iteration limit",
    )


def _curvature_boost(step: np.ndarray, change: np.ndarray, model: np.ndarray) -> float:
    """How much steeper the cost curves along ``step`` than ``model`` says (the gradient's
    ``change`` along the step against the model's), from 1 to :data:`MAX_CURVATURE_BOOST`."""
    measured = float(step @ change)
    modelled = float(step @ model @ step)
    if not (modelled > 0 and math.isfinite(measured)):
        return 1.0
    return min(max(measured / modelled, 1.0), MAX_CURVATURE_BOOST)


def _bfgs(objective: Objective, x0, iterations, callback, tolerance) -> OptimizeOutcome:
    """BFGS with an Armijo backtracking line search, started from ``I / curvature``."""
    x = np.array(x0, dtype=float)
    n = x.size
    limit = float(objective.max_displacement)
    inverse_hessian = np.eye(n) / curvature_of(objective)
    cost, gradient = objective.cost_gradient(x)
    if not (math.isfinite(cost) and np.all(np.isfinite(gradient))):
        return diverged_outcome("lm", None, "the cost is NaN or infinite at the start", x, [])
    costs: list[float] = []
    for iteration in range(iterations):
        costs.append(float(cost))
        report(callback, iteration, cost, x)
        direction = -inverse_hessian @ gradient
        slope = float(gradient @ direction)
        if slope >= 0:  # not a descent direction: restart from the scaled identity
            inverse_hessian = np.eye(n) / curvature_of(objective)
            direction = -inverse_hessian @ gradient
            slope = float(gradient @ direction)
        t = 1.0
        accepted = False
        for _ in range(20):
            trial = x + t * direction
            if np.linalg.norm(trial - x0) <= limit:
                t_cost, t_gradient = objective.cost_gradient(trial)
                if math.isfinite(t_cost) and t_cost <= cost + 1e-4 * t * slope:
                    accepted = True
                    break
            t *= 0.5
        if not accepted:
            return OptimizeOutcome(
                x, costs, len(costs), True, "lm: converged (no step lowers the cost)"
            )
        step = trial - x
        y = np.asarray(t_gradient, dtype=float) - gradient
        sy = float(step @ y)
        if sy > 1e-12 * float(np.linalg.norm(step) * np.linalg.norm(y)):
            rho = 1.0 / sy
            identity = np.eye(n)
            inverse_hessian = (identity - rho * np.outer(step, y)) @ inverse_hessian @ (
                identity - rho * np.outer(y, step)
            ) + rho * np.outer(step, step)
        x, cost, gradient = trial, float(t_cost), np.asarray(t_gradient, dtype=float)
        if np.linalg.norm(step) < tolerance:
            return OptimizeOutcome(
                x, costs, len(costs), True, f"lm: converged (step below {tolerance:g} px)"
            )
    return OptimizeOutcome(
        x,
        costs,
        len(costs),
        False,
        f"lm: stopped at the iteration limit ({iterations}) before the steps fell below "
        f"{tolerance:g} px; raise the iteration limit",
    )
