"""``regcli register``: outputs, JSON, exit codes, and recovery of the sample transforms."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from regcli.cli.main import cli
from regcli.io import read_image, write_image
from regcli.transforms import mean_displacement

OUTPUT_NAMES = {
    "BrainMRI_2_aligned.png",
    "cost.png",
    "overlay.png",
    "transform.json",
    "transform.tfm",
}
JSON_KEYS = {
    "matrix",
    "params",
    "initial_cost",
    "final_cost",
    "cost_label",
    "iterations",
    "converged",
    "message",
    "seconds",
    "outputs",
    "transform",
    "metric",
    "optimizer",
    "learning_rate",
}


@pytest.fixture
def workdir(tmp_path, samples, monkeypatch):
    """A folder holding copies of the sample images, made the current folder."""
    for name in ("BrainMRI_1.png", "BrainMRI_2.png", "BrainMRI_3.png", "BrainMRI_4.png"):
        shutil.copy(samples / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def error_from_truth(matrix, truth, moving: str) -> float:
    return mean_displacement(
        np.asarray(matrix), np.asarray(truth["pairs"][moving]["matrix"]), (256, 256)
    )


def snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_design_card_command_as_typed(workdir, run_regcli, truth):
    done = run_regcli(
        "register",
        "BrainMRI_1.png",
        "BrainMRI_2.png",
        "--metric",
        "ssd",
        "--opt",
        "nag",
        cwd=workdir,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    outdir = workdir / "regcli-BrainMRI_2"
    assert "regcli-BrainMRI_2" in done.stdout  # says where the outputs went
    assert {p.name for p in outdir.iterdir()} == OUTPUT_NAMES
    aligned = read_image(outdir / "BrainMRI_2_aligned.png")
    assert aligned.dtype == np.uint8 and aligned.shape == (256, 256)
    saved = json.loads((outdir / "transform.json").read_text())
    assert saved["optimizer"] == "nag" and saved["metric"] == "ssd" and saved["converged"] is True
    assert saved["convention"] == truth["convention"]
    # BrainMRI_2 is a pure translation; rigid (the default) must find it with angle ~ 0.
    assert error_from_truth(saved["matrix"], truth, "BrainMRI_2.png") <= 0.1
    # The aligned image matches the fixed one far better than the moving one did.
    fixed = read_image(workdir / "BrainMRI_1.png").astype(float)
    moving = read_image(workdir / "BrainMRI_2.png").astype(float)
    inside = np.s_[40:-40, 40:-40]
    before = np.abs(moving - fixed)[inside].mean()
    after = np.abs(aligned.astype(float) - fixed)[inside].mean()
    assert after < before / 5


@pytest.mark.parametrize(
    ("moving", "transform"),
    [
        ("BrainMRI_2.png", "translation"),
        ("BrainMRI_3.png", "rotation"),
        ("BrainMRI_4.png", "rigid"),
    ],
)
def test_json_report_recovers_the_truth(runner, workdir, truth, moving, transform):
    args = ["register", "BrainMRI_1.png", moving, "--transform", transform, "-o", "out", "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert JSON_KEYS <= set(report)
    assert report["converged"] is True and report["transform"] == transform
    assert report["final_cost"] < report["initial_cost"]
    assert report["seconds"] > 0 and report["iterations"] >= 1
    assert error_from_truth(report["matrix"], truth, moving) <= 0.1
    true_params = truth["pairs"][moving]["params"]
    for name, value in true_params.items():
        if name != "center":
            assert report["params"][name] == pytest.approx(value, abs=0.1), name
    for path in report["outputs"].values():
        assert (workdir / path).exists(), path
    saved = json.loads((workdir / report["outputs"]["transform"]).read_text())
    assert saved["matrix"] == report["matrix"]
    assert saved["fixed_shape"] == [256, 256] and saved["params"] == report["params"]
    # one serialisation: transform.json keeps the facts --json prints (but where they went)
    assert {k: saved[k] for k in report if k != "outputs"} == {
        k: v for k, v in report.items() if k != "outputs"
    }
    assert report["fixed"] == "BrainMRI_1.png" and report["moving"] == moving
    assert report["levels"] == len(report["level_starts"]) == len(report["level_shapes"])


def test_second_run_refuses_to_overwrite_and_leaves_files_unchanged(runner, workdir):
    args = ["register", "BrainMRI_1.png", "BrainMRI_2.png", "--transform", "translation"]
    assert runner.invoke(cli, args).exit_code == 0
    outdir = workdir / "regcli-BrainMRI_2"
    before = snapshot(outdir)
    again = runner.invoke(cli, args)
    assert again.exit_code == 1
    assert "already exists" in again.output and "--overwrite" in again.output
    assert snapshot(outdir) == before
    assert runner.invoke(cli, [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize(
    ("suffix", "dtype"), [(".png", np.uint8), (".png", np.uint16), (".npy", np.float32)]
)
def test_aligned_image_keeps_format_and_dtype_of_the_moving_image(runner, workdir, suffix, dtype):
    source = read_image(workdir / "BrainMRI_2.png").astype(float) / 255.0
    scale = {np.uint8: 255, np.uint16: 65535, np.float32: 3.0}[dtype]
    write_image(workdir / f"moving{suffix}", source * scale, dtype=dtype)
    args = ["register", "BrainMRI_1.png", f"moving{suffix}", "--transform", "translation"]
    result = runner.invoke(cli, [*args, "-o", "out"])
    assert result.exit_code == 0, result.output
    aligned = read_image(workdir / "out" / f"moving_aligned{suffix}")
    assert aligned.dtype == dtype and aligned.shape == (256, 256)
    # Clipped to the moving image's range: no cubic overshoot below 0 or above the maximum.
    assert aligned.min() >= 0 and aligned.max() <= (source * scale).max() + 1e-6


def test_unconverged_run_writes_outputs_and_exits_1_unless_allowed(runner, workdir):
    args = ["register", "BrainMRI_1.png", "BrainMRI_4.png", "--opt", "gd", "--iters", "1"]
    result = runner.invoke(cli, [*args, "-o", "strict", "--json"])
    assert result.exit_code == 1
    assert "did not converge" in result.stderr and "raise the iteration limit" in result.stderr
    assert json.loads(result.stdout)["converged"] is False
    assert (workdir / "strict" / "transform.json").exists()
    allowed = runner.invoke(cli, [*args, "-o", "lenient", "--allow-unconverged"])
    assert allowed.exit_code == 0
    assert "warning" in allowed.stderr


def test_diverging_learning_rate_says_to_lower_it(run_regcli, workdir):
    done = run_regcli(
        "register",
        "BrainMRI_1.png",
        "BrainMRI_2.png",
        "--opt",
        "gd",
        "--lr",
        "1e6",
        "--json",
        cwd=workdir,
    )
    assert done.returncode == 1
    assert "smaller learning rate" in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout)["converged"] is False


def assert_clean_failure(result, code: int, *needles: str, workdir=None):
    assert result.exit_code == code, result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)
    assert "Traceback" not in result.output
    if workdir is not None:  # nothing written: no output folder created
        assert not list(workdir.glob("regcli-*")) and not (workdir / "out").exists()


def test_different_shapes_name_both_files_and_shapes(runner, workdir):
    write_image(workdir / "small.png", np.tile(np.arange(120, dtype=np.uint8), (100, 1)))
    result = runner.invoke(cli, ["register", "BrainMRI_1.png", "small.png"])
    assert_clean_failure(
        result, 1, "BrainMRI_1.png", "small.png", "(256, 256)", "(100, 120)", workdir=workdir
    )


def test_constant_image_is_refused_by_name(runner, workdir):
    write_image(workdir / "flat.png", np.full((256, 256), 7, dtype=np.uint8))
    result = runner.invoke(cli, ["register", "BrainMRI_1.png", "flat.png"])
    assert_clean_failure(result, 1, "flat.png", "constant", workdir=workdir)


@pytest.mark.parametrize("content", [b"not an image", None])
def test_unreadable_or_missing_file(runner, workdir, content):
    if content is not None:
        (workdir / "broken.png").write_bytes(content)
    result = runner.invoke(cli, ["register", "BrainMRI_1.png", "broken.png", "-o", "out"])
    assert_clean_failure(result, 1, "broken.png", workdir=workdir)


@pytest.mark.parametrize(
    ("option", "needles"),
    [
        (["--iters", "0"], ["--iters", "0"]),
        (["--lr", "-1"], ["--lr"]),
        (["--lr", "nan"], ["--lr"]),
        (["--metric", "bogus"], ["--metric", "bogus", "ssd", "correlation"]),
        (["--opt", "bogus"], ["--opt", "nag", "adam"]),
        (["--transform", "bogus"], ["--transform", "rigid", "affine"]),
        (["--center", "middle"], ["--center", "topleft"]),
        (["--bins", "32"], ["--bins", "'ssd'", "mi"]),
        (["--opt", "gd", "--gamma", "0.5"], ["--gamma", "'gd'", "momentum, nag"]),
        (["--opt", "nag", "--beta", "0.5"], ["--beta", "'nag'", "rmsprop"]),
        (["--lr", "0.5"], ["--lr", "optimizer 'lm' has no learning rate", "gd"]),
    ],
)
def test_bad_option_is_a_usage_error(runner, workdir, option, needles):
    result = runner.invoke(cli, ["register", "BrainMRI_1.png", "BrainMRI_2.png", *option])
    assert_clean_failure(result, 2, *needles, workdir=workdir)


def test_output_folder_that_is_a_file_is_refused(runner, workdir):
    (workdir / "taken").write_text("a file")
    result = runner.invoke(cli, ["register", "BrainMRI_1.png", "BrainMRI_2.png", "-o", "taken"])
    assert_clean_failure(result, 2, "taken", "is a file")


def test_help_names_the_default_output_folder(runner):
    result = runner.invoke(cli, ["register", "--help"])
    assert result.exit_code == 0
    assert "regcli-<moving name>/" in result.output and "--allow-unconverged" in result.output


def test_swapping_the_images_gives_the_inverse_transform(runner, workdir):
    matrices = []
    for fixed, moving, folder in [
        ("BrainMRI_1.png", "BrainMRI_4.png", "forward"),
        ("BrainMRI_4.png", "BrainMRI_1.png", "backward"),
    ]:
        result = runner.invoke(cli, ["register", fixed, moving, "-o", folder, "--json"])
        assert result.exit_code == 0, result.output
        matrices.append(np.asarray(json.loads(result.stdout)["matrix"]))
    forward, backward = matrices
    # forward maps image-1 pixels to image-4 pixels, backward the other way: they compose to
    # the identity.
    assert mean_displacement(forward @ backward, np.eye(3), (256, 256)) < 0.05
    assert mean_displacement(backward, np.linalg.inv(forward), (256, 256)) < 0.05


@pytest.mark.parametrize("command", ["register", "compare"])
def test_sigma_and_bins_reach_the_core(runner, workdir, monkeypatch, command):
    from regcli.errors import RegistrationError

    seen = {}

    def capture(*args, **kwargs):
        seen.update(kwargs)
        raise RegistrationError("stopped by the test")

    monkeypatch.setattr("regcli.registration.register", capture)
    powell = ["--opt" if command == "register" else "--opts", "powell"]
    args = [command, "BrainMRI_1.png", "BrainMRI_2.png", "--metric", "pluim", *powell]
    result = runner.invoke(cli, [*args, "--sigma", "2.5", "--bins", "24", "-q"])
    assert result.exit_code == 1 and "stopped by the test" in result.stderr
    assert (seen["sigma"], seen["bins"], seen["metric"]) == (2.5, 24, "pluim")
    runner.invoke(cli, [command, "BrainMRI_1.png", "BrainMRI_2.png"])
    assert (seen["sigma"], seen["bins"]) == (None, None)  # the metric's own defaults


def test_quiet_after_the_command_is_accepted(runner, workdir):
    args = ["register", "BrainMRI_1.png", "BrainMRI_2.png", "--transform", "translation"]
    result = runner.invoke(cli, [*args, "-o", "out", "-q"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
