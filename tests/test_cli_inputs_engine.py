"""The file side of the inputs (channels, TIFF resolution, the spacing options) meeting the
engine side (masks, NaN pixels, two shapes, physical spacing): the spacing read from the
files or given reaches every registration of ``register`` and ``batch``; channels, masks and
NaN pixels work together."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from bench import input_cases
from regcli.cli.main import cli
from regcli.images import ImageMeta
from regcli.io import read_channels, read_image, write_image
from regcli.resample import translate
from regcli.transforms import mean_displacement

#: tifffile's ResolutionUnit for micrometres (regcli reads it as "um").
MICROMETRE = 5


def run(runner, *args):
    return runner.invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def aniso(tmp_path_factory, samples):
    """The 1 x 2 pixel case (a physically rigid 20 deg turn): the fixed PNG (no spacing), the
    fixed as a TIFF of 1 x 1 um pixels and the moving as a TIFF of 2 x 1 um pixels (tags),
    and the moving without tags."""
    folder = tmp_path_factory.mktemp("aniso")
    brain = read_image(samples / "BrainMRI_1.png")
    case = input_cases.anisotropic_pixels(brain)
    write_image(folder / "fixed.png", brain)
    tifffile.imwrite(folder / "fixed.tif", brain, resolution=(1.0, 1.0), resolutionunit=MICROMETRE)
    moving = case.moving.astype(np.float32)
    tifffile.imwrite(
        folder / "moving.tif", moving, resolution=(1.0, 0.5), resolutionunit=MICROMETRE
    )
    write_image(folder / "plain.tif", moving)
    return folder, case


def error_of(matrix, case) -> float:
    return mean_displacement(np.array(matrix), case.truth, case.fixed.shape)


def test_tiff_resolution_reaches_the_registration_without_options(runner, aniso, tmp_path):
    folder, case = aniso
    args = ["register", folder / "fixed.tif", folder / "moving.tif", "--json", "-q"]
    result = run(runner, *args, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert error_of(report["matrix"], case) < 0.1
    assert report["params"]["angle_deg"] == pytest.approx(20.0, abs=0.05)
    assert report["units"]["params"].startswith("physical")
    saved = json.loads((tmp_path / "out" / "transform.json").read_text())
    assert saved["fixed_spacing"] == [1.0, 1.0] and saved["moving_spacing"] == [2.0, 1.0]
    assert saved["fixed_unit"] == saved["moving_unit"] == "um"
    assert {k: saved[k] for k in ("fixed_spacing", "moving_spacing", "params")} == {
        k: report[k] for k in ("fixed_spacing", "moving_spacing", "params")
    }
    # the aligned TIFF is on the fixed grid: the fixed image's resolution
    assert read_channels(tmp_path / "out" / "moving_aligned.tif")[1] == ImageMeta(
        spacing=(1.0, 1.0), unit="um"
    )


def test_spacing_options_with_units_reach_the_registration(runner, aniso, tmp_path):
    folder, case = aniso
    args = ["register", folder / "fixed.png", folder / "plain.tif", "--json", "-q"]
    plain = run(runner, *args, "-o", tmp_path / "a")
    assert plain.exit_code == 3  # no rigid matrix fits it in pixels
    spaced = run(
        runner, *args, "-o", tmp_path / "b", "--fixed-spacing", "1,1um", "--moving-spacing",
        "2000,1000nm",
    )  # fmt: skip
    assert spaced.exit_code == 0, spaced.output
    report = json.loads(spaced.stdout)
    assert error_of(report["matrix"], case) < 0.1  # 1 x 1 um fixed, 2 x 1 um moving
    assert read_channels(tmp_path / "b" / "plain_aligned.tif")[1] == ImageMeta(
        spacing=(1.0, 1.0), unit="um"
    )


def test_batch_passes_the_spacing_to_every_registration(runner, aniso, tmp_path, monkeypatch):
    folder, case = aniso
    out = tmp_path / "out"
    result = run(
        runner, "batch", folder / "fixed.png", folder / "plain.tif", folder / "moving.tif",
        "-o", out, "--moving-spacing", "2,1", "--plots", "none", "--workers", "1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("plain", "moving"):
        saved = json.loads((out / name / "transform.json").read_text())
        assert error_of(saved["matrix"], case) < 0.1, name
        assert saved["params"]["angle_deg"] == pytest.approx(20.0, abs=0.05)
        assert saved["moving_spacing"] == [2.0, 1.0]
    # --spacing (both images) reaches each registration as it is
    import regcli.registration

    real, seen = regcli.registration.register, []

    def register(fixed, moving, **options):
        seen.append((options.get("fixed_spacing"), options.get("moving_spacing")))
        return real(fixed, moving, **options)

    monkeypatch.setattr(regcli.registration, "register", register)
    result = run(
        runner, "batch", folder / "fixed.png", folder / "plain.tif", folder / "moving.tif",
        "-o", tmp_path / "again", "--spacing", "3,3um", "--plots", "none", "--workers", "1",
    )  # fmt: skip
    assert result.exit_code in (0, 3), result.output
    assert seen == [((3.0, 3.0), (3.0, 3.0))] * 2


def test_rgb_moving_with_a_mask_stays_rgb(runner, samples, tmp_path):
    mask = np.ones((256, 256), np.uint8)
    mask[:20] = 0
    write_image(tmp_path / "mask.png", mask)
    result = run(
        runner, "register", samples / "BrainMRI_1.png", samples / "BrainMRI_1_rgb.png",
        "-o", tmp_path / "out", "--fixed-mask", tmp_path / "mask.png", "--plots", "none", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    pixels, meta = read_channels(tmp_path / "out" / "BrainMRI_1_rgb_aligned.png")
    assert pixels.shape == (256, 256, 3) and meta.colour == "RGB"


def test_channels_with_nan_pixels_and_two_shapes(runner, samples, tmp_path):
    """A two-channel float moving image with NaN pixels, smaller than the fixed one: registered
    on --channel 1 (NaN as masked), aligned with both channels, NaN kept."""
    brain = read_image(samples / "BrainMRI_1.png").astype(np.float32)
    moved = translate(brain, 4.0, -3.0).astype(np.float32)[:, :200]
    channels = np.stack([255.0 - moved, moved], axis=-1)
    channels[100:120, 60:90, :] = np.nan
    tifffile.imwrite(
        tmp_path / "two.tif", channels, photometric="minisblack", planarconfig="contig"
    )
    args = ["register", samples / "BrainMRI_1.png", tmp_path / "two.tif", "--transform"]
    result = run(runner, *args, "translation", "-o", tmp_path / "out", "--json", "-q")
    assert result.exit_code == 1 and "--channel K" in result.output  # no colour meaning
    result = run(
        runner, *args, "translation", "-o", tmp_path / "out", "--json", "-q", "--channel", "1"
    )
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)["params"]
    assert (params["tx"], params["ty"]) == (
        pytest.approx(4.0, abs=0.05),
        pytest.approx(-3.0, abs=0.05),
    )
    aligned, meta = read_channels(tmp_path / "out" / "two_aligned.tif", allow_nan=True)
    assert aligned.shape == (256, 256, 2) and aligned.dtype == np.float32 and meta.channels == 2
    nan = np.isnan(aligned)
    assert nan[..., 0].any() and np.array_equal(nan[..., 0], nan[..., 1])
    assert not nan[20:60, 20:60].any()  # NaN only where the NaN pixels landed
    assert read_image(tmp_path / "two.tif", channel=0, allow_nan=True).shape == (256, 200)


def test_fixed_spacing_of_two_by_one(runner, aniso, tmp_path):
    """The 1 x 2 pair the other way round: FIXED on 2 x 1 um pixels, MOVING on 1 x 1 um."""
    folder, case = aniso
    result = run(
        runner, "register", folder / "plain.tif", folder / "fixed.tif", "-o", tmp_path,
        "--fixed-spacing", "2,1um", "--moving-spacing", "1,1um", "--json", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    inverse = np.linalg.inv(case.truth)
    error = mean_displacement(np.array(report["matrix"]), inverse, case.moving.shape)
    assert error < 0.1
    assert report["params"]["angle_deg"] == pytest.approx(-20.0, abs=0.05)
    rows, cols = case.moving.shape
    center = [(cols - 1) / 2.0 * 1.0, (rows - 1) / 2.0 * 2.0]  # physical: x * sx, y * sy
    assert report["params"]["center"] == pytest.approx(center)
    assert read_channels(tmp_path / "fixed_aligned.tif")[1] == ImageMeta(
        spacing=(2.0, 1.0), unit="um"
    )
    tfm = (tmp_path / "transform.tfm").read_text().splitlines()
    fixed_parameters = [float(v) for v in tfm[-1].split(":")[1].split()]
    assert fixed_parameters == pytest.approx(center)  # ITK's centre is physical too


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (("--spacing", "1,200"), "'--spacing'"),
        (("--moving-spacing", "0.005,1"), "'--moving-spacing'"),
        (("--fixed-spacing", "1,1", "--spacing", "1,150"), "'--spacing'"),
    ],
)
def test_a_spacing_out_of_range_names_the_option_given(runner, aniso, tmp_path, options, named):
    """``--spacing`` sets both images' spacing: its error names ``--spacing``, not the
    per-image option the core checks (exit 2, nothing written)."""
    folder, _ = aniso
    out = tmp_path / "out"
    moving = folder / "plain.tif"
    result = run(runner, "register", folder / "fixed.png", moving, "-o", out, *options)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {named}" in result.stderr
    assert "times longer one way than the other" in result.stderr
    assert not out.exists()


def test_a_file_spacing_out_of_range_names_the_file(runner, aniso, tmp_path):
    folder, _ = aniso
    tall = tmp_path / "tall.tif"
    tifffile.imwrite(
        tall, read_image(folder / "plain.tif"), resolution=(1.0, 1 / 300), resolutionunit=MICROMETRE
    )
    result = run(runner, "register", folder / "fixed.tif", tall, "-o", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert f"{tall}: its pixel spacing: pixels of 300 x 1" in result.stderr
