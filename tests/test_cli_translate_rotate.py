"""``regcli translate`` and ``regcli rotate``: content moves the documented way, dtypes are
kept, the printed matrix follows the fixed -> moving convention of truth.json."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import tifffile
from conftest import PALETTE, palette_png, read_palette_png, smooth_blobs

from regcli.cli.main import cli
from regcli.io import read_image, read_transform_json, write_image
from regcli.resample import inside_mask, warp
from regcli.transforms import rotation_matrix, translation_matrix


def invoke(runner, *args):
    result = runner.invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def blob_png(tmp_path):
    return write_image(tmp_path / "blobs.png", smooth_blobs((64, 64), seed=1) * 250, dtype="uint8")


# --------------------------------------------------------------------------- translate


def test_translate_integer_shift_moves_content_right_and_down(runner, tmp_path, blob_png):
    out = tmp_path / "moved.png"
    result = invoke(runner, "translate", blob_png, "--dx", 5, "--dy", -3, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    image, moved = read_image(blob_png), read_image(out)
    assert moved.dtype == np.uint8
    expected = np.zeros_like(image)
    expected[:-3, 5:] = image[3:, :-5]
    np.testing.assert_array_equal(moved, expected)
    np.testing.assert_allclose(report["matrix"], translation_matrix(5, -3))
    assert report["params"]["tx"] == 5.0
    assert report["params"]["ty"] == -3.0
    assert report["output"] == str(out)
    assert report["image"] == str(blob_png)  # the same key as in `regcli apply --json`
    assert report["dtype"] == "uint8"
    assert report["shape"] == [64, 64]


def test_translate_default_output_name_in_current_folder(runner, tmp_path, blob_png, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = invoke(runner, "translate", blob_png, "--dx", 1)
    assert result.exit_code == 0, result.output
    assert (work / "blobs_translated.png").is_file()
    assert "blobs_translated.png" in result.output
    again = invoke(runner, "translate", blob_png, "--dx", 1)
    assert again.exit_code == 1
    assert "blobs_translated.png: already exists; pass --overwrite" in again.output
    assert invoke(runner, "translate", blob_png, "--dx", 2, "--overwrite").exit_code == 0


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
def test_translate_keeps_dtype(runner, tmp_path, dtype):
    base = smooth_blobs((40, 48), seed=2)
    scale = 60000 if dtype == "uint16" else 250 if dtype == "uint8" else 1.0
    src = write_image(tmp_path / "in.tif", base * scale, dtype=dtype)
    out = tmp_path / "out.tif"
    result = invoke(runner, "translate", src, "--dx", 0.5, "--dy", 1.25, "-o", out)
    assert result.exit_code == 0, result.output
    moved = read_image(out)
    assert moved.dtype == np.dtype(dtype)
    assert moved.shape == (40, 48)
    # matches the core's sub-pixel translate, rounded for integer images
    from regcli.resample import translate

    expected = translate(read_image(src), 0.5, 1.25)
    np.testing.assert_allclose(moved, expected, atol=0.5 if "int" in dtype else 1e-6)


def test_translate_clips_cubic_overshoot(runner, tmp_path):
    step = np.zeros((20, 20), np.uint8)
    step[:, 10:] = 255
    src = write_image(tmp_path / "step.png", step)
    out = tmp_path / "o.png"
    assert invoke(runner, "translate", src, "--dx", 0.5, "-o", out).exit_code == 0
    moved = read_image(out)
    # The cubic spline rings to -25.6 at column 9 and 280.6 at column 11: saturated to 0 and
    # 255, not wrapped around to 230 and 25.
    assert moved[5, 9] == 0
    assert moved[5, 11] == 255
    assert moved[5, 10] in (127, 128)


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
@pytest.mark.parametrize("fill", ["0", "1e30"])
def test_translate_64_bit_integers_saturate_instead_of_wrapping(run_regcli, tmp_path, dtype, fill):
    top = np.iinfo(dtype).max
    image = np.zeros((32, 32), dtype)
    image[:, 16:] = top
    src = tmp_path / "in.npy"
    np.save(src, image)
    out = tmp_path / "out.npy"
    # A real subprocess: numpy's RuntimeWarning of the overflowing cast went to stderr.
    done = run_regcli("translate", src, "--dy", 1, "--fill", fill, "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    moved = np.load(out)
    assert moved.dtype == np.dtype(dtype)
    bright = moved[5:, 20:]  # far from the edge: no ringing, only the brightest value
    assert bright.min() >= top - (top >> 52)  # about the maximum, not INT64_MIN or 0
    if fill == "1e30":  # the uncovered top row saturates at the maximum too
        assert moved[0].min() >= top - (top >> 52)
    else:
        assert moved[5:, :10].max() <= 1


@pytest.mark.parametrize(
    "move", [["translate", "--dx", 0.5, "--dy", 0.5], ["rotate", "--angle", 10]], ids=lambda m: m[0]
)
def test_a_palette_png_is_moved_nearest_neighbour_and_keeps_its_palette(
    runner, tmp_path, caplog, move
):
    labels = np.zeros((40, 40), np.uint8)
    labels[:, 20:] = 2  # 0 next to 2: cubic interpolation invents a 1 between them
    src = palette_png(tmp_path / "labels.png", labels)
    out = tmp_path / "out.png"
    result = invoke(runner, move[0], src, *move[1:], "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["order"] == 0
    mode, palette, moved = read_palette_png(out)
    assert (mode, palette) == ("P", PALETTE)
    assert set(np.unique(moved)) == {0, 2}
    # --order given: done as asked (labels mixed), with a warning; still a palette PNG
    cubic = tmp_path / "cubic.png"
    with caplog.at_level(logging.WARNING, logger="regcli"):
        assert invoke(runner, move[0], src, *move[1:], "-o", cubic, "--order", 3).exit_code == 0
    assert "labels.png is a palette image (a label map): --order 3 creates label values" in (
        caplog.text
    )
    mode, palette, moved = read_palette_png(cubic)
    assert (mode, palette) == ("P", PALETTE)
    assert 1 in np.unique(moved)


@pytest.mark.parametrize(
    "move",
    [
        ["translate", "--dx", "1e300"],
        ["translate", "--dy", "-64"],
        ["rotate", "--angle", "90", "--center", "500,500"],
    ],
    ids=["dx-1e300", "dy-whole-height", "rotate-far-centre"],
)
def test_a_move_of_the_content_wholly_out_of_the_image_is_refused(runner, tmp_path, blob_png, move):
    # It wrote an image of --fill only, exit 0: nothing said the content had gone.
    out = tmp_path / "out.png"
    result = invoke(runner, move[0], blob_png, *move[1:], "-o", out)
    assert result.exit_code == 2, result.output
    assert "wholly out of the image, so every output pixel would be --fill" in result.output
    assert ("--dx/--dy" if move[0] == "translate" else "--angle/--center") in result.output
    assert not out.exists()
    # a move that keeps a sliver of the content is done
    assert invoke(runner, "translate", blob_png, "--dx", 63.5, "-o", out).exit_code == 0


def test_translate_with_truth_parameters_reproduces_brainmri_2(runner, tmp_path, samples, truth):
    pair = truth["pairs"]["BrainMRI_2.png"]
    params = pair["params"]
    out = tmp_path / "b2.png"
    result = invoke(
        runner,
        "translate",
        samples / pair["fixed"],
        "--dx",
        params["tx"],
        "--dy",
        params["ty"],
        "-o",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    np.testing.assert_allclose(report["matrix"], pair["matrix"], atol=1e-12)
    assert report["params"]["center"] == params["center"]
    assert (report["params"]["tx"], report["params"]["ty"]) == (params["tx"], params["ty"])
    made = read_image(out).astype(float)
    sample = read_image(samples / "BrainMRI_2.png").astype(float)
    # same picture up to the two images' own noise (sigma 1.8 each)
    assert np.sqrt(np.mean((made - sample) ** 2)) < 4.0
    assert np.sqrt(np.mean((read_image(samples / "BrainMRI_1.png") - sample) ** 2)) > 20


def test_translate_save_transform_then_apply_restores_input(runner, tmp_path):
    image = smooth_blobs((60, 70), seed=3) * 1000
    src = write_image(tmp_path / "in.npy", image)
    out, saved, back = tmp_path / "out.npy", tmp_path / "t.json", tmp_path / "back.npy"
    result = invoke(
        runner, "translate", src, "--dx", 4.5, "--dy", -2.25, "-o", out, "--save-transform", saved
    )
    assert result.exit_code == 0, result.output
    data = read_transform_json(saved)
    assert data["transform"] == "translation"
    assert data["fixed_shape"] == (60, 70)
    result = invoke(runner, "apply", out, saved, "-o", back)
    assert result.exit_code == 0, result.output
    restored = read_image(back)
    np.testing.assert_allclose(restored[8:-8, 8:-8], image[8:-8, 8:-8], atol=1.0)


def test_translate_save_transform_must_differ_from_output(runner, tmp_path, blob_png):
    out = tmp_path / "o.png"
    result = invoke(runner, "translate", blob_png, "-o", out, "--save-transform", out)
    assert result.exit_code == 2
    assert "--save-transform" in result.output
    assert not out.exists()


# --------------------------------------------------------------------------- rotate


def test_rotate_90_about_centre_is_rot90_clockwise(runner, tmp_path):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, size=(33, 33), dtype=np.uint8)
    src = write_image(tmp_path / "in.png", image)
    out = tmp_path / "r.png"
    result = invoke(
        runner, "rotate", src, "--angle", 90, "--center", "center", "-o", out, "--order", 1
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_image(out), np.rot90(image, k=-1))


def test_rotate_default_centre_is_topleft_and_keeps_pixel_00(runner, tmp_path, blob_png):
    out = tmp_path / "r.png"
    result = invoke(runner, "rotate", blob_png, "--angle", 33, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["center"] == [0.0, 0.0]
    assert report["image"] == str(blob_png)
    assert report["params"] == {"angle_deg": 33.0, "center": [0.0, 0.0]}
    np.testing.assert_allclose(report["matrix"], rotation_matrix(math.radians(33)), atol=1e-12)
    assert read_image(out)[0, 0] == read_image(blob_png)[0, 0]


def test_rotate_matrix_maps_input_pixel_to_where_its_content_went(runner, tmp_path):
    # A single bright pixel: the printed (fixed -> moving) matrix sends it to its new place.
    image = np.zeros((41, 41), np.float32)
    image[12, 25] = 1.0  # x = 25, y = 12
    src = write_image(tmp_path / "dot.npy", image)
    out = tmp_path / "r.npy"
    result = invoke(
        runner, "rotate", src, "--angle", 90, "--center", "20,20", "-o", out, "--json", "--order", 0
    )
    assert result.exit_code == 0, result.output
    matrix = np.array(json.loads(result.stdout)["matrix"])
    x, y, _ = matrix @ [25, 12, 1]
    moved = read_image(out)
    assert moved[round(y), round(x)] == 1.0
    assert (round(x), round(y)) == (28, 25)  # clockwise: right of centre -> below it


def test_rotate_output_registered_back_with_printed_matrix(runner, tmp_path):
    image = smooth_blobs((72, 80), seed=5)
    src = write_image(tmp_path / "in.tif", image.astype(np.float32))
    out = tmp_path / "r.tif"
    result = invoke(
        runner, "rotate", src, "--angle", -12.5, "--center", "30,44.5", "-o", out, "--json"
    )
    assert result.exit_code == 0, result.output
    matrix = np.array(json.loads(result.stdout)["matrix"])
    aligned = warp(read_image(out), matrix, order=3)
    mask = inside_mask(matrix, image.shape, image.shape) & inside_mask(
        np.linalg.inv(matrix), image.shape, image.shape
    )
    np.testing.assert_allclose(aligned[mask], image[mask], atol=0.02)


def test_rotate_with_truth_parameters_reproduces_brainmri_3(runner, tmp_path, samples, truth):
    pair = truth["pairs"]["BrainMRI_3.png"]
    out = tmp_path / "b3.png"
    angle = pair["params"]["angle_deg"]
    result = invoke(
        runner, "rotate", samples / pair["fixed"], "--angle", angle, "-o", out, "--json"
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(json.loads(result.stdout)["matrix"], pair["matrix"], atol=1e-12)
    made = read_image(out).astype(float)
    sample = read_image(samples / "BrainMRI_3.png").astype(float)
    assert np.sqrt(np.mean((made - sample) ** 2)) < 4.0


def test_rotate_help_documents_direction_and_default_centre(runner):
    result = invoke(runner, "rotate", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "clockwise on screen" in text
    assert "points down" in text
    assert "default: topleft" in text


def test_rgb_input_stays_rgb(run_regcli, tmp_path, samples):
    from regcli.io import read_channels

    out = tmp_path / "turned.png"
    source = samples / "BrainMRI_1_rgb.png"
    proc = run_regcli("rotate", source, "--angle", 0, "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "grey" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["output"] == str(out) and report["channels"] == 3
    pixels, meta = read_channels(out)
    assert pixels.shape == (256, 256, 3) and meta.colour == "RGB"
    np.testing.assert_array_equal(pixels, read_channels(source)[0])  # a turn by 0 is exact


def test_translate_in_a_real_subprocess(run_regcli, tmp_path):
    image = (smooth_blobs((50, 50), seed=6) * 65000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", image)
    proc = run_regcli("translate", "in.tif", "--dx", -2, "--dy", 3, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["output"] == "in_translated.tif"
    moved = read_image(tmp_path / "in_translated.tif")
    assert moved.dtype == np.uint16
    np.testing.assert_array_equal(moved[3:, :-2], image[:-3, 2:])
