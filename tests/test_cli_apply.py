"""``regcli apply``: a saved transform moves another image onto the fixed grid."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from conftest import PALETTE, palette_png, read_palette_png, smooth_blobs

from regcli.cli.main import cli
from regcli.io import read_image, write_image, write_transform_json
from regcli.resample import inside_mask, warp
from regcli.transforms import rotation_matrix, translation_matrix


def invoke(runner, *args):
    result = runner.invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def hand_made_json(path, matrix, **extra):
    """A transform JSON written by hand, as a user (or another tool) would."""
    path.write_text(json.dumps({"matrix": np.asarray(matrix).tolist(), **extra}))
    return path


def labels_image(shape=(64, 72)) -> np.ndarray:
    """Blocky label map with labels {0, 3, 7, 12}."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    labels = np.zeros(shape, np.uint8)
    labels[(x - 30) ** 2 + (y - 30) ** 2 < 18**2] = 3
    labels[(x > 40) & (x < 60) & (y > 20) & (y < 50)] = 7
    labels[(x - 25) ** 2 + (y - 35) ** 2 < 6**2] = 12
    return labels


@pytest.mark.parametrize(
    "matrix",
    [translation_matrix(6.5, -4.0), rotation_matrix(math.radians(14), (35.5, 31.5))],
    ids=["translation", "rotation"],
)
def test_apply_hand_made_json_restores_the_original(runner, tmp_path, matrix):
    fixed = smooth_blobs((64, 72), seed=11).astype(np.float32)
    moving = warp(fixed, np.linalg.inv(matrix), order=3)  # content moved by the matrix
    moving_path = write_image(tmp_path / "moving.tif", moving)
    transform = hand_made_json(tmp_path / "t.json", matrix)
    out = tmp_path / "aligned.tif"
    result = invoke(runner, "apply", moving_path, transform, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["shape_from"] == "image"
    assert report["image"] == str(moving_path)  # the key translate and rotate use too
    aligned = read_image(out)
    assert aligned.dtype == np.float32
    overlap = inside_mask(matrix, fixed.shape, fixed.shape) & inside_mask(
        np.linalg.inv(matrix), fixed.shape, fixed.shape
    )
    np.testing.assert_allclose(aligned[overlap], fixed[overlap], atol=0.02)
    # and without the transform the images really differ there
    assert np.abs(moving[overlap] - fixed[overlap]).max() > 0.2


def test_apply_order_0_keeps_labels(runner, tmp_path, caplog):
    labels = labels_image()
    matrix = rotation_matrix(math.radians(-20), (35.5, 31.5)) @ translation_matrix(3, 2)
    moved = warp(labels, np.linalg.inv(matrix), order=0).astype(np.uint8)
    src = write_image(tmp_path / "labels_moved.png", moved)
    transform = write_transform_json(tmp_path / "t.json", matrix, fixed_shape=labels.shape)
    out = tmp_path / "labels_back.png"
    result = invoke(runner, "apply", src, transform, "-o", out, "--order", 0, "--json")
    assert result.exit_code == 0, result.output
    back = read_image(out)
    assert back.dtype == np.uint8
    assert set(np.unique(back)) <= {0, 3, 7, 12}
    overlap = inside_mask(matrix, labels.shape, labels.shape) & inside_mask(
        np.linalg.inv(matrix), labels.shape, labels.shape
    )
    assert np.mean(back[overlap] == labels[overlap]) > 0.97
    # cubic interpolation, by contrast, invents values between labels, and apply says so
    cubic = tmp_path / "cubic.png"
    with caplog.at_level(logging.WARNING, logger="regcli"):
        assert invoke(runner, "apply", src, transform, "-o", cubic, "--order", 3).exit_code == 0
    assert "labels_moved.png has only 4 distinct values, like a label map" in caplog.text
    assert not set(np.unique(read_image(cubic))) <= {0, 3, 7, 12}


def test_apply_moves_a_palette_png_nearest_neighbour_with_its_palette(runner, tmp_path, caplog):
    labels = labels_image()
    src = palette_png(tmp_path / "labels.png", labels)
    matrix = rotation_matrix(math.radians(-20), (35.5, 31.5)) @ translation_matrix(3.5, 2.25)
    transform = write_transform_json(tmp_path / "t.json", matrix)
    out = tmp_path / "out.png"
    with caplog.at_level(logging.WARNING, logger="regcli"):
        result = invoke(runner, "apply", src, transform, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["order"] == 0
    assert "distinct values" not in caplog.text  # nothing to warn about: labels stay exact
    mode, palette, moved = read_palette_png(out)
    assert (mode, palette) == ("P", PALETTE)
    np.testing.assert_array_equal(moved, warp(labels, matrix, order=0).astype(np.uint8))


def test_apply_output_grid_from_like_then_json_then_image(runner, tmp_path):
    image = write_image(tmp_path / "img.npy", smooth_blobs((40, 50), seed=12))
    fixed = write_image(tmp_path / "fixed.png", np.zeros((30, 35), np.uint8))
    with_shape = write_transform_json(tmp_path / "a.json", np.eye(3), fixed_shape=(20, 25))
    without = write_transform_json(tmp_path / "b.json", np.eye(3))
    cases = [
        ((with_shape, "--like", fixed), (30, 35), "like"),
        ((with_shape,), (20, 25), "fixed_shape"),
        ((without,), (40, 50), "image"),
    ]
    for index, (extra, shape, source) in enumerate(cases):
        out = tmp_path / f"o{index}.npy"
        result = invoke(runner, "apply", image, extra[0], "-o", out, *extra[1:], "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["shape_from"] == source
        assert report["output_shape"] == list(shape)
        assert read_image(out).shape == shape
        assert read_image(out).dtype == np.float64


def test_apply_warns_when_image_is_not_the_moving_shape(runner, tmp_path, caplog):
    image = write_image(tmp_path / "img.png", np.ones((30, 30), np.uint8))
    transform = write_transform_json(tmp_path / "t.json", np.eye(3), moving_shape=(40, 40))
    with caplog.at_level(logging.WARNING, logger="regcli"):
        result = invoke(runner, "apply", image, transform, "-o", tmp_path / "o.png")
    assert result.exit_code == 0, result.output
    assert "differs from the moving image the transform was made for (40, 40)" in caplog.text


def test_apply_integer_output_is_clipped_and_keeps_dtype(runner, tmp_path):
    step = np.zeros((24, 24), np.uint16)
    step[:, 12:] = 65535
    src = write_image(tmp_path / "step.png", step)
    transform = hand_made_json(tmp_path / "t.json", translation_matrix(0.5, 0))
    out = tmp_path / "o.png"
    assert invoke(runner, "apply", src, transform, "-o", out).exit_code == 0
    back = read_image(out)
    assert back.dtype == np.uint16
    # aligned(x) = moving(x + 0.5): the cubic spline rings below 0 at column 10 and above
    # 65535 at column 12; both saturate instead of wrapping around
    assert back[3, 10] == 0
    assert back[3, 12] == 65535
    assert 30000 < back[3, 11] < 35000


def test_apply_needs_output(runner, tmp_path):
    image = write_image(tmp_path / "img.png", np.ones((8, 8), np.uint8))
    transform = hand_made_json(tmp_path / "t.json", np.eye(3))
    result = invoke(runner, "apply", image, transform)
    assert result.exit_code == 2
    assert "-o" in result.output


def test_apply_in_a_real_subprocess(run_regcli, tmp_path):
    fixed = (smooth_blobs((48, 48), seed=13) * 250).astype(np.uint8)
    matrix = translation_matrix(3, 5)
    moved = np.zeros_like(fixed)
    moved[5:, 3:] = fixed[:-5, :-3]
    write_image(tmp_path / "moved.png", moved)
    hand_made_json(tmp_path / "t.json", matrix, fixed_shape=[48, 48])
    proc = run_regcli("apply", "moved.png", "t.json", "-o", "back.png", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == "back.png"
    np.testing.assert_array_equal(read_image(tmp_path / "back.png")[:-5, :-3], fixed[:-5, :-3])


def test_apply_register_transform_to_a_label_map(runner, tmp_path):
    """The use case: register images, then move a label map drawn on the moving image."""
    fixed = smooth_blobs((64, 72), seed=14)
    truth = translation_matrix(4.0, -3.0)
    moving = warp(fixed, np.linalg.inv(truth), order=3)
    fixed_path = write_image(tmp_path / "fixed.tif", fixed.astype(np.float32))
    moving_path = write_image(tmp_path / "moving.tif", moving.astype(np.float32))
    labels = labels_image((64, 72))
    moved_labels = warp(labels, np.linalg.inv(truth), order=0).astype(np.uint8)
    labels_path = write_image(tmp_path / "labels_moving.png", moved_labels)
    result = invoke(
        runner, "-q", "register", fixed_path, moving_path, "--transform", "translation",
        "-o", tmp_path / "reg",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "labels_on_fixed.png"
    transform = tmp_path / "reg" / "transform.json"
    result = invoke(runner, "apply", labels_path, transform, "-o", out, "--order", 0)
    assert result.exit_code == 0, result.output
    back = read_image(out)
    assert set(np.unique(back)) <= {0, 3, 7, 12}
    inner = (slice(6, -6), slice(6, -6))
    assert np.mean(back[inner] == labels[inner]) > 0.97


@pytest.mark.parametrize("fill", [0.0, 5.0])
def test_nan_pixels_of_a_float_image_are_moved_as_no_data(runner, tmp_path, fill):
    image = smooth_blobs((40, 48)).astype(np.float32)
    image[10:20, 12:24] = np.nan  # no data there (register's aligned images hold such pixels)
    source = tmp_path / "nan.tif"
    write_image(source, image)
    table = hand_made_json(tmp_path / "t.json", translation_matrix(3, 2))
    expected = np.full(image.shape, fill)
    expected[:-2, :-3] = image[2:, 3:]  # out(x, y) = in(x + 3, y + 2)
    outputs = {
        "apply": ["apply", source, table, "-o", tmp_path / "a.tif"],
        "translate": ["translate", source, "--dx", -3, "--dy", -2, "-o", tmp_path / "t.tif"],
    }
    for name, args in outputs.items():
        result = invoke(runner, *args, "--order", 0, "--fill", fill)
        assert result.exit_code == 0, (name, result.output)
        np.testing.assert_array_equal(read_image(args[-1], allow_nan=True), expected)
    turned = invoke(
        runner, "rotate", source, "--angle", 90, "--center", "center", "-o", tmp_path / "r.tif"
    )
    assert turned.exit_code == 0, turned.output
    assert np.isnan(read_image(tmp_path / "r.tif", allow_nan=True)).sum() == np.isnan(image).sum()


def test_infinite_pixels_are_still_refused(runner, tmp_path):
    image = smooth_blobs((40, 48)).astype(np.float32)
    image[5, 5] = np.inf
    np.save(tmp_path / "inf.npy", image)
    table = hand_made_json(tmp_path / "t.json", np.eye(3))
    result = invoke(runner, "apply", tmp_path / "inf.npy", table, "-o", tmp_path / "o.npy")
    assert result.exit_code == 1 and "inf.npy" in result.output and "infinite" in result.output


@pytest.mark.parametrize("like", [False, True], ids=["own-grid", "like"])
def test_a_transform_that_maps_the_grid_outside_the_image_is_refused(runner, tmp_path, like):
    """A shift of 5000 px (another image's transform, a unit mix-up) would give an image of
    --fill only: one error line naming the transform file, exit 1, nothing written; a shift
    that keeps a sliver of the image is still applied."""
    image = write_image(tmp_path / "m.png", np.rint(smooth_blobs((40, 44)) * 255).astype(np.uint8))
    grid = ["--like", write_image(tmp_path / "f.png", np.zeros((30, 50), np.uint8))] if like else []
    far = hand_made_json(tmp_path / "far.json", translation_matrix(5000, 0))
    result = invoke(runner, "apply", image, far, "-o", tmp_path / "a.png", *grid)
    assert result.exit_code == 1, result.output
    assert "far.json: maps the whole" in result.stderr and "--fill" in result.stderr
    assert not (tmp_path / "a.png").exists()
    edge = hand_made_json(tmp_path / "edge.json", translation_matrix(43, 0))
    assert invoke(runner, "apply", image, edge, "-o", tmp_path / "b.png", *grid).exit_code == 0
