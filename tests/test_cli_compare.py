"""``regcli compare``: one registration per optimiser, one plot, a table or JSON."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from regcli.cli.main import cli
from regcli.transforms import mean_displacement


@pytest.fixture
def workdir(tmp_path, samples, monkeypatch):
    for name in ("BrainMRI_1.png", "BrainMRI_2.png", "BrainMRI_4.png"):
        shutil.copy(samples / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def png_size(path) -> tuple[int, int]:
    import matplotlib.image

    return matplotlib.image.imread(path).shape[:2]


def test_two_optimizers_give_one_plot_and_one_entry_each(runner, workdir, truth):
    args = ["compare", "BrainMRI_1.png", "BrainMRI_2.png", "--opts", "nag,adam"]
    result = runner.invoke(cli, [*args, "--transform", "translation", "-o", "c.png", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [row["optimizer"] for row in report["results"]] == ["nag", "adam"]
    assert report["plot"] == "c.png"
    assert report["init"] == "none"  # the optimisers start from the identity, as in the course
    rows, cols = png_size(workdir / "c.png")
    assert rows > 300 and cols > 500
    true_matrix = np.asarray(truth["pairs"]["BrainMRI_2.png"]["matrix"])
    for row in report["results"]:
        assert {
            "learning_rate",
            "iterations",
            "final_cost",
            "seconds",
            "converged",
            "params",
        } <= set(row)
        assert row["converged"] is True
        # What `regcli register` would exit with: 0, aligned and trustworthy.
        assert row["exit_code"] == 0 and row["quality"]["verdict"] == "ok"
        assert row["learning_rate"] > 0  # each optimiser's own default is reported
        assert mean_displacement(np.asarray(row["matrix"]), true_matrix, (256, 256)) <= 0.1


def test_text_table_lists_every_optimizer(runner, workdir):
    args = ["compare", "BrainMRI_1.png", "BrainMRI_2.png", "--opts", "gd, momentum"]
    result = runner.invoke(cli, [*args, "--transform", "translation"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["optimizer", "lr", "iters"] and " ok " in lines[0]
    assert lines[1].startswith("gd ") and lines[2].startswith("momentum ")
    # The truth is tx = 17.3; the 8-bit files (the cubic warp's overshoot clipped at 0) put
    # the optimum about 0.01 px away from it.
    tx = float(lines[1].split("tx=")[1].split(",")[0])
    assert abs(tx - 17.3) < 0.02
    assert (workdir / "regcli-compare-BrainMRI_2.png").exists()  # the default plot name


@pytest.mark.parametrize("opts", ["nag,bogus", ",,"])
def test_unknown_optimizer_is_a_usage_error_naming_it_and_the_choices(runner, workdir, opts):
    result = runner.invoke(cli, ["compare", "BrainMRI_1.png", "BrainMRI_2.png", "--opts", opts])
    assert result.exit_code == 2
    assert "--opts" in result.output and "gd, momentum, nag" in result.output
    if "bogus" in opts:
        assert "'bogus'" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in workdir.iterdir()) == [
        "BrainMRI_1.png",
        "BrainMRI_2.png",
        "BrainMRI_4.png",
    ]  # no plot written


def test_existing_plot_is_kept_without_overwrite(runner, workdir):
    (workdir / "c.png").write_bytes(b"keep me")
    args = ["compare", "BrainMRI_1.png", "BrainMRI_2.png", "--opts", "nag", "-o", "c.png"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert "c.png" in result.output and "--overwrite" in result.output
    assert (workdir / "c.png").read_bytes() == b"keep me"


def test_installed_cli_compares_on_the_rigid_sample(run_regcli, workdir, truth):
    done = run_regcli(
        "compare",
        "BrainMRI_1.png",
        "BrainMRI_4.png",
        "--opts",
        "nag,rmsprop",
        "-o",
        "rigid.png",
        "--json",
        cwd=workdir,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    true_matrix = np.asarray(truth["pairs"]["BrainMRI_4.png"]["matrix"])
    for row in report["results"]:
        assert mean_displacement(np.asarray(row["matrix"]), true_matrix, (256, 256)) <= 0.1
    assert (workdir / "rigid.png").stat().st_size > 10_000


def test_an_untrustworthy_run_is_marked_in_its_row(runner, workdir):
    """A learning rate too small to move: exit code 3 in the row, "no" in the table."""
    args = ["compare", "BrainMRI_1.png", "BrainMRI_4.png", "--opts", "gd", "--iters", "3"]
    result = runner.invoke(cli, [*args, "-o", "c.png", "--json"])
    assert result.exit_code == 0, result.output  # compare itself ran fine
    (row,) = json.loads(result.stdout)["results"]
    assert row["exit_code"] == 3 and row["converged"] is False
