"""powell, nelder-mead and lbfgs: the optimiser contract, and registration with every metric."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from regcli.errors import InputError
from regcli.io import read_image
from regcli.metrics import METRICS
from regcli.optimizers import OPTIMIZERS, OptimizeOutcome
from regcli.registration import register
from regcli.resample import warp
from regcli.transforms import make_transform, mean_displacement

#: The scipy methods: the optimisers that do not need the gradient.
SCIPY_METHODS = [name for name, opt in OPTIMIZERS.items() if not opt.needs_gradient]
TARGET = np.array([3.0, -2.0, 5.0])


class Quadratic:
    """A tilted bowl with its minimum at TARGET; counts the calls of each kind."""

    curvature = 2.0
    max_displacement = 1e4

    def __init__(self, *, has_gradient=True):
        self.has_gradient = has_gradient
        self.cost_calls = 0
        self.gradient_calls = 0

    @staticmethod
    def _value(d):
        return float(d @ d + 0.5 * d[0] * d[1])

    def cost(self, x):
        self.cost_calls += 1
        return self._value(np.asarray(x) - TARGET)

    def cost_gradient(self, x):
        self.gradient_calls += 1
        d = np.asarray(x) - TARGET
        return self._value(d), 2 * d + 0.5 * np.array([d[1], d[0], 0.0])


def test_registered():
    assert SCIPY_METHODS == ["powell", "nelder-mead", "lbfgs"]
    for name in SCIPY_METHODS:
        optimizer = OPTIMIZERS[name]
        assert optimizer.name == name
        assert optimizer.needs_gradient is False
    assert OPTIMIZERS["nelder-mead"].default_learning_rate == 2.0
    assert OPTIMIZERS["powell"].default_learning_rate is None


@pytest.mark.parametrize("name", SCIPY_METHODS)
def test_minimises_a_bowl_and_records_each_iteration(name):
    seen = []
    objective = Quadratic()
    out = OPTIMIZERS[name].run(
        objective,
        np.zeros(3),
        learning_rate=None,
        iterations=None,
        callback=lambda i, c, x: seen.append((i, c, x)),
    )
    assert isinstance(out, OptimizeOutcome)
    assert out.converged, out.message
    np.testing.assert_allclose(out.x, TARGET, atol=2e-3)
    assert out.iterations == len(out.costs) == len(seen) >= 2
    assert [i for i, _, _ in seen] == list(range(len(seen)))
    assert out.costs[0] == pytest.approx(objective._value(-TARGET))
    assert np.all(np.diff(out.costs) <= 1e-12)  # the recorded point is the best so far
    assert out.costs[-1] == pytest.approx(0.0, abs=1e-5)


def test_lbfgs_uses_the_analytic_gradient_when_there_is_one():
    analytic = Quadratic(has_gradient=True)
    OPTIMIZERS["lbfgs"].run(analytic, np.zeros(3), learning_rate=None, iterations=None)
    assert analytic.gradient_calls > 0 and analytic.cost_calls == 0
    numeric = Quadratic(has_gradient=False)
    out = OPTIMIZERS["lbfgs"].run(numeric, np.zeros(3), learning_rate=None, iterations=None)
    assert numeric.gradient_calls == 0 and numeric.cost_calls > 0
    np.testing.assert_allclose(out.x, TARGET, atol=2e-3)


@pytest.mark.parametrize("name", SCIPY_METHODS)
def test_iteration_limit(name):
    out = OPTIMIZERS[name].run(Quadratic(), np.full(3, 40.0), learning_rate=None, iterations=2)
    assert not out.converged
    assert "iteration limit (2)" in out.message
    assert out.iterations == len(out.costs) == 2
    assert Quadratic().cost(out.x) < out.costs[-1]  # it moved on from the last recorded point


@pytest.mark.parametrize("name", SCIPY_METHODS)
def test_no_overlap_at_the_start_is_reported(name):
    class Nowhere(Quadratic):
        def cost(self, x):
            return math.inf

        def cost_gradient(self, x):
            return math.inf, np.zeros(3)

    out = OPTIMIZERS[name].run(Nowhere(), np.zeros(3), learning_rate=None, iterations=10)
    assert not out.converged and out.diverged
    assert "NaN or infinite" in out.message


@pytest.mark.parametrize("name", SCIPY_METHODS)
def test_infinite_cost_away_from_the_start_is_avoided(name):
    class Walled(Quadratic):
        def cost(self, x):
            return math.inf if x[0] > 1.0 else super().cost(x)

        def cost_gradient(self, x):
            return (math.inf, np.zeros(3)) if x[0] > 1.0 else super().cost_gradient(x)

    out = OPTIMIZERS[name].run(Walled(), np.zeros(3), learning_rate=None, iterations=None)
    assert np.all(np.isfinite(out.costs))
    assert out.x[0] <= 1.0


def test_bad_options_named():
    run = OPTIMIZERS["powell"].run
    with pytest.raises(InputError, match=r"^iterations: "):
        run(Quadratic(), np.zeros(3), learning_rate=None, iterations=0)
    with pytest.raises(InputError, match=r"^learning_rate: optimizer 'powell' has no"):
        run(Quadratic(), np.zeros(3), learning_rate=0.1, iterations=5)
    with pytest.raises(InputError, match=r"^gamma: optimizer 'powell' does not take gamma"):
        run(Quadratic(), np.zeros(3), learning_rate=None, iterations=5, gamma=0.5)
    with pytest.raises(InputError, match=r"^tolerance: "):
        run(Quadratic(), np.zeros(3), learning_rate=None, iterations=5, tolerance=-1)
    with pytest.raises(InputError, match=r"^learning_rate: expected a finite number > 0"):
        OPTIMIZERS["nelder-mead"].run(Quadratic(), np.zeros(3), learning_rate=-2, iterations=5)
    with pytest.raises(InputError, match=r"^step: "):
        OPTIMIZERS["lbfgs"].run(Quadratic(), np.zeros(3), learning_rate=None, iterations=5, step=0)


# --------------------------------------------------------------------------- registration


@pytest.fixture(scope="module")
def rigid_pair(samples):
    """BrainMRI_1 at 96 x 96 pixels (fast) and a copy turned by 6 degrees and shifted."""
    from skimage.transform import resize

    brain = read_image(samples / "BrainMRI_1.png").astype(np.float64)
    fixed = resize(brain, (96, 96), anti_aliasing=True)
    truth = make_transform("rigid", shape=fixed.shape).matrix([math.radians(6.0), 2.5, -1.5])
    return fixed, warp(fixed, np.linalg.inv(truth), order=3), truth


@pytest.mark.parametrize("name", SCIPY_METHODS)
@pytest.mark.parametrize("metric", list(METRICS))
def test_register_with_every_metric(rigid_pair, name, metric):
    fixed, moving, truth = rigid_pair
    result = register(fixed, moving, transform="rigid", metric=metric, optimizer=name)
    assert result.optimizer == name
    # The gradient term alone is not maximal exactly at the alignment (it rewards the stronger
    # of two edges), so it gets a looser bound; every other metric is exact.
    bound = 0.3 if metric == "gradient" else 0.1
    assert mean_displacement(result.matrix, truth, fixed.shape) < bound, result.message
    assert len(result.cost_history) == result.iterations
    # Per level the recorded cost never goes up (each record is the method's best point).
    bounds = [*result.level_starts, len(result.cost_history)]
    for begin, end in itertools.pairwise(bounds):
        assert np.all(np.diff(result.cost_history[begin:end]) <= 1e-9)


@pytest.mark.parametrize("transform", ["translation", "similarity", "affine"])
def test_powell_with_other_transforms(rigid_pair, transform):
    fixed = rigid_pair[0]
    family = make_transform(transform, shape=fixed.shape)
    params = {
        "translation": [3.0, -2.0],
        "similarity": [0.08, 1.05, 2.0, -1.0],
        "affine": [1.03, 0.04, -0.03, 0.98, 2.0, -1.0],
    }[transform]
    truth = family.matrix(params)
    moving = warp(fixed, np.linalg.inv(truth), order=3)
    result = register(fixed, moving, transform=transform, metric="ssd", optimizer="powell")
    assert mean_displacement(result.matrix, truth, fixed.shape) < 0.1, result.message
