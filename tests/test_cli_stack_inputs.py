"""regcli stack and apply --transforms on awkward inputs: a truncated TIFF (refused, the file
left as it was), a TIFF written page by page, pages that do not match."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import tifffile
from many_cases import drift_stack

from regcli.cli.main import cli

SHAPE = (64, 72)


@pytest.fixture(scope="module")
def frames():
    return drift_stack(frames=5, shape=SHAPE)[0]


def _identity_csv(path, count):
    rows = [f"{t},1.0,0.0,0.0,0.0,1.0,0.0" for t in range(count)]
    path.write_text("frame,m00,m01,m02,m10,m11,m12\n" + "\n".join(rows) + "\n")
    return path


def _fingerprint(path):
    return path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_error(result, *needles):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("cut", ["pages", "data"])
def test_a_truncated_tiff_is_refused_and_left_unchanged(runner, frames, tmp_path, cut):
    full = tmp_path / "full.tif"
    if cut == "pages":  # one shaped series: the chain of pages breaks
        tifffile.imwrite(full, frames)
        size = full.stat().st_size // 2
    else:  # pages written one by one, the last one's data cut short
        with tifffile.TiffWriter(full) as writer:
            for frame in frames:
                writer.write(frame)
        size = full.stat().st_size - 100
    truncated = tmp_path / "trunc.tif"
    truncated.write_bytes(full.read_bytes()[:size])
    before = _fingerprint(truncated)
    stack = runner.invoke(cli, ["stack", str(truncated), "-o", str(tmp_path / "out"), "-q"])
    _one_line_error(stack, str(truncated), "truncated or corrupt TIFF")
    assert _fingerprint(truncated) == before
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    table = _identity_csv(tmp_path / "t.csv", len(frames))
    target = tmp_path / "applied.tif"
    applied = runner.invoke(
        cli, ["apply", "--transforms", str(table), str(truncated), "-o", str(target)]
    )
    _one_line_error(applied, str(truncated), "truncated or corrupt TIFF")
    assert _fingerprint(truncated) == before and not target.exists()


def test_a_tiff_written_page_by_page_is_every_page_a_frame(runner, frames, tmp_path):
    path = tmp_path / "pagewise.tif"
    with tifffile.TiffWriter(path) as writer:
        for frame in frames:
            writer.write(frame)  # one series per page
    out = tmp_path / "out"
    result = runner.invoke(cli, ["stack", str(path), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    with tifffile.TiffFile(out / "pagewise_aligned.tif") as tif:
        assert len(tif.pages) == len(frames) and tif.pages[0].dtype == frames.dtype
    target = tmp_path / "again.tif"
    table = _identity_csv(tmp_path / "t.csv", len(frames))
    applied = runner.invoke(
        cli, ["apply", "--transforms", str(table), str(path), "-o", str(target), "--order", "0"]
    )
    assert applied.exit_code == 0, applied.output
    np.testing.assert_array_equal(tifffile.imread(target), frames)


@pytest.mark.parametrize("odd", ["shape", "dtype"])
def test_pages_of_another_shape_or_dtype_are_refused(runner, frames, tmp_path, odd):
    path = tmp_path / "mixed.tif"
    other = frames[1][:40, :50] if odd == "shape" else frames[1].astype(np.float32)
    with tifffile.TiffWriter(path) as writer:
        writer.write(frames[0])
        writer.write(other)
    result = runner.invoke(cli, ["stack", str(path), "-o", str(tmp_path / "out")])
    _one_line_error(result, str(path), "page 1 is", "page 0 is", "share one shape and dtype")


def test_the_outputs_never_go_into_the_folder_of_frames(runner, frames, tmp_path):
    from regcli.io import write_image

    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(frames):
        write_image(folder / f"f{t}.png", frame)
    listing = sorted(p.name for p in folder.iterdir())
    files = [str(folder / name) for name in listing]
    for args in (
        [str(folder), "-o", str(folder)],
        [str(folder), "-o", str(folder / "aligned")],
        [*files, "-o", str(folder)],
    ):
        result = runner.invoke(cli, ["stack", *args, "-q"])
        assert result.exit_code == 2, result.output
        assert "-o/--output" in result.output and "choose" in result.output
        assert sorted(p.name for p in folder.iterdir()) == listing
    beside = runner.invoke(cli, ["stack", str(folder), "-o", str(tmp_path / "out"), "-q"])
    assert beside.exit_code == 0, beside.output


@pytest.mark.parametrize("reference", ["first", "mean"])
def test_nan_pixels_of_a_stack_are_no_data(runner, tmp_path, reference):
    from regcli.transforms import mean_displacement

    stack, truths = drift_stack(frames=5, shape=SHAPE)
    floats = (stack / 4000.0).astype(np.float32)
    floats[:, :10, :] = np.nan  # a band without data in every frame
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, floats)
    out = tmp_path / "out"
    result = runner.invoke(
        cli, ["stack", str(path), "-o", str(out), "-q", "--reference", reference]
    )
    assert result.exit_code == 0, result.output
    from regcli.stackio import read_transforms_csv

    matrices = read_transforms_csv(out / "transforms.csv")
    relative = [m @ np.linalg.inv(matrices[0]) for m in matrices]
    assert max(mean_displacement(r, t, SHAPE) for r, t in zip(relative, truths, strict=True)) < 0.2
    aligned = tifffile.imread(out / "nan_aligned.tif")
    assert aligned.dtype == np.float32
    rows, cols = np.mgrid[: SHAPE[0], : SHAPE[1]]
    grid = np.stack([cols.ravel(), rows.ravel(), np.ones(rows.size)])
    for frame, m in zip(aligned, matrices, strict=True):
        x, y = (m @ grid)[:2].reshape(2, *SHAPE)
        inside = (x > 1) & (x < SHAPE[1] - 2) & (y > 1) & (y < SHAPE[0] - 2)
        assert np.isnan(frame[inside & (y < 8.5)]).all()  # read from the band: no data
        assert np.isfinite(frame[inside & (y > 11)]).all()
    target = tmp_path / "again.tif"
    table = str(out / "transforms.csv")
    applied = runner.invoke(cli, ["apply", "--transforms", table, str(path), "-o", str(target)])
    assert applied.exit_code == 0, applied.output
    np.testing.assert_allclose(tifffile.imread(target), aligned, atol=1e-5)


@pytest.mark.parametrize(
    ("bad", "reference", "message"),
    [
        ("constant", "first", "frame 3: the image is constant"),
        ("constant0", "first", "frame 0: the image is constant"),
        ("constant", "previous", "frame 3: the image is constant"),
        ("nan", "mean", "frame 3: only 0 pixel(s) of the frame are not NaN"),
        ("inf", "first", "frame 3: 1 pixel(s) are infinite"),
    ],
)
def test_a_bad_frame_is_named_with_the_file(runner, frames, tmp_path, bad, reference, message):
    floats = frames.astype(np.float32)
    if bad == "constant0":
        floats[0] = 0.5
    elif bad == "constant":
        floats[3] = 0.5
    elif bad == "nan":
        floats[3] = np.nan
    else:
        floats[3, 5, 5] = np.inf
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, floats)
    args = ["stack", str(path), "-o", str(tmp_path / "out"), "--reference", reference, "-q"]
    _one_line_error(runner.invoke(cli, args), f"{path}, {message}")


def test_apply_transforms_names_the_file_and_row_or_frame(runner, frames, tmp_path):
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, frames)
    table = _identity_csv(tmp_path / "t.csv", len(frames))
    bom = tmp_path / "bom.csv"
    bom.write_text(table.read_text(), encoding="utf-8-sig")  # as Excel saves "CSV UTF-8"
    applied = runner.invoke(
        cli, ["apply", "--transforms", str(bom), str(path), "-o", str(tmp_path / "a.tif")]
    )
    assert applied.exit_code == 0, applied.output
    singular = tmp_path / "singular.csv"
    lines = table.read_text().splitlines()
    lines[3] = "2,0,0,0,0,0,0"
    singular.write_text("\n".join(lines) + "\n")
    result = runner.invoke(
        cli, ["apply", "--transforms", str(singular), str(path), "-o", str(tmp_path / "b.tif")]
    )
    _one_line_error(result, f"{singular}: row 4 (frame 2)", "singular")
    floats = frames.astype(np.float32)
    floats[4, 1, 1] = np.inf
    tifffile.imwrite(tmp_path / "inf.tif", floats)
    args = ["apply", "--transforms", str(table), str(tmp_path / "inf.tif"), "-o"]
    result = runner.invoke(cli, [*args, str(tmp_path / "c.tif")])
    _one_line_error(result, f"{tmp_path / 'inf.tif'}, frame 4: 1 pixel(s) are infinite")


def test_apply_transforms_moves_one_channel_of_a_stack_with_channels(runner, frames, tmp_path):
    path = tmp_path / "rgb.tif"
    rgb = np.stack([frames, frames // 2, frames // 3], axis=-1)
    tifffile.imwrite(path, rgb, photometric="rgb")
    table = str(_identity_csv(tmp_path / "t.csv", len(frames)))
    target = tmp_path / "green.tif"
    none = runner.invoke(cli, ["apply", "--transforms", table, str(path), "-o", str(target)])
    _one_line_error(none, str(path), "--channel K, K from 0 to 2")
    args = ["apply", "--transforms", table, str(path), "-o", str(target), "--order", "0"]
    assert runner.invoke(cli, [*args, "--channel", "1"]).exit_code == 0
    np.testing.assert_array_equal(tifffile.imread(target), frames // 2)
    json_file = tmp_path / "t.json"
    json_file.write_text('{"matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}')
    single = ["apply", str(tmp_path / "x.png"), str(json_file), "-o", str(tmp_path / "y.png")]
    misused = runner.invoke(cli, [*single, "--channel", "1"])
    assert misused.exit_code == 2 and "--channel goes with --transforms" in misused.output


@pytest.mark.parametrize(
    ("shape", "message"),
    [((0, 64, 64), "the stack has no frames"), ((3, 0, 64), "the frames are empty")],
    ids=["no-frames", "no-rows"],
)
def test_a_stack_without_pixels_is_refused_in_one_line(run_regcli, tmp_path, shape, message):
    # A real subprocess: tifffile's "writing zero-size array" warning went to stderr before
    # the error (and with no frames the error was "unexpected StopIteration").
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros(shape, np.uint8))
    table = _identity_csv(tmp_path / "t.csv", max(shape[0], 1))  # a CSV needs a row
    runs = {
        "stack": ["stack", path, "-o", tmp_path / "out", "-q"],
        "apply": ["apply", "--transforms", table, path, "-o", tmp_path / "a.tif"],
    }
    for command, args in runs.items():
        done = run_regcli(*args)
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.startswith(f"Error: {path}: {message} ("), (command, done.stderr)
        assert len(done.stderr.splitlines()) == 1, (command, done.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.npy", "t.csv"]


def test_counts_of_one_are_singular(runner, frames, tmp_path):
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, frames[:1])
    table = _identity_csv(tmp_path / "t.csv", 2)
    result = runner.invoke(
        cli, ["apply", "--transforms", str(table), str(path), "-o", str(tmp_path / "a.tif")]
    )
    _one_line_error(result, f"{path}: has 1 frame but {table} has 2 transforms")
    one = _identity_csv(tmp_path / "one.csv", 1)
    result = runner.invoke(
        cli, ["apply", "--transforms", str(one), str(path), "-o", str(tmp_path / "b.tif")]
    )
    assert result.exit_code == 0, result.output
    assert ": 1 frame of " in result.output
