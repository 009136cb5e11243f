"""Optimiser contract on known quadratic objectives: convergence, divergence, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regcli.errors import InputError
from regcli.optimizers import DEFAULT_TOLERANCE, OPTIMIZERS, OptimizeOutcome

#: The step rules: the optimisers that take a learning rate and need the gradient.
STEP_RULES = [
    name for name, opt in OPTIMIZERS.items() if opt.default_learning_rate and opt.needs_gradient
]

#: lm stops at LM_TOLERANCE (0.01 px) by default; these tests ask it for the precision of the
#: other optimisers.
FINE = DEFAULT_TOLERANCE


class Quadratic:
    """``cost(x) = 0.5 (x - a)^T H (x - a)`` with curvature 1 along the first axis."""

    def __init__(self, minimum, hessian):
        self.minimum = np.asarray(minimum, dtype=float)
        self.hessian = np.asarray(hessian, dtype=float)
        self.curvature = 1.0
        self.max_displacement = 1000.0
        self.evaluations = 0

    def cost(self, x):
        self.evaluations += 1
        d = np.asarray(x) - self.minimum
        return float(0.5 * d @ self.hessian @ d)

    def cost_gradient(self, x):
        d = np.asarray(x) - self.minimum
        return self.cost(x), self.hessian @ d

    def gauss_newton(self, x):
        cost, gradient = self.cost_gradient(x)
        return cost, gradient, self.hessian

    def grid_aligned(self, x):
        return False


def ill_posed_start():
    # Mildly anisotropic (as angle vs shift in a registration), minimum 5 px away.
    return Quadratic([3.0, -4.0, 1.0], np.diag([1.0, 0.8, 0.5])), np.zeros(3)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_finds_the_minimum_of_a_quadratic(name):
    objective, x0 = ill_posed_start()
    out = OPTIMIZERS[name].run(objective, x0, learning_rate=None, iterations=None)
    assert isinstance(out, OptimizeOutcome)
    assert out.converged, out.message
    np.testing.assert_allclose(out.x, objective.minimum, atol=0.02)
    assert out.iterations == len(out.costs) <= OPTIMIZERS[name].default_iterations
    assert out.costs[-1] < out.costs[0]


def test_levenberg_marquardt_solves_a_quadratic_in_one_step():
    objective, x0 = ill_posed_start()
    out = OPTIMIZERS["lm"].run(objective, x0, learning_rate=None, iterations=20, tolerance=FINE)
    assert out.converged
    assert out.iterations <= 3
    np.testing.assert_allclose(out.x, objective.minimum, atol=1e-3)


class WithoutHessian:
    """Only cost, cost_gradient and curvature: what a generic objective offers."""

    def __init__(self, inner):
        self.cost, self.cost_gradient = inner.cost, inner.cost_gradient
        self.curvature, self.max_displacement = inner.curvature, inner.max_displacement


def test_lm_falls_back_to_bfgs_without_gauss_newton():
    objective, x0 = ill_posed_start()
    out = OPTIMIZERS["lm"].run(
        WithoutHessian(objective), x0, learning_rate=None, iterations=50, tolerance=FINE
    )
    assert out.converged
    np.testing.assert_allclose(out.x, objective.minimum, atol=1e-3)
    assert out.iterations < 30


@pytest.mark.parametrize("name", ["momentum", "nag"])
def test_momentum_methods_without_momentum_are_gradient_descent(name):
    runs = []
    for opt, hyper in ((name, {"gamma": 0.0}), ("gd", {})):
        objective, x0 = ill_posed_start()
        runs.append(OPTIMIZERS[opt].run(objective, x0, learning_rate=0.3, iterations=40, **hyper))
    np.testing.assert_array_equal(runs[0].costs, runs[1].costs)


def test_gd_with_unit_rate_is_a_newton_step_on_unit_curvature():
    objective = Quadratic([2.0, -1.0], np.eye(2))
    out = OPTIMIZERS["gd"].run(objective, np.zeros(2), learning_rate=1.0, iterations=10)
    assert out.costs[1] == 0.0
    assert out.converged


@pytest.mark.parametrize("name", STEP_RULES)
def test_huge_learning_rate_stops_with_a_message_not_an_exception(name):
    objective, x0 = ill_posed_start()
    out = OPTIMIZERS[name].run(objective, x0, learning_rate=1e4, iterations=300)
    assert not out.converged
    assert out.diverged
    assert "smaller learning_rate" in out.message and "10000" in out.message
    assert all(math.isfinite(c) for c in out.costs)


@pytest.mark.parametrize("name", STEP_RULES)
def test_nan_cost_is_divergence(name):
    objective, x0 = ill_posed_start()
    objective.cost = lambda x: math.nan  # type: ignore[method-assign]
    out = OPTIMIZERS[name].run(objective, x0, learning_rate=None, iterations=10)
    assert not out.converged and out.diverged
    assert "NaN" in out.message


def test_iteration_limit_is_not_convergence():
    objective, x0 = ill_posed_start()
    out = OPTIMIZERS["gd"].run(objective, x0, learning_rate=0.01, iterations=5)
    assert out.iterations == 5
    assert not out.converged and not out.diverged
    assert "iteration limit" in out.message


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_callback_once_per_recorded_cost_and_deterministic(name):
    calls = []
    results = []
    for _ in range(2):
        calls.clear()
        objective, x0 = ill_posed_start()
        out = OPTIMIZERS[name].run(
            objective,
            x0,
            learning_rate=None,
            iterations=None,
            callback=lambda i, c, x: calls.append((i, c, x.copy())),
        )
        results.append(out)
        assert [c[1] for c in calls] == out.costs
        assert [c[0] for c in calls] == list(range(len(out.costs)))
    np.testing.assert_array_equal(results[0].x, results[1].x)
    assert results[0].costs == results[1].costs


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"learning_rate": math.nan}, "learning_rate"),
        ({"iterations": 0}, "iterations"),
        ({"iterations": 2.5}, "iterations"),
        ({"gamma": 1.5}, "gamma"),
    ],
)
def test_bad_options_raise_input_error(kwargs, match):
    objective, x0 = ill_posed_start()
    options = {"learning_rate": None, "iterations": None, **kwargs}
    with pytest.raises(InputError, match=f"^{match}: ") as caught:
        OPTIMIZERS["momentum"].run(objective, x0, **options)
    assert caught.value.param == match


def test_unknown_hyperparameter_is_refused():
    objective, x0 = ill_posed_start()
    with pytest.raises(InputError, match=r"gd.*beta"):
        OPTIMIZERS["gd"].run(objective, x0, learning_rate=None, iterations=5, beta=0.9)


def test_registry_entries_are_consistent():
    for name, opt in OPTIMIZERS.items():
        assert opt.name == name
        assert opt.default_iterations >= 1
        assert opt.default_learning_rate is None or opt.default_learning_rate > 0
    for name in STEP_RULES:
        assert OPTIMIZERS[name].default_learning_rate is not None
    assert OPTIMIZERS["momentum"].hyperparameters == ("gamma",)
    assert OPTIMIZERS["rmsprop"].hyperparameters == ("beta",)
    assert set(OPTIMIZERS["adam"].hyperparameters) == {"gamma", "beta"}


def test_lm_steps_off_a_narrow_spike_at_the_start():
    # MI-like costs have a spike at grid-aligned starts: short steps look uphill.
    objective = Quadratic([3.0], np.eye(1))
    smooth = objective.cost_gradient

    def spiky(x):
        cost, gradient = smooth(x)
        return cost + (0.0 if abs(x[0]) < 1e-9 else 0.5), gradient

    objective.cost_gradient = spiky  # type: ignore[method-assign]
    objective.grid_aligned = lambda x: x[0] == 0
    # At the spike the model is poor (its step is far too short); elsewhere it is exact.
    objective.gauss_newton = lambda x: (*spiky(x), np.eye(1) * (50.0 if x[0] == 0 else 1.0))
    out = OPTIMIZERS["lm"].run(
        objective, np.zeros(1), learning_rate=None, iterations=50, tolerance=FINE
    )
    np.testing.assert_allclose(out.x, [3.0], atol=1e-3)
    assert out.converged


class Rippled:
    """A flat-bottomed cost whose gradient is noise, with a narrow dip 0.5 px away: the ripple
    linear interpolation puts into the cost of noisy images."""

    curvature = 1.0
    max_displacement = 1000.0

    def __init__(self, aligned: bool):
        self.aligned = aligned

    def cost_gradient(self, x):
        cost = 0.5 * x[0] ** 2 - 0.5 * math.exp(-((x[0] + 0.5) ** 2) / 0.001)
        return cost, np.array([0.01])  # a misleading gradient: the step goes uphill

    def cost(self, x):
        return self.cost_gradient(x)[0]

    def gauss_newton(self, x):
        return (*self.cost_gradient(x), np.eye(1))

    def grid_aligned(self, x):
        return self.aligned


@pytest.mark.parametrize("aligned", [False, True])
def test_lm_probes_long_steps_only_at_grid_aligned_starts(aligned):
    out = OPTIMIZERS["lm"].run(Rippled(aligned), np.zeros(1), learning_rate=None, iterations=5)
    assert out.converged
    if aligned:
        assert out.x[0] == pytest.approx(-0.5, abs=0.05)
    else:
        assert out.x[0] == 0.0


def test_grid_aligned_start_detection():
    shape = (40, 50)
    objective = level_objective(shape)
    tf = objective.transform
    assert objective.grid_aligned(tf.identity() * objective.scales)
    quarter = tf.params_from_matrix(np.array([[0, -1, 60.0], [1, 0, 3.0], [0, 0, 1]]))
    assert objective.grid_aligned(quarter * objective.scales)
    assert not objective.grid_aligned(np.array([0.0, 0.5, 0.0]))  # half-pixel shift
    assert not objective.grid_aligned(np.array([0.01, 0.0, 0.0]))  # small turn


def level_objective(shape):
    from regcli.metrics import METRICS
    from regcli.registration import LevelObjective
    from regcli.transforms import make_transform

    image = np.random.default_rng(0).random(shape).astype(np.float32)
    return LevelObjective(image, image, make_transform("rigid", shape=shape), METRICS["ssd"])


class FlatFarAway:
    """Pseudo-Huber cost, nearly linear far from its minimum at 10, with a Gauss-Newton-type
    model 100 times too curved: the situation of NMI far from its optimum."""

    curvature = 1.0
    max_displacement = 1000.0

    def cost_gradient(self, x):
        d = x[0] - 10.0
        root = math.sqrt(1.0 + d * d)
        return root - 1.0, np.array([d / root])

    def cost(self, x):
        return self.cost_gradient(x)[0]

    def gauss_newton(self, x):
        return (*self.cost_gradient(x), np.eye(1) * 100.0)

    def grid_aligned(self, x):
        return False


def test_lm_lengthens_its_steps_when_the_model_is_too_curved():
    out = OPTIMIZERS["lm"].run(
        FlatFarAway(), np.zeros(1), learning_rate=None, iterations=60, tolerance=FINE
    )
    assert out.converged, out.message
    assert out.x[0] == pytest.approx(10.0, abs=0.01)
