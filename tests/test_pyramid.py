"""Gaussian pyramid: level count, shapes, pixel-centre geometry, validation."""

from __future__ import annotations

import numpy as np
import pytest

from regcli.errors import InputError
from regcli.pyramid import auto_levels, gaussian_pyramid, level_scaling


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((256, 256), 4), ((255, 300), 3), ((64, 64), 2), ((32, 500), 1), ((10, 10), 1)],
)
def test_auto_levels_keeps_the_coarsest_side_at_least_32(shape, expected):
    assert auto_levels(shape) == expected
    coarsest = gaussian_pyramid(np.ones(shape), None)[-1]
    assert len(gaussian_pyramid(np.ones(shape), None)) == expected
    assert min(coarsest.shape) >= min(32, min(shape))


def test_shapes_halve_rounding_up_and_dtypes_are_kept():
    levels = gaussian_pyramid(np.ones((64, 50), dtype=np.float32), 3)
    assert [p.shape for p in levels] == [(64, 50), (32, 25), (16, 13)]
    assert all(p.dtype == np.float32 for p in levels)
    assert gaussian_pyramid(np.ones((8, 8), dtype=np.uint8), 2)[1].dtype == np.float64


@pytest.mark.parametrize(("downscale", "sigma"), [(2, None), (2, 0.8), (3, None)])
def test_pixel_centres_follow_level_scaling(downscale, sigma):
    # A linear ramp survives symmetric smoothing, so level k samples it exactly at the
    # full-resolution coordinates of its pixel centres: inv(S) @ (x, y, 1).
    rows, cols = 97, 128
    y, x = np.mgrid[0:rows, 0:cols].astype(float)
    ramp = 0.3 * x + 0.7 * y
    levels = gaussian_pyramid(ramp, 3, downscale=downscale, sigma=sigma)
    for level, image in enumerate(levels):
        to_full = np.linalg.inv(level_scaling(level, downscale=downscale))
        yc, xc = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(float)
        xf = to_full[0, 0] * xc + to_full[0, 2]
        yf = to_full[1, 1] * yc + to_full[1, 2]
        inner = (slice(3, -3), slice(3, -3))  # away from the border handling
        np.testing.assert_allclose(image[inner], (0.3 * xf + 0.7 * yf)[inner], atol=1e-9)


def test_level_scaling_maps_pixel_edges_onto_pixel_edges():
    s = level_scaling(2)  # factor 4
    # Full-resolution pixel edge -0.5 is coarse edge -0.5; 4 fine pixels make one coarse one.
    np.testing.assert_allclose(s @ [-0.5, -0.5, 1], [-0.5, -0.5, 1])
    np.testing.assert_allclose(s @ [3.5, 7.5, 1], [0.5, 1.5, 1])
    np.testing.assert_allclose(level_scaling(0), np.eye(3))


@pytest.mark.parametrize("sigma", [None, 1.0])
def test_smoothing_removes_the_highest_frequency(sigma):
    checker = np.indices((64, 64)).sum(axis=0) % 2.0
    coarse = gaussian_pyramid(checker, 2, sigma=sigma)[1]
    assert np.ptp(coarse[4:-4, 4:-4]) < 0.05
    assert coarse.mean() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": 0}, "levels"),
        ({"levels": 1.5}, "levels"),
        ({"downscale": 1.0}, "downscale"),
        ({"sigma": -1.0}, "sigma"),
    ],
)
def test_bad_options_raise_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        gaussian_pyramid(np.ones((16, 16)), **{"levels": 2, **kwargs})


def test_bad_image_raises_input_error():
    with pytest.raises(InputError, match="2-D"):
        gaussian_pyramid(np.ones((4, 4, 4, 4)), 2)
