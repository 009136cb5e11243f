"""warp / translate / rotate against content moved by hand (np.roll, np.rot90)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import smooth_blobs

from regcli.errors import InputError
from regcli.io import to_dtype
from regcli.resample import as_float, inside_mask, rotate, translate, warp
from regcli.transforms import TRANSFORMS, make_transform, rotation_matrix, translation_matrix

DTYPES = ["uint8", "uint16", "float32", "float64"]


def shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Content moved dx right and dy down with zero fill (np.roll without the wrap)."""
    out = np.zeros_like(image)
    rows, cols = image.shape
    src = image[max(0, -dy) : rows - max(0, dy), max(0, -dx) : cols - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (0, -4), (5, 2), (-7, 6)])
def test_integer_translation_is_shifted_content(blobs, order, dx, dy):
    expected = shifted(blobs, dx, dy)
    np.testing.assert_allclose(translate(blobs, dx, dy, order=order), expected, atol=1e-12)


def test_translation_direction_on_a_single_pixel():
    image = np.zeros((7, 9))
    image[2, 3] = 1.0  # x = 3, y = 2
    out = translate(image, 2, 1, order=1)
    assert np.argwhere(out == 1.0).tolist() == [[3, 5]]  # right 2, down 1


@pytest.mark.parametrize(("dx", "dy"), [(2.5, -1.25), (0.3, 0.7), (-4.6, 3.1)])
def test_translate_there_and_back_is_identity_inside(dx, dy):
    image = smooth_blobs((80, 90), seed=2)
    back = translate(translate(image, dx, dy, order=3), -dx, -dy, order=3)
    margin = math.ceil(max(abs(dx), abs(dy))) + 3
    inner = (slice(margin, -margin), slice(margin, -margin))
    np.testing.assert_allclose(back[inner], image[inner], atol=2e-3)


@pytest.mark.parametrize("size", [31, 32, 256])
def test_rotation_by_90_about_centre_is_rot90_clockwise(size):
    rng = np.random.default_rng(7)
    image = rng.random((size, size))
    out = rotate(image, 90, center="center", order=1)
    np.testing.assert_allclose(out, np.rot90(image, k=-1), atol=1e-12)
    assert not np.allclose(out, np.rot90(image, k=1))


@pytest.mark.parametrize("order", [0, 1, 3])
def test_rotation_about_topleft_keeps_pixel_00(blobs, order):
    image = blobs + 0.5
    for angle in (0.1, -0.7, 2.0):
        out = rotate(image, angle, center="topleft", order=order)
        assert out[0, 0] == pytest.approx(image[0, 0], abs=1e-12)


def test_rotation_about_topleft_turns_clockwise():
    # Content at (x, y) = (10, 0) on the top row moves down the first column by +90 deg.
    image = np.zeros((15, 15))
    image[0, 10] = 1.0
    out = rotate(image, 90, order=0)
    assert np.argwhere(out == 1.0).tolist() == [[10, 0]]


def test_rotate_there_and_back_about_explicit_point():
    image = smooth_blobs((70, 70), seed=3)
    back = rotate(rotate(image, 17, center=(30, 40)), -17, center=(30, 40))
    np.testing.assert_allclose(back[20:50, 20:50], image[20:50, 20:50], atol=5e-3)


def test_warp_by_the_matrix_undoes_the_move():
    # Moving content by G and warping the result by G (fixed -> moving) gives the original.
    image = smooth_blobs((72, 84), seed=4)
    g = rotation_matrix(0.2, (41.5, 35.5)) @ translation_matrix(3.0, -2.0)
    moved = warp(image, np.linalg.inv(g), order=3)
    aligned = warp(moved, g, order=3)
    mask = inside_mask(g, image.shape, image.shape) & inside_mask(
        np.linalg.inv(g), image.shape, image.shape
    )
    assert mask.mean() > 0.5
    np.testing.assert_allclose(aligned[mask], image[mask], atol=0.02)


@pytest.mark.parametrize("dtype", DTYPES)
def test_warp_of_each_dtype(dtype):
    base = smooth_blobs((40, 50), seed=5)
    image = to_dtype(base * 200, dtype) if "int" in dtype else (base * 200).astype(dtype)
    out = warp(image, translation_matrix(-2, -3), order=1)
    assert out.dtype == (np.float32 if dtype == "float32" else np.float64)
    assert out.shape == image.shape
    np.testing.assert_allclose(out, shifted(image.astype(float), 2, 3), atol=1e-3)
    assert image.dtype == np.dtype(dtype)  # input untouched


def test_warp_output_shape_and_fill():
    image = np.ones((10, 10))
    out = warp(image, np.eye(3), output_shape=(12, 15), fill=-1.0, order=1)
    assert out.shape == (12, 15)
    assert out[:10, :10].min() == 1.0
    assert out[11, 14] == -1.0


def test_warp_into_preallocated_output():
    image = smooth_blobs((20, 30), seed=6)
    buffer = np.empty((20, 30))
    result = warp(image, translation_matrix(-1, 0), output=buffer)
    assert result is None or result is buffer
    np.testing.assert_allclose(buffer, shifted(image, 1, 0), atol=1e-12)


def test_order_zero_keeps_label_values():
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 5, size=(30, 30)).astype(np.uint8)
    out = warp(labels, rotation_matrix(0.37, (14.5, 14.5)), order=0)
    assert set(np.unique(out)) <= set(range(5))


@pytest.mark.parametrize("order", [-1, 6, True])
def test_warp_bad_order(order):
    with pytest.raises(InputError, match=r"order: expected a spline order 0\.\.5"):
        warp(np.ones((4, 4)), np.eye(3), order=order)


def test_warp_rejects_stack_and_bad_matrix():
    with pytest.raises(InputError, match=r"image: got a 3-D stack of shape \(2, 4, 4\)"):
        warp(np.ones((2, 4, 4)), np.eye(3))
    with pytest.raises(InputError, match="singular"):
        warp(np.ones((4, 4)), np.diag([0.0, 1.0, 1.0]))


def test_as_float_keeps_float32_and_promotes_integers():
    assert as_float(np.ones(3, np.float32)).dtype == np.float32
    assert as_float(np.ones(3, np.uint16)).dtype == np.float64


def test_inside_mask_of_translation():
    mask = inside_mask(translation_matrix(2, 0), (5, 6), (5, 6))
    assert mask[:, :4].all()
    assert not mask[:, 4:].any()


def _inside_by_pixel(matrix, output_shape, input_shape, margin=0.0):
    """Reference: map every output pixel and test it against the input's bounds."""
    y, x = np.mgrid[0 : output_shape[0], 0 : output_shape[1]].astype(float)
    u = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]
    v = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]
    eps = 1e-9
    return (
        (u >= margin - eps)
        & (u <= input_shape[1] - 1 - margin + eps)
        & (v >= margin - eps)
        & (v <= input_shape[0] - 1 - margin + eps)
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("margin", [0.0, 1.0])
def test_inside_mask_equals_per_pixel_reference(seed, margin):
    rng = np.random.default_rng(seed)
    angle = rng.uniform(-np.pi, np.pi) if seed else 0.0  # seed 0: rows with a zero coefficient
    m = make_transform("similarity", center="center", shape=(40, 50)).matrix(
        [angle, rng.uniform(0.7, 1.3), *rng.uniform(-20, 20, 2)]
    )
    if seed == 5:  # a quarter turn: cos(90 deg) is tiny but not zero
        m = make_transform("rotation", center="center", shape=(40, 50)).matrix([np.pi / 2])
    mask = inside_mask(m, (40, 50), (37, 55), margin=margin)
    expected = _inside_by_pixel(m, (40, 50), (37, 55), margin)
    assert 0 < expected.sum() < expected.size  # a partial overlap, so the test can tell
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_identity_warp_of_every_transform(blobs, name):
    t = make_transform(name, shape=blobs.shape)
    np.testing.assert_allclose(warp(blobs, t.matrix(t.identity()), order=3), blobs, atol=1e-12)


@pytest.mark.parametrize("use_kernel", [True, False], ids=["kernel", "public-fallback"])
def test_warp_linear_equals_linear_warp_inside_the_image(blobs, monkeypatch, use_kernel):
    from regcli import resample

    if not use_kernel:
        monkeypatch.setattr(resample, "_affine_kernel", lambda *dtype: None)
    m = make_transform("rigid", shape=blobs.shape).matrix([0.4, 3.3, -2.1])
    fast = resample.warp_linear(blobs.astype(np.float32), m, (80, 90))
    reference = warp(blobs, m, order=1, output_shape=(80, 90))
    inside = inside_mask(m, (80, 90), blobs.shape, margin=1.0)
    assert fast.dtype == np.float64 and fast.shape == (80, 90)
    assert inside.sum() > 1000
    np.testing.assert_allclose(fast[inside], reference[inside], atol=1e-6)
    far_outside = ~inside_mask(m, (80, 90), blobs.shape, margin=-1.0)
    assert far_outside.sum() > 100
    assert np.all(fast[far_outside] == 0.0)


def test_the_private_kernel_is_found_and_its_absence_or_change_falls_back(blobs, monkeypatch):
    """The fast path really runs on this scikit-image; an import that fails (the private
    module moved) or a call that fails (its signature changed) gives the public API's values."""
    import sys
    import types

    from skimage.transform import warp as public_warp  # loaded before the private module moves

    from regcli import resample

    resample._affine_kernel.cache_clear()
    assert resample._affine_kernel() is not None
    m = make_transform("rigid", shape=blobs.shape).matrix([0.3, 2.0, -1.0])
    expected = resample.warp_linear(blobs, m, blobs.shape)
    resample._affine_kernel.cache_clear()
    moved = types.ModuleType("skimage.transform._warps_cy")  # without _warp_fast
    monkeypatch.setitem(sys.modules, "skimage.transform._warps_cy", moved)
    assert public_warp is not None
    assert resample._affine_kernel() is None
    np.testing.assert_allclose(resample.warp_linear(blobs, m, blobs.shape), expected, atol=1e-12)
    monkeypatch.undo()

    def changed(*args, **kwargs):
        raise TypeError("unexpected keyword argument")

    resample._affine_kernel.cache_clear()
    monkeypatch.setattr(resample, "_affine_kernel", lambda *dtype: changed)
    monkeypatch.setattr(resample, "_KERNEL_BROKEN", [])
    np.testing.assert_allclose(resample.warp_linear(blobs, m, blobs.shape), expected, atol=1e-12)
    assert resample._KERNEL_BROKEN == [True]


def test_rotate_takes_degrees_like_skimage_with_the_opposite_sense(blobs):
    from skimage.transform import rotate as skimage_rotate

    ours = rotate(blobs, 30, center="center", order=1)
    theirs = skimage_rotate(blobs, -30, order=1, preserve_range=True)  # counter-clockwise
    turn = rotation_matrix(np.radians(-30), ((blobs.shape[1] - 1) / 2, (blobs.shape[0] - 1) / 2))
    inside = inside_mask(turn, blobs.shape, blobs.shape, margin=1.0)
    assert inside.mean() > 0.6
    np.testing.assert_allclose(ours[inside], theirs[inside], atol=1e-9)


@pytest.mark.parametrize("cols", [300, 1 << 15, 40_000])
def test_inside_mask_of_wide_images_equals_per_pixel_reference(cols):
    """Rows of 2^15 columns or more take the wide integers (no int16 overflow)."""
    m = rotation_matrix(0.001, (cols / 2, 1.0)) @ translation_matrix(-37.4, 0.2)
    expected = _inside_by_pixel(m, (3, cols), (3, cols), margin=1.0)
    np.testing.assert_array_equal(inside_mask(m, (3, cols), (3, cols), margin=1.0), expected)
