"""Pixel spacing in and out (TIFF resolution tags, transform.json), ITK transform files,
--initial-transform, and the recipes for scikit-image, OpenCV and SimpleITK."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from conftest import smooth_blobs

from regcli.cli import helpers
from regcli.cli.main import cli
from regcli.images import ImageMeta, register_spacing
from regcli.io import read_channels, read_image, write_image, write_transform_json
from regcli.resample import inside_mask, translate, warp
from regcli.transform_files import read_itk_transform, read_transform, write_itk_transform
from regcli.transforms import make_transform


def invoke(runner, *args):
    result = runner.invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def resolution(path):
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        return (
            tags["XResolution"].value,
            tags["YResolution"].value,
            int(tags["ResolutionUnit"].value),
        )


@pytest.fixture
def pair(tmp_path):
    """A fixed TIFF of 1 x 2 um pixels (XResolution 0.5/um, YResolution 1/um), and a moving
    PNG (no spacing): the moving is the fixed shifted by (3, -2) pixels."""
    fixed = (smooth_blobs((72, 80), seed=21) * 60000).astype(np.uint16)
    tifffile.imwrite(
        tmp_path / "f.tif", fixed, photometric="minisblack", resolution=(0.5, 1.0), resolutionunit=5
    )
    moving = (translate(fixed.astype(float), 3.0, -2.0) / 60000 * 255).astype(np.uint8)
    write_image(tmp_path / "m.tif", moving)
    return tmp_path


def test_spacing_is_read_from_tiff_tags_and_imagej(tmp_path, pair):
    _, meta = read_channels(pair / "f.tif")
    assert meta.spacing == (1.0, 2.0) and meta.unit == "um"
    tifffile.imwrite(
        tmp_path / "ij.tif",
        np.zeros((4, 5), np.float32),
        imagej=True,
        resolution=(4.0, 2.0),
        metadata={"unit": "micron"},
    )
    assert read_channels(tmp_path / "ij.tif")[1] == ImageMeta(spacing=(0.5, 0.25), unit="um")
    write_image(tmp_path / "plain.tif", np.zeros((4, 5), np.uint8))
    assert read_channels(tmp_path / "plain.tif")[1].spacing is None  # 1/1 without a unit


def test_register_output_keeps_the_fixed_spacing_and_json_records_both(runner, pair):
    result = invoke(
        runner, "register", pair / "f.tif", pair / "m.tif", "-o", pair / "out",
        "--moving-spacing", "1,2um", "--transform", "translation",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert resolution(pair / "out" / "m_aligned.tif") == ((1, 2), (1, 1), 5)  # fixed's tags
    saved = json.loads((pair / "out" / "transform.json").read_text())
    assert saved["fixed_spacing"] == [1.0, 2.0] and saved["fixed_unit"] == "um"
    assert saved["moving_spacing"] == [1.0, 2.0] and saved["moving_unit"] == "um"
    assert saved["matrix_units"].startswith("pixels: fixed image pixels")
    # apply: the output is on the fixed grid, so it takes the spacing transform.json recorded
    out = pair / "applied.tif"
    assert invoke(runner, "apply", pair / "m.tif", pair / "out" / "transform.json", "-o", out)
    assert resolution(out) == ((1, 2), (1, 1), 5)
    assert read_channels(out)[1].spacing == (1.0, 2.0)


def test_spacing_options_and_the_engine_hook(pair, caplog):
    inputs = helpers.read_inputs(pair / "f.tif", pair / "m.tif", spacing=((3.0, 3.0), "nm"))
    assert (inputs.fixed_meta.spacing, inputs.fixed_meta.unit) == ((3.0, 3.0), "nm")  # over tags
    inputs = helpers.read_inputs(pair / "f.tif", pair / "m.tif", fixed_spacing=((3, 4), "mm"))
    assert (inputs.fixed_meta.spacing, inputs.fixed_meta.unit) == ((3.0, 4.0), "mm")
    assert inputs.output_meta.spacing == (3.0, 4.0)
    # m.tif gives no pixel size: next to one in mm it is taken to have the same (warned)
    assert (inputs.moving_meta.spacing, inputs.moving_meta.unit) == ((3.0, 4.0), "mm")
    assert "the moving image gives no pixel size" in caplog.text
    assert helpers.spacing_for_register(inputs) == {
        "fixed_spacing": (3.0, 4.0),
        "moving_spacing": (3.0, 4.0),
    }


def test_register_spacing_converts_units_and_fills_in_a_missing_spacing():
    fixed = ImageMeta(spacing=(0.5, 0.25), unit="um")
    spacing = register_spacing(fixed, ImageMeta(spacing=(250.0, 500.0), unit="nm"))
    assert spacing["fixed_spacing"] == (0.5, 0.25)
    assert spacing["moving_spacing"] == pytest.approx((0.25, 0.5))  # nm -> the fixed's um
    assert register_spacing(fixed, ImageMeta(spacing=(2.0, 2.0))) == {  # no unit: the other's
        "fixed_spacing": (0.5, 0.25),
        "moving_spacing": (2.0, 2.0),
    }
    assert register_spacing(ImageMeta(), fixed)["fixed_spacing"] == (0.5, 0.25)  # filled in
    aspect = ImageMeta(spacing=(2.0, 1.0))  # no unit: an aspect ratio; the other is 1 x 1
    assert register_spacing(aspect, ImageMeta()) == {
        "fixed_spacing": (2.0, 1.0),
        "moving_spacing": (1.0, 1.0),
    }
    assert register_spacing(ImageMeta(), ImageMeta()) == {
        "fixed_spacing": (1.0, 1.0),
        "moving_spacing": (1.0, 1.0),
    }


def test_file_spacing_reaches_register(runner, pair, monkeypatch):
    """The hook: `regcli register` and register_many (so `regcli batch`) pass the spacing
    read from the files, or given, to register()."""
    import regcli
    import regcli.registration

    real, seen = regcli.registration.register, []

    def register(fixed, moving, *, fixed_spacing=None, moving_spacing=None, **options):
        seen.append((fixed_spacing, moving_spacing))
        return real(
            fixed, moving, fixed_spacing=fixed_spacing, moving_spacing=moving_spacing, **options
        )

    monkeypatch.setattr(regcli.registration, "register", register)
    args = ["register", pair / "f.tif", pair / "m.tif", "-o", pair / "o", "--moving-spacing", "1,2"]
    assert invoke(runner, *args).exit_code == 0
    records = list(regcli.register_many([(pair / "f.tif", pair / "m.tif")], workers=1))
    assert records[0].error is None and records[0].result.converged
    given = {"moving_spacing": ((2.0, 4.0), "um")}
    records = list(
        regcli.register_many([(pair / "f.tif", pair / "m.tif")], workers=1, spacing=given)
    )
    assert records[0].error is None
    # m.tif has no spacing: the fixed's 1 x 2 um (filled in), or what was given
    assert seen == [((1.0, 2.0), (1.0, 2.0)), ((1.0, 2.0), (1.0, 2.0)), ((1.0, 2.0), (2.0, 4.0))]


def test_bad_spacing_option_is_a_usage_error(runner, pair):
    result = invoke(runner, "register", pair / "f.tif", pair / "m.tif", "--spacing", "1,-2")
    assert result.exit_code == 2 and "--spacing" in result.stderr


# --------------------------------------------------------------------------- ITK files


@pytest.mark.parametrize("spacings", [(None, None), ((2.0, 1.0), (1.5, 0.5))])
def test_itk_file_round_trip(tmp_path, spacings):
    matrix = make_transform("affine", shape=(60, 80)).matrix([1.1, 0.1, -0.05, 0.95, 3.0, -2.0])
    fixed_spacing, moving_spacing = spacings
    path = write_itk_transform(
        tmp_path / "t.tfm",
        matrix,
        center=(39.5, 29.5),
        fixed_spacing=fixed_spacing,
        moving_spacing=moving_spacing,
    )
    text = path.read_text()
    assert text.startswith("#Insight Transform File V1.0\n")
    assert "Transform: AffineTransform_double_2_2" in text
    back = read_itk_transform(path, fixed_spacing=fixed_spacing, moving_spacing=moving_spacing)
    np.testing.assert_allclose(back["matrix"], matrix, atol=1e-12)


def test_itk_euler_similarity_translation_and_composite(tmp_path):
    head = "#Insight Transform File V1.0\n#Transform 0\n"
    (tmp_path / "e.tfm").write_text(
        head + "Transform: Euler2DTransform_double_2_2\nParameters: 0.5 1 2\n"
        "FixedParameters: 10 20\n"
    )
    got = read_transform(tmp_path / "e.tfm")["matrix"]
    rigid = make_transform("rigid", center=(10, 20)).matrix([0.5, 1.0, 2.0])
    np.testing.assert_allclose(got, rigid, atol=1e-12)
    (tmp_path / "c.txt").write_text(
        head + "Transform: CompositeTransform_double_2_2\n#Transform 1\n"
        "Transform: TranslationTransform_double_2_2\nParameters: 5 0\nFixedParameters:\n"
        "#Transform 2\nTransform: Similarity2DTransform_float_2_2\nParameters: 2 0 0 1\n"
        "FixedParameters: 0 0\n"
    )
    # ITK applies the last listed first: x -> 2x + (0, 1) -> + (5, 0)
    np.testing.assert_allclose(
        read_transform(tmp_path / "c.txt")["matrix"] @ [1, 1, 1], [7, 3, 1], atol=1e-12
    )
    (tmp_path / "bad.tfm").write_text(head + "Transform: BSplineTransform_double_2_2\n")
    with pytest.raises(ValueError, match=r"bad\.tfm: BSplineTransform_double_2_2: not a"):
        read_transform(tmp_path / "bad.tfm")
    (tmp_path / "x.tfm").write_text('{"matrix": 1}')
    with pytest.raises(ValueError, match=r"x\.tfm: not an ITK transform file"):
        read_transform(tmp_path / "x.tfm")


def test_apply_reads_tfm_like_json(runner, tmp_path):
    image = smooth_blobs((60, 70), seed=2).astype(np.float32)
    write_image(tmp_path / "m.tif", image)
    matrix = make_transform("rigid", shape=(60, 70)).matrix([0.2, 2.0, -3.0])
    write_transform_json(tmp_path / "t.json", matrix)
    write_itk_transform(tmp_path / "t.tfm", matrix, center=(34.5, 29.5))
    outputs = []
    for name in ("t.json", "t.tfm"):
        out = tmp_path / f"{name}.tif"
        result = invoke(runner, "apply", tmp_path / "m.tif", tmp_path / name, "-o", out)
        assert result.exit_code == 0, result.output
        outputs.append(read_image(out))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)


@pytest.fixture
def registered(runner, samples, tmp_path):
    out = tmp_path / "out"
    args = ["register", samples / "BrainMRI_1.png", samples / "BrainMRI_4.png", "-o", out]
    result = invoke(runner, *args)
    assert result.exit_code == 0, result.output
    return out, np.array(json.loads((out / "transform.json").read_text())["matrix"])


def test_simpleitk_resample_with_regcli_tfm_reproduces_the_aligned_image(registered, samples):
    sitk = pytest.importorskip("SimpleITK")
    out, matrix = registered
    moving = read_image(samples / "BrainMRI_4.png").astype(np.float64)
    transform = sitk.ReadTransform(str(out / "transform.tfm"))
    image = sitk.GetImageFromArray(moving)
    resampled = sitk.Resample(image, image, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat64)
    theirs = sitk.GetArrayFromImage(resampled)
    ours = warp(moving, matrix, order=1)
    overlap = inside_mask(matrix, moving.shape, moving.shape, margin=1.0)
    assert overlap.mean() > 0.7
    difference = np.abs(theirs - ours)[overlap].max() / np.ptp(moving)
    assert difference < 1e-3, difference


def test_simpleitk_with_pixel_spacing(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    moving = smooth_blobs((50, 60), seed=5)
    matrix = make_transform("rigid", shape=(50, 60)).matrix([0.3, 2.0, -1.0])
    fixed_spacing, moving_spacing = (2.0, 1.0), (0.5, 0.75)  # (sy, sx)
    write_itk_transform(
        tmp_path / "t.tfm",
        matrix,
        center=(29.5, 24.5),
        fixed_spacing=fixed_spacing,
        moving_spacing=moving_spacing,
    )
    image = sitk.GetImageFromArray(moving)
    image.SetSpacing(moving_spacing[::-1])  # ITK: (sx, sy)
    reference = sitk.Image(60, 50, sitk.sitkFloat64)
    reference.SetSpacing(fixed_spacing[::-1])
    transform = sitk.ReadTransform(str(tmp_path / "t.tfm"))
    theirs = sitk.GetArrayFromImage(
        sitk.Resample(image, reference, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat64)
    )
    ours = warp(moving, matrix, order=1)
    overlap = inside_mask(matrix, moving.shape, moving.shape, margin=1.0)
    np.testing.assert_allclose(theirs[overlap], ours[overlap], atol=1e-9)


def test_to_skimage_and_the_opencv_recipe(samples):
    import regcli

    fixed = read_image(samples / "BrainMRI_1.png")
    moving = read_image(samples / "BrainMRI_4.png").astype(np.float64)
    result = regcli.register(fixed, moving)
    from skimage.transform import warp as skimage_warp

    ours = warp(moving, result.matrix, order=1)
    theirs = skimage_warp(moving, result.to_skimage(), order=1, preserve_range=True)
    overlap = inside_mask(result.matrix, moving.shape, moving.shape, margin=1.0)
    np.testing.assert_allclose(theirs[overlap], ours[overlap], atol=1e-9)
    cv2 = pytest.importorskip("cv2")
    moving = moving.astype(np.float32)
    h, w = fixed.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    opencv = cv2.warpAffine(moving, result.matrix[:2], (w, h), flags=flags)
    # OpenCV interpolates at 1/32 pixel: a grey level or two on 8-bit content
    assert np.abs(opencv - ours)[overlap].max() < 3.0


def test_initial_transform_reaches_the_core(runner, samples, tmp_path, monkeypatch):
    import regcli.registration

    seen = {}
    real = regcli.registration.register

    def spy(fixed, moving, **options):
        seen.update(options)
        return real(fixed, moving, **options)

    matrix = make_transform("rigid", shape=(256, 256)).matrix([np.radians(-18), -12.4, 8.7])
    write_itk_transform(tmp_path / "start.tfm", matrix, center=(127.5, 127.5))
    monkeypatch.setattr(regcli.registration, "register", spy)
    fixed, moving = samples / "BrainMRI_1.png", samples / "BrainMRI_4.png"
    for extra in (["--initial-transform", tmp_path / "start.tfm"], []):
        result = invoke(runner, "register", fixed, moving, "-o", tmp_path / "o", *extra)
        assert result.exit_code == 0, result.output
        break
    np.testing.assert_allclose(seen["initial_matrix"], matrix, atol=1e-9)
    bad = invoke(
        runner, "register", fixed, moving, "--initial-transform", tmp_path / "start.tfm",
        "--init", "search", "-o", tmp_path / "p",
    )  # fmt: skip
    assert bad.exit_code == 2 and "--initial-transform or --init search" in bad.stderr
    seen.clear()
    batch = invoke(
        runner, "batch", fixed, moving, "-o", tmp_path / "b", "--workers", 1, "--plots", "none",
        "--initial-transform", tmp_path / "start.tfm",
    )  # fmt: skip
    assert batch.exit_code == 0, batch.output
    np.testing.assert_allclose(seen["initial_matrix"], matrix, atol=1e-9)
