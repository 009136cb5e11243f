"""Image I/O: formats and dtypes round-trip, colour becomes grey, bad files give clear
InputErrors, outputs are checked and written atomically, transform JSON files round-trip."""

from __future__ import annotations

import json
import logging
import os
import warnings

import numpy as np
import pytest
import tifffile
from conftest import PALETTE, palette_png, read_palette_png

from regcli.errors import InputError
from regcli.io import (
    TRANSFORM_CONVENTION,
    atomic_output,
    check_image,
    check_output_format,
    check_output_path,
    check_same_shape,
    read_channels,
    read_image,
    read_transform_json,
    to_dtype,
    write_image,
    write_transform_json,
)
from regcli.transforms import rotation_matrix, translation_matrix

DTYPES = ["uint8", "uint16", "float32", "float64"]
SUFFIX_DTYPES = [
    (".png", "uint8"),
    (".png", "uint16"),
    (".jpg", "uint8"),
    (".tif", "uint8"),
    (".tif", "uint16"),
    (".tif", "float32"),
    (".tif", "float64"),
    (".tiff", "uint16"),
    (".npy", "uint8"),
    (".npy", "float32"),
    (".npy", "float64"),
]


def ramp(dtype, shape=(12, 17)) -> np.ndarray:
    """A smooth image spanning most of the dtype's range (JPEG keeps smooth images close)."""
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols]
    unit = (x + 2 * y) / (cols - 1 + 2 * (rows - 1))
    if np.issubdtype(np.dtype(dtype), np.integer):
        return to_dtype(unit * 0.9 * np.iinfo(dtype).max, dtype)
    return (unit * 3.5 - 1.0).astype(dtype)


# --------------------------------------------------------------------------- reading/writing


@pytest.mark.parametrize(("suffix", "dtype"), SUFFIX_DTYPES)
def test_write_read_round_trip_keeps_dtype_and_values(tmp_path, suffix, dtype):
    image = ramp(dtype)
    path = write_image(tmp_path / f"img{suffix}", image)
    back = read_image(path)
    assert back.dtype == np.dtype(dtype)
    assert back.shape == image.shape
    if suffix == ".jpg":  # lossy, but at quality 95 a smooth ramp stays within a few levels
        assert np.abs(back.astype(int) - image.astype(int)).max() <= 4
    else:
        np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_write_clips_interpolation_overshoot_instead_of_wrapping(tmp_path, dtype):
    top = np.iinfo(dtype).max
    values = np.array([[-7.6, 0.4, 10.5, top + 0.4, top + 30.0]])
    back = read_image(write_image(tmp_path / "o.png", values, dtype=dtype))
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, [[0, 0, 10, top, top]])  # rint(10.5) = 10 (even)


INTEGER_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
@pytest.mark.parametrize("source", ["float32", "float64"])
def test_to_dtype_saturates_at_every_integer_dtypes_extremes(dtype, source):
    # In float64, iinfo(int64).max rounds up to 2**63 (uint64: 2**64), one past the range: a
    # clip to that bound used to wrap the brightest pixels to INT64_MIN (uint64: 0).
    info = np.iinfo(dtype)
    values = np.array([-1e30, float(info.min), 0.4, float(info.max), 1e30]).astype(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in cast"
        out = to_dtype(values, dtype)
    assert out.dtype == np.dtype(dtype)
    assert out[0] == out[1] == info.min
    assert out[2] == 0
    # The top values are the largest float64 the dtype holds (within 2**-52 of its maximum).
    assert out[3] == out[4] >= info.max - (info.max >> 52)


def test_to_dtype_between_integer_dtypes_clips_exactly():
    big = np.array([-5, 300, 2**40], np.int64)
    np.testing.assert_array_equal(to_dtype(big, np.uint8), [0, 255, 255])
    top = np.array([2**64 - 1], np.uint64)
    np.testing.assert_array_equal(to_dtype(top, np.int64), [np.iinfo(np.int64).max])


def test_to_dtype_float_stays_unclipped():
    values = np.array([[-2.5, 7.25]])
    np.testing.assert_array_equal(to_dtype(values, np.float32), values.astype(np.float32))


def test_a_palette_png_is_a_label_map_written_back_with_its_palette(tmp_path):
    labels = np.zeros((12, 17), np.uint8)
    labels[:, 8:] = 2
    src = palette_png(tmp_path / "labels.png", labels, transparency=0)
    pixels, meta = read_channels(src)
    np.testing.assert_array_equal(pixels, labels)  # the indices, not the colours
    assert meta.label_map and meta.palette.rgb == PALETTE and meta.palette.transparency == 0
    mode, palette, back = read_palette_png(write_image(tmp_path / "out.png", pixels, meta=meta))
    assert (mode, palette) == ("P", PALETTE)
    np.testing.assert_array_equal(back, labels)
    from PIL import Image

    with Image.open(tmp_path / "out.png") as written:
        assert written.info.get("transparency") == 0
    # elsewhere a label map is its indices; a grey PNG is no label map
    np.testing.assert_array_equal(
        read_image(write_image(tmp_path / "o.tif", pixels, meta=meta)), labels
    )
    assert not read_channels(write_image(tmp_path / "grey.png", labels))[1].label_map


@pytest.mark.parametrize(("channels", "kind"), [(3, "RGB"), (4, "RGBA")], ids=["rgb", "rgba"])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_colour_becomes_luminance_grey_with_a_note(tmp_path, caplog, channels, kind, suffix):
    rng = np.random.default_rng(1)
    colour = rng.integers(0, 256, size=(6, 9, channels), dtype=np.uint8)
    path = tmp_path / f"colour{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, colour, photometric="rgb")
    else:
        import imageio.v3 as iio

        iio.imwrite(path, colour)
    with caplog.at_level(logging.WARNING, logger="regcli"):
        gray = read_image(path)
    expected = np.rint(colour[..., :3].astype(float) @ [0.2125, 0.7154, 0.0721])
    assert gray.dtype == np.uint8
    assert gray.shape == (6, 9)
    np.testing.assert_array_equal(gray, expected.astype(np.uint8))
    assert f"converted {kind} image to grey" in caplog.text
    assert str(path) in caplog.text


def test_sample_rgb_png_reads_as_grey(samples):
    gray = read_image(samples / "BrainMRI_1_rgb.png")
    reference = read_image(samples / "BrainMRI_1.png")
    assert gray.shape == reference.shape
    assert gray.ndim == 2


def test_grey_with_alpha_keeps_the_grey_channel(tmp_path):
    import imageio.v3 as iio

    la = np.stack([ramp("uint8"), np.full((12, 17), 255, np.uint8)], axis=-1)
    iio.imwrite(tmp_path / "la.png", la)
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), la[..., 0])


def test_single_page_stack_of_one_is_a_2d_image(tmp_path):
    np.save(tmp_path / "one.npy", ramp("float32")[None])
    assert read_image(tmp_path / "one.npy").shape == (12, 17)


# --------------------------------------------------------------------------- bad inputs


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.png: no such file"):
        read_image(tmp_path / "nope.png")


def test_directory(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_image(tmp_path)


def test_text_file_named_png(tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture\n")
    with pytest.raises(InputError, match=r"notes\.png: not a readable image.*PNG"):
        read_image(tmp_path / "notes.png")


@pytest.mark.parametrize("suffix", [".png", ".tif", ".npy", ".jpg"])
def test_empty_file(tmp_path, suffix):
    (tmp_path / f"empty{suffix}").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.*0 bytes"):
        read_image(tmp_path / f"empty{suffix}")


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_garbage_tif_and_npy(tmp_path, suffix):
    (tmp_path / f"junk{suffix}").write_bytes(b"\x00\x01garbage" * 20)
    with pytest.raises(InputError, match=rf"junk\{suffix}: not a readable image"):
        read_image(tmp_path / f"junk{suffix}")


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"obj\.npy: the array holds Python objects"):
        read_image(tmp_path / "obj.npy")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable_file(tmp_path):
    path = write_image(tmp_path / "secret.png", ramp("uint8"))
    path.chmod(0)
    try:
        with pytest.raises(InputError, match=r"secret\.png: permission denied"):
            read_image(path)
    finally:
        path.chmod(0o644)


def test_multipage_tiff_is_a_stack(tmp_path):
    # Three pages of 5 x 3: the shape (3, 5, 3) alone would look like a colour image.
    tifffile.imwrite(
        tmp_path / "pages.tif", np.zeros((3, 5, 3), np.uint8), photometric="minisblack"
    )
    with pytest.raises(InputError, match=r"pages\.tif: got a 3-D stack of shape \(3, 5, 3\)"):
        read_image(tmp_path / "pages.tif")


def test_npy_with_five_channels_is_a_stack(tmp_path):
    np.save(tmp_path / "five.npy", np.zeros((8, 9, 5)))
    with pytest.raises(InputError, match=r"five\.npy: got a 3-D stack of shape \(8, 9, 5\)"):
        read_image(tmp_path / "five.npy")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_nan_and_inf_pixels(tmp_path, bad, suffix):
    image = ramp("float32")
    image[3, 4] = bad
    image[5, 6] = bad
    path = tmp_path / f"bad{suffix}"
    if suffix == ".npy":
        np.save(path, image)
    else:
        tifffile.imwrite(path, image)
    with pytest.raises(InputError, match=rf"bad\{suffix}: 2 pixel\(s\) are NaN or infinite"):
        read_image(path)


@pytest.mark.parametrize("shape", [(0, 5), (4, 0), (0, 0)])
def test_empty_image(tmp_path, shape):
    np.save(tmp_path / "empty.npy", np.zeros(shape))
    with pytest.raises(InputError, match=r"empty\.npy: the image is empty"):
        read_image(tmp_path / "empty.npy")


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(5), r"picture: got a 1-D array of shape \(5,\)"),
        (np.zeros((2, 3, 4, 5)), r"picture: got a 4-D array"),
        (np.array([["a", "b"]]), r"picture: expected a numeric image, got dtype <U1"),
        (np.zeros((3, 3), complex), "dtype complex128"),
    ],
)
def test_check_image_rejects(array, message):
    with pytest.raises(InputError, match=message):
        check_image(array, name="picture")


def test_check_image_accepts_bool_as_uint8():
    out = check_image(np.eye(3, dtype=bool))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.eye(3))


def test_shapes_differ_names_both_shapes():
    with pytest.raises(InputError, match=r"fixed and moving .*\(4, 5\) and \(5, 4\)"):
        check_same_shape(np.zeros((4, 5)), np.zeros((5, 4)), names=("fixed", "moving"))
    check_same_shape(np.zeros((4, 5)), np.ones((4, 5)))


# --------------------------------------------------------------------------- output checks


def test_output_format_checks(tmp_path):
    assert check_output_format(tmp_path / "a.TIF", np.float32) == ".tif"
    with pytest.raises(InputError, match=r"a\.bmp: unknown image format '\.bmp'"):
        check_output_format(tmp_path / "a.bmp")
    with pytest.raises(InputError, match="no ending"):
        check_output_format(tmp_path / "noending")
    with pytest.raises(InputError, match=r"\.png cannot store float32 pixels.*\.tif or \.npy"):
        check_output_format(tmp_path / "a.png", "float32")
    with pytest.raises(InputError, match=r"\.jpg cannot store uint16"):
        check_output_format(tmp_path / "a.jpg", np.uint16)


def test_write_image_refuses_unknown_format_and_bad_dtype_leaving_nothing(tmp_path):
    with pytest.raises(InputError, match="unknown image format"):
        write_image(tmp_path / "out.gif", ramp("uint8"))
    with pytest.raises(InputError, match="cannot store float64"):
        write_image(tmp_path / "out.png", ramp("float64"))
    with pytest.raises(InputError, match="NaN or infinite"):
        write_image(tmp_path / "out.tif", np.full((3, 3), np.nan), dtype=np.uint8)
    assert list(tmp_path.iterdir()) == []


def test_check_output_path(tmp_path):
    src = write_image(tmp_path / "in.png", ramp("uint8"))
    out = tmp_path / "out.png"
    assert check_output_path(out) == out
    out.write_bytes(b"old")
    with pytest.raises(InputError, match=r"out\.png: already exists \(overwrite=True") as info:
        check_output_path(out)
    assert info.value.param == "overwrite"
    assert check_output_path(out, overwrite=True) == out
    with pytest.raises(InputError, match="refusing to overwrite the input file"):
        check_output_path(src, overwrite=True, inputs=[src])
    with pytest.raises(InputError, match=r"folder .*missing does not exist"):
        check_output_path(tmp_path / "missing" / "o.png")
    with pytest.raises(InputError, match="is a directory"):
        check_output_path(tmp_path, overwrite=True)


def test_input_reached_through_a_symlink_is_still_the_input(tmp_path):
    src = write_image(tmp_path / "in.png", ramp("uint8"))
    (tmp_path / "link.png").symlink_to(src)
    with pytest.raises(InputError, match="refusing to overwrite the input"):
        check_output_path(tmp_path / "link.png", overwrite=True, inputs=[src])


def test_write_image_without_overwrite_keeps_existing_file(tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"precious")
    with pytest.raises(InputError, match="already exists"):
        write_image(out, ramp("uint8"), overwrite=False)
    assert out.read_bytes() == b"precious"


def test_atomic_output_leaves_old_file_and_no_temp_on_error(tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(out) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]


def test_atomic_output_gives_the_usual_file_mode(tmp_path):
    out = write_image(tmp_path / "o.png", ramp("uint8"))
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_private_staging_folder_is_written_in_place(tmp_path, monkeypatch):
    """In a private staging folder (published whole by its owner) the writers make no
    temporary file; elsewhere they still do."""
    import regcli._atomic as atomic

    stage = tmp_path / "stage"
    stage.mkdir()

    def no_temporary(*args, **kwargs):
        raise AssertionError("a temporary file was made")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", no_temporary)
    with atomic.private_folder(stage):
        write_image(stage / "a.png", ramp("uint8"))
        write_transform_json(stage / "t.json", np.eye(3))
        with pytest.raises(InputError, match="already exists"):
            write_image(stage / "a.png", ramp("uint8"), overwrite=False)
    assert sorted(p.name for p in stage.iterdir()) == ["a.png", "t.json"]
    assert np.array_equal(read_image(stage / "a.png"), ramp("uint8"))
    mask = os.umask(0)
    os.umask(mask)
    assert (stage / "a.png").stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(AssertionError, match="temporary"):  # no longer private
        write_image(stage / "b.png", ramp("uint8"))


def test_a_failed_write_in_a_private_folder_leaves_no_file(tmp_path):
    import regcli._atomic as atomic

    with atomic.private_folder(tmp_path):
        with pytest.raises(RuntimeError, match="boom"), atomic_output(tmp_path / "o.png") as p:
            p.write_bytes(b"half")
            raise RuntimeError("boom")
        with pytest.raises(OSError) as info, atomic_output(tmp_path / "t.json") as p:
            p.write_text("half")
            raise OSError(28, "No space left on device")
    assert info.value.filename == str(tmp_path / "t.json")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- transform JSON


def test_transform_json_round_trip(tmp_path):
    matrix = rotation_matrix(0.3, (10.0, 20.0)) @ translation_matrix(2.0, -1.5)
    path = write_transform_json(
        tmp_path / "t.json",
        matrix,
        transform="rigid",
        params={"angle_deg": 17.19, "tx": np.float64(2.0)},
        fixed_shape=(40, 50),
        moving_shape=np.array([40, 50]),
        extra={"metric": "ssd", "final_cost": np.float32(0.5), "bad": np.nan},
    )
    raw = json.loads(path.read_text())
    assert raw["convention"] == TRANSFORM_CONVENTION
    assert raw["fixed_shape"] == [40, 50]
    assert raw["bad"] is None
    data = read_transform_json(path)
    np.testing.assert_allclose(data["matrix"], matrix, rtol=0, atol=1e-15)
    assert data["fixed_shape"] == (40, 50)
    assert data["moving_shape"] == (40, 50)
    assert data["transform"] == "rigid"
    assert data["metric"] == "ssd"


def test_transform_files_saved_with_a_utf8_bom_are_read(tmp_path):
    # Windows Notepad saves "UTF-8" with a BOM; transforms.csv was read past it, transform
    # JSON was refused with Python's "Unexpected UTF-8 BOM (decode using utf-8-sig)".
    from regcli.transform_files import read_transform, write_itk_transform

    matrix = translation_matrix(2.0, -1.5)
    for written in (
        write_transform_json(tmp_path / "t.json", matrix),
        write_itk_transform(tmp_path / "t.tfm", matrix),
    ):
        bom = tmp_path / f"bom{written.suffix}"
        bom.write_text(written.read_text(), encoding="utf-8-sig")
        np.testing.assert_allclose(read_transform(bom)["matrix"], matrix, atol=1e-12)


def test_transform_json_matches_truth_json_convention(truth):
    assert truth["convention"] == TRANSFORM_CONVENTION


def test_write_transform_json_without_optional_keys(tmp_path):
    path = write_transform_json(tmp_path / "t.json", np.eye(3)[:2])
    assert sorted(json.loads(path.read_text())) == ["convention", "matrix", "matrix_units"]
    assert read_transform_json(path)["matrix"].shape == (3, 3)


def test_write_transform_json_refuses_bad_matrix_and_existing_file(tmp_path):
    with pytest.raises(InputError, match="singular"):
        write_transform_json(tmp_path / "t.json", np.diag([0.0, 0.0, 1.0]))
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(InputError, match="already exists"):
        write_transform_json(tmp_path / "t.json", np.eye(3), overwrite=False)
    assert (tmp_path / "t.json").read_text() == "{}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"not valid JSON \(line 1, column 2"),
        ("[1, 2]", r"expected a JSON object .*got a list"),
        ('{"params": {}}', r"no \"matrix\" key"),
        ('{"matrix": [[1, 0], [0, 1]]}', r"matrix: expected a 3x3 \(or 2x3\) matrix, got shape"),
        ('{"matrix": "eye"}', r"matrix: expected a 3x3"),
        ('{"matrix": [[1, 0, 0], [0, 1, 0], [1, 0, 1]]}', "last row"),
        ('{"matrix": [[0, 0, 0], [0, 0, 0], [0, 0, 1]]}', "singular"),
        ('{"matrix": [[1, 0, NaN], [0, 1, 0], [0, 0, 1]]}', "NaN or infinite"),
        ('{"matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "fixed_shape": [3]}', "fixed_shape"),
        ('{"matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "fixed_shape": [0, 4]}', "fixed_shape"),
        ('{"matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "moving_shape": [2.5, 4]}', "moving_shape"),
    ],
)
def test_read_transform_json_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        read_transform_json(path)
    assert str(path) in str(info.value)


def test_read_transform_json_missing_directory_binary(tmp_path):
    with pytest.raises(InputError, match=r"t\.json: no such file"):
        read_transform_json(tmp_path / "t.json")
    with pytest.raises(InputError, match="is a directory"):
        read_transform_json(tmp_path)
    png = write_image(tmp_path / "img.png", ramp("uint8"))
    with pytest.raises(InputError, match=r"img\.png: not (a text file|valid JSON)"):
        read_transform_json(png)


# --------------------------------------------------------------------------- dtypes x formats

ALL_DTYPES = [
    "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float16", "float32", "float64", "longdouble",
]  # fmt: skip


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".npy"])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_round_trips_or_is_refused_before_writing(tmp_path, dtype, suffix):
    image = (np.arange(6 * 7).reshape(6, 7) % 2 == 0) if dtype == "bool" else ramp(dtype)
    image = image.astype(dtype)
    path = tmp_path / f"out{suffix}"
    try:
        write_image(path, image)
    except InputError as exc:
        assert f"cannot store {np.dtype(dtype).name}" in str(exc)
        assert list(tmp_path.iterdir()) == []
        return
    back = read_image(path)
    assert back.dtype == image.dtype
    if suffix != ".jpg":  # lossy
        np.testing.assert_array_equal(back, image)
