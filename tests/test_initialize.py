"""The global initialisation: any rotation found at a coarse level, in the right family."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regcli.errors import InputError
from regcli.initialize import (
    INIT_METHODS,
    SEARCH_SIZE,
    default_method,
    initial_matrix,
    search_level,
)
from regcli.io import read_image
from regcli.resample import warp
from regcli.transforms import make_transform, mean_displacement


@pytest.fixture(scope="module")
def brain(samples) -> np.ndarray:
    return read_image(samples / "BrainMRI_1.png").astype(np.float64)


def moved(image, truth):
    """The moving image whose fixed -> moving matrix is ``truth``."""
    return warp(image, np.linalg.inv(truth), order=3)


def test_none_is_identity(brain):
    turned = moved(brain, make_transform("rigid", shape=brain.shape).matrix([2.0, 5, 5]))
    np.testing.assert_array_equal(initial_matrix(brain, turned, "rigid", "ssd", "none"), np.eye(3))


def test_default_methods():
    """Every transform starts from the global search unless asked otherwise."""
    for name in ("translation", "rotation", "rigid", "similarity", "affine"):
        assert default_method(name) == "search"
    assert default_method(make_transform("rigid", shape=(8, 8))) == "search"
    assert set(INIT_METHODS) == {"search", "moments", "none"}


@pytest.mark.parametrize("angle_deg", [5.0, 90.0, 135.0, 180.0, -150.0])
def test_search_finds_any_rotation(brain, angle_deg):
    transform = make_transform("rigid", shape=brain.shape)
    truth = transform.matrix([math.radians(angle_deg), 11.0, -7.0])
    found = initial_matrix(brain, moved(brain, truth), "rigid", "ssd")
    # Within the basin of the local optimiser: a few pixels at full resolution.
    assert mean_displacement(found, truth, brain.shape) < 4.0
    # ... and in the family: a rotation, no scale or shear.
    np.testing.assert_allclose(found[:2, :2] @ found[:2, :2].T, np.eye(2), atol=1e-9)


def test_search_fails_without_it(brain):
    """The test above can fail: the identity start is far off for a half turn."""
    transform = make_transform("rigid", shape=brain.shape)
    truth = transform.matrix([math.pi, 11.0, -7.0])
    assert mean_displacement(np.eye(3), truth, brain.shape) > 50


@pytest.mark.parametrize("metric", ["mi", "nmi"])
def test_search_multimodal(samples, truth, brain, metric):
    pair = truth["pairs"]["BrainT2_2.png"]  # T2-like, turned by 35 degrees
    moving = read_image(samples / "BrainT2_2.png")
    found = initial_matrix(brain, moving, "rigid", metric)
    assert mean_displacement(found, np.array(pair["matrix"]), brain.shape) < 5.0


def test_search_translation_only(samples, truth, brain):
    pair = truth["pairs"]["BrainMRI_2.png"]
    found = initial_matrix(
        brain, read_image(samples / "BrainMRI_2.png"), "translation", "ssd", "search"
    )
    np.testing.assert_array_equal(found[:2, :2], np.eye(2))
    assert mean_displacement(found, np.array(pair["matrix"]), brain.shape) < 1.5


def test_search_rotation_about_its_center(brain):
    transform = make_transform("rotation", shape=brain.shape)  # about the top-left pixel
    truth = transform.matrix([math.radians(-25.0)])
    found = initial_matrix(brain, moved(brain, truth), transform, "ssd", "search")
    np.testing.assert_allclose(found @ [0, 0, 1], [0, 0, 1], atol=1e-9)  # centre stays
    assert mean_displacement(found, truth, brain.shape) < 4.0


@pytest.mark.parametrize("metric", ["ssd", "nmi", "pluim"])
@pytest.mark.parametrize(("angle_deg", "scale"), [(120.0, 1.1), (-60.0, 0.85)])
def test_search_similarity_with_scale(brain, metric, angle_deg, scale):
    transform = make_transform("similarity", shape=brain.shape)
    truth = transform.matrix([math.radians(angle_deg), scale, 6.0, -4.0])
    found = initial_matrix(brain, moved(brain, truth), "similarity", metric)
    assert mean_displacement(found, truth, brain.shape) < 5.0


def test_moments_resolve_the_half_turn(brain):
    transform = make_transform("rigid", shape=brain.shape)
    truth = transform.matrix([math.radians(160.0), -9.0, 5.0])
    found = initial_matrix(brain, moved(brain, truth), "rigid", "ssd", "moments")
    assert mean_displacement(found, truth, brain.shape) < 6.0


def test_non_square_and_float32(brain):
    image = brain[20:230, :].astype(np.float32)  # 210 x 256
    transform = make_transform("rigid", shape=image.shape)
    truth = transform.matrix([math.radians(75.0), 4.0, 3.0])
    found = initial_matrix(image, moved(image, truth), "rigid", "ssd")
    assert mean_displacement(found, truth, image.shape) < 4.0


def test_bad_method_named(brain):
    with pytest.raises(InputError, match="init: unknown method 'everything'") as excinfo:
        initial_matrix(brain, brain, "rigid", "ssd", "everything")
    assert excinfo.value.param == "init"


def test_init_methods_are_records_with_their_start():
    for name, method in INIT_METHODS.items():
        assert method.name == name
        assert method.description and callable(method.start)
    assert INIT_METHODS["search"].coarsest_side == SEARCH_SIZE
    assert INIT_METHODS["moments"].coarsest_side is None
    assert INIT_METHODS["none"].coarsest_side is None


@pytest.mark.parametrize(
    ("shape", "level"),
    [((256, 256), 2), ((210, 256), 2), ((128, 90), 1), ((1024, 512), 4)],
)
def test_search_level_is_the_pyramid_level_of_the_search_size(shape, level):
    from regcli.pyramid import level_shape

    assert search_level(shape) == level
    assert max(level_shape(shape, level)) == SEARCH_SIZE


@pytest.mark.parametrize("shape", [(300, 300), (100, 100), (40, 30)])
def test_search_level_is_none_when_no_level_fits(shape):
    assert search_level(shape) is None


def test_bad_images_named(brain):
    with pytest.raises(InputError, match="moving"):
        initial_matrix(brain, np.zeros((3, 4, 5)), "rigid", "ssd")


# --------------------------------------------------------------------------- acceptance


@pytest.mark.parametrize("angle_deg", [4.0, 90.0, 135.0, 180.0])
def test_register_defaults_recover_any_rotation(brain, angle_deg):
    """Default flags (rigid, ssd, init search): any rotation about the centre plus a shift."""
    from regcli.registration import register

    transform = make_transform("rigid", shape=brain.shape)
    truth = transform.matrix([math.radians(angle_deg), 9.0, -6.0])
    result = register(brain, moved(brain, truth))
    assert result.converged, result.message
    assert mean_displacement(result.matrix, truth, brain.shape) <= 0.1


def test_register_without_init_fails_at_half_turn(brain):
    """The acceptance above can fail: the plain local optimisation stops in a wrong basin."""
    from regcli.registration import register

    transform = make_transform("rigid", shape=brain.shape)
    truth = transform.matrix([math.radians(135.0), 9.0, -6.0])
    result = register(brain, moved(brain, truth), init="none")
    assert mean_displacement(result.matrix, truth, brain.shape) > 10


@pytest.mark.parametrize("metric", ["mi", "nmi"])
@pytest.mark.parametrize("name", ["BrainT2_1.png", "BrainT2_2.png"])
def test_register_multimodal_pair(samples, truth, brain, metric, name):
    """T1-like fixed, T2-like moving (9 and 35 degrees): MI and NMI with the default flags."""
    from regcli.registration import register

    pair = truth["pairs"][name]
    fixed = read_image(samples / pair["fixed"])
    result = register(fixed, read_image(samples / name), metric=metric)
    assert result.converged, result.message
    assert mean_displacement(result.matrix, np.array(pair["matrix"]), fixed.shape) <= 0.1


@pytest.mark.parametrize("angle_deg", [7.0, 63.0, 128.0, -101.0])
def test_fourier_angle_estimate_within_a_degree(brain, angle_deg):
    """The rotation (modulo a half turn) from the Fourier-magnitude signatures, shift ignored."""
    from regcli.search import FOURIER_CONFIDENCE, coarse_pair, fourier_angles

    transform = make_transform("rigid", shape=brain.shape)
    truth = transform.matrix([math.radians(angle_deg), -8.0, 5.0])
    angles, agreements = fourier_angles(coarse_pair(brain, moved(brain, truth), 64), 2)
    assert agreements[0] >= FOURIER_CONFIDENCE
    gap = (math.degrees(angles[0]) - angle_deg) % 180.0
    assert min(gap, 180.0 - gap) < 1.0


def test_fourier_estimate_disagrees_on_unrelated_images(brain):
    """Low agreement (the full search then runs): a brain against a shuffled brain."""
    from regcli.search import FOURIER_CONFIDENCE, coarse_pair, fourier_angles

    rng = np.random.default_rng(2)
    shuffled = rng.permutation(brain.ravel()).reshape(brain.shape)
    _, agreements = fourier_angles(coarse_pair(brain, shuffled, 64), 2)
    assert agreements[0] < FOURIER_CONFIDENCE


def test_search_on_given_pyramid_level_agrees(brain):
    """``coarse=`` (register's pyramid level) gives the same start as reducing the images."""
    from regcli.pyramid import gaussian_pyramid

    transform = make_transform("rigid", shape=brain.shape)
    truth = transform.matrix([math.radians(140.0), 7.0, -9.0])
    moving = moved(brain, truth)
    levels = [gaussian_pyramid(image, 3)[2] for image in (brain, moving)]  # 64 px: factor 4
    given = initial_matrix(brain, moving, "rigid", "ssd", coarse=tuple(levels))
    assert mean_displacement(given, truth, brain.shape) < 4.0
    own = initial_matrix(brain, moving, "rigid", "ssd")
    assert mean_displacement(given, own, brain.shape) < 1.0
    # A pair of the wrong size is not used (the images are reduced as usual).
    wrong = initial_matrix(brain, moving, "rigid", "ssd", coarse=(brain[:10, :10], brain[:10, :10]))
    np.testing.assert_allclose(wrong, own)


@pytest.mark.parametrize("masked", [False, True])
def test_half_turn_twin_candidates_match_their_own_canvases(brain, masked):
    """A canvas turned by half a turn is its twin's canvas flipped: the shifts found for an
    angle and its twin together are those found for each alone."""
    from regcli.domain import Domain
    from regcli.search import _linear, coarse_pair, shift_candidates

    transform = make_transform("rigid", shape=brain.shape)
    moving = moved(brain, transform.matrix([math.radians(35.0), 6.0, -4.0]))
    domains = None
    if masked:
        mask = np.ones(brain.shape, bool)
        mask[:40, 150:] = False
        domains = (Domain.of(brain), Domain.of(moving, mask))
    pair = coarse_pair(brain, moving, 64, domains=domains)
    angle = math.radians(33.0)
    features = ("intensity", "gradient")
    together = shift_candidates(
        pair, np.array([_linear(angle), _linear(angle + math.pi)]), features
    )
    alone = [shift_candidates(pair, _linear(a)[None], features) for a in (angle, angle + math.pi)]
    # (ordered by feature, then canvas)
    np.testing.assert_allclose(together[[0, 2]], alone[0], atol=1e-9)
    np.testing.assert_allclose(together[[1, 3]], alone[1], atol=1e-9)


def test_a_chance_match_over_a_small_overlap_does_not_win_the_search():
    """The numbers of a moon pair: a stray shift over 12 % of the image scored a lower cost
    than the truth over 70 %; it is not compared (less than half the best-z overlap)."""
    from regcli.search import select

    costs, z, covered = [0.00166, 0.00220, 0.0031], [29.3, 49.8, 40.0], [0.12, 0.70, 0.66]
    assert select(costs, z) == 0  # by cost and z alone the stray shift wins
    assert select(costs, z, covered) == 1


def test_a_search_pass_with_no_usable_candidate_is_empty_not_an_error():
    """Masks that leave no overlap under any pose: every candidate is unusable (cost inf),
    and a pass of no candidates (a correlation surface without a usable peak) adds none."""
    from regcli.search import _circle, _Pool

    def unusable(matrices):
        n = len(matrices)
        return np.full(n, np.inf), np.full(n, -np.inf), np.zeros(n)

    pool = _Pool(unusable)
    assert pool.add(np.zeros((0, 3, 3))) is None
    _circle(pool, lambda angles: np.array([np.eye(3)] * len(angles)), math.radians(30.0), 3)
    assert len(pool.all()[0]) == 12  # the circle was scored; nothing to refine around
