"""Colour and multi-channel images: registered on one image (luminance or a chosen channel),
moved and written with every channel and their dtype; layouts that cannot be told from a
stack are errors that say how to choose."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from conftest import PALETTE, palette_png, read_palette_png, smooth_blobs

from regcli.cli.main import cli
from regcli.errors import InputError
from regcli.io import read_channels, read_image, to_dtype, write_image, write_transform_json
from regcli.resample import translate, warp
from regcli.transforms import make_transform


def invoke(runner, *args):
    result = runner.invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def colour_pair(dtype="uint8"):
    """A fixed grey image and an RGB moving image: three different channels, each the fixed
    content moved by the same shift (so the luminance registers)."""
    fixed = smooth_blobs((80, 90), seed=11)
    scale = 250 if dtype == "uint8" else 60000
    channels = [fixed, 0.8 * fixed, 0.5 * fixed**2]
    moving = np.stack([translate(c, 3.0, -2.0, order=3) for c in channels], axis=-1)
    return to_dtype(fixed * scale, dtype), to_dtype(np.clip(moving, 0, 1) * scale, dtype)


def expected_channels(pixels, matrix, *, clip=True):
    """What every channel must be: regcli.warp of that channel (cubic), clipped to its own
    range (register's aligned image; apply clips to the dtype's), in the input dtype."""
    out = []
    for k in range(pixels.shape[2]):
        plane = pixels[..., k]
        moved = warp(plane, matrix, order=3)
        if clip:
            moved = np.clip(moved, plane.min(), plane.max())
        out.append(to_dtype(moved, pixels.dtype))
    return np.stack(out, axis=-1)


@pytest.mark.parametrize(("suffix", "dtype"), [(".png", "uint8"), (".tif", "uint16")])
def test_register_keeps_rgb_and_moves_every_channel_by_the_matrix(runner, tmp_path, suffix, dtype):
    fixed, moving = colour_pair(dtype)
    write_image(tmp_path / f"f{suffix}", fixed)
    write_image(tmp_path / f"m{suffix}", moving)
    out = tmp_path / "out"
    result = invoke(runner, "register", tmp_path / f"f{suffix}", tmp_path / f"m{suffix}", "-o", out)
    assert result.exit_code == 0, result.output
    assert "converted RGB image to grey" in result.stderr  # registered on the luminance
    saved = json.loads((out / "transform.json").read_text())
    matrix = np.array(saved["matrix"])
    # The luminance is not a multiple of the fixed image (blue holds 0.5 f^2): SSD's model
    # fits it less well, and from the search's start LM stops within 0.07 px of the shift.
    assert abs(saved["params"]["tx"] - 3.0) < 0.1 and abs(saved["params"]["ty"] + 2.0) < 0.1
    aligned, meta = read_channels(out / f"m_aligned{suffix}")
    assert aligned.shape == moving.shape and aligned.dtype == moving.dtype
    assert meta.colour == "RGB"
    np.testing.assert_array_equal(aligned, expected_channels(moving, matrix))


def test_apply_keeps_rgb_rgba_and_npy_channels(runner, tmp_path):
    matrix = make_transform("rigid", shape=(80, 90)).matrix([0.1, 2.5, -1.5])
    write_transform_json(tmp_path / "t.json", matrix, fixed_shape=(80, 90))
    _, rgb = colour_pair()
    rgba = np.concatenate([rgb, np.full((80, 90, 1), 200, np.uint8)], axis=-1)
    two = np.stack([smooth_blobs((80, 90), seed=s) for s in (1, 2)], axis=-1).astype(np.float32)
    for name, pixels in (("rgb.png", rgb), ("rgba.png", rgba), ("two.npy", two)):
        write_image(tmp_path / name, pixels)
        out = tmp_path / f"out_{name}"
        result = invoke(runner, "apply", tmp_path / name, tmp_path / "t.json", "-o", out, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["channels"] == pixels.shape[2]
        got, _ = read_channels(out)
        assert got.shape == pixels.shape and got.dtype == pixels.dtype
        np.testing.assert_array_equal(got, expected_channels(pixels, matrix, clip=False))


def test_two_channel_npy_needs_a_choice_then_registers_on_it(runner, tmp_path):
    fixed = smooth_blobs((64, 64), seed=3)
    other = smooth_blobs((64, 64), seed=4)
    moving = np.stack([translate(other, 2, 1), translate(fixed, 2, 1)], axis=-1)
    write_image(tmp_path / "f.npy", np.stack([other, fixed], axis=-1))
    write_image(tmp_path / "m.npy", moving)
    with pytest.raises(InputError, match=r"m\.npy: 64 x 64 x 2: 2 channels .*channel=K, K from 0"):
        read_image(tmp_path / "m.npy")
    result = invoke(
        runner, "register", tmp_path / "f.npy", tmp_path / "m.npy", "-o", tmp_path / "a"
    )
    assert result.exit_code == 1
    assert "f.npy: 64 x 64 x 2: 2 channels" in result.stderr  # never a silent cut
    assert "(--channel K, K from 0 to 1)" in result.stderr
    assert not (tmp_path / "a").exists()
    out = tmp_path / "b"
    args = ["register", tmp_path / "f.npy", tmp_path / "m.npy", "-o", out, "--channel", 1]
    result = invoke(runner, *args, "--transform", "translation")
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "transform.json").read_text())
    assert abs(saved["params"]["tx"] - 2) < 0.05 and abs(saved["params"]["ty"] - 1) < 0.05
    aligned, _ = read_channels(out / "m_aligned.npy")
    assert aligned.shape == (64, 64, 2)  # both channels moved
    bad = invoke(runner, "similarity", tmp_path / "f.npy", tmp_path / "m.npy", "--channel", 2)
    assert bad.exit_code == 2 and "has 2 channels (0 to 1), got 2" in bad.stderr


def test_tiff_samples_imagej_channels_and_pages(tmp_path):
    planes = np.stack([smooth_blobs((20, 30), seed=s) for s in range(3)]).astype(np.float32)
    # Two samples without alpha: no colour meaning, a choice is needed.
    yxs = np.moveaxis(planes[:2], 0, -1)
    tifffile.imwrite(tmp_path / "yxs.tif", yxs, photometric="minisblack", planarconfig="contig")
    with pytest.raises(InputError, match="2 channels with no colour meaning"):
        read_image(tmp_path / "yxs.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "yxs.tif", channel=1), planes[1])
    # Grey + alpha: its grey.
    la = (np.moveaxis(planes[:2], 0, -1) * 200).astype(np.uint8)
    tifffile.imwrite(tmp_path / "la.tif", la, photometric="minisblack", extrasamples=["unassalpha"])
    assert read_channels(tmp_path / "la.tif")[1].colour == "LA"
    np.testing.assert_array_equal(read_image(tmp_path / "la.tif"), la[..., 0])
    # ImageJ channels (CYX): channels last.
    tifffile.imwrite(tmp_path / "cyx.tif", planes, imagej=True, metadata={"axes": "CYX"})
    pixels, meta = read_channels(tmp_path / "cyx.tif")
    assert pixels.shape == (20, 30, 3) and meta.channels == 3 and meta.colour is None
    np.testing.assert_array_equal(read_image(tmp_path / "cyx.tif", channel=2), planes[2])
    # Plain pages: a stack or channels? read_image says how to choose, channel=K picks.
    tifffile.imwrite(tmp_path / "pages.tif", planes, photometric="minisblack")
    with pytest.raises(InputError, match=r"pages\.tif: got a 3-D stack .*channel=K, K from 0 to 2"):
        read_image(tmp_path / "pages.tif")
    with pytest.raises(InputError, match="does not say whether its pages are channels or frames"):
        read_channels(tmp_path / "pages.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "pages.tif", channel=1), planes[1])


def test_write_image_channels_round_trip_and_refusals(tmp_path):
    rgb = (np.random.default_rng(0).random((9, 11, 3)) * 255).astype(np.uint8)
    for name in ("c.png", "c.tif", "c.npy"):
        write_image(tmp_path / name, rgb)
        back, meta = read_channels(tmp_path / name)
        np.testing.assert_array_equal(back, rgb)
        assert meta.colour == "RGB"
    with pytest.raises(InputError, match=r"\.jpg cannot store 2 channels"):
        write_image(tmp_path / "two.jpg", rgb[..., :2])
    with pytest.raises(InputError, match=r"\.png cannot store 3 channels of uint16"):
        write_image(tmp_path / "deep.png", rgb.astype(np.uint16))
    assert not list(tmp_path.glob("two.*")) and not list(tmp_path.glob("deep.*"))
    two = rgb[..., :2].astype(np.float64)
    write_image(tmp_path / "two.tif", two)
    back, meta = read_channels(tmp_path / "two.tif")
    np.testing.assert_array_equal(back, two)
    assert meta.channels == 2 and meta.colour is None


def test_batch_pair_folders_keep_channels_and_spacing(runner, tmp_path):
    fixed, moving = colour_pair("uint16")
    tifffile.imwrite(
        tmp_path / "f.tif", fixed, photometric="minisblack", resolution=(2.0, 4.0), resolutionunit=5
    )
    write_image(tmp_path / "m.tif", moving)
    out = tmp_path / "out"
    args = ["batch", tmp_path / "f.tif", tmp_path / "m.tif", "-o", out, "--workers", 1]
    result = invoke(runner, *args, "--plots", "none")
    assert result.exit_code == 0, result.output
    matrix = np.array(json.loads((out / "m" / "transform.json").read_text())["matrix"])
    aligned, meta = read_channels(out / "m" / "m_aligned.tif")
    assert meta.colour == "RGB" and meta.spacing == (0.25, 0.5) and meta.unit == "um"
    np.testing.assert_array_equal(aligned, expected_channels(moving, matrix))
    assert (out / "m" / "transform.tfm").read_text().startswith("#Insight Transform File")


@pytest.mark.parametrize("command", ["register", "batch"])
def test_the_aligned_image_of_a_palette_png_keeps_its_labels_and_palette(runner, tmp_path, command):
    # A label map registered on its indices: the aligned image is moved nearest-neighbour
    # (cubic invented labels between neighbours) and written with the moving PNG's palette.
    labels = np.digitize(smooth_blobs((80, 90), seed=11), [0.2, 0.5]).astype(np.uint8) * 3
    fixed = palette_png(tmp_path / "f.png", labels)
    moving = palette_png(tmp_path / "m.png", np.roll(labels, (3, -2), axis=(0, 1)))
    out = tmp_path / "out"
    args = [command, fixed, moving, "-o", out, "--transform", "translation", "--plots", "none"]
    result = invoke(runner, "-q", *args)
    assert result.exit_code == 0, result.output
    folder = out if command == "register" else out / "m"
    matrix = np.array(json.loads((folder / "transform.json").read_text())["matrix"])
    mode, palette, aligned = read_palette_png(folder / "m_aligned.png")
    assert (mode, palette) == ("P", PALETTE)
    moving_labels = np.roll(labels, (3, -2), axis=(0, 1))
    np.testing.assert_array_equal(aligned, warp(moving_labels, matrix, order=0).astype(np.uint8))
    assert set(np.unique(aligned)) <= {0, 3, 6}


def test_stack_with_channels_aligns_the_chosen_one(runner, tmp_path):
    from regcli.stackio import open_stack

    base = smooth_blobs((48, 56), seed=9)
    frames = np.stack([translate(base, k, -0.5 * k) for k in range(4)])
    other = np.stack([translate(smooth_blobs((48, 56), seed=10), k, 0) for k in range(4)])
    tcyx = np.stack([other, frames], axis=1).astype(np.float32)  # channel 1 is the one
    tifffile.imwrite(tmp_path / "tcyx.tif", tcyx, imagej=True, metadata={"axes": "TCYX"})
    np.save(tmp_path / "tyxc.npy", np.moveaxis(tcyx, 1, -1))
    for name in ("tcyx.tif", "tyxc.npy"):
        with pytest.raises(InputError, match=r"with 2 channels; .*channel=K, K from 0 to 1"):
            open_stack(tmp_path / name)
        with open_stack(tmp_path / name, channel=1) as source:
            assert source.shape == (4, 48, 56)
            np.testing.assert_allclose(source.frame(2), frames[2], atol=1e-6)
    out = tmp_path / "out"
    args = ["stack", tmp_path / "tcyx.tif", "-o", out, "--transform", "translation"]
    refused = invoke(runner, *args)
    assert refused.exit_code == 1 and "(--channel K, K from 0 to 1)" in refused.stderr
    result = invoke(runner, *args, "--channel", 1)
    assert result.exit_code == 0, result.output
    table = (out / "transforms.csv").read_text().splitlines()
    assert len(table) == 5
