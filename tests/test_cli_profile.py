"""``regcli profile``: the PNG and JSON of a cost profile, and its usage errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from regcli.cli.main import cli
from regcli.io import write_transform_json


@pytest.fixture
def pair4(samples, truth):
    entry = truth["pairs"]["BrainMRI_4.png"]
    return samples / entry["fixed"], samples / "BrainMRI_4.png", entry


def test_angle_profile_at_a_transform(runner, pair4, tmp_path):
    fixed, moving, entry = pair4
    at = write_transform_json(tmp_path / "t.json", np.array(entry["matrix"]), transform="rigid")
    out = tmp_path / "angle.png"
    result = runner.invoke(
        cli,
        [
            "profile", str(fixed), str(moving), "--param", "angle", "--range", "-30:-6:0.5",
            "--at", str(at), "--smooth", "2", "--truth", "-18", "-o", str(out), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["param"] == "angle" and data["unit"] == "deg"
    assert data["values"][0] == pytest.approx(-30.0) and data["values"][-1] == pytest.approx(-6.0)
    assert len(data["values"]) == len(data["costs"]) == len(data["smoothed_costs"]) == 49
    assert data["minimum"] == pytest.approx(-18.0, abs=0.25)
    assert data["smoothed_minimum"] == pytest.approx(-18.0, abs=0.25)
    assert data["true_value"] == pytest.approx(-18.0)
    assert data["at"]["tx"] == pytest.approx(entry["params"]["tx"])
    assert data["at_source"] == str(at)
    assert data["output"] == str(out)
    assert out.stat().st_size > 1000


def test_tx_profile_text_and_default_name(runner, samples, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        cli,
        [
            "profile", str(samples / "BrainMRI_1.png"), str(samples / "BrainMRI_2.png"),
            "--param", "tx", "--range", "10:24:0.5", "--smooth", "3",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ssd cost along tx: 29 values from 10 px to 24 px" in result.output
    assert "smoothed (sigma 3 px)" in result.output
    assert (tmp_path / "BrainMRI_2_profile_tx.png").exists()


def test_register_then_profile(runner, pair4, tmp_path):
    fixed, moving, _ = pair4
    out = tmp_path / "p.png"
    result = runner.invoke(
        cli,
        ["profile", str(fixed), str(moving), "--register", "--range", "-24:-12:1", "-o", str(out),
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["at_source"] == "register"
    assert data["registration"]["params"]["angle_deg"] == pytest.approx(-18.0, abs=0.05)
    assert data["minimum"] == pytest.approx(-18.0)


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--param", "scale"], "--param"),
        (["--transform", "translation", "--param", "angle"], "--param"),
        (["--range", "5:1:1"], "--range"),
        (["--range", "0:10"], "--range"),
        (["--range", "0:10:0"], "--range"),
        (["--range", "0:1e6:0.01"], "--range"),
        (["--range", "0:10:20"], "--range"),  # one value: the step is wider than the span
        (["--smooth", "-1"], "--smooth"),
        (["--smooth", "nan"], "--smooth"),
        (["--bins", "16"], "--bins"),
        (["--at", "t.json", "--register"], "--at"),
        (["-o", "profile.jpg"], "--output"),
        # beyond 1e6 (the bound of --center): the figure's axis or the cost overflowed
        (["--truth", "1e308"], "--truth"),
        (["--param", "tx", "--range", "1e308:1.7e308:1e307"], "--range"),
        (["--param", "angle", "--range", "-2e6:0:1e5"], "--range"),
    ],
)
def test_usage_errors(runner, pair4, tmp_path, monkeypatch, args, hint):
    monkeypatch.chdir(tmp_path)
    fixed, moving, _ = pair4
    result = runner.invoke(cli, ["profile", str(fixed), str(moving), *args])
    assert result.exit_code == 2, result.output
    assert hint in result.output
    assert "Traceback" not in result.output and "Warning" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_missing_transform_file(runner, pair4, tmp_path):
    fixed, moving, _ = pair4
    out = tmp_path / "p.png"
    missing = tmp_path / "nothere.json"
    result = runner.invoke(
        cli, ["profile", str(fixed), str(moving), "--at", str(missing), "-o", str(out)]
    )
    assert result.exit_code == 1
    assert "nothere.json: no such file" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_refuses_to_overwrite(runner, pair4, tmp_path):
    fixed, moving, _ = pair4
    out = tmp_path / "p.png"
    out.write_bytes(b"keep")
    args = ["profile", str(fixed), str(moving), "--range", "-2:2:1", "-o", str(out)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert "already exists" in result.output and "--overwrite" in result.output
    assert out.read_bytes() == b"keep"
    result = runner.invoke(cli, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_missing_image_named(runner, samples, tmp_path):
    out = tmp_path / "p.png"
    result = runner.invoke(
        cli, ["profile", str(samples / "BrainMRI_1.png"), str(tmp_path / "no.png"), "-o", str(out)]
    )
    assert result.exit_code == 1
    assert "no.png: no such file" in result.output
    assert not out.exists()


def test_installed_cli(run_regcli, samples, tmp_path):
    out = tmp_path / "p.png"
    proc = run_regcli(
        "profile", samples / "BrainMRI_1.png", samples / "BrainMRI_2.png", "--param", "ty",
        "--range", "-16:-8:0.5", "--smooth", "2", "-o", out, "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["param"] == "ty"
    assert out.exists()
    proc = run_regcli("profile", samples / "BrainMRI_1.png", samples / "BrainMRI_2.png",
                      "--param", "bogus")  # fmt: skip
    assert proc.returncode == 2
    assert "--param" in proc.stderr and "Traceback" not in proc.stderr
