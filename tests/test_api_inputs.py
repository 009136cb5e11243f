"""The library refuses bad arguments with InputError (naming the argument), never numpy's
ValueError/TypeError, and never after starting the work."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import smooth_blobs

import regcli
from regcli.errors import InputError
from regcli.transforms import scaling_matrix, similarity_matrix

IMAGE = smooth_blobs((24, 26))
NAN_IMAGE = np.where(IMAGE > 0.5, np.nan, IMAGE)

BAD_CALLS = {
    "ragged list": (lambda: regcli.ssd([[1, 2], [3]], IMAGE), "image1"),
    "string image": (lambda: regcli.warp("abc", np.eye(3)), "image"),
    "None image": (lambda: regcli.warp(None, np.eye(3)), "image"),
    "NaN in warp": (lambda: regcli.warp(NAN_IMAGE, np.eye(3)), "NaN or infinite"),
    "complex in warp": (lambda: regcli.warp(IMAGE.astype(complex), np.eye(3)), "complex"),
    "object in warp": (lambda: regcli.warp(IMAGE.astype(object), np.eye(3)), "image"),
    "negative shape": (lambda: regcli.warp(IMAGE, np.eye(3), output_shape=(-1, 5)), "output_shape"),
    "fractional shape": (
        lambda: regcli.warp(IMAGE, np.eye(3), output_shape=(2.7, 5)),
        "output_shape",
    ),
    "huge shape": (
        lambda: regcli.warp(IMAGE, np.eye(3), output_shape=(10**6, 10**6)),
        "more than the limit",
    ),
    "translate by a string": (lambda: regcli.translate(IMAGE, "3", 0), "dx"),
    "rotate by None": (lambda: regcli.rotate(IMAGE, None), "angle_deg"),
    "compose a 2x2": (lambda: regcli.compose(np.eye(2)), r"matrices\[0\]"),
    "read_image(None)": (lambda: regcli.read_image(None), "path"),
    "empty shape": (lambda: regcli.mean_displacement(np.eye(3), np.eye(3), (0, 0)), "shape"),
    "bins 10**5": (lambda: regcli.joint_histogram(IMAGE, IMAGE, bins=10**5), "bins"),
    "edges 10**6": (
        lambda: regcli.joint_histogram(IMAGE, IMAGE, bins=np.linspace(0, 1, 10**6)),
        "bins",
    ),
    "entropy of text": (lambda: regcli.entropy("abc"), "hist"),
    "masked array": (
        lambda: regcli.register(np.ma.masked_less(IMAGE, 0.1), IMAGE),
        "masked arrays are not supported",
    ),
    "too small": (lambda: regcli.register(IMAGE[:1], IMAGE[:1]), "too small to register"),
    "pyramid of None": (lambda: regcli.gaussian_pyramid(None, 2), "image"),
    "sigma 1e308": (lambda: regcli.gradient_similarity(IMAGE, IMAGE, sigma=1e308), "sigma"),
    "register sigma 1e308": (
        lambda: regcli.register(IMAGE, IMAGE, metric="gradient", sigma=1e308),
        "at most 1000 pixels",
    ),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_arguments_raise_input_error(name):
    call, match = BAD_CALLS[name]
    with pytest.raises(InputError, match=match):
        call()


STACK = np.stack([IMAGE, IMAGE])

#: Calls that gave numpy's or Python's own error (or a NaN matrix): each is now an InputError
#: whose ``param`` is the argument at fault.
NAMED_CALLS = {
    # "frames: frame 0 has shape (26,), expected 2-D"
    "register_stack of one image": (
        lambda path: regcli.register_stack(IMAGE),
        "stack",
        r"^stack: expected a \(T, rows, cols\) stack or a sequence of 2-D frames, got a single "
        r"2-D image of shape \(24, 26\)",
    ),
    "iter_register_stack of one image": (
        lambda path: next(regcli.iter_register_stack(IMAGE)),
        "frames",
        "got a single 2-D image",
    ),
    # TypeError: float() argument must be ... not 'dict'
    "warp_frames of a dict": (
        lambda path: list(regcli.warp_frames(STACK, {"a": 1})),
        "matrices",
        r"^matrices: expected \(T, 3, 3\) numbers",
    ),
    "warp_frames of one matrix": (
        lambda path: list(regcli.warp_frames(STACK, np.eye(3))),
        "matrices",
        r"got shape \(3, 3\)$",
    ),
    # AttributeError: 'str' object has no attribute 'spacing'
    "write_image meta text": (
        lambda path: regcli.write_image(path, IMAGE, meta="abc"),
        "meta",
        "^meta: expected a regcli.ImageMeta .* got 'abc'$",
    ),
    # ValueError: could not convert string to float: 'a'
    "translation_matrix dx text": (lambda path: regcli.translation_matrix("a", 1), "dx", "'a'"),
    "translation_matrix dy None": (lambda path: regcli.translation_matrix(1, None), "dy", "None"),
    # a matrix of NaN, silently
    "rotation_matrix NaN": (
        lambda path: regcli.rotation_matrix(float("nan")),
        "angle_rad",
        "^angle_rad: expected a finite number, got nan$",
    ),
    "rotation_matrix inf": (lambda path: regcli.rotation_matrix(np.inf), "angle_rad", "inf"),
    "scaling_matrix NaN": (lambda path: scaling_matrix(float("nan")), "scale", "nan"),
    "similarity_matrix NaN angle": (
        lambda path: similarity_matrix(float("nan"), 2.0),
        "angle_rad",
        "nan",
    ),
    "similarity_matrix inf scale": (lambda path: similarity_matrix(0.1, np.inf), "scale", "inf"),
}


@pytest.mark.parametrize("name", list(NAMED_CALLS))
def test_bad_arguments_name_the_argument(name, tmp_path):
    call, param, match = NAMED_CALLS[name]
    with pytest.raises(InputError, match=match) as raised:
        call(tmp_path / "out.tif")
    assert raised.value.param == param
    assert not (tmp_path / "out.tif").exists()


def test_warp_frames_takes_any_iterable_of_matrices():
    matrices = [regcli.translation_matrix(1.5, -2), np.eye(3)]
    expected = list(regcli.warp_frames(STACK, np.array(matrices)))
    for given in (iter(matrices), (m for m in matrices), matrices, tuple(matrices)):
        got = list(regcli.warp_frames(STACK, given))
        assert len(got) == 2
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_masked_array_without_masked_pixels_is_its_data():
    plain = np.ma.masked_array(IMAGE, mask=False)
    np.testing.assert_array_equal(regcli.warp(plain, np.eye(3)), regcli.warp(IMAGE, np.eye(3)))


def test_bins_limit_is_the_cli_one():
    from regcli._limits import MAX_HISTOGRAM_BINS
    from regcli.cli import options

    assert options.HIST_BINS_MAX == MAX_HISTOGRAM_BINS
    hist, _, _ = regcli.joint_histogram(IMAGE, IMAGE, bins=MAX_HISTOGRAM_BINS)
    assert hist.shape == (MAX_HISTOGRAM_BINS, MAX_HISTOGRAM_BINS)
