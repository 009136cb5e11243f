"""The bundled sample images: reproducible from their sources, and their truth is right."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from regcli.io import read_image
from regcli.resample import inside_mask, warp
from regcli.transforms import make_transform

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"

SHAPE = (256, 256)
GREY_8BIT = [
    "BrainMRI_1.png",
    "BrainMRI_2.png",
    "BrainMRI_3.png",
    "BrainMRI_4.png",
    "BrainT2_1.png",
    "BrainT2_2.png",
    *(f"{letter}{k}.png" for k in range(1, 6) for letter in "IJ"),
]


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "make_sample_images", ROOT / "scripts" / "make_sample_images.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """Stage 2 of the generator run into a fresh folder."""
    out = tmp_path_factory.mktemp("samples")
    assert _load_script().main(["--output-dir", str(out)]) == 0
    return out


def _derived_files():
    return sorted(p.name for p in SAMPLES.iterdir() if p.is_file() and p.name != "README.md")


def test_every_committed_file_is_regenerated(regenerated):
    assert _derived_files() == sorted(p.name for p in regenerated.iterdir())


@pytest.mark.parametrize("name", [n for n in _derived_files() if n.endswith(".png")])
def test_regenerated_pixels_are_identical(regenerated, name):
    # Pixels and dtype, not the PNG bytes: zlib builds may compress identical pixels differently.
    committed = iio.imread(SAMPLES / name)
    again = iio.imread(regenerated / name)
    assert committed.dtype == again.dtype
    assert committed.shape == again.shape
    np.testing.assert_array_equal(committed, again)


def test_regenerated_truth_is_identical(regenerated):
    assert (regenerated / "truth.json").read_text() == (SAMPLES / "truth.json").read_text()


@pytest.mark.parametrize("name", GREY_8BIT)
def test_grey_images_are_8bit(name):
    image = iio.imread(SAMPLES / name)
    assert image.dtype == np.uint8
    assert image.shape == SHAPE
    assert image.max() > 150  # real content, not a blank frame


def test_rgb_and_16bit_images():
    rgb = iio.imread(SAMPLES / "BrainMRI_1_rgb.png")
    assert rgb.dtype == np.uint8
    assert rgb.shape == (*SHAPE, 3)
    assert not np.array_equal(rgb[..., 0], rgb[..., 2])  # really coloured
    deep = read_image(SAMPLES / "BrainMRI_1_16bit.png")  # (old Pillow opens it as int32)
    assert deep.dtype == np.uint16
    assert deep.shape == SHAPE
    assert deep.max() > 255 * 100
    # Same slice as BrainMRI_1.png, at 257x the scale.
    grey = iio.imread(SAMPLES / "BrainMRI_1.png").astype(float)
    assert np.corrcoef(grey.ravel(), deep.ravel().astype(float))[0, 1] > 0.99


def test_identical_pair_and_fixed_images_share_pixels():
    base = iio.imread(SAMPLES / "BrainMRI_1.png")
    for name in ("I1.png", "J1.png", "I2.png", "I3.png", "I4.png", "I5.png"):
        np.testing.assert_array_equal(iio.imread(SAMPLES / name), base)


def test_noise_is_present_everywhere():
    # Two files from the same clean slice differ by noise alone: no case is exact.
    base = iio.imread(SAMPLES / "BrainMRI_1.png").astype(float)
    deep = iio.imread(SAMPLES / "BrainMRI_1_16bit.png").astype(float) / 257.0
    residual = (base - deep)[base > 20]
    assert 1.5 < np.std(residual) < 4.0


def test_truth_json_shape(truth):
    assert "fixed pixel" in truth["convention"]
    assert {"BrainMRI_2.png", "BrainMRI_3.png", "BrainMRI_4.png"} <= set(truth["pairs"])
    assert truth["pairs"]["BrainMRI_2.png"]["transform"] == "translation"
    assert truth["pairs"]["BrainMRI_3.png"]["transform"] == "rotation"
    assert truth["pairs"]["BrainMRI_3.png"]["params"]["center"] == [0.0, 0.0]
    assert truth["pairs"]["BrainMRI_4.png"]["transform"] == "rigid"
    assert truth["pairs"]["BrainMRI_4.png"]["params"]["center"] == [127.5, 127.5]
    multimodal = [p for p in truth["pairs"].values() if p["transform"] == "rigid"]
    assert max(abs(p["params"]["angle_deg"]) for p in multimodal) >= 30


@pytest.mark.parametrize("moving", json.loads((SAMPLES / "truth.json").read_text())["pairs"])
def test_truth_matrix_matches_params(truth, moving):
    pair = truth["pairs"][moving]
    model = make_transform(pair["transform"], shape=SHAPE)
    params = pair["params"]
    values = [
        np.deg2rad(params[f"{n}_deg"]) if n in model.angle_params else params[n]
        for n in model.param_names
    ]
    np.testing.assert_allclose(model.matrix(values), pair["matrix"], atol=1e-9)
    assert model.describe(values).keys() == params.keys()
    np.testing.assert_allclose(params["center"], model.center)


@pytest.mark.parametrize("moving", json.loads((SAMPLES / "truth.json").read_text())["pairs"])
def test_warping_by_truth_aligns(truth, moving):
    pair = truth["pairs"][moving]
    fixed = iio.imread(SAMPLES / pair["fixed"]).astype(float)
    moving_image = iio.imread(SAMPLES / moving).astype(float)
    matrix = np.array(pair["matrix"])
    aligned = warp(moving_image, matrix, order=3)
    # A T2 moving image is compared with J4.png, the same T2-like slice left unmoved; its head
    # outline must still fall on the T1 fixed image's.
    reference = iio.imread(SAMPLES / "J4.png").astype(float) if "T2" in moving else fixed
    if "T2" in moving:
        assert np.mean((aligned > 10) != (fixed > 10)) < 0.02
    overlap = inside_mask(matrix, SHAPE, SHAPE) & (reference > 10)
    after = np.mean(np.abs(aligned - reference)[overlap])
    before = np.mean(np.abs(moving_image - reference)[reference > 10])
    # The moved slice was resampled twice with cubic splines and noised twice: a few levels.
    assert after < 6.0
    assert after * 5 < before
