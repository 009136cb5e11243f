"""Gaussian pyramid: level count, shapes, pixel-centre geometry, validation."""

from __future__ import annotations

import numpy as np
import pytest

from regcli.errors import InputError
from regcli.pyramid import (
    auto_levels,
    downsample,
    from_level,
    gaussian_pyramid,
    level_scaling,
    level_shape,
    to_level,
)
from regcli.transforms import make_transform


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


# --------------------------------------------------------------------------- level hand-over


@pytest.mark.parametrize("level", [0, 1, 3])
def test_to_level_and_from_level_round_trip(level):
    matrix = make_transform("similarity", shape=(97, 128)).matrix([0.4, 1.1, 6.0, -3.5])
    np.testing.assert_allclose(from_level(to_level(matrix, level), level), matrix, atol=1e-12)
    np.testing.assert_allclose(to_level(from_level(matrix, level), level), matrix, atol=1e-12)


@pytest.mark.parametrize(("level", "downscale"), [(1, 2.0), (2, 2.0), (2, 3.0)])
def test_to_level_agrees_with_level_scaling(level, downscale):
    """A fixed pixel and its moving partner, both mapped to the level by ``S``, are paired by
    the level's matrix."""
    matrix = make_transform("rigid", shape=(60, 80)).matrix([0.3, 5.0, -2.0])
    scaling = level_scaling(level, downscale=downscale)
    coarse = to_level(matrix, level, downscale=downscale)
    point = np.array([17.0, 42.0, 1.0])
    np.testing.assert_allclose(coarse @ (scaling @ point), scaling @ (matrix @ point))
    np.testing.assert_allclose(coarse, scaling @ matrix @ np.linalg.inv(scaling))
    fine = from_level(coarse, level, downscale=downscale)
    np.testing.assert_allclose(fine, np.linalg.inv(scaling) @ coarse @ scaling)


def test_level_shape_is_the_pyramid_shape():
    image = np.ones((97, 130))
    levels = gaussian_pyramid(image, 4)
    assert [level_shape(image.shape, k) for k in range(4)] == [p.shape for p in levels]


def test_downsample_by_halvings_is_the_pyramid_level():
    """A power of two: the pyramid's halvings (in float32), returned as float64."""
    y, x = np.mgrid[0:96, 0:128].astype(float)
    ramp = 0.3 * x + 0.7 * y
    reduced = downsample(ramp, 4.0)
    assert reduced.dtype == np.float64
    np.testing.assert_allclose(reduced, gaussian_pyramid(ramp, 3)[2], rtol=1e-6)


def test_downsample_by_any_factor_samples_the_stated_points():
    """Output pixel ``i`` is the input at ``factor * i + (factor - 1) / 2`` (a ramp survives)."""
    factor = 3.2
    y, x = np.mgrid[0:160, 0:192].astype(float)
    reduced = downsample(0.3 * x + 0.7 * y, factor)
    assert reduced.shape == (50, 60)
    yc, xc = np.mgrid[0:50, 0:60].astype(float)
    expected = 0.3 * (factor * xc + (factor - 1) / 2) + 0.7 * (factor * yc + (factor - 1) / 2)
    inner = (slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(reduced[inner], expected[inner], rtol=1e-5)
    assert downsample(np.ones((5, 5), dtype=np.uint8), 1.0).dtype == np.float64
