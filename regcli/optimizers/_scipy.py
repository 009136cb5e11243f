"""``scipy.optimize.minimize`` methods in the optimiser contract: powell, nelder-mead, lbfgs.

Each runner takes the checked options of :meth:`regcli.optimizers.Optimizer.run_options`::

    run(objective, x0, *, callback=None, learning_rate, iterations, tolerance, **hyper)
        -> OptimizeOutcome

and works, like the step rules, in *scaled* parameters (a unit step moves the pixels by about
one pixel), so ``tolerance`` is in pixels whatever the parameter.  The derivative-free methods
(``powell``, ``nelder-mead``) only call ``objective.cost``: they make the metrics without an
analytic gradient (NMI, the Pluim measure) first-class.  ``lbfgs`` (L-BFGS-B) uses
``objective.cost_gradient`` when the metric has an analytic gradient and central finite
differences otherwise.

The cost is recorded once per iteration (scipy's callback), after the cost at the start:
``costs[0]`` is the starting cost and there are at most ``iterations`` costs, as for the other
optimisers.  A run stops when an
iteration moves the parameters by less than ``tolerance`` pixels (Powell, L-BFGS-B), when the
simplex is smaller than ``tolerance`` pixels (Nelder-Mead), at scipy's own criteria, or at
``iterations``.

``scipy.optimize`` is imported inside the runners, so importing this module stays cheap.
"""

from __future__ import annotations

import math

import numpy as np

from regcli.optimizers._base import REGISTRY, Objective, OptimizeOutcome, distance

__all__ = ["FINITE_DIFFERENCE_STEP", "run_lbfgs", "run_nelder_mead", "run_powell"]

#: Fresh simplices Nelder-Mead may start from where the previous one converged.
NELDER_MEAD_RESTARTS = 3

#: Finite-difference step (pixels) for ``lbfgs`` on metrics without an analytic gradient:
#: large enough to step over the staircase that histogram binning puts in MI-like costs.
FINITE_DIFFERENCE_STEP = 0.05


class _Stop(Exception):
    """Raised from scipy's callback to end a run; carries why."""

    def __init__(self, message: str, *, converged: bool, diverged: bool = False):
        super().__init__(message)
        self.message = message
        self.converged = converged
        self.diverged = diverged


class _Recorder:
    """Wraps the objective: caches costs, records one cost per iteration, decides to stop."""

    def __init__(self, name, objective, x0, iterations, tolerance, callback, step_test):
        self.name = name
        self.objective = objective
        self.x0 = np.array(x0, dtype=float)
        self.iterations = iterations
        self.tolerance = tolerance
        self.callback = callback
        self.step_test = step_test
        self.limit = float(objective.max_displacement)
        self._cache: dict[bytes, float] = {}
        self.costs: list[float] = []
        self.x = self.x0.copy()
        self.best_x, self.best_cost = self.x0.copy(), math.inf
        self.penalty = None
        #: What to try when the iteration limit is reached.
        self.advice = "raise the iteration limit"

    def cost(self, x) -> float:
        x = np.asarray(x, dtype=float)
        key = x.tobytes()
        if key not in self._cache:
            if not np.all(np.isfinite(x)) or distance(x, self.x0) > self.limit:
                value = math.inf
            else:
                value = float(self.objective.cost(x))
            self._remember(key, x, value)
        return self._finite(self._cache[key])

    def cost_gradient(self, x) -> tuple[float, np.ndarray]:
        x = np.asarray(x, dtype=float)
        if not np.all(np.isfinite(x)) or distance(x, self.x0) > self.limit:
            self._remember(x.tobytes(), x, math.inf)
            return self._finite(math.inf), np.zeros_like(x)
        value, gradient = self.objective.cost_gradient(x)
        value = float(value)
        gradient = np.asarray(gradient, dtype=float)
        self._remember(x.tobytes(), x, value)
        if not (math.isfinite(value) and np.all(np.isfinite(gradient))):
            return self._finite(math.inf), np.zeros_like(x)
        return value, gradient

    def _remember(self, key, x, value):
        if len(self._cache) > 512:  # only recent points are ever asked for again
            self._cache.clear()
        self._cache[key] = value
        if math.isfinite(value) and value < self.best_cost:
            self.best_x, self.best_cost = x.copy(), value

    def _finite(self, value: float) -> float:
        """Non-finite costs (no overlap left) become a large finite one scipy can compare."""
        if math.isfinite(value):
            return value
        if self.penalty is None:
            start = self.costs[0] if self.costs else 1.0
            self.penalty = 1e10 * (1.0 + abs(start))
        return self.penalty

    def record(self, x) -> None:
        """One iteration done: record its cost, report it, test the stopping rules."""
        x = np.array(x, dtype=float)
        key = x.tobytes()
        value = self._cache.get(key)
        if value is None:
            value = self.cost(x)
            value = self._cache[key]
        if not math.isfinite(value):
            raise _Stop(
                f"{self.name} diverged (the cost became NaN or infinite: the parameters left "
                "the image or the overlap vanished)",
                converged=False,
                diverged=True,
            )
        step = distance(x, self.x)
        if len(self.costs) >= self.iterations:
            # As the step rules do: the point reached is kept, its cost is not recorded.
            self.x = x
            raise _Stop(
                f"{self.name}: stopped at the iteration limit ({self.iterations}) before the "
                f"steps fell below {self.tolerance:g} px; {self.advice}",
                converged=False,
            )
        self.x = x
        self.costs.append(value)
        if self.callback is not None:
            self.callback(len(self.costs) - 1, value, x.copy())
        if self.step_test and step < self.tolerance:
            raise _Stop(
                f"{self.name}: converged (step below {self.tolerance:g} px)", converged=True
            )

    def start(self, *, with_gradient: bool = False) -> None:
        if with_gradient:  # objectives with a gradient may be cheaper through cost_gradient
            self.cost_gradient(self.x0)
        value = self.cost(self.x0)
        if not math.isfinite(self._cache[self.x0.tobytes()]):
            raise _Stop(
                f"{self.name}: the cost is NaN or infinite at the start (no overlap?)",
                converged=False,
                diverged=True,
            )
        self.costs.append(value)
        if self.callback is not None:
            self.callback(0, value, self.x0.copy())


def _outcome(recorder: _Recorder, x, message: str, converged: bool, diverged: bool = False):
    x = np.array(x, dtype=float)
    # scipy's last point is its best; fall back on the best point seen when a run blew up.
    if diverged or not np.all(np.isfinite(x)):
        x = recorder.best_x
    return OptimizeOutcome(
        x=x,
        costs=list(recorder.costs),
        iterations=len(recorder.costs),
        converged=converged,
        message=message,
        diverged=diverged,
    )


def _minimize(name, recorder: _Recorder, method: str, x0, *, fun=None, restart=False, **kwargs):
    from scipy import optimize

    try:
        if not restart:
            recorder.start(with_gradient=fun == recorder.cost_gradient)
        result = optimize.minimize(
            recorder.cost if fun is None else fun,
            np.array(x0, dtype=float),
            method=method,
            callback=recorder.record,
            **kwargs,
        )
    except _Stop as stop:
        x = recorder.x if not stop.diverged else recorder.best_x
        return _outcome(recorder, x, stop.message, stop.converged, stop.diverged)
    # scipy stopped by its own criteria: record the final point if it moved.
    x = np.asarray(result.x, dtype=float)
    if not np.array_equal(x, recorder.x) and len(recorder.costs) < recorder.iterations:
        value = recorder.cost(x)
        if math.isfinite(recorder._cache.get(x.tobytes(), math.inf)):
            recorder.x = x
            recorder.costs.append(value)
            if recorder.callback is not None:
                recorder.callback(len(recorder.costs) - 1, value, x.copy())
    if not math.isfinite(recorder._cache.get(recorder.x.tobytes(), math.inf)):
        return _outcome(recorder, recorder.best_x, f"{name} diverged", False, True)
    converged = bool(result.success)
    message = f"{name}: {'converged' if converged else 'stopped'} ({result.message})"
    return _outcome(recorder, recorder.x, message, converged)


def run_powell(
    objective: Objective,
    x0,
    *,
    callback=None,
    learning_rate=None,
    iterations: int,
    tolerance: float,
) -> OptimizeOutcome:
    """Powell's conjugate-direction method (derivative-free), directions = one pixel per axis.

    Hyper-parameters: none.  ``learning_rate`` is always None (powell has none).
    """
    recorder = _Recorder("powell", objective, x0, iterations, tolerance, callback, True)
    n = np.size(x0)
    return _minimize(
        "powell",
        recorder,
        "Powell",
        x0,
        # ftol tiny: the step test (in pixels) decides, not a relative cost change, whose
        # meaning differs from metric to metric.  xtol sets the line searches' relative
        # accuracy (0.1 of the step): finer costs ~50 % more evaluations for the same result.
        options={"xtol": 1e-3, "ftol": 1e-12, "maxiter": iterations + 1, "direc": np.eye(n)},
    )


def run_nelder_mead(
    objective: Objective,
    x0,
    *,
    callback=None,
    learning_rate: float,
    iterations: int,
    tolerance: float,
) -> OptimizeOutcome:
    """The Nelder-Mead simplex (derivative-free).

    ``learning_rate`` is the size of the starting simplex in pixels (default 2); the run
    converges when every vertex is within ``tolerance`` pixels of the best one and a restart
    from there with a fresh simplex (up to :data:`NELDER_MEAD_RESTARTS`) no longer moves.
    """
    recorder = _Recorder("nelder-mead", objective, x0, iterations, tolerance, callback, False)
    x = np.array(x0, dtype=float)
    size = float(learning_rate)
    if size > recorder.limit:
        # Every vertex but the start is off the image; the simplex can only halve its way
        # back, which more iterations would not cure.
        recorder.advice = (
            f"the starting simplex (the learning rate, {size:g} px) is larger than the image "
            f"({recorder.limit:.3g} px): try a few pixels (the default is "
            f"{REGISTRY['nelder-mead'].default_learning_rate:g})"
        )
    for restart in range(NELDER_MEAD_RESTARTS + 1):
        outcome = _minimize(
            "nelder-mead",
            recorder,
            "Nelder-Mead",
            x,
            restart=restart > 0,
            options={
                "initial_simplex": np.vstack([x, x + size * np.eye(x.size)]),
                "xatol": tolerance,
                "fatol": math.inf,  # the simplex size alone decides (pixels, metric-free)
                "maxiter": iterations + 1,
                "maxfev": 50 * iterations * max(1, x.size),
            },
        )
        moved = distance(outcome.x, x)
        if not outcome.converged or (restart > 0 and moved < 10 * tolerance):
            break
        # A simplex can collapse before it reaches the minimum (a known failure of the
        # method): start again from where it stopped with a fresh, smaller simplex.
        x, size = outcome.x, max(size / 4, 20 * tolerance)
    if restart > 0 and outcome.converged:
        outcome.message = f"{outcome.message} after {restart} restart(s)"
    return outcome


def run_lbfgs(
    objective: Objective,
    x0,
    *,
    callback=None,
    learning_rate=None,
    iterations: int,
    tolerance: float,
    step: float,
) -> OptimizeOutcome:
    """L-BFGS-B (quasi-Newton) with the analytic gradient, or central finite differences.

    Hyper-parameter ``step``: the finite-difference step in pixels (default
    :data:`FINITE_DIFFERENCE_STEP`), used only for metrics without an analytic gradient.
    ``learning_rate`` is always None (lbfgs has none).
    """
    recorder = _Recorder("lbfgs", objective, x0, iterations, tolerance, callback, True)
    x0 = np.array(x0, dtype=float)
    if objective.has_gradient:
        fun = recorder.cost_gradient
    else:

        def fun(x):
            x = np.asarray(x, dtype=float)
            value = recorder.cost(x)
            gradient = np.empty_like(x)
            for k in range(x.size):  # 2 n costs: n is at most 6
                offset = np.zeros_like(x)
                offset[k] = step
                gradient[k] = (recorder.cost(x + offset) - recorder.cost(x - offset)) / (2 * step)
            return value, gradient

    curvature = float(objective.curvature)
    # The gradient of a cost near its minimum is about curvature x distance: stop when that
    # distance is a small fraction of the tolerance.
    gtol = 0.1 * tolerance * curvature if math.isfinite(curvature) and curvature > 0 else 1e-10
    return _minimize(
        "lbfgs",
        recorder,
        "L-BFGS-B",
        x0,
        fun=fun,
        jac=True,
        options={"maxiter": iterations + 1, "ftol": 1e-15, "gtol": gtol, "maxcor": 10},
    )
