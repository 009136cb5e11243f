"""Fixed and moving images of different shapes: the search, the objective and the quality take
each image's shape from the image, and the result is on the fixed grid."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from bench import input_cases
from regcli.domain import Domain
from regcli.initialize import initial_matrix
from regcli.metrics import METRICS
from regcli.objective import LevelObjective
from regcli.quality import evaluate
from regcli.registration import register
from regcli.transforms import make_transform, mean_displacement

ACCURATE_PX = 0.1


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return data.camera()


@pytest.mark.parametrize("build", [input_cases.larger_view, input_cases.quarter_turn])
def test_pairs_of_two_shapes_register(camera, build):
    case = build(camera)
    assert case.fixed.shape != case.moving.shape
    result = register(case.fixed, case.moving)
    assert mean_displacement(result.matrix, case.truth, case.fixed.shape) < ACCURATE_PX
    assert result.trustworthy, result.problems()
    assert result.warped.shape == case.fixed.shape
    assert result.level_shapes[-1] == case.fixed.shape
    # The aligned image is the fixed view: where both show the scene, they agree.
    inside = np.abs(case.fixed - result.warped)[20:-20, 20:-20]
    assert np.median(inside) < 2.0


def test_the_search_alone_lands_near_the_answer(camera):
    case = input_cases.larger_view(camera)
    start = initial_matrix(case.fixed, case.moving, "rigid", "ssd")
    assert mean_displacement(start, case.truth, case.fixed.shape) < 2.0


def test_objective_of_two_shapes_has_its_minimum_at_the_truth(camera):
    case = input_cases.larger_view(camera)
    fixed = (case.fixed / 255.0).astype(np.float32)
    moving = (case.moving / 255.0).astype(np.float32)
    family = make_transform("rigid", shape=fixed.shape)
    objective = LevelObjective(fixed, moving, family, METRICS["ssd"])
    x = family.params_from_matrix(case.truth) * objective.scales
    best = objective.cost(x)
    for step in np.eye(3) * 0.5:  # half a pixel along each scaled parameter
        assert objective.cost(x + step) > best and objective.cost(x - step) > best
    # The gradient agrees with finite differences of the cost away from the minimum.
    x0 = x + np.array([0.7, -1.1, 0.9])
    _, gradient = objective.cost_gradient(x0)
    h = 1e-3
    numeric = [
        (objective.cost(x0 + h * e) - objective.cost(x0 - h * e)) / (2 * h) for e in np.eye(3)
    ]
    cosine = gradient @ numeric / (np.linalg.norm(gradient) * np.linalg.norm(numeric))
    assert cosine > 0.99
    # Its overlap is counted in the moving image's own rectangle (and the fixed image's), each
    # the default margin inside.
    from regcli.objective import MARGINS

    inside_moving = Domain(moving.shape).inside(case.truth, fixed.shape, margin=MARGINS[1])
    inside_fixed = Domain(fixed.shape).inside(np.eye(3), fixed.shape, margin=MARGINS[0])
    assert objective.overlap(x) == np.count_nonzero(inside_moving & inside_fixed)


def test_quality_of_two_shapes_tells_right_from_wrong(camera):
    case = input_cases.larger_view(camera)
    assert evaluate(case.fixed, case.moving, case.truth, transform="rigid").verdict == "ok"
    wrong = case.truth @ make_transform("translation", shape=(256, 256)).matrix([25.0, -30.0])
    assert evaluate(case.fixed, case.moving, wrong, transform="rigid").verdict == "suspect"


def test_a_moving_image_much_smaller_than_the_fixed_one(camera):
    """A 96^2 crop found in a 320^2 view: the pyramid stops where the smaller image does."""
    big = np.asarray(camera, float)[100:420, 80:400]
    small = big[150:246, 120:216].copy()
    truth = make_transform("translation", shape=big.shape).matrix([-120.0, -150.0])
    result = register(big, small, transform="translation")
    assert min(result.level_shapes[0]) >= 32  # the coarsest level still sees the small one
    region = np.zeros(big.shape, bool)
    region[152:244, 122:214] = True  # where the small image lies on the fixed grid (inside)
    assert np.allclose(result.matrix, truth, atol=0.05), result.matrix
    assert np.abs(result.warped - big)[region].max() < 1.0
    # 9 % of the fixed image is covered, but all of the moving one: not "too little overlap".
    assert result.trustworthy, result.problems()


def test_a_fixed_image_inside_a_larger_moving_one(camera):
    """The other way round, under rigid: the Fourier signatures of two views of different
    sizes are not trusted (their windows show different content); the whole circle is."""
    big = np.asarray(camera, float)[100:420, 80:400]
    small = big[150:246, 120:216].copy()
    result = register(small, big)
    truth = make_transform("translation", shape=small.shape).matrix([120.0, 150.0])
    assert mean_displacement(result.matrix, truth, small.shape) < ACCURATE_PX
    assert result.trustworthy, result.problems()


@pytest.mark.parametrize("shape", [(8, 512), (512, 8)])
@pytest.mark.parametrize("transform", ["rigid", "similarity", "affine"])
def test_very_thin_images_register(shape, transform):
    """An 8-pixel-thin image (the smallest side allowed) leaves one row or column on the
    search's coarse level: the angle signatures must not fail there."""
    from scipy import ndimage

    rows, cols = shape
    texture = ndimage.gaussian_filter(np.random.default_rng(3).random((rows + 4, cols + 4)), 1.5)
    fixed, moving = texture[2 : rows + 2, 2 : cols + 2], texture[1 : rows + 1, 1 : cols + 1]
    result = register(fixed, moving, transform=transform)
    truth = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])  # content 1 px up-left
    assert mean_displacement(result.matrix, truth, shape) < 0.05


@pytest.mark.parametrize("rows", [8, 12])
@pytest.mark.parametrize("transform", ["rigid", "similarity", "affine"])
def test_a_thin_strip_of_the_fixed_image_is_found_in_it(camera, rows, transform):
    """A moving strip 8-12 rows high onto a 256^2 image: on the search's 64 px level the
    strip is 2-3 rows (too few pixels: a finer level is searched), and the correlation's
    transforms are longer than the strip has rows plus the image's (empty shifts beyond
    the strip stay empty)."""
    fixed = np.asarray(camera, float)[::2, ::2]
    strip = fixed[100 : 100 + rows].copy()
    result = register(fixed, strip, transform=transform)
    truth = make_transform("translation", shape=fixed.shape).matrix([0.0, -100.0])
    assert mean_displacement(result.matrix, truth, fixed.shape) < ACCURATE_PX
