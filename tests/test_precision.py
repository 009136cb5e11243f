"""Sub-pixel precision: the finest level's optimum is where the truth is (regcli/refine.py).

The shifts are made the way scikit-image's phase_cross_correlation tests make them
(``scipy.ndimage.fourier_shift`` of ``skimage.data.camera()``); before the finest level read
an upsampled image, the bilinear objective's own minimum lay 0.01-0.07 px from them.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import regcli
from bench import precision
from regcli import refine
from regcli.resample import warp
from regcli.transforms import make_transform, mean_displacement, translation_matrix

#: scikit-image's sub-pixel test shift (rows, cols), then four of the benchmark's seeded ones.
SHIFTS = precision.SHIFTS[:5]


@pytest.fixture(scope="module")
def camera():
    from skimage import data

    return data.camera().astype(np.float64)


@pytest.mark.parametrize("transform", ["translation", "rigid"])
def test_fourier_shifted_camera_is_recovered_within_a_hundredth_of_a_pixel(camera, transform):
    kwargs = {} if transform == "rigid" else {"transform": transform}  # rigid: the default
    for dy, dx in SHIFTS:
        result = regcli.register(camera, precision.fourier_shifted(camera, (dy, dx)), **kwargs)
        # content moved by (dx, dy): fixed pixel x shows in the moving image at x + (dx, dy)
        error = mean_displacement(result.matrix, translation_matrix(dx, dy), camera.shape)
        assert error < 0.01, ((dy, dx), transform, error)


def test_rigid_sub_pixel_pose_is_recovered(camera):
    """A turn of 7.3 deg and a shift of (3.37, -1.81) px, cubic; the moving image's fill
    left out by its mask."""
    image = camera[::2, ::2]
    rigid = make_transform("rigid", shape=image.shape)
    truth = rigid.matrix([np.radians(7.3), 3.37, -1.81])
    moving = warp(image, np.linalg.inv(truth), order=3)
    mask = warp(np.ones_like(image), np.linalg.inv(truth), order=1) > 0.999
    result = regcli.register(image, moving, moving_mask=mask)
    assert mean_displacement(result.matrix, truth, image.shape) < 0.005


def test_upsampled_image_is_the_smoothed_image_and_its_spline_between():
    rng = np.random.default_rng(1)
    image = ndimage.gaussian_filter(rng.normal(size=(40, 50)), 1.5).astype(np.float32)
    up = refine.upsample(image)
    assert up.shape == (80, 100) and up.dtype == np.float32
    np.testing.assert_array_equal(up[::2, ::2], refine.smooth(image))
    plain = refine.upsample(image, smoothed=False)
    np.testing.assert_array_equal(plain[::2, ::2], image)
    # The odd samples: the cubic B-spline of the (smoothed) image half-way, away from the
    # border (the taps are cut at 2e-3).
    for sampled, base in ((up, refine.smooth(image)), (plain, image)):
        coefficients = ndimage.spline_filter(base.astype(np.float64), 3)
        rows, cols = np.mgrid[0:80, 0:100] / 2.0
        spline = ndimage.map_coordinates(coefficients, [rows, cols], order=3, prefilter=False)
        inner = (slice(12, -12), slice(12, -12))
        assert np.max(np.abs(sampled - spline)[inner]) < 0.01 * np.ptp(base)


def _upsampled_along(values, axis, even, taps, first):
    """Even samples by ``even``, odd ones by ``taps`` from ``first``, edges repeated: a
    direct, slow reference for one axis of :func:`refine.upsample`."""
    values = np.moveaxis(values.astype(np.float64), axis, 0)
    n, reach = values.shape[0], len(taps) + len(even)
    padded = np.concatenate([values[:1]] * reach + [values] + [values[-1:]] * reach)
    out = np.empty((2 * n, *values.shape[1:]))
    for j in range(n):
        centre = j + reach
        out[2 * j] = sum(w * padded[centre - len(even) // 2 + i] for i, w in enumerate(even))
        out[2 * j + 1] = sum(w * padded[centre + first + i] for i, w in enumerate(taps))
    return np.moveaxis(out, 0, axis)


@pytest.mark.parametrize("shape", [(1, 1), (2, 9), (9, 2), (5, 7), (33, 20)])
def test_upsampled_image_matches_a_direct_filter_with_repeated_edges(shape):
    image = np.random.default_rng(2).random(shape).astype(np.float32)
    for smoothed in (True, False):
        taps, first = refine._half_sample_taps(smoothed)
        even = refine.SMOOTHING if smoothed else np.ones(1)
        expected = _upsampled_along(image, 0, even, taps, first)
        expected = _upsampled_along(expected, 1, even, taps, first)
        np.testing.assert_allclose(refine.upsample(image, smoothed=smoothed), expected, atol=1e-6)


def test_half_sample_filter_is_symmetric_and_sums_to_one():
    for smoothed in (True, False):
        taps, first = refine._half_sample_taps(smoothed)
        np.testing.assert_allclose(taps, taps[::-1])
        assert taps.sum() == pytest.approx(1.0)
        assert first == -(len(taps) // 2 - 1)  # centred on j + 1/2


def test_finest_objective_smooths_only_for_metrics_that_compare_intensities_linearly():
    from regcli.metrics import METRICS

    image = np.random.default_rng(2).random((32, 32)).astype(np.float32)
    family = make_transform("rigid", shape=image.shape)
    ssd = refine.finest_objective(image, image, family, METRICS["ssd"])
    mi = refine.finest_objective(image, image, family, METRICS["mi"], {"bins": 16})
    np.testing.assert_array_equal(ssd.fixed, refine.smooth(image))
    assert mi.fixed is image
    assert ssd.cost(family.identity() * ssd.scales) < 1e-12


def test_precision_table_counts_only_the_cases_every_method_solves():
    def row(case, method, error):
        return {"case": case, "method": method, "error_px": error, "solved": error < 0.5}

    rows = [
        row("a", "regcli", 0.01),
        row("a", "ecc", 0.02),
        row("b", "regcli", 0.03),
        row("b", "ecc", 9.0),  # not solved by ecc: left out
        row("c", "regcli", 0.05),
        row("c", "ecc", 0.04),
    ]
    count, stats = precision.precision_stats(rows, ["regcli", "ecc"])
    assert count == 2
    assert stats["regcli"]["median_error_px"] == pytest.approx(0.03)
    assert stats["ecc"]["max_error_px"] == pytest.approx(0.04)
    assert precision.methods_for(["regcli", "ecc"]) == ["regcli", "regcli_t", "ecc"]
    assert precision.SHIFTS[0] == (-2.4, 1.32) and len(precision.SHIFTS) == 11


def test_masked_pairs_stay_precise(camera):
    """A mask's fill does not reach the compared pixels: a region is kept 2 px away, and
    scattered masked pixels (a quarter of them, at random) leave the finest level unsmoothed
    (smoothed, the fill reached nearly every pixel: 0.08 px)."""
    from bench import input_cases

    for case in (input_cases.corrupted_pixels(camera), input_cases.ellipses(camera)):
        result = regcli.register(case.fixed, case.moving, **case.given)
        assert mean_displacement(result.matrix, case.truth, camera.shape) < 0.01, case.name
    mask = np.random.default_rng(0).random((64, 64)) > 0.25
    assert not refine._compact(mask)
    assert refine._compact(np.pad(np.ones((40, 40), bool), 12))
