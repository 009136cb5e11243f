"""Masks, two shapes and pixel spacing on the command line: ``--fixed-mask``/``--moving-mask``
(register, batch, similarity, profile), ``--reference-mask`` (stack), ``--fixed-spacing``/
``--moving-spacing`` (register, batch)."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import tifffile

from bench import input_cases
from regcli.cli.main import cli
from regcli.io import read_image, write_image
from regcli.transforms import mean_displacement


@pytest.fixture(scope="module")
def files(tmp_path_factory, samples):
    """The static-pattern pair as 8-bit files, its mask, a NaN copy, an anisotropic pair."""
    folder = tmp_path_factory.mktemp("masks")
    brain = read_image(samples / "BrainMRI_1.png")
    case = input_cases.static_pattern(brain)
    mask = case.given["moving_mask"]
    write_image(folder / "fixed.png", brain)
    write_image(folder / "moving.png", np.clip(np.rint(case.moving), 0, 255).astype(np.uint8))
    write_image(folder / "mask.png", mask.astype(np.uint8) * 255)
    write_image(folder / "nan.tif", np.where(mask, case.moving, np.nan).astype(np.float32))
    write_image(folder / "small_mask.png", np.ones((64, 64), np.uint8))
    aniso = input_cases.anisotropic_pixels(brain)
    write_image(folder / "aniso.tif", aniso.moving.astype(np.float32))
    return {"folder": folder, "case": case, "aniso": aniso}


def run(runner, *args):
    return runner.invoke(cli, [str(a) for a in args])


def error_of(report, case) -> float:
    return mean_displacement(np.array(report["matrix"]), case.truth, case.fixed.shape)


def test_register_with_a_moving_mask(runner, files, tmp_path):
    folder, case = files["folder"], files["case"]
    plain = run(
        runner,
        "register",
        folder / "fixed.png",
        folder / "moving.png",
        "-o",
        tmp_path / "a",
        "--json",
        "-q",
    )
    assert plain.exit_code == 3  # wrong and flagged without the mask
    masked = run(
        runner,
        "register",
        folder / "fixed.png",
        folder / "moving.png",
        "--moving-mask",
        folder / "mask.png",
        "-o",
        tmp_path / "b",
        "--json",
        "-q",
    )
    assert masked.exit_code == 0, masked.output
    report = json.loads(masked.stdout)
    assert error_of(report, case) < 0.1
    assert report["moving_mask"].endswith("mask.png")


def test_register_a_moving_image_with_nan_pixels(runner, files, tmp_path):
    folder, case = files["folder"], files["case"]
    result = run(
        runner, "register", folder / "fixed.png", folder / "nan.tif", "-o", tmp_path, "--json", "-q"
    )
    assert result.exit_code == 0, result.output
    assert error_of(json.loads(result.stdout), case) < 0.1
    aligned = read_image(tmp_path / "nan_aligned.tif", allow_nan=True)
    assert aligned.dtype == np.float32 and 0.1 < np.isnan(aligned).mean() < 0.4
    assert (tmp_path / "overlay.png").is_file()


def test_a_mask_of_the_wrong_shape_is_a_usage_error_on_its_option(runner, files, tmp_path):
    folder = files["folder"]
    result = run(
        runner,
        "register",
        folder / "fixed.png",
        folder / "moving.png",
        "--fixed-mask",
        folder / "small_mask.png",
        "-o",
        tmp_path,
    )
    assert result.exit_code == 2
    assert "--fixed-mask" in result.output and "shape" in result.output


def test_register_with_pixel_spacing(runner, files, tmp_path):
    folder, case = files["folder"], files["aniso"]
    args = ["register", folder / "fixed.png", folder / "aniso.tif", "--json", "-q"]
    plain = run(runner, *args, "-o", tmp_path / "a")
    assert plain.exit_code == 3
    spaced = run(runner, *args, "-o", tmp_path / "b", "--moving-spacing", "2,1")
    assert spaced.exit_code == 0, spaced.output
    report = json.loads(spaced.stdout)
    assert error_of(report, case) < 0.1
    assert report["params"]["angle_deg"] == pytest.approx(20.0, abs=0.05)
    saved = json.loads((tmp_path / "b" / "transform.json").read_text())
    assert saved["moving_spacing"] == [2.0, 1.0] and saved["units"]["matrix"].startswith("pixels")
    bad = run(runner, *args, "-o", tmp_path / "c", "--moving-spacing", "2,0")
    assert bad.exit_code == 2 and "--moving-spacing" in bad.output


def test_similarity_compares_the_pixels_in_use(runner, files):
    folder = files["folder"]
    base = ["similarity", folder / "fixed.png"]
    plain = json.loads(run(runner, *base, folder / "moving.png", "--json").stdout)
    masked = json.loads(
        run(
            runner, *base, folder / "moving.png", "--moving-mask", folder / "mask.png", "--json"
        ).stdout
    )
    by_nan = json.loads(run(runner, *base, folder / "nan.tif", "--json").stdout)
    assert masked["ssd"] < plain["ssd"] / 2  # the pattern's quarter is left out
    assert masked["correlation"] == pytest.approx(by_nan["correlation"], abs=0.01)


def test_profile_with_masks(runner, files, tmp_path):
    folder = files["folder"]
    args = ["profile", folder / "fixed.png", folder / "nan.tif", "--param", "tx", "--json"]
    result = run(runner, *args, "--register", "-o", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["minimum"] == pytest.approx(-12.4, abs=0.25)


def test_batch_takes_masks_from_the_csv_and_for_every_pair(runner, files, tmp_path):
    folder = files["folder"]
    pairs, mask = tmp_path / "pairs.csv", tmp_path / "mask.png"
    mask.write_bytes((folder / "mask.png").read_bytes())
    with open(pairs, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["fixed", "moving", "name", "moving_mask"])
        writer.writerow([folder / "fixed.png", folder / "moving.png", "masked", mask])
        writer.writerow([folder / "fixed.png", folder / "moving.png", "plain", ""])
    result = run(
        runner,
        "batch",
        "--pairs",
        pairs,
        "-o",
        tmp_path / "out",
        "--workers",
        "1",
        "--plots",
        "none",
    )
    assert result.exit_code == 3  # the unmasked pair is suspect
    text = (tmp_path / "out" / "results.csv").read_text().splitlines()
    rows = {r["name"]: r for r in csv.DictReader(text)}
    assert rows["masked"]["quality"] == "ok" and rows["plain"]["quality"] == "suspect"
    stat = mask.stat()  # the mask rewritten at the same path: its pair runs again
    os.utime(mask, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = run(runner, "batch", "--pairs", pairs, "-o", tmp_path / "out", "--plots", "none")
    assert again.exit_code == 3
    text = (tmp_path / "out" / "results.csv").read_text().splitlines()
    statuses = {r["name"]: r["status"] for r in csv.DictReader(text)}
    assert statuses == {"masked": "registered", "plain": "kept"}
    every = run(
        runner,
        "batch",
        folder / "fixed.png",
        folder / "moving.png",
        "--moving-mask",
        folder / "mask.png",
        "-o",
        tmp_path / "all",
        "--workers",
        "1",
    )
    assert every.exit_code == 0, every.output


def test_stack_reference_mask(runner, files, tmp_path):
    folder = files["folder"]
    brain = read_image(folder / "fixed.png").astype(float)
    from regcli.resample import translate

    frames = np.array([translate(brain, 3.0 * t, -2.0 * t) for t in range(3)])
    frames[:, 200:240, 20:200] = 255.0  # a label in the frame, not moving with the content
    tifffile.imwrite(
        tmp_path / "stack.tif", frames.astype(np.uint8), imagej=True, metadata={"axes": "TYX"}
    )
    mask = np.ones(brain.shape, np.uint8)
    mask[190:250, 10:210] = 0
    write_image(tmp_path / "mask.png", mask)
    result = run(
        runner,
        "stack",
        tmp_path / "stack.tif",
        "-o",
        tmp_path / "out",
        "--transform",
        "translation",
        "--reference-mask",
        tmp_path / "mask.png",
        "--json",
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "transforms.csv").read_text().splitlines()))
    shifts = [(float(r["tx"]), float(r["ty"])) for r in rows]
    assert np.allclose(shifts, [(0, 0), (3, -2), (6, -4)], atol=0.1), shifts
