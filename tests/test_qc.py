"""The contact sheet and the drift plot: what they contain, without pyplot."""

from __future__ import annotations

import sys

import numpy as np
from many_cases import fixed_image, moving_for, rigid

from regcli.io import read_image
from regcli.qc import COLOURS, contact_sheet, overlay_thumbnail, plot_drift, save_png


def test_a_thumbnail_is_grey_where_aligned_and_coloured_where_not():
    fixed = fixed_image((96, 112))
    moving = moving_for(fixed, rigid(fixed.shape, 10.0, 6.0, 0.0))
    tile = overlay_thumbnail(fixed, moving, fixed, size=48).astype(int)
    assert tile.shape == (32, 37 + 2 + 37, 3)  # 96x112 shrunk by 3 to 32x37, side by side
    before, after = tile[:, :37], tile[:, -37:]
    # Overlay channels: R = B = fixed, G = the other image.
    assert (
        np.abs(before[..., 1] - before[..., 0]).mean()
        > 5 * np.abs(after[..., 1] - after[..., 0]).mean()
    )


def test_the_contact_sheet_has_one_labelled_tile_per_pair(tmp_path):
    tile = np.full((30, 62, 3), 128, np.uint8)
    sheet = contact_sheet(
        [tile, None, tile], ["a: ok", "b: ERROR", "c: suspect"], ["ok", "error", "suspect"]
    )
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    colours = {tuple(c) for c in sheet.reshape(-1, 3)}
    assert {COLOURS["ok"], COLOURS["error"], COLOURS["suspect"]} <= colours
    save_png(tmp_path / "s.png", sheet)
    assert read_image(tmp_path / "s.png").shape == sheet.shape[:2]  # (read as grey)


def test_the_drift_plot_is_drawn_without_pyplot(tmp_path):
    # Run in a fresh interpreter: another test in this process may have imported pyplot.
    import subprocess

    code = (
        "import sys, numpy as np; from regcli.qc import plot_drift; "
        f"plot_drift({str(tmp_path / 'drift.png')!r}, np.zeros((5, 3)), [2]); "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert read_image(tmp_path / "drift.png").shape[1] == 800


def test_the_drift_plot_marks_the_flagged_frames_in_red(tmp_path):
    from PIL import Image

    drift = np.column_stack([np.arange(10) * 0.5, -np.arange(10) * 0.2, np.sin(np.arange(10))])
    red = []
    for flagged in ([], [3, 7]):
        plot_drift(tmp_path / "drift.png", drift, flagged, title="test")
        rgb = np.asarray(Image.open(tmp_path / "drift.png").convert("RGB")).astype(int)
        red.append(int(np.sum((rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60))))
    assert red[0] == 0 and red[1] > 50
