"""Optimiser contract on known quadratic objectives: convergence, divergence, determinism;
the registry records, their option checks, and the package's import structure."""

from __future__ import annotations

import ast
import dataclasses
import functools
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import regcli.optimizers
from regcli.errors import InputError
from regcli.optimizers import (
    DEFAULT_TOLERANCE,
    LM_TOLERANCE,
    OPTIMIZERS,
    GaussNewtonObjective,
    Objective,
    OptimizeOutcome,
    Optimizer,
    get_optimizer,
)

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
        self.has_gradient = True
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


class FlatModel(Quadratic):
    """A quadratic whose Gauss-Newton model is ``factor`` times its true Hessian."""

    def __init__(self, minimum, hessian, factor):
        super().__init__(minimum, hessian)
        self.factor = factor

    def gauss_newton(self, x):
        cost, gradient = self.cost_gradient(x)
        return cost, gradient, self.factor * self.hessian


def test_lm_corrects_a_model_flatter_than_the_cost():
    """A model Hessian 20 % below the cost's curvature (as central differences of a noisy
    image give): after one step lm measures the curvature along it and steps by the cost's."""
    minimum = [0.3, -0.2, 0.1]
    evaluations = {}
    for factor in (1.0, 0.8):
        objective = FlatModel(minimum, np.diag([1.0, 0.8, 0.5]), factor)
        out = OPTIMIZERS["lm"].run(objective, np.zeros(3), learning_rate=None, iterations=20)
        assert out.converged, out.message
        np.testing.assert_allclose(out.x, minimum, atol=2e-3)
        evaluations[factor] = objective.evaluations
    # (without the correction every step overshot by a quarter: 4 evaluations)
    assert evaluations[0.8] <= evaluations[1.0] + 1 <= 3


def test_lm_never_lengthens_steps_past_the_model():
    """A model steeper than the cost (MI far from the optimum) is the model scale's business:
    the curvature correction only ever shortens steps."""
    from regcli.optimizers._lm import MAX_CURVATURE_BOOST, _curvature_boost

    step = np.array([1.0, 0.0])
    model = np.eye(2)
    assert _curvature_boost(step, 0.5 * step, model) == 1.0
    assert _curvature_boost(step, 1.25 * step, model) == pytest.approx(1.25)
    assert _curvature_boost(step, 10.0 * step, model) == MAX_CURVATURE_BOOST
    assert _curvature_boost(step, np.array([np.nan, 0.0]), model) == 1.0


class WithoutHessian:
    """Only cost, cost_gradient and curvature: what a generic objective offers."""

    def __init__(self, inner):
        self.cost, self.cost_gradient = inner.cost, inner.cost_gradient
        self.curvature, self.max_displacement = inner.curvature, inner.max_displacement
        self.has_gradient = True


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
    assert "smaller learning rate" in out.message and "10000" in out.message
    assert all(math.isfinite(c) for c in out.costs)


@pytest.mark.parametrize("name", STEP_RULES)
def test_an_absurd_learning_rate_diverges_quietly_and_points_to_the_default(name):
    # The parameters reach ~1e308: |x - x0| overflowed in numpy's norm, whose
    # RuntimeWarning leaked onto the terminal; the advice was a tenth of the absurd rate.
    objective, x0 = ill_posed_start()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = OPTIMIZERS[name].run(objective, x0, learning_rate=1e308, iterations=300)
    assert out.diverged and not out.converged
    default = OPTIMIZERS[name].default_learning_rate
    assert f"try a smaller learning rate (the default is {default:g})" in out.message
    assert "1e+307" not in out.message


def test_nelder_mead_with_a_simplex_larger_than_the_image_says_so():
    objective, x0 = ill_posed_start()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = OPTIMIZERS["nelder-mead"].run(objective, x0, learning_rate=1e300, iterations=50)
    assert not out.converged
    assert "raise the iteration limit" not in out.message  # more iterations would not help
    assert "the starting simplex (the learning rate, 1e+300 px) is larger than the image" in (
        out.message
    )
    assert "the default is 2" in out.message


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
    has_gradient = True

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
    else:  # no probe: at most lm's last, unevaluated Gauss-Newton step (below 0.01 px)
        assert abs(out.x[0]) < 0.01


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
    has_gradient = True

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


def test_lm_needs_the_whole_gauss_newton_protocol():
    # gauss_newton without grid_aligned is not a GaussNewtonObjective: lm runs BFGS on it.
    objective, x0 = ill_posed_start()
    calls = []

    class HalfGaussNewton(WithoutHessian):
        def gauss_newton(self, x):
            calls.append(x)
            return objective.gauss_newton(x)

    half = HalfGaussNewton(objective)
    assert isinstance(half, Objective) and not isinstance(half, GaussNewtonObjective)
    out = OPTIMIZERS["lm"].run(half, x0, tolerance=FINE)
    assert out.converged and calls == []
    assert isinstance(objective, GaussNewtonObjective)


# --------------------------------------------------------------------------- protocols


def test_objective_protocols_are_structural():
    objective, _ = ill_posed_start()
    assert isinstance(objective, GaussNewtonObjective)
    assert isinstance(WithoutHessian(objective), Objective)
    assert not isinstance(WithoutHessian(objective), GaussNewtonObjective)

    class NoCurvature:
        max_displacement = 1.0
        has_gradient = True

        def cost(self, x):
            return 0.0

        def cost_gradient(self, x):
            return 0.0, np.zeros_like(x)

    assert not isinstance(NoCurvature(), Objective)


def test_protocol_check_does_not_evaluate_properties():
    # LevelObjective measures its curvature on first use (as costly as an evaluation): asking
    # whether it is a GaussNewtonObjective must not measure it.
    class Lazy(Quadratic):
        @functools.cached_property
        def curvature(self):
            raise AssertionError("curvature evaluated")

    lazy = Lazy.__new__(Lazy)
    lazy.max_displacement = 1.0
    lazy.has_gradient = True
    assert isinstance(lazy, GaussNewtonObjective)
    objective = level_objective((40, 50))
    assert isinstance(objective, GaussNewtonObjective)
    assert "curvature" not in vars(objective)


# --------------------------------------------------------------------------- registry


def test_registry_order_and_records():
    assert list(OPTIMIZERS) == [
        *["gd", "momentum", "nag", "adagrad", "rmsprop", "adam"],
        *["lm", "powell", "nelder-mead", "lbfgs"],
    ]
    assert STEP_RULES == ["gd", "momentum", "nag", "adagrad", "rmsprop", "adam"]
    for name, opt in OPTIMIZERS.items():
        assert set(opt.defaults) == set(opt.hyperparameters), name
        assert opt.default_tolerance >= 0
        assert get_optimizer(name) is opt
    assert OPTIMIZERS["lm"].default_tolerance == LM_TOLERANCE
    assert {o.default_tolerance for n, o in OPTIMIZERS.items() if n != "lm"} == {DEFAULT_TOLERANCE}


def test_unknown_optimizer():
    with pytest.raises(InputError, match=r"^optimizer: unknown optimizer 'sgd'; choose one of gd,"):
        get_optimizer("sgd")
    with pytest.raises(InputError) as caught:
        get_optimizer(None)
    assert caught.value.param == "optimizer"


def test_records_are_built_with_keywords_only():
    with pytest.raises(TypeError):
        Optimizer("x", "x", lambda *a, **k: None, False, None, 1)  # type: ignore[misc]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_run_options_fill_in_the_defaults(name):
    opt = OPTIMIZERS[name]
    expected = {
        "learning_rate": opt.default_learning_rate,
        "iterations": opt.default_iterations,
        "tolerance": opt.default_tolerance,
        **opt.defaults,
    }
    assert opt.run_options() == expected
    none_given = {key: None for key in expected}
    assert opt.run_options(**none_given) == expected
    # Whatever applies is taken as given (in the form the runners use).
    given = {"iterations": np.int64(7), "tolerance": 0, **dict.fromkeys(opt.defaults, 0.25)}
    if opt.default_learning_rate is not None:
        given["learning_rate"] = np.float32(0.5)
    options = opt.run_options(**given)
    assert options == {**expected, **given}
    assert type(options["iterations"]) is int and type(options["tolerance"]) is float


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_accepts_a_zero_tolerance(name):
    objective, x0 = ill_posed_start()
    out = OPTIMIZERS[name].run(objective, x0, iterations=3, tolerance=0)
    assert isinstance(out, OptimizeOutcome) and out.iterations <= 3


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_run_without_options_is_run_with_the_defaults(name):
    runs = []
    for options in ({}, OPTIMIZERS[name].run_options()):
        objective, x0 = ill_posed_start()
        runs.append(OPTIMIZERS[name].run(objective, x0, **options))
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    assert runs[0].costs == runs[1].costs and runs[0].message == runs[1].message


BAD_VALUES = {
    "learning_rate": [0, 0.0, -1.0, math.nan, math.inf, "0.1", True, [0.1]],
    "iterations": [0, -3, 2.5, math.nan, math.inf, "5", True],
    "tolerance": [-1e-9, -1, math.nan, math.inf, "0.1", False],
    "gamma": [-0.1, 1, 1.5, math.nan, "0.5", True],
    "beta": [-0.1, 1.0, 2, math.nan, "0.5"],
    "step": [0, -0.05, math.nan, math.inf, "0.05"],
}


@pytest.mark.parametrize(
    ("name", "option", "value"),
    [
        (name, option, value)
        for name, opt in OPTIMIZERS.items()
        for option, values in BAD_VALUES.items()
        if option in ("iterations", "tolerance", *opt.hyperparameters)
        or (option == "learning_rate" and opt.default_learning_rate is not None)
        for value in values
    ],
)
def test_run_options_refuse_bad_values(name, option, value):
    with pytest.raises(InputError, match=f"^{option}: expected ") as caught:
        OPTIMIZERS[name].run_options(**{option: value})
    assert caught.value.param == option


@pytest.mark.parametrize(
    ("name", "option"),
    [
        (name, option)
        for name, opt in OPTIMIZERS.items()
        for option in ("learning_rate", "gamma", "beta", "step", "epsilon")
        if option not in opt.hyperparameters
        and not (option == "learning_rate" and opt.default_learning_rate is not None)
    ],
)
def test_run_options_refuse_options_that_do_not_apply(name, option):
    with pytest.raises(InputError, match=f"^{option}: optimizer {name!r} ") as caught:
        OPTIMIZERS[name].run_options(**{option: 0.5})
    assert caught.value.param == option
    takers = [
        n
        for n, o in OPTIMIZERS.items()
        if option in o.hyperparameters
        or (option == "learning_rate" and o.default_learning_rate is not None)
    ]
    if takers:
        assert str(caught.value).endswith(f"; leave it out or choose one of {', '.join(takers)}")


def test_option_messages_name_the_optimizers_that_take_it():
    with pytest.raises(InputError) as caught:
        OPTIMIZERS["lm"].run_options(learning_rate=0.1)
    assert str(caught.value) == (
        "learning_rate: optimizer 'lm' has no learning rate; leave it out or choose one of "
        "gd, momentum, nag, adagrad, rmsprop, adam, nelder-mead"
    )
    with pytest.raises(InputError) as caught:
        OPTIMIZERS["gd"].run_options(gamma=0.5)
    assert str(caught.value) == (
        "gamma: optimizer 'gd' does not take gamma; leave it out or choose one of "
        "momentum, nag, adam"
    )


def test_run_hands_the_checked_options_to_the_implementation():
    seen = []

    def implementation(objective, x0, *, callback=None, **options):
        seen.append((callback, options))
        return OptimizeOutcome(np.asarray(x0, dtype=float))

    opt = Optimizer(
        name="probe",
        label="records its options",
        run=implementation,
        needs_gradient=False,
        default_learning_rate=0.5,
        default_iterations=3,
        hyperparameters=("gamma",),
        defaults={"gamma": 0.25},
    )
    opt.run(None, np.zeros(2))
    opt.run(None, np.zeros(2), callback=print, iterations=9.0, gamma=0.0)
    assert seen == [
        (
            None,
            {"learning_rate": 0.5, "iterations": 3, "tolerance": DEFAULT_TOLERANCE, "gamma": 0.25},
        ),
        (
            print,
            {"learning_rate": 0.5, "iterations": 9, "tolerance": DEFAULT_TOLERANCE, "gamma": 0.0},
        ),
    ]
    with pytest.raises(InputError, match=r"^iterations: "):
        opt.run(None, np.zeros(2), iterations=0)
    assert len(seen) == 2  # the implementation never sees a bad option
    copy = dataclasses.replace(opt, label="a copy")
    assert copy.run.implementation is implementation  # not wrapped twice


# --------------------------------------------------------------------------- step rules


def test_a_step_rule_without_step_cannot_be_made():
    from regcli.optimizers._step_rules import _StepRule

    class NoStep(_StepRule):
        pass

    class Halving(_StepRule):
        def step(self, g):
            return -0.5 * g

    with pytest.raises(TypeError, match="abstract"):
        NoStep(2, 0.1)
    assert Halving(2, 0.1).step(np.ones(2)).tolist() == [-0.5, -0.5]


# --------------------------------------------------------------------------- import structure

PACKAGE_DIR = Path(regcli.optimizers.__file__).parent
#: The package's private modules by dotted name.
PRIVATE_MODULES = {
    f"regcli.optimizers.{path.stem}": path
    for path in sorted(PACKAGE_DIR.glob("_*.py"))
    if path.stem != "__init__"
}


def imported_names(path: Path) -> set[str]:
    """Every dotted name a file imports, anywhere in it (function bodies too), made absolute."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to regcli.optimizers
                parent = "regcli.optimizers".rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_private_modules_are_the_expected_ones():
    assert set(PRIVATE_MODULES) == {
        "regcli.optimizers._base",
        "regcli.optimizers._lm",
        "regcli.optimizers._scipy",
        "regcli.optimizers._step_rules",
    }


@pytest.mark.parametrize("module", sorted(PRIVATE_MODULES))
def test_private_modules_import_only_base(module):
    # No module imports the package (whose __init__ imports every module) or a sibling other
    # than _base, not even inside a function: no import cycle.
    package = {"regcli.optimizers", *PRIVATE_MODULES}
    inside = imported_names(PRIVATE_MODULES[module]) & package
    allowed = set() if module.endswith("._base") else {"regcli.optimizers._base"}
    assert inside <= allowed, inside - allowed


def test_base_is_a_leaf():
    names = imported_names(PRIVATE_MODULES["regcli.optimizers._base"])
    ours = {name for name in names if name.split(".")[0] == "regcli"}
    assert all(name.startswith(("regcli.errors", "regcli._validate")) for name in ours), ours
    others = {n.split(".")[0] for n in names} - {"regcli", "numpy", "__future__"}
    assert others <= set(sys.stdlib_module_names)


@pytest.mark.parametrize("module", sorted(PRIVATE_MODULES))
def test_each_private_module_imports_without_the_package(module):
    # A bare regcli.optimizers (its __init__ not run): a module that needed the package or a
    # sibling other than _base would fail to import or load that sibling.
    code = (
        "import importlib, sys, types\n"
        "import regcli\n"
        "package = types.ModuleType('regcli.optimizers')\n"
        f"package.__path__ = [{str(PACKAGE_DIR)!r}]\n"
        "sys.modules['regcli.optimizers'] = package\n"
        f"importlib.import_module({module!r})\n"
        "print(sorted(m for m in sys.modules if m.startswith(('regcli.optimizers.', 'scipy.opt'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    expected = sorted({"regcli.optimizers._base", module})
    assert out.stdout.strip() == str(expected)
