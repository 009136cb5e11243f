"""Known ways to hurt a run, each with the behaviour regcli promises: partial or stray files,
tracebacks, hostile sizes, late failures and wrong exit codes, inputs read as something they
are not.  Each test describes one reproduction; the generic tables (every command x every
fault) are in test_faults.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import default_signals, png_bytes, regcli_executable, smooth_blobs
from PIL import Image

from regcli.cli.main import cli
from regcli.io import read_image, read_transform_json, write_image, write_transform_json


@pytest.fixture
def pair(tmp_path, samples):
    """fixed.png / moving.png: two sample images copied into the test's folder."""
    for name, source in (("fixed.png", "BrainMRI_1.png"), ("moving.png", "BrainMRI_4.png")):
        (tmp_path / name).write_bytes((samples / source).read_bytes())
    return tmp_path


def invoke(runner, folder: Path, *args):
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return runner.invoke(cli, [str(a) for a in args])
    finally:
        os.chdir(cwd)


def error_line(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def no_registration(monkeypatch):
    """Make any registration fail the test: the problem must be found before the work."""

    def refuse(*args, **kwargs):
        raise AssertionError("the registration ran before the problem was found")

    monkeypatch.setattr("regcli.registration.register", refuse)


# --------------------------------------------------------------------------- partial outputs


def test_two_concurrent_registers_into_one_folder_never_mix(pair):
    """Both runs start together; one writes the whole set, the other refuses (or waits its
    turn and refuses because the outputs now exist): never a mixed set, never two exit 0."""
    for name in ("A", "B"):
        (pair / name).mkdir()
    (pair / "A" / "mov.png").write_bytes((pair / "moving.png").read_bytes())
    (pair / "B" / "mov.png").write_bytes((pair / "fixed.png").read_bytes())
    runs = [
        subprocess.Popen(
            [*regcli_executable(), "register", "fixed.png", f"{name}/mov.png", "-o", "out", "-q"],
            cwd=pair,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("A", "B")
    ]
    outcomes = [(run.wait(timeout=120), run.communicate()[1]) for run in runs]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 1], outcomes
    (message,) = [err for code, err in outcomes if code == 1]
    assert "another regcli run is writing into out" in message or "already exists" in message
    written = json.loads((pair / "out" / "transform.json").read_text())
    winner = written["moving"]
    aligned = read_image(pair / "out" / "mov_aligned.png")
    expected = read_image(pair / winner)
    assert aligned.shape == expected.shape
    assert sorted(p.name for p in (pair / "out").iterdir()) == [
        "cost.png",
        "mov_aligned.png",
        "overlay.png",
        "transform.json",
        "transform.tfm",
    ]


def test_save_transform_into_proc_writes_not_even_the_image(runner, pair):
    result = invoke(
        runner, pair, "translate", "fixed.png", "--dx", "1", "-o", "t.png",
        "--save-transform", "/proc/t.json",
    )  # fmt: skip
    assert result.exit_code == 1
    line = error_line(result)
    assert "/proc/t.json" in line and ".regcli" not in line and "/proc/.t.json" not in line
    assert not (pair / "t.png").exists()


def test_overwrite_keeps_a_private_file_private(runner, pair):
    assert invoke(runner, pair, "translate", "fixed.png", "--dx", "1", "-o", "p.png").exit_code == 0
    (pair / "p.png").chmod(0o600)
    again = invoke(
        runner, pair, "translate", "fixed.png", "--dx", "2", "-o", "p.png", "--overwrite"
    )
    assert again.exit_code == 0
    assert (pair / "p.png").stat().st_mode & 0o777 == 0o600


def test_a_dangling_symlink_output_is_not_replaced_without_overwrite(runner, pair):
    (pair / "dang.png").symlink_to("nowhere.png")
    result = invoke(runner, pair, "translate", "fixed.png", "--dx", "1", "-o", "dang.png")
    assert result.exit_code == 1
    assert "dang.png: already exists" in error_line(result)
    assert os.readlink(pair / "dang.png") == "nowhere.png"


def test_ctrl_c_exits_130_with_one_short_line_and_no_partial_set(pair):
    marker = pair / "paused"
    env = dict(os.environ, MPLBACKEND="Agg", REGCLI_TEST_PAUSE=f"write:{marker}")
    proc = subprocess.Popen(
        [*regcli_executable(), "register", "fixed.png", "moving.png", "-o", "out"],
        cwd=pair,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert stderr.strip() == "regcli: interrupted by SIGINT"
    assert not (pair / "out").exists()


# --------------------------------------------------------------------------- no tracebacks


@pytest.mark.parametrize("shape", [(1, 256), (256, 1), (2, 2), (3, 3)])
@pytest.mark.parametrize("transform", ["rigid", "translation"])
def test_an_image_too_small_to_register_is_one_clear_error(runner, tmp_path, shape, transform):
    rng = np.random.default_rng(1)
    for name in ("s1.png", "s2.png"):
        write_image(tmp_path / name, rng.integers(0, 256, shape, dtype=np.uint8))
    result = invoke(runner, tmp_path, "register", "s1.png", "s2.png", "--transform", transform)
    assert result.exit_code == 1
    assert "image too small to register" in error_line(result)
    assert "s1.png (fixed image)" in error_line(result)
    assert list(tmp_path.iterdir()) == [tmp_path / "s1.png", tmp_path / "s2.png"] or sorted(
        p.name for p in tmp_path.iterdir()
    ) == ["s1.png", "s2.png"]


def test_profile_of_a_tiny_pair_is_an_error_not_a_null_curve(runner, tmp_path):
    for name in ("a.png", "b.png"):
        write_image(tmp_path / name, np.array([[0, 50], [100, 200]], np.uint8))
    result = invoke(runner, tmp_path, "profile", "a.png", "b.png", "--json")
    assert result.exit_code == 1
    assert "too small" in error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


NON_UTF8 = os.fsdecode(b"bad\xffname.png")


@pytest.mark.parametrize(
    "args",
    [
        ["register", "fixed.png", NON_UTF8, "-q"],
        ["compare", "fixed.png", NON_UTF8, "--opts", "gd", "--iters", "3", "-q"],
        ["jointhist", "fixed.png", NON_UTF8, "-o", "h.png"],
        ["profile", "fixed.png", NON_UTF8, "--range", "-2:2:1"],
        ["register", "fixed.png", NON_UTF8, "-q", "--json", "-o", "j"],
    ],
    ids=["register", "compare", "jointhist", "profile", "register --json"],
)
def test_a_file_name_that_is_not_utf8_works_end_to_end(pair, args):
    os.rename(pair / "moving.png", pair / NON_UTF8)
    proc = subprocess.run(
        [*regcli_executable(), *args],
        cwd=pair,
        capture_output=True,
        env=dict(os.environ, MPLBACKEND="Agg"),
    )
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    if "--json" in args:
        report = json.loads(proc.stdout)
        assert os.fsencode(report["moving"]).endswith(b"bad\xffname.png")


@pytest.mark.parametrize(
    "text",
    [
        '{"matrix": ' + "[" * 100000 + "]" * 100000 + "}",
        "[" * 100000,
        '{"a":' * 50000,
    ],
    ids=["deep matrix", "deep list", "deep object"],
)
def test_deeply_nested_json_is_not_valid_json(runner, pair, text):
    (pair / "deep.json").write_text(text)
    result = invoke(runner, pair, "apply", "moving.png", "deep.json", "-o", "a.png")
    assert result.exit_code == 1
    assert "deep.json: not valid JSON" in error_line(result)
    assert not (pair / "a.png").exists()


def test_a_5001_digit_integer_in_a_transform_is_a_clean_error(runner, pair):
    (pair / "big.json").write_text('{"matrix": [[1' + "0" * 5000 + ",0,0],[0,1,0],[0,0,1]]}")
    result = invoke(runner, pair, "apply", "moving.png", "big.json", "-o", "a.png")
    assert result.exit_code == 1
    assert "big.json: " in error_line(result) and "digits" in error_line(result)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([1e300, 5], "more than the limit"),
        ([16000, 16000], "more than the limit of 100000000"),
        ([True, 5], "positive whole numbers"),
        (["7", 5], "positive whole numbers"),
    ],
)
def test_hostile_fixed_shape_is_refused_before_allocating(
    runner, pair, monkeypatch, shape, message
):
    monkeypatch.setenv("REGCLI_MAX_PIXELS", "100000000")
    (pair / "t.json").write_text(json.dumps({"matrix": np.eye(3).tolist(), "fixed_shape": shape}))
    result = invoke(runner, pair, "apply", "moving.png", "t.json", "-o", "a.png")
    assert result.exit_code == 1
    assert "t.json: fixed_shape" in error_line(result) and message in error_line(result)


@pytest.mark.parametrize(
    "args",
    [
        ["similarity", "fixed.png", "moving.png", "--sigma", "1e308"],
        ["profile", "fixed.png", "moving.png", "--smooth", "1e308"],
        ["register", "fixed.png", "moving.png", "--metric", "pluim", "--sigma", "1e308"],
        ["register", "fixed.png", "moving.png", "--center", "1e308,1e308"],
        ["rotate", "fixed.png", "--angle", "3", "--center", "-1e308,0"],
    ],
)
def test_absurd_scales_and_centres_are_usage_errors(runner, pair, monkeypatch, args):
    no_registration(monkeypatch)
    result = invoke(runner, pair, *args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--" in error_line(result)
    assert sorted(p.name for p in pair.iterdir()) == ["fixed.png", "moving.png"]


@pytest.mark.parametrize("name", ["c.txt", "c", "c.xyz"])
def test_compare_refuses_a_plot_name_before_any_registration(runner, pair, monkeypatch, name):
    no_registration(monkeypatch)
    result = invoke(runner, pair, "compare", "fixed.png", "moving.png", "--opts", "gd", "-o", name)
    assert result.exit_code == 2
    assert f"{name}: unknown figure format" in error_line(result)


# --------------------------------------------------------------------------- hostile sizes


def test_png_declaring_a_huge_1bit_image_names_the_limit(runner, pair):
    (pair / "bomb.png").write_bytes(png_bytes(30000, 30000, bit_depth=1))
    result = invoke(runner, pair, "translate", "bomb.png", "--dx", "1")
    assert result.exit_code == 1
    line = error_line(result)
    assert "bomb.png: the image declares 30000 x 30000 = 900000000 pixels" in line
    assert "REGCLI_MAX_PIXELS" in line and "not a readable image" not in line


def test_a_real_png_over_the_limit_is_refused_before_decoding(runner, tmp_path, monkeypatch):
    write_image(tmp_path / "big.png", np.zeros((300, 400), np.uint8))
    monkeypatch.setenv("REGCLI_MAX_PIXELS", "100000")
    result = invoke(runner, tmp_path, "translate", "big.png", "--dx", "1", "-o", "o.png")
    assert result.exit_code == 1
    assert "300 x 400 = 120000 pixels, more than the limit of 100000" in error_line(result)
    assert "Warning" not in result.stderr and "DecompressionBomb" not in result.stderr
    monkeypatch.setenv("REGCLI_MAX_PIXELS", "120000")
    assert invoke(runner, tmp_path, "translate", "big.png", "-o", "o.png").exit_code == 0


def test_pillows_own_bomb_limit_does_not_apply(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    write_image(tmp_path / "wide.png", np.zeros((20, 300), np.uint8))
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)  # regcli's limit is the one used
    assert read_image(tmp_path / "wide.png").shape == (20, 300)


def test_tiff_and_npy_declaring_huge_images_are_refused_from_the_header(runner, tmp_path):
    # A sparse 400 MB TIFF (no data written) and a .npy whose header claims 10^10 pixels.
    tifffile.imwrite(tmp_path / "big.tif", shape=(20000, 20000), dtype=np.uint8)
    with open(tmp_path / "big.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}
        )
    for name in ("big.tif", "big.npy"):
        result = invoke(runner, tmp_path, "translate", name, "--dx", "1", "-o", "o.npy")
        assert result.exit_code == 1
        assert "more than the limit" in error_line(result)


def test_a_bad_pixel_limit_variable_is_an_error(runner, pair, monkeypatch):
    monkeypatch.setenv("REGCLI_MAX_PIXELS", "lots")
    result = invoke(runner, pair, "translate", "fixed.png", "--dx", "1")
    assert result.exit_code == 1
    assert "REGCLI_MAX_PIXELS: expected a whole number" in error_line(result)


# --------------------------------------------------------------------------- late failures


@pytest.mark.parametrize(
    ("outdir", "message"),
    [
        ("/etc/passwd/x", "/etc/passwd is not a folder"),
        ("/proc/regout", "cannot create folder /proc/regout"),
    ],
)
def test_register_checks_its_output_folder_before_the_work(
    runner, pair, monkeypatch, outdir, message
):
    no_registration(monkeypatch)
    result = invoke(runner, pair, "register", "fixed.png", "moving.png", "-o", outdir)
    assert result.exit_code == 1
    assert message in error_line(result)


@pytest.mark.parametrize("name", ["b1.bmp", "b1"])
def test_a_moving_image_in_a_format_regcli_cannot_write_fails_first(
    runner, pair, monkeypatch, name
):
    no_registration(monkeypatch)
    Image.open(pair / "moving.png").save(pair / "b1.bmp", format="BMP")
    if name == "b1":
        os.rename(pair / "b1.bmp", pair / "b1")
    result = invoke(runner, pair, "register", "fixed.png", name)
    assert result.exit_code == 1
    assert f"{name}: unknown image format" in error_line(result)
    assert not (pair / "regcli-b1").exists()  # no empty folder left behind


@pytest.mark.parametrize("scale", [1e-300, 1e-42])
def test_tiny_intensity_scales_are_not_called_nan(runner, pair, scale):
    dtype = np.float32 if scale == 1e-42 else np.float64
    for name in ("fixed", "moving"):
        image = read_image(pair / f"{name}.png").astype(np.float64) * scale
        np.save(pair / f"{name}.npy", image.astype(dtype))
    result = invoke(runner, pair, "register", "fixed.npy", "moving.npy", "-q")
    assert "NaN or infinite" not in result.output
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert "(fixed image)" in error_line(result) or "(moving image)" in error_line(result)


def test_errors_name_the_output_not_a_temporary_file(runner, pair):
    result = invoke(runner, pair, "translate", "fixed.png", "--dx", "1", "-o", "/proc/x.png")
    assert result.exit_code == 1
    line = error_line(result)
    assert "/proc/x.png" in line and ".regcli" not in line and ".x.png." not in line


def test_a_long_but_legal_output_name_works(runner, pair):
    name = "a" * 250 + ".png"
    result = invoke(runner, pair, "translate", "fixed.png", "--dx", "1", "-o", name)
    assert result.exit_code == 0, result.output
    assert (pair / name).exists()


# --------------------------------------------------------------------------- inputs as they are


def test_a_palette_png_keeps_its_label_indices(runner, pair):
    labels = np.zeros((256, 256), np.uint8)
    labels[50:150, 50:150] = 1
    labels[100:200, 120:220] = 2
    labels[10:40, 10:240] = 3
    picture = Image.fromarray(labels, "P")
    picture.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    picture.save(pair / "labels.png")
    write_transform_json(pair / "t.json", np.eye(3))
    result = invoke(
        runner, pair, "-v", "apply", "labels.png", "t.json", "-o", "l.png", "--order", "0"
    )
    assert result.exit_code == 0, result.output
    assert "palette" in result.stderr
    assert sorted(np.unique(read_image(pair / "l.png")).tolist()) == [0, 1, 2, 3]


def test_a_tiff_with_two_series_is_refused_naming_them(runner, pair):
    image = read_image(pair / "fixed.png")
    tifffile.imwrite(pair / "mp.tif", image)
    tifffile.imwrite(pair / "mp.tif", 255 - image, append=True)
    tifffile.imwrite(pair / "sizes.tif", image)
    tifffile.imwrite(pair / "sizes.tif", image[:100, :100], append=True)
    for name in ("mp.tif", "sizes.tif"):
        result = invoke(runner, pair, "translate", name, "--dx", "1", "-o", "t.tif")
        assert result.exit_code == 1
        line = error_line(result)
        assert f"{name}: a TIFF with 2 separate images" in line and "series 1" in line


def test_gif_bmp_and_symlink_loops_get_their_own_message(runner, pair):
    Image.open(pair / "fixed.png").save(pair / "still.gif")
    (pair / "loopA.png").symlink_to("loopB.png")
    (pair / "loopB.png").symlink_to("loopA.png")
    for name, message in (
        ("still.gif", "still.gif: unknown image format '.gif'; regcli reads .png"),
        ("loopA.png", "loopA.png: a loop of symbolic links"),
    ):
        result = invoke(runner, pair, "translate", name, "--dx", "1", "-o", "o.png")
        assert result.exit_code == 1
        assert message in error_line(result)


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".png"])
def test_a_bool_image_is_written_back_as_bool(runner, tmp_path, suffix):
    mask = smooth_blobs((30, 34)) > 0.4
    write_image(tmp_path / f"mask{suffix}", mask)
    result = invoke(runner, tmp_path, "translate", f"mask{suffix}", "--dx", "2", "-o", f"o{suffix}")
    assert result.exit_code == 0, result.output
    moved = read_image(tmp_path / f"o{suffix}")
    assert moved.dtype == bool
    np.testing.assert_array_equal(moved[:, 4:], mask[:, 2:-2])


def test_read_transform_json_refuses_duplicate_keys_and_string_entries(tmp_path):
    (tmp_path / "dup.json").write_text('{"matrix": [[1,0,0],[0,1,0],[0,0,1]], "matrix": 5}')
    (tmp_path / "str.json").write_text('{"matrix": [["1",0,0],[0,1,0],[0,0,1]]}')
    from regcli.errors import InputError

    with pytest.raises(InputError, match="'matrix' appears twice"):
        read_transform_json(tmp_path / "dup.json")
    with pytest.raises(InputError, match="matrix: expected numbers"):
        read_transform_json(tmp_path / "str.json")
