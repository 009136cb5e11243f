"""``regcli jointhist``: the sum H = n x p check, several pairs, log-scale PNG, .npy, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import smooth_blobs

from regcli.cli.main import cli
from regcli.histogram import joint_histogram
from regcli.io import write_image
from regcli.metrics import mutual_information, normalized_mutual_information


def invoke(runner, *args):
    result = runner.invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def pairs(tmp_path):
    """Three 8-bit pairs of 30 x 40 pixels: identical, shifted, unrelated."""
    base = np.round(smooth_blobs((30, 40), seed=1) * 250).astype(np.uint8)
    rng = np.random.default_rng(0)
    images = {
        "a.png": base,
        "b.png": base,
        "c.png": np.roll(base, 3, axis=1),
        "d.png": rng.integers(0, 256, base.shape).astype(np.uint8),
    }
    return {name: write_image(tmp_path / name, image) for name, image in images.items()}


def test_one_pair_prints_the_check_with_both_numbers(runner, pairs):
    result = invoke(runner, "jointhist", pairs["a.png"], pairs["c.png"])
    assert result.exit_code == 0, result.output
    assert "sum H = 1200, n x p = 30 x 40 = 1200 (rows x cols): ok" in result.output
    assert "256 x 256 bins" in result.output
    assert "MI = " in result.output and "NMI = " in result.output


def test_json_reports_each_pair_and_matches_the_core(runner, pairs):
    result = invoke(
        runner,
        "jointhist",
        *(pairs[name] for name in ("a.png", "b.png", "a.png", "c.png", "a.png", "d.png")),
        "--bins",
        "16,8",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["output"] is None and report["npy"] is None
    assert len(report["pairs"]) == 3
    for entry in report["pairs"]:
        assert entry["shape"] == [30, 40]
        assert entry["bins"] == [16, 8]
        assert entry["sum"] == entry["n_pixels"] == 1200
        assert entry["ok"] is True
    from regcli.io import read_image

    a, c = read_image(pairs["a.png"]), read_image(pairs["c.png"])
    assert report["pairs"][1]["mi"] == pytest.approx(mutual_information(a, c, bins=(16, 8)))
    assert report["pairs"][1]["nmi"] == pytest.approx(
        normalized_mutual_information(a, c, bins=(16, 8))
    )
    identical, shifted, unrelated = (entry["mi"] for entry in report["pairs"])
    assert identical > shifted > unrelated


def test_png_with_several_pairs_and_npy(runner, pairs, tmp_path):
    picture, array = tmp_path / "h.png", tmp_path / "h.npy"
    names = ("a.png", "b.png", "a.png", "c.png")
    result = invoke(
        runner, "jointhist", *(pairs[n] for n in names), "-o", picture, "--npy", array, "--normed"
    )
    assert result.exit_code == 0, result.output
    assert f"picture: {picture}" in result.output
    import matplotlib.image

    pixels = matplotlib.image.imread(picture)
    assert pixels.shape[1] > 1.8 * pixels.shape[0]  # two panels side by side
    stacked = np.load(array)
    assert stacked.shape == (2, 256, 256)
    np.testing.assert_allclose(stacked.sum(axis=(1, 2)), 1.0)
    from regcli.io import read_image

    expected, _, _ = joint_histogram(
        read_image(pairs["a.png"]), read_image(pairs["c.png"]), normed=True
    )
    np.testing.assert_allclose(stacked[1], expected)


def test_no_picture_without_output_option(runner, pairs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.iterdir())
    result = invoke(runner, "jointhist", pairs["a.png"], pairs["b.png"])
    assert result.exit_code == 0, result.output
    assert set(tmp_path.iterdir()) == before


def test_figure_uses_log_colour_scale_with_empty_bins_blank(pairs):
    from matplotlib.colors import LogNorm

    from regcli import plots

    hist = np.array([[0.0, 5.0], [100.0, 0.0]])
    panel = {
        "hist": hist,
        "edges1": np.array([0.0, 1.0, 2.0]),
        "edges2": np.array([0.0, 1.0, 2.0]),
        "label1": "x.png",
        "label2": "y.png",
    }
    fig = plots.joint_histogram_figure([panel, panel, panel, panel])
    try:
        visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
        meshes = [ax.collections[0] for ax in visible if ax.collections]
        assert len(meshes) == 4
        assert isinstance(meshes[0].norm, LogNorm)
        assert meshes[0].norm.vmin == 5.0 and meshes[0].norm.vmax == 100.0
        data = meshes[0].get_array()
        assert np.ma.count_masked(data) == 2  # the two empty bins are not coloured
        assert visible[0].get_xlabel() == "intensity in x.png"
        assert visible[0].get_ylabel() == "intensity in y.png"
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_odd_number_of_images_is_usage_error(runner, pairs, tmp_path):
    result = invoke(runner, "jointhist", pairs["a.png"], pairs["b.png"], pairs["c.png"])
    assert result.exit_code == 2
    assert "I J [I2 J2 ...]" in result.output
    assert "c.png has no partner" in result.output


@pytest.mark.parametrize("bins", ["0", "abc", "3,4,5", "5000"])
def test_bad_bins_is_usage_error(runner, pairs, bins):
    result = invoke(runner, "jointhist", pairs["a.png"], pairs["b.png"], "--bins", bins)
    assert result.exit_code == 2
    assert "--bins" in result.output


def test_shapes_differ_names_both_files(runner, pairs, tmp_path):
    other = write_image(tmp_path / "small.png", np.zeros((10, 12), np.uint8))
    picture = tmp_path / "h.png"
    result = invoke(runner, "jointhist", pairs["a.png"], other, "-o", picture)
    assert result.exit_code == 1
    assert "a.png" in result.output and "small.png" in result.output
    assert "(30, 40) and (10, 12)" in result.output
    assert not picture.exists()


def test_missing_file_is_named_and_nothing_written(runner, pairs, tmp_path):
    picture = tmp_path / "h.png"
    result = invoke(runner, "jointhist", pairs["a.png"], tmp_path / "nope.png", "-o", picture)
    assert result.exit_code == 1
    assert "nope.png: no such file" in result.output
    assert not picture.exists()


def test_existing_output_needs_overwrite_and_inputs_are_never_replaced(runner, pairs, tmp_path):
    picture = tmp_path / "h.png"
    picture.write_bytes(b"old")
    result = invoke(runner, "jointhist", pairs["a.png"], pairs["b.png"], "-o", picture)
    assert result.exit_code == 1
    assert "already exists; pass --overwrite" in result.output
    assert picture.read_bytes() == b"old"
    assert (
        invoke(
            runner, "jointhist", pairs["a.png"], pairs["b.png"], "-o", picture, "--overwrite"
        ).exit_code
        == 0
    )
    assert picture.read_bytes()[:4] == b"\x89PNG"
    original = pairs["a.png"].read_bytes()
    result = invoke(
        runner, "jointhist", pairs["a.png"], pairs["b.png"], "-o", pairs["a.png"], "--overwrite"
    )
    assert result.exit_code == 1
    assert "refusing to overwrite the input" in result.output
    assert pairs["a.png"].read_bytes() == original


@pytest.mark.parametrize(("option", "name"), [("-o", "h.txt"), ("--npy", "h.txt")])
def test_wrong_output_suffix_is_usage_error(runner, pairs, tmp_path, option, name):
    result = invoke(runner, "jointhist", pairs["a.png"], pairs["b.png"], option, tmp_path / name)
    assert result.exit_code == 2
    assert name in result.output
    assert not (tmp_path / name).exists()


def test_npy_of_pairs_with_different_bins_is_refused(runner, pairs, tmp_path):
    floats = write_image(tmp_path / "f.npy", np.linspace(0, 1, 1200).reshape(30, 40))
    array = tmp_path / "h.npy"
    result = invoke(
        runner, "jointhist", pairs["a.png"], pairs["b.png"], pairs["a.png"], floats, "--npy", array
    )
    assert result.exit_code == 1
    assert "--bins N" in result.output and "h.npy" in result.output
    assert not array.exists()


def test_installed_cli_on_the_sample_pairs(run_regcli, samples, tmp_path):
    if not (samples / "J5.png").exists():
        pytest.skip("sample_images/ not present")
    args = [samples / f"{letter}{k}.png" for k in range(1, 6) for letter in "IJ"]
    done = run_regcli("jointhist", *args, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [entry["sum"] for entry in report["pairs"]] == [256 * 256] * 5
    mi = [entry["mi"] for entry in report["pairs"]]
    # J1 = I1: MI is the entropy; J5 is an unrelated texture: lowest MI of the five.
    assert report["pairs"][0]["nmi"] == pytest.approx(2.0)
    assert mi[0] == max(mi) and mi[4] == min(mi)


def test_installed_cli_usage_error_exit_code(run_regcli, tmp_path):
    done = run_regcli("jointhist", tmp_path / "only_one.png")
    assert done.returncode == 2
    assert "has no partner" in done.stderr
    assert "Traceback" not in done.stderr
