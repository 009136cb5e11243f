"""Masks and NaN pixels: every stage compares only the pixels in use.

The acceptance pairs (a quarter of the moving image overwritten by a static pattern, a
burned-in label, scikit-image's masked-registration examples) come out wrong or flagged
without a mask and within 0.1 px with one; a masked region full of garbage changes nothing;
NaN pixels count as masked.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from bench import input_cases
from regcli._validate import normalize_pair
from regcli.domain import Domain
from regcli.errors import InputError
from regcli.io import read_image
from regcli.masks import filled, masked_pyramid, valid_pixels
from regcli.pyramid import gaussian_pyramid
from regcli.quality import evaluate
from regcli.registration import check_options, register
from regcli.transforms import make_transform, mean_displacement

ACCURATE_PX = 0.1


@pytest.fixture(scope="module")
def brain(samples) -> np.ndarray:
    return read_image(samples / "BrainMRI_1.png")


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return data.camera()


def error(result, case) -> float:
    return mean_displacement(result.matrix, case.truth, case.fixed.shape)


def wrong_or_flagged(result, case) -> bool:
    return error(result, case) > 0.5 or result.quality.verdict == "suspect"


# --------------------------------------------------------------------------- acceptance


@pytest.mark.parametrize("build", [input_cases.static_pattern, input_cases.burned_in_label])
def test_masks_make_a_corrupted_pair_accurate(brain, build):
    case = build(brain)
    unmasked = register(case.fixed, case.moving)
    assert wrong_or_flagged(unmasked, case), (error(unmasked, case), unmasked.quality)
    masked = register(case.fixed, case.moving, **case.given)
    assert error(masked, case) < ACCURATE_PX
    assert masked.trustworthy, masked.problems()


@pytest.mark.parametrize("transform", ["translation", "rigid"])
def test_scikit_image_corrupted_pixels(camera, transform):
    """A quarter of the moving pixels set to 0 at random: masked, the shift is exact."""
    case = input_cases.corrupted_pixels(camera)
    result = register(case.fixed, case.moving, transform=transform, **case.given)
    assert error(result, case) < ACCURATE_PX
    assert result.trustworthy, result.problems()


def test_scikit_image_ellipses_of_interest(camera):
    case = input_cases.ellipses(camera)
    assert wrong_or_flagged(register(case.fixed, case.moving), case)
    for transform in ("translation", "rigid"):
        result = register(case.fixed, case.moving, transform=transform, **case.given)
        assert error(result, case) < ACCURATE_PX
        assert result.trustworthy, result.problems()


# --------------------------------------------------------------------------- every stage


def test_garbage_under_the_mask_changes_nothing(brain):
    """The search, the pyramid, the scaling, the cost and the quality see no masked pixel."""
    case = input_cases.static_pattern(brain)
    mask = case.given["moving_mask"]
    rng = np.random.default_rng(3)
    other = case.moving.copy()
    other[~mask] = rng.uniform(-1e4, 1e4, np.count_nonzero(~mask))  # even its range differs
    first = register(case.fixed, case.moving, moving_mask=mask)
    second = register(case.fixed, other, moving_mask=mask)
    assert np.array_equal(first.matrix, second.matrix)
    assert first.quality.to_dict() | {"seconds": 0} == second.quality.to_dict() | {"seconds": 0}


def test_nan_pixels_are_masked_pixels(brain):
    case = input_cases.static_pattern(brain)
    mask = case.given["moving_mask"]
    with_nan = np.where(mask, case.moving, np.nan)
    by_nan = register(case.fixed, with_nan)
    by_mask = register(case.fixed, case.moving, moving_mask=mask)
    assert np.array_equal(by_nan.matrix, by_mask.matrix)
    assert error(by_nan, case) < ACCURATE_PX
    # The aligned image is NaN where its value comes from a NaN pixel, and only there.
    warped = by_nan.warped
    assert warped.shape == case.fixed.shape
    assert 0.15 < np.isnan(warped).mean() < 0.35 and np.isfinite(by_mask.warped).all()


def test_a_large_turn_is_found_through_a_mask(brain):
    """The global search (Fourier angles, shifts, candidate costs) honours the mask: a
    120 degree turn with a quarter of the moving image replaced."""
    truth = make_transform("rigid", shape=brain.shape).matrix([np.radians(120.0), 5.0, -3.0])
    moving = input_cases.moved(brain, truth)
    mask = np.ones(brain.shape, bool)
    mask[128:, 128:] = False
    moving[~mask] = 255.0
    result = register(brain, moving, moving_mask=mask)
    assert mean_displacement(result.matrix, truth, brain.shape) < ACCURATE_PX
    assert result.trustworthy, result.problems()


def test_intensity_scaling_uses_the_pixels_in_use():
    image = np.tile(np.linspace(0.0, 1.0, 64), (64, 1))
    label = image.copy()
    label[:8] = 1e6  # a burned-in label far brighter than the anatomy
    mask = np.ones(image.shape, bool)
    mask[:8] = False
    plain, _ = normalize_pair(label, image, joint=False)
    masked, _ = normalize_pair(label, image, joint=False, masks=(mask, None))
    assert plain[8:].max() < 1e-3  # the label squeezed the anatomy into nothing
    assert np.allclose(masked[8:], image[8:], atol=1e-6)


def test_masked_pyramid_levels_average_the_pixels_in_use_only():
    rng = np.random.default_rng(0)
    image = rng.random((64, 64)).astype(np.float32)
    valid = rng.random((64, 64)) > 0.3
    garbage = np.where(valid, image, np.float32(np.nan))
    levels = masked_pyramid(filled(garbage, valid), valid, 3)
    assert all(np.isfinite(level).all() for level in levels)
    ones = masked_pyramid(np.where(valid, 1.0, 50.0).astype(np.float32), valid, 3)
    assert all(np.allclose(level, 1.0) for level in ones)  # the mean of ones is one
    same = masked_pyramid(image, None, 3)
    assert all(np.array_equal(a, b) for a, b in zip(same, gaussian_pyramid(image, 3), strict=True))
    # A coarse pixel is in the domain when most of what it averages is.
    domain = Domain.of(image, valid)
    assert domain.level(1).valid().mean() > 0.9


def test_filled_pixels_take_the_local_mean():
    image = np.zeros((32, 32))
    image[:, 16:] = 1.0
    valid = np.ones(image.shape, bool)
    valid[10:12, 2:4] = valid[10:12, 28:30] = False
    image[~valid] = 1e9
    out = filled(image, valid)
    assert np.allclose(out[10:12, 2:4], 0.0) and np.allclose(out[10:12, 28:30], 1.0)


def test_too_little_overlap_of_the_masks_is_suspect(brain):
    """A moving mask that keeps only a sliver of what the fixed image shows."""
    truth = make_transform("rigid", shape=brain.shape).matrix([0.1, 3.0, -2.0])
    moving = input_cases.moved(brain, truth)
    mask = np.zeros(brain.shape, bool)
    mask[120:132, 100:160] = True  # 720 pixels: about 45 at the quality level
    quality = evaluate(brain, moving, truth, transform="rigid", moving_mask=mask)
    assert quality.verdict == "suspect"
    assert any("too little of the masked images overlaps" in r for r in quality.reasons)
    assert evaluate(brain, moving, truth, transform="rigid").verdict == "ok"


@pytest.mark.parametrize("shape", ["square", "sparse"])
@pytest.mark.parametrize("transform", ["translation", "rigid"])
def test_a_small_or_sparse_mask_searches_a_finer_level(camera, shape, transform):
    """A 12 x 12 region (on the cameraman's head: a featureless one cannot be registered,
    and is flagged too), or every 8th pixel of every 8th row: next to nothing is left on the
    search's coarse level, so it searches a finer one.  The answer is right; the quality
    level (about 64^2 pixels) keeps too few pixels to judge it: suspect, saying why."""
    fixed = np.asarray(camera, float)[::2, ::2]
    truth = make_transform("translation", shape=fixed.shape).matrix([-5.0, 3.0])
    moving = input_cases.moved(fixed, truth)
    mask = np.zeros(fixed.shape, bool)
    if shape == "square":
        mask[60:72, 120:132] = True
    else:
        mask[::8, ::8] = True
    result = register(fixed, moving, transform=transform, fixed_mask=mask)
    assert mean_displacement(result.matrix, truth, fixed.shape) < ACCURATE_PX
    assert result.quality.verdict == "suspect"
    assert "too little of the masked images overlaps" in result.quality.reasons[0]


# --------------------------------------------------------------------------- errors


def test_valid_pixels_checks_shape_count_and_dtype():
    image = np.ones((32, 32))
    assert valid_pixels(image, np.ones((32, 32), np.uint8)) is None  # all in use
    label = np.zeros((32, 32), np.uint16)
    label[4:20, 4:20] = 7  # any non-zero value is "use"
    assert valid_pixels(image, label).sum() == 256
    with pytest.raises(InputError, match="moving_mask: the mask has shape") as info:
        valid_pixels(image, np.ones((32, 31)), name="moving", mask_name="moving_mask")
    assert info.value.param == "moving_mask"


@pytest.mark.parametrize(
    ("kwargs", "param", "match"),
    [
        ({"fixed_mask": np.zeros((64, 64))}, "fixed_mask", "only 0 pixel"),
        ({"moving_mask": np.ones((64, 63))}, "moving_mask", "has shape"),
        ({"moving_mask": "mask.png"}, "moving_mask", "numeric image"),
    ],
)
def test_bad_masks_name_their_argument(kwargs, param, match):
    image = np.random.default_rng(0).random((64, 64))
    with pytest.raises(InputError, match=match) as info:
        register(image, image, **kwargs)
    assert info.value.param == param


def test_nan_only_image_and_infinite_pixels_are_errors():
    image = np.random.default_rng(0).random((64, 64))
    with pytest.raises(InputError, match="moving: only 0 pixel") as info:
        register(image, np.full((64, 64), np.nan))
    assert info.value.param == "moving"
    bad = image.copy()
    bad[3, 3] = np.inf
    with pytest.raises(InputError, match="infinite") as info:
        register(image, bad)
    assert info.value.param == "moving"


def test_check_options_checks_masks_without_images():
    check_options(fixed_mask=np.ones((4, 4)), moving_mask=None)
    with pytest.raises(InputError) as info:
        check_options(moving_mask=[[1, 2], [3]])
    assert info.value.param == "moving_mask"


def test_cost_profile_ignores_what_lies_under_a_mask(brain):
    from regcli.profile import cost_profile

    case = input_cases.static_pattern(brain)
    mask = case.given["moving_mask"]
    other = np.where(mask, case.moving, 0.0)
    values = np.linspace(-14.4, -10.4, 9)
    first, second, plain = (
        cost_profile(case.fixed, moving, param="tx", values=values, at=case.truth, moving_mask=m)
        for moving, m in ((case.moving, mask), (other, mask), (case.moving, None))
    )
    assert np.array_equal(first.costs, second.costs)
    assert not np.allclose(first.costs, plain.costs)
    assert first.minimum() == pytest.approx(-12.4, abs=0.01)


def test_a_region_mask_is_eroded_for_the_margin_but_scattered_pixels_are_not():
    region = np.zeros((40, 40), bool)
    region[5:35, 5:35] = True
    inside = Domain.of(region, region).inside(np.eye(3), (40, 40), margin=1.0)
    assert inside[6:34, 6:34].all() and not inside[5, 10] and not inside[10, 34]
    scattered = np.random.default_rng(1).random((40, 40)) > 0.25  # erosion would keep ~7 %
    kept = Domain.of(scattered, scattered).inside(np.eye(3), (40, 40), margin=1.0)
    assert np.array_equal(kept[1:-1, 1:-1], scattered[1:-1, 1:-1])
