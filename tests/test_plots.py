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


# --------------------------------------------------------------------------- global state

#: Calls every public figure function of regcli.plots in a fresh interpreter whose backend
#: was chosen by the user, then reports the backend and whether pyplot got imported.
FIGURES_IN_A_USER_SESSION = """
import json, sys
import matplotlib
matplotlib.use("svg")
import numpy as np
import regcli.plots as plots
from regcli.profile import cost_profile

rng = np.random.default_rng(0)
image = rng.random((40, 48))
costs = np.exp(-np.arange(30) / 5.0)
hist = rng.integers(0, 50, (8, 8))
edges = np.linspace(0, 1, 9)
panel = dict(hist=hist, edges1=edges, edges2=edges, label1="a", label2="b", title="a / b")
calls = {
    "new_figure": lambda: plots.new_figure(),
    "cost_curve_figure": lambda: plots.cost_curve_figure(
        costs, level_starts=[0, 10, 20], level_shapes=[(10, 12), (20, 24), (40, 48)]
    ),
    "overlay_figure": lambda: plots.overlay_figure(image, np.roll(image, 3, 1), image, title="t"),
    "optimizer_comparison_figure": lambda: plots.optimizer_comparison_figure(
        {"gd": costs, "nag": costs / 2}, level_starts={"gd": [0, 10], "nag": [0, 10]}
    ),
    "joint_histogram_figure": lambda: plots.joint_histogram_figure([panel, panel]),
    "cost_profile_figure": lambda: plots.cost_profile_figure(
        cost_profile(image, image, param="tx", values=np.linspace(-3, 3, 7), sigma=1.0)
    ),
}
public = sorted(n for n in plots.__all__ if n.endswith("_figure") and n != "save_figure")
assert sorted(calls) == public, (sorted(calls), public)
pyplot_before = "matplotlib.pyplot" in sys.modules
for name, call in calls.items():
    fig = call()
    assert type(fig).__name__ == "Figure", name
    plots.save_figure(fig, sys.argv[1] + f"/{name}.png")
pyplot_after = "matplotlib.pyplot" in sys.modules
print(json.dumps([pyplot_before, pyplot_after, matplotlib.get_backend()]))
"""


def test_figure_functions_leave_the_users_backend_and_pyplot_alone(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", FIGURES_IN_A_USER_SESSION, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    import json

    assert json.loads(proc.stdout) == [False, False, "svg"]
    assert len(list(tmp_path.glob("*_figure.png"))) == 6


def test_importing_plots_loads_no_matplotlib():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "import regcli.plots as plots\n"
        "before = sorted(m for m in sys.modules if m.startswith('matplotlib'))\n"
        "plots.overlay_image(np.eye(20), np.eye(20), np.eye(20))\n"
        "after = sorted(m for m in sys.modules if m.startswith('matplotlib'))\n"
        "print(before, after)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["[]", "[]"], proc.stdout + proc.stderr


# --------------------------------------------------------------------------- overlay picture


def two_squares(shape=(120, 160), shift=30):
    """fixed: a bright square; moving: the same square ``shift`` pixels to the right."""
    fixed = np.zeros(shape)
    fixed[40:80, 40:80] = 1.0
    moving = np.zeros(shape)
    moving[40:80, 40 + shift : 80 + shift] = 1.0
    return fixed, moving


def colour_masks(picture):
    r, g, b = (picture[..., k].astype(int) for k in range(3))
    magenta = (r > 200) & (b > 200) & (g < 50)
    green = (g > 200) & (r < 50) & (b < 50)
    return magenta, green


def test_overlay_panels_magenta_where_only_fixed_green_where_only_moving():
    from regcli.overlay import overlay_panels

    fixed, moving = two_squares()
    before, after, board_before, board_after = overlay_panels(fixed, moving, fixed)
    assert before[60, 50].tolist() == [1.0, 0.0, 1.0]  # only fixed bright: magenta
    assert before[60, 100].tolist() == [0.0, 1.0, 0.0]  # only moving bright: green
    assert before[60, 75].tolist() == [1.0, 1.0, 1.0]  # both bright: white
    assert before[10, 10].tolist() == [0.0, 0.0, 0.0]  # neither: black
    assert np.all(after[..., 0] == after[..., 1]) and np.all(after[..., 1] == after[..., 2])
    for board in (board_before, board_after):  # grey checkerboards
        assert np.all(board[..., 0] == board[..., 1]) and np.all(board[..., 1] == board[..., 2])
    # The tile of rows 30-44, columns 90-104 is the second image's (odd tile): in the "before"
    # board it shows the moving square there, in the "after" one the (dark) fixed background.
    assert board_before[42, 100, 0] == 1.0 and board_after[42, 100, 0] == 0.0


def test_overlay_image_shows_the_before_panel_left_and_a_grey_after_panel_right():
    from regcli.overlay import overlay_image, overlay_panels

    fixed, moving = two_squares(shape=(256, 256))
    picture = overlay_image(fixed, moving, fixed, labels=False)
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    magenta, green = colour_masks(picture)
    rows, cols = np.nonzero(magenta)
    green_rows, green_cols = np.nonzero(green)
    # The "before" panel, pixel for pixel (256 px images are shown 1:1) in the top left.
    panel = np.rint(overlay_panels(fixed, moving, fixed)[0] * 255).astype(np.uint8)
    panel_magenta, panel_green = colour_masks(panel)
    top, left = rows.min() - np.nonzero(panel_magenta)[0].min(), cols.min() - 40
    assert (top, left) == (green_rows.min() - 40, green_cols.min() - 80)
    assert np.array_equal(picture[top : top + 256, left : left + 256], panel)
    assert magenta.sum() == panel_magenta.sum() and green.sum() == panel_green.sum()
    assert cols.max() < picture.shape[1] / 2 and rows.max() < picture.shape[0] / 2
    assert rows.mean() == pytest.approx(green_rows.mean())
    assert cols.mean() < green_cols.mean()  # fixed's square lies left of moving's
    # Right column (after): fixed and aligned agree, so no colour at all.
    right = picture[:, picture.shape[1] // 2 :].astype(int)
    assert np.abs(right[..., 0] - right[..., 1]).max() <= 1
    assert np.abs(right[..., 1] - right[..., 2]).max() <= 1
    assert right.std() > 20  # but not blank: the squares are drawn in grey


def test_overlay_image_labels_name_the_colours():
    from regcli.overlay import overlay_image

    fixed, moving = two_squares(shape=(256, 256))
    with_labels = overlay_image(fixed, moving, fixed)
    without = overlay_image(fixed, moving, fixed, labels=False)
    header = with_labels.shape[0] - without.shape[0]
    assert header > 0
    assert np.array_equal(with_labels[header:], without)
    text = with_labels[:header].astype(int)
    lettered_magenta = (text[..., 0] > 150) & (text[..., 1] < 40) & (text[..., 2] > 150)
    lettered_green = (text[..., 1] > 100) & (text[..., 0] < 40) & (text[..., 2] < 40)
    assert lettered_magenta.sum() > 50 and lettered_green.sum() > 50


@pytest.mark.parametrize(
    ("shape", "panel_side"),
    [((2000, 1500), 500), ((1024, 256), 512), ((40, 30), 280), ((300, 200), 300), ((160, 9), 320)],
)
def test_overlay_image_panels_are_reduced_or_enlarged_to_a_viewable_size(shape, panel_side):
    from regcli.overlay import overlay_image

    image = np.random.default_rng(0).random(shape)
    picture = overlay_image(image, image, image, labels=False)
    # Two panels per row and column plus thin gaps: the panel's longest side is what we set.
    assert 2 * panel_side < max(picture.shape[:2]) < 2 * panel_side + 40, picture.shape


def test_save_overlay_image_writes_a_png_with_a_title(tmp_path):
    from PIL import Image

    fixed, moving = two_squares()
    path = plots.save_overlay_image(fixed, moving, fixed, tmp_path / "overlay.png", title="a on b")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.mode == "RGB"
        assert png.text["Title"] == "a on b"
        assert "magenta" in png.text["Description"]
        assert png.size[0] >= 2 * 256
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.png"]  # no temporary file left


def test_overlay_refuses_images_that_do_not_match():
    from regcli.errors import InputError
    from regcli.overlay import overlay_image

    fixed, moving = two_squares()
    with pytest.raises(InputError, match=r"fixed and aligned must have the same shape"):
        overlay_image(fixed, moving, fixed[:-1])
    with pytest.raises(InputError, match=r"moving: .*2-D"):
        overlay_image(fixed, np.dstack([moving] * 3), fixed)
