"""The step rules: gd, momentum, nag, adagrad, rmsprop, adam.

Each rule turns the normalised gradient ``g / curvature`` (pixels, see
:class:`~regcli.optimizers._base.Objective`) into a parameter change; one loop,
:func:`run_step_rule`, evaluates, records, steps and tests for stopping for all of them.
"""

from __future__ import annotations

import abc
import functools
import math

import numpy as np

from regcli.optimizers._base import (
    Objective,
    OptimizeOutcome,
    curvature_of,
    distance,
    diverged_outcome,
    report,
)

__all__ = ["run_adagrad", "run_adam", "run_gd", "run_momentum", "run_nag", "run_rmsprop"]

#: Consecutive small steps (or flat costs) needed to stop.
PATIENCE = 3
#: A cost above ``initial + DIVERGENCE_FACTOR * max(|initial|, curvature)`` means divergence.
DIVERGENCE_FACTOR = 10.0
#: Normalised-gradient size (pixels) below which the adaptive step rules act like plain GD,
#: at rate ``lr / epsilon`` (1 is a Newton step; from 2 on each step overshoots the minimum
#: by more than it started from).  rmsprop and adam (default ``lr`` 0.1) use this one.
DEFAULT_EPSILON = 0.1
#: adagrad's: its default ``lr`` is 1, so its rate at the defaults is 1 too.  With 0.1 it was
#: 10, and at the first iterations of every finer pyramid level (the rule restarts with its
#: sum at zero and the gradient already small) the cost rose tenfold before the sum grew
#: enough to damp the steps.
ADAGRAD_EPSILON = 1.0


class _StepRule(abc.ABC):
    """State and update of one step rule.

    Parameters
    ----------
    n : int
        Number of parameters.
    learning_rate : float
        The rule's learning rate (see :mod:`regcli.optimizers` for what it means).
    """

    def __init__(self, n: int, learning_rate: float):
        self.lr = learning_rate
        self.n = n

    @abc.abstractmethod
    def step(self, g: np.ndarray) -> np.ndarray:
        """The parameter change for the normalised gradient ``g``.

        Parameters
        ----------
        g : (n,) ndarray
            The gradient divided by the objective's curvature (pixels).

        Returns
        -------
        (n,) ndarray
            The change of the parameters (pixels).
        """


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
    def __init__(self, n, learning_rate, *, epsilon=ADAGRAD_EPSILON):
        super().__init__(n, learning_rate)
        self.epsilon = epsilon
        self.sum_squares = np.zeros(n)

    def step(self, g):
        self.sum_squares += g * g
        return -self.lr * g / (np.sqrt(self.sum_squares) + self.epsilon)


class _RMSprop(_StepRule):
    def __init__(self, n, learning_rate, *, beta, epsilon=DEFAULT_EPSILON):
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
    def __init__(self, n, learning_rate, *, gamma, beta, epsilon=DEFAULT_EPSILON):
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


def run_step_rule(
    name: str,
    rule: type[_StepRule],
    objective: Objective,
    x0,
    *,
    callback=None,
    learning_rate: float,
    iterations: int,
    tolerance: float,
    **hyper,
) -> OptimizeOutcome:
    """Minimise ``objective`` from ``x0`` with the step rule ``rule`` (called ``name``).

    The loop shared by every step rule: evaluate, record, step, test for stopping.  The
    options are the checked ones of :meth:`regcli.optimizers.Optimizer.run_options`;
    ``hyper`` goes to the rule's constructor.
    """
    rule_state = rule(len(np.atleast_1d(x0)), learning_rate, **hyper)
    x = np.array(x0, dtype=float)
    curvature = curvature_of(objective)
    limit = float(objective.max_displacement)
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
            return diverged_outcome(name, learning_rate, reason, best_x, costs)
        if initial is None:
            initial = cost
        elif cost > initial + DIVERGENCE_FACTOR * max(abs(initial), curvature):
            costs.append(cost)
            report(callback, iteration, cost, x)
            return diverged_outcome(name, learning_rate, "the cost exploded", best_x, costs)
        costs.append(cost)
        report(callback, iteration, cost, x)
        if cost < best_cost:
            best_x, best_cost = x.copy(), cost
        if len(costs) > 1 and abs(costs[-2] - cost) <= 1e-12 * max(abs(cost), curvature):
            flat_costs += 1
        else:
            flat_costs = 0
        if flat_costs >= PATIENCE:
            return OptimizeOutcome(x, costs, len(costs), True, f"{name}: the cost stopped changing")
        with np.errstate(over="ignore", invalid="ignore"):
            # An absurd learning rate overflows here; the test below stops the run as
            # diverged, so numpy's warning would only leak onto the terminal.
            step = rule_state.step(gradient / curvature)
            x = x + step
        if not np.all(np.isfinite(x)) or distance(x, x0) > limit:
            reason = "the parameters left the image"
            return diverged_outcome(name, learning_rate, reason, best_x, costs)
        small_steps = small_steps + 1 if np.linalg.norm(step) < tolerance else 0
        if small_steps >= PATIENCE:
            message = f"{name}: converged (steps below {tolerance:g} px)"
            return OptimizeOutcome(x, costs, len(costs), True, message)
    return OptimizeOutcome(
        x,
        costs,
        len(costs),
        False,
        f"{name}: stopped at the iteration limit ({iterations}) before the steps fell below "
        f"{tolerance:g} px; raise the iteration limit or adjust the learning rate",
    )


run_gd = functools.partial(run_step_rule, "gd", _GradientDescent)
run_momentum = functools.partial(run_step_rule, "momentum", _Momentum)
run_nag = functools.partial(run_step_rule, "nag", _Nesterov)
run_adagrad = functools.partial(run_step_rule, "adagrad", _Adagrad)
run_rmsprop = functools.partial(run_step_rule, "rmsprop", _RMSprop)
run_adam = functools.partial(run_step_rule, "adam", _Adam)
