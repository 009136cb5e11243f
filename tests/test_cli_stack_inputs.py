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
