"""regcli stack and apply --transforms: known drift recovered, outputs kept in the input's
dtype and metadata, the same transforms applied to a second channel."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from many_cases import drift_stack

from regcli.cli.main import cli
from regcli.stackio import read_transforms_csv
from regcli.transforms import mean_displacement

SHAPE = (80, 96)


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    frames, truths = drift_stack(frames=6, shape=SHAPE)
    path = folder / "movie.tif"
    tifffile.imwrite(
        path, frames, imagej=True, resolution=(2.0, 2.0), metadata={"axes": "TYX", "unit": "um"}
    )
    labels = (frames > np.median(frames)).astype(np.uint8) * 3
    tifffile.imwrite(folder / "labels.tif", labels, imagej=True, metadata={"axes": "TYX"})
    return path, frames, truths


@pytest.mark.parametrize("reference", ["first", "previous"])
def test_stack_recovers_the_drift_and_keeps_dtype_pages_and_metadata(
    runner, stack_file, tmp_path, reference
):
    path, frames, truths = stack_file
    out = tmp_path / "out"
    result = runner.invoke(
        cli, ["stack", str(path), "-o", str(out), "--reference", reference, "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["frames"] == 6 and report["untrusted_frames"] == []
    assert sorted(p.name for p in out.iterdir()) == [
        "drift.png",
        "movie_aligned.tif",
        "transforms.csv",
    ]
    matrices = read_transforms_csv(out / "transforms.csv")
    assert max(mean_displacement(m, t, SHAPE) for m, t in zip(matrices, truths, strict=True)) < 0.1
    with tifffile.TiffFile(out / "movie_aligned.tif") as tif:
        assert len(tif.pages) == 6 and tif.series[0].dtype == np.uint16
        assert tif.is_imagej and tif.imagej_metadata["unit"] == "um"
        assert tif.pages[0].resolution == pytest.approx((2.0, 2.0))
        aligned = tif.asarray()
    inner = (slice(12, -12), slice(12, -12))
    error = np.abs(aligned[-1][inner].astype(float) - frames[0][inner]).mean()
    assert error < 0.2 * np.abs(frames[-1][inner].astype(float) - frames[0][inner]).mean()


def test_apply_transforms_moves_a_second_channel_and_keeps_labels(runner, stack_file, tmp_path):
    path, frames, _ = stack_file
    out = tmp_path / "out"
    assert runner.invoke(cli, ["stack", str(path), "-o", str(out), "-q"]).exit_code == 0
    labels = path.with_name("labels.tif")
    target = tmp_path / "labels_aligned.tif"
    args = ["apply", "--transforms", str(out / "transforms.csv"), str(labels), "-o", str(target)]
    result = runner.invoke(cli, [*args, "--order", "0"])
    assert result.exit_code == 0, result.output
    moved = tifffile.imread(target)
    assert moved.shape == frames.shape and moved.dtype == np.uint8
    assert set(np.unique(moved)) <= {0, 3}
    expected = (tifffile.imread(out / "movie_aligned.tif") > np.median(frames)) * 3
    inner = (slice(12, -12), slice(12, -12))
    assert np.mean(moved[:, inner[0], inner[1]] != expected[:, inner[0], inner[1]]) < 0.05


def test_a_npy_and_a_folder_of_frames_are_stacks_too(runner, stack_file, tmp_path):
    from regcli.io import write_image

    _, frames, truths = stack_file
    np.save(tmp_path / "movie.npy", frames)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(frames):
        write_image(folder / f"t{t}.png", frame)
    for source, name in ((tmp_path / "movie.npy", "movie"), (folder, "frames")):
        out = tmp_path / f"out_{name}"
        result = runner.invoke(cli, ["stack", str(source), "-o", str(out), "--reference", "mean"])
        assert result.exit_code == 0, result.output
        assert tifffile.imread(out / f"{name}_aligned.tif").dtype == np.uint16
        m = read_transforms_csv(out / "transforms.csv")
        relative = [mt @ np.linalg.inv(m[0]) for mt in m]
        assert (
            max(mean_displacement(r, t, SHAPE) for r, t in zip(relative, truths, strict=True)) < 0.1
        )


def test_stack_usage_errors_and_existing_outputs(runner, stack_file, tmp_path):
    path, _, _ = stack_file
    out = tmp_path / "out"
    bad = runner.invoke(cli, ["stack", str(path), "-o", str(out), "--reference", "6"])
    assert (
        bad.exit_code == 2
        and "frame 6 does not exist" in bad.output
        and "--reference" in bad.output
    )
    assert (
        runner.invoke(cli, ["stack", str(path), "-o", str(out), "--reference", "last"]).exit_code
        == 2
    )
    assert runner.invoke(cli, ["stack", str(path), "-o", str(out), "-q"]).exit_code == 0
    again = runner.invoke(cli, ["stack", str(path), "-o", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert (
        runner.invoke(cli, ["stack", str(path), "-o", str(out), "--overwrite", "-q"]).exit_code == 0
    )


def test_overwrite_removes_the_earlier_runs_aligned_stack_only(runner, stack_file, tmp_path):
    """``--overwrite`` with another input replaces the whole output set: the earlier run's
    ``movie_aligned.tif`` (named in its transforms.csv) goes, a stack moved into the folder by
    ``apply --transforms`` and an input stay."""
    path, frames, _ = stack_file
    out = tmp_path / "out"
    assert runner.invoke(cli, ["stack", str(path), "-o", str(out), "-q"]).exit_code == 0
    moved = ["apply", "--transforms", str(out / "transforms.csv"), str(path)]
    assert runner.invoke(cli, [*moved, "-o", str(out / "green_aligned.tif")]).exit_code == 0
    other = tmp_path / "other.npy"
    np.save(other, frames)
    again = runner.invoke(cli, ["stack", str(other), "-o", str(out), "--overwrite"])
    assert again.exit_code == 0, again.output
    assert "removed the earlier run's movie_aligned.tif" in again.output
    assert sorted(p.name for p in out.iterdir()) == [
        "drift.png",
        "green_aligned.tif",
        "other_aligned.tif",
        "transforms.csv",
    ]
    # the earlier run's aligned stack given as the input is never removed
    earlier = out / "other_aligned.tif"
    size = earlier.stat().st_size
    last = runner.invoke(cli, ["stack", str(earlier), "-o", str(out), "--overwrite", "-q"])
    assert last.exit_code == 0, last.output
    assert earlier.stat().st_size == size and (out / "other_aligned_aligned.tif").exists()


def test_apply_transforms_checks_the_frame_count_and_the_output(runner, stack_file, tmp_path):
    path, frames, _ = stack_file
    out = tmp_path / "out"
    assert runner.invoke(cli, ["stack", str(path), "-o", str(out), "-q"]).exit_code == 0
    short = tmp_path / "short.tif"
    tifffile.imwrite(short, frames[:4], photometric="minisblack")
    table = str(out / "transforms.csv")
    result = runner.invoke(
        cli, ["apply", "--transforms", table, str(short), "-o", str(tmp_path / "o.tif")]
    )
    assert result.exit_code == 1 and "has 4 frames but" in result.output
    png = runner.invoke(
        cli, ["apply", "--transforms", table, str(path), "-o", str(tmp_path / "o.png")]
    )
    assert png.exit_code == 2 and "unknown stack format '.png'; use one of .tif" in png.output
    neither = runner.invoke(cli, ["apply", str(path), "-o", str(tmp_path / "o.tif")])
    assert neither.exit_code == 2 and "TRANSFORM.json" in neither.output


def test_the_cli_finds_the_matrices_of_the_python_api(runner, stack_file, tmp_path):
    from regcli.stack import register_stack

    path, frames, _ = stack_file
    out = tmp_path / "out"
    assert runner.invoke(cli, ["stack", str(path), "-o", str(out), "-q"]).exit_code == 0
    expected = register_stack(frames, reference="first").matrices
    np.testing.assert_allclose(read_transforms_csv(out / "transforms.csv"), expected, atol=1e-9)


def test_apply_transforms_warns_about_blank_frames_and_refuses_a_blank_stack(
    runner, stack_file, tmp_path, caplog
):
    """A row that maps the grid outside its frame gives a frame of --fill only: the frames
    are named in a warning and the stack is written (its pages stay in step with the table);
    a table under which every frame would be blank is refused, exit 1, nothing written."""
    path, frames, _ = stack_file

    def table(name, far_frames):
        rows = ["frame,m00,m01,m02,m10,m11,m12"]
        rows += [f"{i},1,0,{5000 if i in far_frames else 0},0,1,0" for i in range(len(frames))]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
        return str(tmp_path / name)

    some = ["apply", "--transforms", table("some.csv", {2, 4}), str(path)]
    with caplog.at_level("WARNING", logger="regcli"):
        result = runner.invoke(cli, [*some, "-o", str(tmp_path / "some.tif")])
    assert result.exit_code == 0, result.output
    assert "some.csv: frames 2, 4 (2 of 6) are --fill only" in caplog.text
    moved = tifffile.imread(tmp_path / "some.tif")
    assert not moved[2].any() and not moved[4].any() and moved[3].any()
    every = ["apply", "--transforms", table("all.csv", set(range(6))), str(path)]
    refused = runner.invoke(cli, [*every, "-o", str(tmp_path / "all.tif")])
    assert refused.exit_code == 1
    assert "all.csv: maps the whole grid outside every frame" in refused.stderr
    assert not (tmp_path / "all.tif").exists()
