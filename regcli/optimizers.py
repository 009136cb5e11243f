"""Optimisers in one contract, and the ``OPTIMIZERS`` registry.

An optimiser minimises an *objective* over a parameter vector ``x``.  The registration engine
hands it objectives in **scaled** parameters (``x = params * transform.scales(shape)``): a unit
change of any component moves the pixels by about one pixel (of the current pyramid level), so
one learning rate and one tolerance fit translations, angles and scales alike.

The objective provides

* ``cost(x) -> float`` and ``cost_gradient(x) -> (float, ndarray)`` (the same function);
* ``curvature`` (float): the cost's second derivative for a one-pixel shift, measured once per
  pyramid level (see :mod:`regcli.registration`).  The step rules divide the gradient by it, so
  the *normalised gradient* ``g / curvature`` is in pixels: near the optimum of a quadratic cost
  it is the distance to the optimum;
* optionally ``gauss_newton(x) -> (cost, gradient, hessian)``: a Gauss-Newton-type Hessian
  (exact Gauss-Newton for SSD, a scaled one for the other metrics), used by ``lm``.

What ``learning_rate`` (``--lr``) means
---------------------------------------
* ``gd``: step = ``lr * g / curvature`` pixels; ``lr = 1`` is a Newton step for a translation
  on a quadratic cost (``lr >= 2`` oscillates or diverges).
* ``momentum`` and ``nag``: the same normalised step fed into a velocity that keeps the fraction
  ``gamma`` of the previous one (heavy ball; ``nag`` takes the gradient at the look-ahead point,
  Sutskever et al. 2013).
* ``adagrad``, ``rmsprop``, ``adam``: ``lr`` is the largest step in pixels per iteration and per
  component (the gradient is divided by its running RMS).  Once the normalised gradient falls
  below ``epsilon`` (0.1 px by default) they turn into gradient descent with rate
  ``lr / epsilon``, which is what lets them settle instead of oscillating by ``lr`` forever.
  ``beta`` is the decay of the squared-gradient average (rmsprop, adam's ``beta2``); ``gamma``
  is adam's first-moment decay (``beta1``).
* ``lm`` (the fast default) has no learning rate: Levenberg-Marquardt, i.e. Gauss-Newton steps
  with a damping that grows when a step raises the cost and shrinks when it lowers it, on the
  objective's ``gauss_newton`` Hessian; a step is accepted only if it lowers the cost.  It
  usually needs 2-10 iterations per level.  On objectives without ``gauss_newton`` it runs BFGS
  with a backtracking line search.  ``lm`` stops when its step is below ``tolerance`` or when
  no damping lowers the cost (:func:`regcli.register` runs it with :data:`LM_TOLERANCE`,
  0.01 px, unless told otherwise).

Every optimiser stops when its step stays below ``tolerance`` pixels for a few iterations or
the cost stops changing (``converged = True``), when it reaches ``iterations``
(``converged = False``), or when it diverges: NaN or infinite cost or gradient, a cost far
above the starting one, or parameters that left the image (``converged = False`` with a
message suggesting a smaller learning rate).  Nothing is random: the same input gives the same
output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from regcli import scipy_optimizers
from regcli.errors import InputError

__all__ = ["OPTIMIZERS", "OptimizeOutcome", "Optimizer", "get_optimizer"]

#: Default stopping tolerance: the step, in pixels of the current pyramid level.
DEFAULT_TOLERANCE = 1e-3
#: ``lm``'s stopping step (pixels of the current level) in :func:`regcli.register` when none
#: is given.  Every pyramid level starts within a few hundredths of a pixel of its optimum
#: (the coarser level found it), below a hundredth of a pixel the interpolation ripple of
#: noisy images decides more than the images do (the benchmark's errors are 0.005-0.02 px),
#: and each extra step costs a full-size evaluation: 4 -> 2 at the finest level.
LM_TOLERANCE = 1e-2
#: Consecutive small steps (or flat costs) needed to stop.
PATIENCE = 3
#: A cost above ``initial + DIVERGENCE_FACTOR * max(|initial|, curvature)`` means divergence.
DIVERGENCE_FACTOR = 10.0
#: ``lm`` relaxes its model Hessian down to this fraction when steps keep beating the model.
MIN_MODEL_SCALE = 1e-3
#: Shortest Gauss-Newton step (pixels) from a grid-aligned start that ``lm`` still probes
#: along (whatever the stopping tolerance): there the cusp of the cost shortens the step.
PROBE_MIN_STEP = 1e-3
#: Step lengths (pixels) ``lm`` probes along its direction when no damped step lowers the cost.
PROBE_LENGTHS = (0.25, 0.5, 1.0)
#: Normalised-gradient size (pixels) below which the adaptive step rules act like plain GD.
DEFAULT_EPSILON = 0.1


@dataclass
class OptimizeOutcome:
    """What an optimiser returns.

    Attributes
    ----------
    x : ndarray
        Best parameters found (scaled).
    costs : list of float
        The cost at the current parameters, one per iteration.
    iterations : int
        Iterations done (``len(costs)``).
    converged : bool
        True when a stopping tolerance was met; False at the iteration limit or on divergence.
    message : str
        Why it stopped, for people.
    diverged : bool
        True when it stopped because the run blew up (NaN, exploding cost, parameters off the
        image).
    """

    x: np.ndarray
    costs: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    message: str = ""
    diverged: bool = False


@dataclass(frozen=True)
class Optimizer:
    """A registered optimiser.

    Attributes
    ----------
    name : str
        Registry key and CLI choice (``--opt``).
    label : str
        One line for help texts and plot legends.
    run : callable
        ``run(objective, x0, *, learning_rate, iterations, callback=None, **hyper)
        -> OptimizeOutcome``.
    needs_gradient : bool
        True if ``run`` calls ``objective.cost_gradient``.
    default_learning_rate : float or None
        ``None`` for optimisers without a learning rate.
    default_iterations : int
        Default iteration limit per pyramid level.
    hyperparameters : tuple of str
        Extra keyword options ``run`` accepts (``"gamma"``, ``"beta"``); ``tolerance`` is
        accepted by every optimiser.
    defaults : dict
        Default values of the hyperparameters.
    """

    name: str
    label: str
    run: Callable[..., OptimizeOutcome]
    needs_gradient: bool
    default_learning_rate: float | None
    default_iterations: int
    hyperparameters: tuple[str, ...] = ()
    defaults: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def _curvature(objective) -> float:
    value = float(getattr(objective, "curvature", 1.0) or 1.0)
    return value if math.isfinite(value) and value > 0 else 1.0


def _limit(objective, x0: np.ndarray) -> float:
    """How far (scaled units ~ pixels) the parameters may wander before we call it divergence."""
    return float(getattr(objective, "max_displacement", 1e4))


def _diverged_message(name: str, learning_rate, reason: str) -> str:
    if learning_rate is None:
        return f"{name} diverged ({reason})"
    return (
        f"{name} diverged ({reason}) with learning rate {learning_rate:g}; "
        f"try a smaller --lr (e.g. {learning_rate / 10:g})"
    )


def _check_run_options(learning_rate, iterations, tolerance, *, needs_lr: bool):
    if needs_lr and not (
        isinstance(learning_rate, (int, float, np.floating))
        and math.isfinite(learning_rate)
        and learning_rate > 0
    ):
        raise InputError(f"learning rate (--lr): expected a number > 0, got {learning_rate!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
        raise InputError(f"iterations (--iters): expected an integer >= 1, got {iterations!r}")
    if iterations < 1:
        raise InputError(f"iterations (--iters): expected an integer >= 1, got {iterations}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise InputError(f"tolerance: expected a number >= 0, got {tolerance!r}")


def _check_fraction(name: str, value) -> float:
    if not (isinstance(value, (int, float, np.floating)) and 0 <= value < 1):
        raise InputError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- step rules


class _StepRule:
    """State and update of one step rule; ``step(g)`` returns the parameter change."""

    def __init__(self, n: int, learning_rate: float, **hyper):
        self.lr = learning_rate
        self.n = n

    def step(self, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _GradientDescent(_StepRule):
    def step(self, g):
        return -self.lr * g


class _Momentum(_StepRule):
    def __init__(self, n, learning_rate, *, gamma):
        super().__init__(n, learning_rate)
        self.gamma = gamma
        self.velocity = np.zeros(n)

    def step(self, g):
        self.velocity = self.gamma * self.velocity - self.lr * g
        return self.velocity


class _Nesterov(_Momentum):
    # Sutskever et al. (2013) form: keeping the look-ahead point as the iterate, the update
    # v <- gamma v - lr g(x_ahead);  x_ahead <- x_ahead + gamma v_new - lr g(x_ahead)
    # is Nesterov's method with the gradient evaluated at the look-ahead point.
    def step(self, g):
        self.velocity = self.gamma * self.velocity - self.lr * g
        return self.gamma * self.velocity - self.lr * g


class _Adagrad(_StepRule):
    def __init__(self, n, learning_rate, *, epsilon):
        super().__init__(n, learning_rate)
        self.epsilon = epsilon
        self.sum_squares = np.zeros(n)

    def step(self, g):
        self.sum_squares += g * g
        return -self.lr * g / (np.sqrt(self.sum_squares) + self.epsilon)


class _RMSprop(_StepRule):
    def __init__(self, n, learning_rate, *, beta, epsilon):
        super().__init__(n, learning_rate)
        self.beta = beta
        self.epsilon = epsilon
        self.mean_square = np.zeros(n)
        self.t = 0

    def step(self, g):
        self.t += 1
        self.mean_square = self.beta * self.mean_square + (1 - self.beta) * g * g
        # Bias correction (as in Adam) so the first steps are not inflated by the zero start.
        v = self.mean_square / (1 - self.beta**self.t)
        return -self.lr * g / (np.sqrt(v) + self.epsilon)


class _Adam(_StepRule):
    def __init__(self, n, learning_rate, *, gamma, beta, epsilon):
        super().__init__(n, learning_rate)
        self.beta1, self.beta2, self.epsilon = gamma, beta, epsilon
        self.m = np.zeros(n)
        self.v = np.zeros(n)
        self.t = 0

    def step(self, g):
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g * g
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return -self.lr * m_hat / (np.sqrt(v_hat) + self.epsilon)


def _step_rule_loop(
    name: str,
    rule: _StepRule,
    objective,
    x0,
    *,
    learning_rate: float,
    iterations: int,
    callback=None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> OptimizeOutcome:
    """The loop shared by every step rule: evaluate, record, step, test for stopping."""
    x = np.array(x0, dtype=float)
    curvature = _curvature(objective)
    limit = _limit(objective, x)
    costs: list[float] = []
    best_x, best_cost = x.copy(), math.inf
    small_steps = flat_costs = 0
    initial = None
    for iteration in range(iterations):
        cost, gradient = objective.cost_gradient(x)
        cost = float(cost)
        gradient = np.asarray(gradient, dtype=float)
        if not (math.isfinite(cost) and np.all(np.isfinite(gradient))):
            reason = "the cost or its gradient became NaN or infinite"
            if not math.isfinite(cost):
                reason = "the cost became NaN or infinite (no overlap left?)"
            return _diverged(name, learning_rate, reason, best_x, costs)
        if initial is None:
            initial = cost
        elif cost > initial + DIVERGENCE_FACTOR * max(abs(initial), curvature):
            costs.append(cost)
            _call(callback, iteration, cost, x)
            return _diverged(name, learning_rate, "the cost exploded", best_x, costs)
        costs.append(cost)
        _call(callback, iteration, cost, x)
        if cost < best_cost:
            best_x, best_cost = x.copy(), cost
        if len(costs) > 1 and abs(costs[-2] - cost) <= 1e-12 * max(abs(cost), curvature):
            flat_costs += 1
        else:
            flat_costs = 0
        if flat_costs >= PATIENCE:
            return OptimizeOutcome(x, costs, len(costs), True, f"{name}: the cost stopped changing")
        step = rule.step(gradient / curvature)
        x = x + step
        if not np.all(np.isfinite(x)) or np.linalg.norm(x - x0) > limit:
            return _diverged(name, learning_rate, "the parameters left the image", best_x, costs)
        small_steps = small_steps + 1 if np.linalg.norm(step) < tolerance else 0
        if small_steps >= PATIENCE:
            return OptimizeOutcome(
                x,
                costs,
                len(costs),
                True,
                f"{name}: converged (steps below {tolerance:g} px)",
            )
    return OptimizeOutcome(
        x,
        costs,
        len(costs),
        False,
        f"{name}: stopped at the iteration limit ({iterations}) before the steps fell below "
        f"{tolerance:g} px; raise --iters or adjust --lr",
    )


def _call(callback, iteration, cost, x):
    if callback is not None:
        callback(iteration, cost, np.array(x, dtype=float))


def _diverged(name, learning_rate, reason, best_x, costs) -> OptimizeOutcome:
    return OptimizeOutcome(
        np.array(best_x, dtype=float),
        costs,
        len(costs),
        False,
        _diverged_message(name, learning_rate, reason),
        diverged=True,
    )


def _make_step_rule_runner(name: str, factory, hyper_names: tuple[str, ...], defaults: dict):
    def run(
        objective,
        x0,
        *,
        learning_rate=None,
        iterations=None,
        callback=None,
        tolerance=None,
        **hyper,
    ) -> OptimizeOutcome:
        optimizer = OPTIMIZERS[name]
        lr = optimizer.default_learning_rate if learning_rate is None else learning_rate
        iters = optimizer.default_iterations if iterations is None else iterations
        tol = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
        _check_run_options(lr, iters, tol, needs_lr=True)
        unknown = set(hyper) - set(hyper_names)
        given = {k: v for k, v in hyper.items() if v is not None}
        if unknown & set(given):
            raise InputError(
                f"optimizer {name!r} does not take {', '.join(sorted(unknown & set(given)))}; "
                f"it takes {', '.join(hyper_names) or 'no extra options'}"
            )
        options = dict(defaults)
        options.update({k: v for k, v in given.items() if k in hyper_names})
        for key in ("gamma", "beta"):
            if key in options:
                options[key] = _check_fraction(key, options[key])
        rule = factory(len(np.atleast_1d(x0)), float(lr), **options)
        return _step_rule_loop(
            name,
            rule,
            objective,
            x0,
            learning_rate=float(lr),
            iterations=int(iters),
            callback=callback,
            tolerance=tol,
        )

    run.__name__ = f"run_{name}"
    run.__doc__ = f"Run the {name!r} step rule (see :mod:`regcli.optimizers`)."
    return run


# --------------------------------------------------------------------------- fast default


def _grid_aligned(objective, x) -> bool:
    """``objective.grid_aligned(x)`` if the objective can tell, else False."""
    test = getattr(objective, "grid_aligned", None)
    return bool(test(x)) if test is not None else False


def _solve_damped(hessian: np.ndarray, gradient: np.ndarray, damping: float) -> np.ndarray:
    diag = np.diag(hessian).copy()
    diag[diag <= 0] = max(float(np.max(diag)), 1e-12) * 1e-6
    try:
        return -np.linalg.solve(hessian + damping * np.diag(diag), gradient)
    except np.linalg.LinAlgError:
        return -gradient / diag


def run_lm(
    objective,
    x0,
    *,
    learning_rate=None,
    iterations=None,
    callback=None,
    tolerance=None,
) -> OptimizeOutcome:
    """Levenberg-Marquardt on ``objective.gauss_newton``; BFGS with line search without it.

    ``learning_rate`` is ignored (the damping adapts itself).
    """
    iters = OPTIMIZERS["lm"].default_iterations if iterations is None else iterations
    tol = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    _check_run_options(None, iters, tol, needs_lr=False)
    if hasattr(objective, "gauss_newton"):
        return _levenberg_marquardt(objective, x0, int(iters), callback, tol)
    return _bfgs(objective, x0, int(iters), callback, tol)


def _levenberg_marquardt(objective, x0, iterations, callback, tolerance) -> OptimizeOutcome:
    x = np.array(x0, dtype=float)
    limit = _limit(objective, x)
    cost, gradient, hessian = objective.gauss_newton(x)
    if not math.isfinite(cost):
        return _diverged("lm", None, "the cost is NaN or infinite at the start", x, [])
    damping = 1e-3
    # Multiplies the model Hessian.  Far from the optimum a similarity such as NMI is much
    # flatter than its Gauss-Newton-type model says, and undamped steps would crawl: when a
    # step lowers the cost by well over the model's prediction the model is relaxed (longer
    # steps next time); when the prediction is poor it is restored.
    model_scale = 1.0
    costs: list[float] = []
    for iteration in range(iterations):
        costs.append(float(cost))
        _call(callback, iteration, cost, x)
        accepted = False
        first_step = None
        start_damping = damping
        model = model_scale * hessian
        for _ in range(12):  # raise the damping until the cost goes down
            step = _solve_damped(model, gradient, damping)
            if first_step is None:
                first_step = step
            if np.linalg.norm(step) < tolerance:
                break
            trial = x + step
            if np.linalg.norm(trial - x0) > limit:
                damping = max(10.0 * damping, 1.0)
                continue
            t_cost, t_gradient, t_hessian = objective.gauss_newton(trial)
            if math.isfinite(t_cost) and t_cost <= cost:
                accepted = True
                break
            damping = max(10.0 * damping, 1.0)
        first_length = float(np.linalg.norm(first_step))
        if (
            not accepted
            and first_length >= min(tolerance, PROBE_MIN_STEP)
            and iteration == 0
            and _grid_aligned(objective, x)
        ):
            # At a grid-aligned start (the identity, say) interpolation is exact and the cost
            # has a cusp there (for MI any interpolation changes the histogram) which short
            # steps cannot leave: probe longer ones along the Gauss-Newton direction.  Only
            # there: elsewhere a long probe lands in the ripple that linear interpolation
            # puts into the cost of noisy images (a noisy 1024^2 pair ended 0.5 px off).
            for length in PROBE_LENGTHS:
                trial = x + first_step * (length / first_length)
                if np.linalg.norm(trial - x0) > limit:
                    break
                t_cost, t_gradient, t_hessian = objective.gauss_newton(trial)
                if math.isfinite(t_cost) and t_cost < cost:
                    accepted = True
                    step = trial - x
                    break
        if not accepted:
            reason = (
                f"step below {tolerance:g} px"
                if first_length < tolerance
                else "no step lowers the cost"
            )
            return OptimizeOutcome(x, costs, len(costs), True, f"lm: converged ({reason})")
        predicted = -float(gradient @ step + 0.5 * step @ model @ step)
        actual = cost - t_cost
        if predicted > 0 and actual > 1.5 * predicted:
            model_scale = max(model_scale * 0.5, MIN_MODEL_SCALE)
        elif predicted > 0 and actual < 0.5 * predicted:
            model_scale = min(model_scale * 2.0, 1.0)
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
        f"{tolerance:g} px; raise --iters",
    )


def _bfgs(objective, x0, iterations, callback, tolerance) -> OptimizeOutcome:
    """BFGS with an Armijo backtracking line search, started from ``I / curvature``."""
    x = np.array(x0, dtype=float)
    n = x.size
    limit = _limit(objective, x)
    inverse_hessian = np.eye(n) / _curvature(objective)
    cost, gradient = objective.cost_gradient(x)
    if not (math.isfinite(cost) and np.all(np.isfinite(gradient))):
        return _diverged("lm", None, "the cost is NaN or infinite at the start", x, [])
    costs: list[float] = []
    for iteration in range(iterations):
        costs.append(float(cost))
        _call(callback, iteration, cost, x)
        direction = -inverse_hessian @ gradient
        slope = float(gradient @ direction)
        if slope >= 0:  # not a descent direction: restart from the scaled identity
            inverse_hessian = np.eye(n) / _curvature(objective)
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
        f"{tolerance:g} px; raise --iters",
    )


# --------------------------------------------------------------------------- registry

_STEP_RULES = {
    # name: (label, factory, hyperparameters, defaults, learning rate, iterations)
    "gd": ("gradient descent", _GradientDescent, (), {}, 1.0, 300),
    "momentum": (
        "gradient descent with momentum",
        _Momentum,
        ("gamma",),
        {"gamma": 0.5},
        0.5,
        300,
    ),
    "nag": (
        "Nesterov accelerated gradient",
        _Nesterov,
        ("gamma",),
        {"gamma": 0.5},
        0.5,
        300,
    ),
    "adagrad": ("AdaGrad", _Adagrad, (), {"epsilon": DEFAULT_EPSILON}, 1.0, 300),
    "rmsprop": (
        "RMSprop",
        _RMSprop,
        ("beta",),
        {"beta": 0.9, "epsilon": DEFAULT_EPSILON},
        0.1,
        300,
    ),
    "adam": (
        "Adam",
        _Adam,
        ("gamma", "beta"),
        {"gamma": 0.9, "beta": 0.999, "epsilon": DEFAULT_EPSILON},
        0.1,
        300,
    ),
}

#: Optimisers by name.  Feeds the CLI choices (``--opt``) and the tests' parametrize.
OPTIMIZERS: dict[str, Optimizer] = {
    name: Optimizer(
        name=name,
        label=label,
        run=_make_step_rule_runner(name, factory, hyper, defaults),
        needs_gradient=True,
        default_learning_rate=lr,
        default_iterations=iters,
        hyperparameters=hyper,
        defaults={k: v for k, v in defaults.items() if k in hyper},
    )
    for name, (label, factory, hyper, defaults, lr, iters) in _STEP_RULES.items()
}
OPTIMIZERS["lm"] = Optimizer(
    name="lm",
    label="Levenberg-Marquardt (Gauss-Newton with adaptive damping): the fast default",
    run=run_lm,
    needs_gradient=True,
    default_learning_rate=None,
    default_iterations=100,
    hyperparameters=(),
)
OPTIMIZERS["powell"] = scipy_optimizers.entry("powell")
OPTIMIZERS["nelder-mead"] = scipy_optimizers.entry("nelder-mead")
OPTIMIZERS["lbfgs"] = scipy_optimizers.entry("lbfgs")

#: The optimiser ``register(optimizer=None)`` uses for metrics with an analytic gradient.
DEFAULT_GRADIENT_OPTIMIZER = "lm"


def get_optimizer(name: str) -> Optimizer:
    """The registered optimiser ``name``, or an :class:`InputError` listing the choices."""
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}"
        ) from None
