"""Pixel spacing: rigid and similarity are rigid (similar) in physical units, the matrix stays
in pixels (``M_px = inv(S_m) @ M_phys @ S_f``), and ``params`` are physical."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import input_cases
from regcli import pyramid
from regcli.errors import InputError
from regcli.io import read_image
from regcli.registration import check_options, register
from regcli.resample import warp
from regcli.spacing import PhysicalTransform, check_spacings, level_transform, spacing_matrix
from regcli.transforms import TRANSFORMS, make_transform, mean_displacement

ACCURATE_PX = 0.1
SPACINGS = ((0.5, 1.5), (2.0, 0.75))  # (sy, sx) of fixed and moving: nothing square


@pytest.fixture(scope="module")
def brain(samples) -> np.ndarray:
    return read_image(samples / "BrainMRI_1.png")


def params_of(name: str) -> np.ndarray:
    return {
        "translation": np.array([3.0, -2.0]),
        "rotation": np.array([0.4]),
        "rigid": np.array([0.4, 3.0, -2.0]),
        "similarity": np.array([0.4, 1.2, 3.0, -2.0]),
        "affine": np.array([1.1, 0.2, -0.1, 0.9, 3.0, -2.0]),
    }[name]


# --------------------------------------------------------------------------- acceptance


def test_a_physically_rigid_turn_on_non_square_pixels(brain):
    case = input_cases.anisotropic_pixels(brain)
    plain = register(case.fixed, case.moving)
    plain_error = mean_displacement(plain.matrix, case.truth, case.fixed.shape)
    assert plain_error > 5.0 or plain.quality.verdict == "suspect"
    result = register(case.fixed, case.moving, **case.given)
    assert mean_displacement(result.matrix, case.truth, case.fixed.shape) < ACCURATE_PX
    assert result.trustworthy, result.problems()
    # The parameters are physical: the 20 degree turn and the (6, -4) unit shift.
    assert result.params["angle_deg"] == pytest.approx(20.0, abs=0.05)
    assert result.params["tx"] == pytest.approx(6.0, abs=0.1)
    assert result.params["ty"] == pytest.approx(-4.0, abs=0.1)
    assert result.warped.shape == case.fixed.shape
    data = result.to_dict()
    assert data["fixed_spacing"] == [1.0, 1.0] and data["moving_spacing"] == [2.0, 1.0]
    assert data["units"]["matrix"].startswith("pixels")
    assert data["units"]["params"].startswith("physical")


def test_similarity_on_non_square_pixels_finds_the_scale(brain):
    physical = make_transform("similarity", shape=brain.shape).matrix([0.3, 1.15, 4.0, -3.0])
    to_moving = spacing_matrix((2.0, 1.0))
    scene = np.asarray(brain, float)
    moving = warp(scene, np.linalg.inv(physical) @ to_moving, order=3, output_shape=(128, 256))
    truth = np.linalg.inv(to_moving) @ physical
    result = register(brain, moving, transform="similarity", moving_spacing=(2.0, 1.0))
    assert mean_displacement(result.matrix, truth, brain.shape) < 0.2
    assert result.params["scale"] == pytest.approx(1.15, abs=0.005)


def test_equal_square_pixels_change_the_units_not_the_answer(brain, samples):
    moving = read_image(samples / "BrainMRI_4.png")
    plain = register(brain, moving)
    spaced = register(brain, moving, fixed_spacing=(0.5, 0.5), moving_spacing=(0.5, 0.5))
    assert mean_displacement(plain.matrix, spaced.matrix, brain.shape) < 0.02
    assert spaced.params["tx"] == pytest.approx(plain.params["tx"] / 2, abs=0.01)
    assert spaced.params["angle_deg"] == pytest.approx(plain.params["angle_deg"], abs=0.01)


def test_unit_spacing_is_the_plain_engine(brain, samples):
    moving = read_image(samples / "BrainMRI_4.png")
    plain = register(brain, moving)
    unit = register(brain, moving, fixed_spacing=(1, 1), moving_spacing=(1.0, 1.0))
    assert np.array_equal(plain.matrix, unit.matrix) and unit.fixed_spacing is None


# --------------------------------------------------------------------------- the adapter


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_physical_transform_matrix_is_conjugated_by_the_spacings(name):
    family = make_transform(name, shape=(60, 80))
    spaced = PhysicalTransform.of(family, SPACINGS)
    p = params_of(name)
    fixed, moving = spacing_matrix(SPACINGS[0]), spacing_matrix(SPACINGS[1])
    expected = np.linalg.inv(moving) @ spaced.base.matrix(p) @ fixed
    assert np.allclose(spaced.matrix(p), expected)
    assert np.allclose(spaced.params_from_matrix(spaced.matrix(p)), p)
    # The centre is the same point: physical in the base, fixed pixels for the search.
    assert np.allclose(spaced.pixel_center, family.center)
    assert np.allclose(spaced.center, fixed[:2, :2] @ family.center)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_physical_transform_derivatives_match_finite_differences(name):
    spaced = PhysicalTransform.of(make_transform(name, shape=(60, 80)), SPACINGS)
    p = params_of(name)
    h = 1e-6
    numeric = np.array(
        [(spaced.matrix(p + h * e) - spaced.matrix(p - h * e)) / (2 * h) for e in np.eye(p.size)]
    )
    assert np.allclose(spaced.matrix_derivatives(p), numeric, atol=1e-6)
    points = np.array([[0.0, 0.0], [10.0, 7.0], [79.0, 59.0]])
    jac = spaced.jacobian(p, points)
    homo = np.column_stack([points, np.ones(3)])
    assert np.allclose(jac, np.einsum("kij,nj->nik", numeric[:, :2, :], homo), atol=1e-5)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_param_scales_are_pixels_per_unit(name):
    """Unit spacing reproduces the plain scales of the shift and angle parameters; each
    scale is the RMS displacement in pixels, so halving the pixel size doubles a shift's."""
    family = make_transform(name, shape=(60, 80))
    unit = PhysicalTransform.of(family, ((1.0, 1.0), (1.0, 1.0)))
    halved = PhysicalTransform.of(family, ((0.5, 0.5), (0.5, 0.5)))
    plain = family.param_scales((60, 80))
    for k, param in enumerate(family.param_names):
        if param in ("tx", "ty", "angle", "scale"):
            assert unit.param_scales((60, 80))[k] == pytest.approx(plain[k])
        if param in ("tx", "ty"):
            assert halved.param_scales((60, 80))[k] == pytest.approx(2.0 * plain[k])


def test_level_transform_agrees_with_the_pyramid():
    spaced = PhysicalTransform.of(make_transform("rigid", shape=(64, 96)), SPACINGS)
    p = params_of("rigid")
    for level in (1, 2, 3):
        on_level = level_transform(spaced, level).matrix(p)
        assert np.allclose(on_level, pyramid.to_level(spaced.matrix(p), level))
    plain = make_transform("rigid", shape=(64, 96))
    assert np.allclose(
        level_transform(plain, 2).matrix([p[0], p[1] / 4, p[2] / 4]),
        pyramid.to_level(plain.matrix(p), 2),
    )


def test_implausible_is_judged_in_physical_units(brain):
    """A pixel matrix stretched 6 times by the spacings is a plausible physical similarity."""
    from regcli.metrics import METRICS
    from regcli.objective import LevelObjective

    spaced = PhysicalTransform.of(make_transform("similarity", shape=(64, 64)), ((1, 6), (6, 1)))
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    objective = LevelObjective(image, image, spaced, METRICS["ssd"])
    assert not objective.refused(spaced.matrix(spaced.identity()))


# --------------------------------------------------------------------------- checks


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"fixed_spacing": (0, 1)}, "fixed_spacing"),
        ({"moving_spacing": (1, float("nan"))}, "moving_spacing"),
        ({"moving_spacing": "2,1"}, "moving_spacing"),
        ({"moving_spacing": (1, 2, 3)}, "moving_spacing"),
        ({"fixed_spacing": (1, 1), "moving_spacing": (1000, 1)}, "moving_spacing"),
    ],
)
def test_bad_spacings_name_their_argument(kwargs, param):
    with pytest.raises(InputError) as info:
        check_options(**kwargs)
    assert info.value.param == param
    assert str(info.value).startswith(f"{param}: ")


@pytest.mark.parametrize(
    ("fixed", "moving", "param", "says"),
    [
        ((1, 200), (1, 200), "fixed_spacing", "200 times longer one way than the other"),
        ((1, 1), (0.005, 1), "moving_spacing", "200 times longer one way than the other"),
        ((1, 1), (300, 300), "moving_spacing", "(1.0, 1.0) (fixed) and (300.0, 300.0) (moving)"),
    ],
)
def test_a_spacing_out_of_range_says_which_ratio(fixed, moving, param, says):
    """Pixels 200 times longer one way are said to be so (not that two equal spacings
    "differ"); two images' pixel sizes 300 times apart are said to differ."""
    with pytest.raises(InputError) as info:
        check_spacings(fixed, moving)
    assert info.value.param == param
    assert says in str(info.value)


def test_check_spacings_defaults_the_other_image_to_one():
    assert check_spacings(None, None) is None
    assert check_spacings((1, 1), None) is None
    assert check_spacings(None, (2, 1)) == ((1.0, 1.0), (2.0, 1.0))
    assert math.isclose(check_spacings((0.5, 0.25), None)[0][1], 0.25)


def test_the_coarse_pair_of_square_physical_pixels_sees_a_rigid_turn(brain):
    """On the search's pair a physically rigid matrix is rigid in coarse pixels, and
    CoarsePair.to_full takes it back to the pixel matrix exactly."""
    from regcli.search import physical_coarse_pair

    case = input_cases.anisotropic_pixels(brain)
    pair = physical_coarse_pair(case.fixed, case.moving, ((1.0, 1.0), (2.0, 1.0)), 64)
    assert pair.fixed.shape == (64, 64) and pair.moving.shape == (64, 64)
    coarse = pair.to_coarse(case.truth)
    linear = coarse[:2, :2]
    assert np.allclose(linear @ linear.T, np.eye(2), atol=1e-9)  # a rotation
    assert np.degrees(np.arctan2(linear[1, 0], linear[0, 0])) == pytest.approx(20.0)
    assert np.allclose(pair.to_full_matrix(coarse), case.truth)
