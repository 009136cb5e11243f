"""Cost profiles: the minimum sits at the true value; smoothing removes local minima."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regcli.errors import InputError
from regcli.io import read_image
from regcli.profile import PROFILE_PARAMS, cost_profile, default_values, local_minima
from regcli.resample import warp
from regcli.transforms import make_transform


@pytest.fixture(scope="module")
def pair4(samples, truth):
    """BrainMRI_1 and BrainMRI_4 (rigid, -18 deg) with the true matrix and parameters."""
    entry = truth["pairs"]["BrainMRI_4.png"]
    fixed = read_image(samples / entry["fixed"])
    moving = read_image(samples / "BrainMRI_4.png")
    return fixed, moving, np.array(entry["matrix"]), entry["params"]


@pytest.mark.parametrize(
    ("param", "span", "step"), [("angle", 12.0, 0.5), ("tx", 6.0, 0.25), ("ty", 6.0, 0.25)]
)
def test_minimum_at_the_true_value(pair4, param, span, step):
    fixed, moving, matrix, params = pair4
    key = "angle_deg" if param == "angle" else param
    true = params[key]
    shown = true + np.arange(-span, span + step / 2, step)
    values = np.radians(shown) if param == "angle" else shown
    profile = cost_profile(fixed, moving, param=param, values=values, at=matrix, sigma=2.0)
    out = profile.to_dict()
    assert out["minimum"] == pytest.approx(true, abs=step / 2 + 1e-9)
    assert out["smoothed_minimum"] == pytest.approx(true, abs=step / 2 + 1e-9)
    assert out["unit"] == PROFILE_PARAMS[param][0]
    assert out["values"][0] == pytest.approx(shown[0])
    # Far from the truth the cost is clearly higher: a real minimum, not a flat curve.
    costs = np.array(out["costs"])
    assert costs[0] > costs.min() * 1.2 and costs[-1] > costs.min() * 1.2


def test_a_sparse_mask_leaves_a_profile_with_its_minimum(pair4):
    """Every 4th pixel of every 4th row in use (6 % of the image): a cost needs a tenth of
    the pixels *in use* to overlap, not of the image (then every cost was undefined)."""
    fixed, moving, matrix, params = pair4
    mask = np.zeros(fixed.shape, bool)
    mask[::4, ::4] = True
    values = np.arange(-4.0, 4.1, 0.5) + params["tx"]
    profile = cost_profile(fixed, moving, param="tx", values=values, at=matrix, fixed_mask=mask)
    assert np.isfinite(profile.costs).all()
    assert profile.minimum() == pytest.approx(params["tx"], abs=0.25 + 1e-9)


def test_minimum_moves_with_the_alignment(pair4):
    """The test above can fail: held at the identity, the angle profile's minimum is elsewhere."""
    fixed, moving, _, params = pair4
    values = np.radians(params["angle_deg"] + np.arange(-12.0, 12.1, 0.5))
    profile = cost_profile(fixed, moving, param="angle", values=values)
    assert abs(math.degrees(profile.minimum()) - params["angle_deg"]) > 1.0


def test_smoothing_removes_local_minima():
    """A fine texture gives a local minimum every period; smoothed images give one minimum."""
    y, x = np.mgrid[0:96, 0:96].astype(float)
    blob = np.exp(-((x - 48) ** 2 + (y - 48) ** 2) / (2 * 18.0**2))
    image = blob * (1.0 + 0.8 * np.cos(2 * np.pi * x / 6.0))
    moving = warp(
        image, make_transform("translation", shape=image.shape).matrix([-5.0, 0.0]), order=3
    )
    values = np.arange(-20.0, 20.01, 0.5)
    profile = cost_profile(image, moving, param="tx", values=values, sigma=3.0)
    raw = local_minima(profile.values, profile.costs)
    smooth = local_minima(profile.values, profile.smoothed_costs)
    assert len(raw) >= 4
    assert smooth == [pytest.approx(5.0)]
    assert profile.minimum() == pytest.approx(5.0)


def test_local_minima_counts_plateaus_once():
    values = np.arange(9.0)
    costs = [3, 1, 2, 0, 0, 0, 2, 5, 4]
    assert local_minima(values, costs) == [1.0, 4.0]
    assert local_minima(values, [1, 2, 3]) == []


def test_default_values_centred():
    values = default_values("angle", math.radians(10.0))
    shown = np.degrees(values)
    assert shown[0] == pytest.approx(-20.0) and shown[-1] == pytest.approx(40.0)
    assert np.diff(shown) == pytest.approx(np.full(shown.size - 1, 0.5))
    assert default_values("tx", 3.0)[[0, -1]] == pytest.approx([-17.0, 23.0])


def test_default_range_and_scale(blobs):
    truth = make_transform("similarity", shape=blobs.shape).matrix([0, 1.1, 0, 0])
    turned = warp(blobs, np.linalg.inv(truth))
    profile = cost_profile(blobs, turned, param="scale", transform="similarity")
    assert profile.values.size == 81
    assert profile.minimum() == pytest.approx(1.1, abs=0.005)


def test_param_must_belong_to_the_transform(blobs):
    with pytest.raises(InputError, match="param: transform 'rigid' has parameters"):
        cost_profile(blobs, blobs, param="scale", transform="rigid")
    with pytest.raises(InputError, match="param: transform 'rotation'"):
        cost_profile(blobs, blobs, param="tx", transform="rotation")


def test_bad_inputs_named(blobs):
    with pytest.raises(InputError, match="values: expected at least 2") as info:
        cost_profile(blobs, blobs, param="tx", values=[1.0])
    assert info.value.param == "values"
    with pytest.raises(InputError, match="sigma: expected a finite number > 0") as info:
        cost_profile(blobs, blobs, param="tx", values=[0.0, 1.0], sigma=-1.0)
    assert info.value.param == "sigma"
    with pytest.raises(InputError, match="moving_mask: the mask has shape") as info:
        cost_profile(blobs, blobs[:50], param="tx", moving_mask=np.ones(blobs.shape))
    assert info.value.param == "moving_mask"
    with pytest.raises(InputError, match="bins: metric 'ssd'"):
        cost_profile(blobs, blobs, param="tx", values=[0.0, 1.0], bins=16)


def test_plot_marks_minimum_and_truth(pair4, tmp_path):
    from regcli.plots import (
        PROFILE_MINIMUM_GID,
        PROFILE_TRUTH_GID,
        cost_profile_figure,
        plot_cost_profile,
    )

    fixed, moving, matrix, params = pair4
    values = np.radians(params["angle_deg"] + np.arange(-10.0, 10.1, 1.0))
    profile = cost_profile(
        fixed,
        moving,
        param="angle",
        values=values,
        at=matrix,
        sigma=2.0,
        true_value=math.radians(params["angle_deg"]),
    )
    fig = cost_profile_figure(profile)
    assert len(fig.axes) == 2  # raw and smoothed
    for ax in fig.axes:
        marks = [a for a in ax.get_lines() if a.get_gid() == PROFILE_MINIMUM_GID]
        assert len(marks) == 1
        assert marks[0].get_xdata()[0] == pytest.approx(params["angle_deg"], abs=0.5)
        truth_lines = [a for a in ax.get_lines() if a.get_gid() == PROFILE_TRUTH_GID]
        assert truth_lines[0].get_xdata()[0] == pytest.approx(params["angle_deg"])
    path = plot_cost_profile(profile, tmp_path / "profile.png")
    assert path.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["profile.png"]


def test_a_large_float_offset_gives_the_same_profile(pair4):
    """cost_profile scales intensities as register does (float64 first): + 1e10 is no change."""
    fixed, moving, matrix, _ = pair4
    fixed, moving = fixed.astype(np.float64), moving.astype(np.float64)
    values = np.linspace(-3.0, 3.0, 13)
    plain = cost_profile(fixed, moving, param="tx", values=values, at=matrix, sigma=2.0)
    shifted = cost_profile(
        fixed + 1e10, moving + 1e10, param="tx", values=values, at=matrix, sigma=2.0
    )
    np.testing.assert_array_equal(shifted.costs, plain.costs)
    np.testing.assert_array_equal(shifted.smoothed_costs, plain.smoothed_costs)
    assert np.all(np.isfinite(plain.costs))


def test_bins_are_checked_as_register_checks_them(blobs):
    with pytest.raises(InputError, match="bins") as excinfo:
        cost_profile(blobs, blobs, param="tx", values=[0.0, 1.0], metric="mi", bins=3)
    assert excinfo.value.param == "bins"
