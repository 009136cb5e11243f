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
    # (equal when the finest level starts within lm's tolerance of its optimum: then its one
    # step is the last, unevaluated Gauss-Newton step)
    assert report["final_cost"] <= report["initial_cost"]
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


@pytest.mark.parametrize("name", ["transform.json", "transform.tfm"])
def test_overwrite_never_replaces_the_initial_transform(runner, workdir, name):
    args = ["register", "BrainMRI_1.png", "BrainMRI_2.png", "-o", "out", "--plots", "none"]
    assert runner.invoke(cli, [*args, "--transform", "translation"]).exit_code == 0
    before = snapshot(workdir / "out")
    result = runner.invoke(cli, [*args, "--overwrite", "--initial-transform", f"out/{name}"])
    assert result.exit_code == 1, result.output
    assert f"out/{name}: refusing to overwrite the input file out/{name}" in result.output
    assert snapshot(workdir / "out") == before


def test_an_initial_transform_beyond_1e6_pixels_is_a_usage_error(runner, workdir):
    """A translation of 1e300 (a typo, physical units) overflowed the warps' float32 cast
    with a RuntimeWarning on stderr and was printed as a 300-digit number: it is refused
    on the option, naming the file, with no warning and no output folder."""
    matrix = [[1, 0, 1e300], [0, 1, 0], [0, 0, 1]]
    (workdir / "huge.json").write_text(json.dumps({"matrix": matrix}))
    args = ["register", "BrainMRI_1.png", "BrainMRI_2.png", "-o", "out", "--plots", "none"]
    result = runner.invoke(cli, [*args, "--initial-transform", "huge.json"])
    assert result.exit_code == 2, result.output
    assert "'--initial-transform': huge.json: its translation (tx=1e+300" in result.stderr
    assert "Warning" not in result.stderr and not (workdir / "out").exists()


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


def test_unconverged_run_writes_outputs_and_exits_3_unless_allowed(runner, workdir):
    args = ["register", "BrainMRI_1.png", "BrainMRI_4.png", "--opt", "gd", "--iters", "1"]
    result = runner.invoke(cli, [*args, "-o", "strict", "--json"])
    assert result.exit_code == 3
    assert "not trustworthy" in result.stderr and "--allow-suspect" in result.stderr
    assert "did not converge" in result.stderr and "raise the iteration limit" in result.stderr
    report = json.loads(result.stdout)
    assert report["converged"] is False and report["exit_code"] == 3
    assert (workdir / "strict" / "transform.json").exists()
    for flag, folder in (("--allow-suspect", "lenient"), ("--allow-unconverged", "old-name")):
        allowed = runner.invoke(cli, [*args, "-o", folder, flag])
        assert allowed.exit_code == 0, flag
        assert "warning" in allowed.stderr and "did not converge" in allowed.stderr


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
    assert done.returncode == 3  # it ran; the result is not to be trusted
    assert "smaller learning rate" in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout)["converged"] is False


@pytest.mark.parametrize(
    ("optimizer", "rate", "advice"),
    [
        ("gd", "1e308", "try a smaller learning rate (the default is 1)"),
        ("nelder-mead", "1e300", "the starting simplex (the learning rate, 1e+300 px) is larger"),
    ],
)
def test_an_absurd_learning_rate_gives_advice_and_no_numpy_warning(
    run_regcli, workdir, optimizer, rate, advice
):
    done = run_regcli(
        "register", "BrainMRI_1.png", "BrainMRI_2.png", "-o", "out", "--plots", "none", "-q",
        "--opt", optimizer, "--lr", rate,
        cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "RuntimeWarning" not in done.stderr  # numpy's "overflow encountered in dot"
    assert all(line.startswith("regcli: ") for line in done.stderr.splitlines()), done.stderr
    assert advice in done.stderr
    assert "raise the iteration limit" not in done.stderr


def test_a_run_stopped_on_a_coarse_level_does_not_call_it_the_finest(run_regcli, workdir):
    done = run_regcli(
        "register", "BrainMRI_1.png", "BrainMRI_2.png", "-o", "out", "--plots", "none",
        "--opt", "gd", "--lr", "1e308",
        cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "at the last level run (64x64)" in done.stdout
    assert "finest" not in done.stdout


def assert_clean_failure(result, code: int, *needles: str, workdir=None):
    assert result.exit_code == code, result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)
    assert "Traceback" not in result.output
    if workdir is not None:  # nothing written: no output folder created
        assert not list(workdir.glob("regcli-*")) and not (workdir / "out").exists()


def test_a_moving_image_of_another_shape_is_aligned_onto_the_fixed_grid(runner, workdir):
    crop = read_image(workdir / "BrainMRI_1.png")[30:230, 10:250]  # 200 x 240
    write_image(workdir / "crop.png", crop)
    result = runner.invoke(
        cli, ["register", "BrainMRI_1.png", "crop.png", "-o", "out", "--json", "-q"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert np.allclose(report["matrix"], [[1, 0, -10], [0, 1, -30], [0, 0, 1]], atol=0.02)
    saved = json.loads((workdir / "out" / "transform.json").read_text())
    assert saved["fixed_shape"] == [256, 256] and saved["moving_shape"] == [200, 240]
    assert read_image(workdir / "out" / "crop_aligned.png").shape == (256, 256)


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
    assert "regcli-<moving name>/" in result.output and "--allow-suspect" in result.output
    assert "--allow-unconverged" not in result.output  # the old name still works, unlisted
    assert "3 not trustworthy" in result.output


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


# --------------------------------------------------------------------------- --plots


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG, read from its header."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_figures_are_pngs_of_a_viewable_size(runner, workdir):
    args = ["register", "BrainMRI_1.png", "BrainMRI_4.png", "-o", "out", "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    width, height = png_size(workdir / "out" / "cost.png")
    assert 600 <= width <= 900 and 380 <= height <= 560, (width, height)
    width, height = png_size(workdir / "out" / "overlay.png")
    # two 256 px panels side by side (images shown pixel for pixel), two rows, titles above
    assert 512 < width < 600 and 512 < height < 660, (width, height)


def test_plots_none_writes_only_the_aligned_image_and_the_transform(runner, workdir):
    args = ["register", "BrainMRI_1.png", "BrainMRI_4.png", "-o", "out", "--plots", "none"]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (workdir / "out").iterdir()} == {
        "BrainMRI_4_aligned.png",
        "transform.json",
        "transform.tfm",
    }
    assert set(json.loads(result.stdout)["outputs"]) == {
        "directory",
        "aligned",
        "transform",
        "itk_transform",
    }
    text = runner.invoke(cli, [*args, "--overwrite"])
    assert text.exit_code == 0, text.output
    assert "aligned image" in text.output and "transform.json" in text.output
    assert "cost.png" not in text.output and "overlay.png" not in text.output


def test_plots_none_ignores_old_figures_and_all_refuses_them(runner, workdir):
    """Existing figures block a run only when it would write them."""
    (workdir / "out").mkdir()
    (workdir / "out" / "cost.png").write_bytes(b"old")
    args = ["register", "BrainMRI_1.png", "BrainMRI_4.png", "-o", "out"]
    assert runner.invoke(cli, [*args, "--plots", "none"]).exit_code == 0
    assert (workdir / "out" / "cost.png").read_bytes() == b"old"
    refused = runner.invoke(cli, [*args, "--plots", "all"])
    assert refused.exit_code == 1 and "already exists" in refused.output
    assert runner.invoke(cli, [*args, "--plots", "all", "--overwrite"]).exit_code == 0
    assert (workdir / "out" / "cost.png").read_bytes()[:4] == b"\x89PNG"


def test_overwrite_removes_the_earlier_runs_figures_it_does_not_write(runner, workdir):
    """An --overwrite run replaces register's set of outputs: no figure of another run stays
    beside its transform.json; files register does not name stay."""
    args = ["register", "BrainMRI_1.png", "BrainMRI_2.png", "-o", "out"]
    assert runner.invoke(cli, [*args, "--transform", "translation"]).exit_code == 0
    (workdir / "out" / "notes.txt").write_text("mine")
    again = runner.invoke(cli, [*args, "--overwrite", "--plots", "none"])
    assert again.exit_code == 0, again.output
    assert {p.name for p in (workdir / "out").iterdir()} == {
        "BrainMRI_2_aligned.png",
        "transform.json",
        "transform.tfm",
        "notes.txt",
    }
    assert "removed the earlier run's cost.png, overlay.png" in again.output
    assert (workdir / "out" / "notes.txt").read_text() == "mine"


def test_overwrite_removes_the_aligned_image_of_another_moving_image(runner, workdir):
    base = ["register", "BrainMRI_1.png", "-o", "out", "--plots", "none", "--allow-suspect"]
    assert runner.invoke(cli, [*base[:2], "BrainMRI_2.png", *base[2:]]).exit_code == 0
    result = runner.invoke(cli, [*base[:2], "BrainMRI_3.png", *base[2:], "--overwrite"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (workdir / "out").iterdir()} == {
        "BrainMRI_3_aligned.png",
        "transform.json",
        "transform.tfm",
    }


def test_overwrite_never_removes_an_input_nor_anything_when_it_fails(runner, workdir):
    args = ["register", "out/cost.png", "BrainMRI_2.png", "-o", "out", "--plots", "none"]
    (workdir / "out").mkdir()
    shutil.copy(workdir / "BrainMRI_1.png", workdir / "out" / "cost.png")
    (workdir / "out" / "overlay.png").write_bytes(b"old")
    write_image(workdir / "small.png", np.ones((64, 64), dtype=np.uint8))
    before = snapshot(workdir / "out")
    failed = runner.invoke(cli, [*args, "--overwrite", "--fixed-mask", "small.png"])
    assert failed.exit_code == 2, failed.output  # (a mask of another shape)
    assert snapshot(workdir / "out") == before
    done = runner.invoke(cli, [*args, "--overwrite"])
    assert done.exit_code == 0, done.output
    assert (workdir / "out" / "cost.png").read_bytes() == before["cost.png"][0]  # the input
    assert not (workdir / "out" / "overlay.png").exists()


def test_plots_bad_value_is_a_usage_error(runner, workdir):
    result = runner.invoke(cli, ["register", "BrainMRI_1.png", "BrainMRI_4.png", "--plots", "qc"])
    assert_clean_failure(result, 2, "--plots", "none", "all", workdir=workdir)


PLOTTING_MODULES = """
import json, sys
from regcli.cli.main import cli
try:
    cli(sys.argv[1:], prog_name="regcli")
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib")))
"""


@pytest.mark.parametrize("plots", ["none", "all"])
def test_plots_none_imports_no_matplotlib_and_all_no_pyplot(workdir, plots):
    import subprocess
    import sys

    args = ["register", "BrainMRI_1.png", "BrainMRI_4.png", "-o", "out", "--plots", plots]
    proc = subprocess.run(
        [sys.executable, "-c", PLOTTING_MODULES, *args, "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout.splitlines()[-1])
    if plots == "none":
        assert modules == []
    else:
        assert "matplotlib.figure" in modules and "matplotlib.pyplot" not in modules


# --------------------------------------------------------------------------- trust: exit codes


def noise_pair(folder):
    """Two unrelated noise images (8-bit PNG): any "alignment" of them is chance."""
    rng = np.random.default_rng(0)
    for name in ("noise1.png", "noise2.png"):
        write_image(folder / name, rng.integers(0, 256, (128, 128)).astype(np.uint8))


def test_trustworthy_result_exits_0_with_its_quality(runner, workdir):
    result = runner.invoke(
        cli, ["register", "BrainMRI_1.png", "BrainMRI_4.png", "-o", "out", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["exit_code"] == 0 and report["quality"]["verdict"] == "ok"
    assert report["quality"]["reasons"] == []
    saved = json.loads((workdir / "out" / "transform.json").read_text())
    assert saved["quality"]["verdict"] == "ok"
    text = runner.invoke(cli, ["register", "BrainMRI_1.png", "BrainMRI_4.png", "-o", "txt"])
    assert "quality: ok (correlation" in text.stdout
    assert "at the finest level (256x256)" in text.stdout


def test_unrelated_images_exit_3_with_the_reasons_and_all_outputs(runner, workdir):
    noise_pair(workdir)
    result = runner.invoke(cli, ["register", "noise1.png", "noise2.png", "-o", "out", "--json"])
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["quality"]["verdict"] == "suspect" and report["exit_code"] == 3
    assert "not trustworthy" in result.stderr and "--allow-suspect" in result.stderr
    assert report["quality"]["reasons"][0] in result.stderr
    assert {p.name for p in (workdir / "out").iterdir()} == {
        "noise2_aligned.png",
        "cost.png",
        "overlay.png",
        "transform.json",
        "transform.tfm",
    }
    allowed = runner.invoke(
        cli, ["register", "noise1.png", "noise2.png", "-o", "out2", "--allow-suspect"]
    )
    assert allowed.exit_code == 0 and "warning" in allowed.stderr


def test_exit_3_in_a_real_process(run_regcli, workdir):
    noise_pair(workdir)
    done = run_regcli("register", "noise1.png", "noise2.png", "-q", cwd=workdir)
    assert done.returncode == 3, done.stderr
    assert "not trustworthy" in done.stderr and "Traceback" not in done.stderr
    ok = run_regcli("register", "BrainMRI_1.png", "BrainMRI_4.png", "-q", "-o", "ok", cwd=workdir)
    assert ok.returncode == 0, ok.stderr
