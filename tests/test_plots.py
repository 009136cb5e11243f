"""Figures of a registration: cost curve, before/after overlay, optimiser comparison."""

from __future__ import annotations

import numpy as np
import pytest

plots = pytest.importorskip("regcli.plots")


def read_png(path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)


def three_level_costs():
    """A cost history over three pyramid levels: decays, jumps up at each finer level."""
    decay = [np.exp(-np.arange(n) / 8.0) for n in (30, 40, 50)]
    return np.concatenate([200 * decay[0] + 5, 30 * decay[1] + 0.8, 3 * decay[2] + 0.05])


def level_markers(fig):
    return [
        line for ax in fig.axes for line in ax.lines if line.get_gid() == plots.LEVEL_MARKER_GID
    ]


def test_cost_curve_marks_every_level_after_the_first():
    fig = plots.cost_curve_figure(
        three_level_costs(),
        level_starts=[0, 30, 70],
        level_shapes=[(64, 64), (128, 128), (256, 256)],
        cost_label="ssd per pixel",
        title="ssd, nag, rigid",
    )
    try:
        markers = level_markers(fig)
        # A marker between the last iteration of one level and the first of the next.
        assert sorted(line.get_xdata()[0] for line in markers) == [29.5, 69.5]
        texts = [t.get_text().strip() for t in fig.axes[0].texts]
        assert texts == ["64x64", "128x128", "256x256"], texts
        assert fig.axes[0].get_yscale() == "log"  # positive costs over four decades
        assert fig.axes[0].get_title() == "ssd, nag, rigid"
        # One line per level: none of them joins the last cost of a level to the next level.
        curves = [line for line in fig.axes[0].lines if line.get_gid() is None]
        spans = [(line.get_xdata()[0], line.get_xdata()[-1]) for line in curves[:3]]
        assert spans == [(0, 29), (30, 69), (70, 119)]
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_cost_curve_stays_linear_for_negative_costs():
    import matplotlib.pyplot as plt

    fig = plots.cost_curve_figure(-np.linspace(0.2, 0.95, 50), level_starts=[0])
    try:
        assert fig.axes[0].get_yscale() == "linear"
        assert level_markers(fig) == []
    finally:
        plt.close(fig)


def test_cost_curve_survives_a_diverging_run(tmp_path):
    costs = np.array([1.0, 10.0, 1e5, 1e200, np.inf, np.nan])
    path = plots.plot_cost_curve(costs, tmp_path / "cost.png", cost_label="ssd per pixel")
    assert read_png(path).shape[0] > 100


def test_plot_cost_curve_writes_png_of_expected_size(tmp_path):
    path = plots.plot_cost_curve(
        three_level_costs(), tmp_path / "cost.png", level_starts=[0, 30, 70]
    )
    image = read_png(path)
    # figsize 7 x 4.2 in at 120 dpi, trimmed to the drawn area by bbox_inches="tight".
    assert 600 <= image.shape[1] <= 860 and 380 <= image.shape[0] <= 520, image.shape
    assert image[..., :3].std() > 0.05  # not a blank canvas
    assert [p.name for p in tmp_path.iterdir()] == ["cost.png"]  # no temporary file left


def test_overlay_shows_misalignment_before_and_not_after(tmp_path, blobs):
    from regcli.resample import translate

    moving = translate(blobs, 9.0, -6.0)
    composite_before = plots.magenta_green(blobs, moving)
    composite_after = plots.magenta_green(blobs, blobs)
    # Magenta/green: red and blue carry fixed, green carries moving; aligned means grey.
    assert np.abs(composite_before[..., 0] - composite_before[..., 1]).mean() > 0.05
    assert np.abs(composite_after[..., 0] - composite_after[..., 1]).max() < 1e-12
    path = plots.plot_overlay(blobs, moving, blobs, tmp_path / "overlay.png", title="t")
    image = read_png(path)
    assert 700 <= image.shape[1] <= 1000 and 750 <= image.shape[0] <= 1100, image.shape


def test_checkerboard_alternates_tiles():
    board = plots.checkerboard(np.zeros((8, 8)), np.ones((8, 8)), tiles=4)
    assert board[0, 0] == 0 and board[0, 2] == 1 and board[2, 0] == 1 and board[2, 2] == 0
    assert board.mean() == pytest.approx(0.5)


def test_optimizer_comparison_has_one_curve_per_optimizer(tmp_path):
    import matplotlib.pyplot as plt

    costs = three_level_costs()
    curves = {"gd": costs, "nag": costs * 0.5, "adam": costs[::2]}
    starts = {"gd": [0, 30, 70], "nag": [0, 30, 70], "adam": [0, 15, 35]}
    fig = plots.optimizer_comparison_figure(curves, level_starts=starts, cost_label="ssd per pixel")
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gd", "nag", "adam"]
        markers = level_markers(fig)
        # Each curve is drawn one line per level (no segment joins two levels).
        assert len(ax.lines) == 3 * 3 + len(markers)
        # One marker set per curve, at the first cost of each finer level.
        assert [list(m.get_xdata()) for m in markers] == [[30, 70], [30, 70], [15, 35]]
        curve_colors = [line.get_color() for line in ax.get_legend().get_lines()]
        assert len(set(curve_colors)) == 3
        assert [m.get_color() for m in markers] == curve_colors
        assert ax.get_yscale() == "log"
    finally:
        plt.close(fig)
    path = plots.plot_optimizer_comparison(curves, tmp_path / "compare.png")
    image = read_png(path)
    assert 650 <= image.shape[1] <= 920 and 450 <= image.shape[0] <= 600, image.shape
