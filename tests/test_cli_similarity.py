"""``regcli similarity``: table and JSON agree with the core, choices, errors name files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import smooth_blobs

from regcli.cli.main import cli
from regcli.io import read_image, write_image
from regcli.metrics import METRICS


def invoke(runner, *args):
    result = runner.invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def images(tmp_path):
    base = np.round(smooth_blobs((32, 36), seed=4) * 250).astype(np.uint8)
    return {
        "fixed": write_image(tmp_path / "fixed.png", base),
        "shifted": write_image(tmp_path / "shifted.png", np.roll(base, 2, axis=0)),
        "constant": write_image(tmp_path / "constant.png", np.full(base.shape, 7, np.uint8)),
        "small": write_image(tmp_path / "small.png", np.zeros((8, 9), np.uint8)),
    }


def test_json_has_one_key_per_registry_metric_equal_to_the_core(runner, images):
    result = invoke(
        runner, "similarity", images["fixed"], images["shifted"], "--json", "--sigma", "1"
    )
    assert result.exit_code == 0, result.output
    values = json.loads(result.stdout)
    assert set(values) == set(METRICS)
    fixed, shifted = read_image(images["fixed"]), read_image(images["shifted"])
    for name, metric in METRICS.items():
        options = {"sigma": 1.0} if "sigma" in metric.options else {}
        assert values[name] == pytest.approx(metric(fixed, shifted, **options)), name


@pytest.mark.parametrize("name", list(METRICS))
def test_identical_images_score_best_through_the_cli(runner, images, name):
    same = json.loads(
        invoke(runner, "similarity", images["fixed"], images["fixed"], "-m", name, "--json").stdout
    )
    other = json.loads(
        invoke(
            runner, "similarity", images["fixed"], images["shifted"], "-m", name, "--json"
        ).stdout
    )
    assert list(same) == [name]
    if METRICS[name].higher_is_better:
        assert same[name] > other[name]
    else:
        assert same[name] < other[name]


def test_table_lists_value_and_direction(runner, images):
    result = invoke(runner, "similarity", images["fixed"], images["fixed"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["metric", "value", "better"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert list(rows) == list(METRICS)
    assert rows["ssd"][1:3] == ["0", "lower"]
    assert rows["correlation"][1:3] == ["1", "higher"]
    assert rows["nmi"][1:3] == ["2", "higher"]
    # every value column starts at the same character (aligned table)
    starts = {line.index(line.split()[1], len(line.split()[0])) for line in lines}
    assert len(starts) == 1


def test_bins_option_reaches_mi(runner, images):
    fixed, shifted = read_image(images["fixed"]), read_image(images["shifted"])
    result = invoke(
        runner, "similarity", images["fixed"], images["shifted"], "-m", "mi", "--bins", 8, "--json"
    )
    assert json.loads(result.stdout)["mi"] == pytest.approx(METRICS["mi"](fixed, shifted, bins=8))
    coarse = json.loads(result.stdout)["mi"]
    fine = json.loads(
        invoke(
            runner, "similarity", images["fixed"], images["shifted"], "-m", "mi", "--json"
        ).stdout
    )["mi"]
    assert fine > coarse  # more bins, more (estimated) information


def test_unknown_metric_is_usage_error_listing_choices(runner, images):
    result = invoke(runner, "similarity", images["fixed"], images["shifted"], "-m", "foo")
    assert result.exit_code == 2
    assert "--metric" in result.output
    for name in [*METRICS, "all"]:
        assert name in result.output


@pytest.mark.parametrize(("option", "value"), [("--bins", "1"), ("--sigma", "-2")])
def test_bad_option_values_are_usage_errors(runner, images, option, value):
    result = invoke(runner, "similarity", images["fixed"], images["shifted"], option, value)
    assert result.exit_code == 2
    assert option in result.output


def test_shapes_differ_names_both_files(runner, images):
    result = invoke(runner, "similarity", images["fixed"], images["small"])
    assert result.exit_code == 1
    assert "fixed.png" in result.output and "small.png" in result.output
    assert "(32, 36) and (8, 9)" in result.output


def test_constant_image_correlation_alone_is_error_naming_the_file(runner, images):
    result = invoke(runner, "similarity", images["fixed"], images["constant"], "-m", "correlation")
    assert result.exit_code == 1
    assert f"correlation: {images['constant']} is constant" in result.output


def test_constant_image_with_all_reports_null_and_a_note(runner, images):
    result = invoke(runner, "similarity", images["constant"], images["fixed"], "--json")
    assert result.exit_code == 0, result.output
    values = json.loads(result.stdout)
    assert values["correlation"] is None
    assert values["ssd"] > 0 and values["mi"] == pytest.approx(0.0)
    assert f"{images['constant']} is constant" in result.stderr


def test_missing_file_is_named(runner, images, tmp_path):
    result = invoke(runner, "similarity", images["fixed"], tmp_path / "missing.png")
    assert result.exit_code == 1
    assert "missing.png: no such file" in result.output


def test_installed_cli_on_sample_images(run_regcli, samples):
    if not (samples / "BrainMRI_2.png").exists():
        pytest.skip("sample_images/ not present")
    fixed = samples / "BrainMRI_1.png"
    done = run_regcli("similarity", fixed, fixed, "--json")
    assert done.returncode == 0, done.stderr
    same = json.loads(done.stdout)
    assert same["ssd"] == 0 and same["correlation"] == pytest.approx(1.0)
    assert same["nmi"] == pytest.approx(2.0)
    moved = json.loads(run_regcli("similarity", fixed, samples / "BrainMRI_2.png", "--json").stdout)
    for name, metric in METRICS.items():
        assert (same[name] > moved[name]) == metric.higher_is_better, name


def test_installed_cli_rejects_unknown_metric(run_regcli, tmp_path):
    done = run_regcli("similarity", tmp_path / "a.png", tmp_path / "b.png", "--metric", "nope")
    assert done.returncode == 2
    assert "'nope' is not one of" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_empty_mask_names_the_option_and_the_file_not_registering(runner, images, tmp_path):
    mask = tmp_path / "zero.npy"
    np.save(mask, np.zeros((32, 36), np.uint8))
    result = invoke(runner, "similarity", images["fixed"], images["shifted"], "--fixed-mask", mask)
    assert result.exit_code == 2, result.output
    assert "--fixed-mask" in result.output
    assert f"only 0 pixel(s) of the {images['fixed']} image are inside its mask" in result.output
    assert "image1" not in result.output and "register" not in result.output
