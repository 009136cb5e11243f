"""Convergence that means something: small steps are not enough (regcli.convergence)."""

from __future__ import annotations

import numpy as np
import pytest

from regcli.convergence import GRADIENT_LIMIT, check, distance_to_optimum
from regcli.io import read_image
from regcli.optimizers import OPTIMIZERS
from regcli.optimizers._base import OptimizeOutcome
from regcli.registration import register


class Bowl:
    """A quadratic objective, minimum at ``centre``, curvature ``curvature`` (1 unit = 1 px)."""

    has_gradient = True
    max_displacement = 1e6

    def __init__(self, centre, curvature=2.0):
        self.centre = np.asarray(centre, float)
        self.curvature = curvature

    def cost(self, x):
        d = np.asarray(x, float) - self.centre
        return 0.5 * self.curvature * float(d @ d)

    def cost_gradient(self, x):
        return self.cost(x), self.curvature * (np.asarray(x, float) - self.centre)


def test_the_distance_to_the_optimum_is_the_slope_over_the_curvature():
    assert distance_to_optimum(Bowl([3.0, 4.0]), [0.0, 0.0]) == pytest.approx(5.0)


def test_small_steps_far_from_the_optimum_are_not_convergence():
    bowl = Bowl([3.0, 4.0])
    outcome = OptimizeOutcome(np.zeros(2), [12.5, 12.5], 2, True, "gd: converged (steps ...)")
    converged, message = check(bowl, outcome, OPTIMIZERS["gd"], {"learning_rate": 1e-6})
    assert not converged
    assert "learning rate 1e-06 is too small" in message and "the default is 1" in message
    near = OptimizeOutcome(np.array([3.0, 4.0 - GRADIENT_LIMIT / 2]), [1.0, 0.0], 2, True, "ok")
    assert check(bowl, near, OPTIMIZERS["gd"], {"learning_rate": 1.0}) == (True, "ok")


def test_a_cost_that_rose_over_the_level_is_not_convergence():
    bowl = Bowl([0.0, 0.0])
    outcome = OptimizeOutcome(np.array([2.0, 0.0]), [1.0, 4.0], 2, True, "lm: converged")
    converged, message = check(bowl, outcome, OPTIMIZERS["lm"], {})
    assert not converged and "the cost rose" in message


def test_a_vanishing_learning_rate_is_reported_not_converged(samples):
    """It used to stop at once, "converged (steps below 0.001 px)", at the identity."""
    fixed = read_image(samples / "BrainMRI_1.png")
    moving = read_image(samples / "BrainMRI_4.png")
    result = register(fixed, moving, optimizer="gd", learning_rate=1e-6, init="none")
    assert not result.converged
    assert "too small" in result.message and "gradient is still large" in result.message
    assert result.quality.verdict == "suspect"


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nag", "adagrad", "rmsprop", "adam"])
def test_default_learning_rates_still_converge(samples, optimizer):
    fixed = read_image(samples / "BrainMRI_1.png")
    moving = read_image(samples / "BrainMRI_2.png")
    result = register(fixed, moving, transform="translation", optimizer=optimizer)
    assert result.converged, result.message
