"""Quality-control pictures of many registrations: a contact sheet of small before/after
overlays (numpy, labels drawn with Pillow) and a stack's drift plot (matplotlib's object API).

Pillow and matplotlib are imported inside the functions that draw, never at import time.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from regcli.io import atomic_output
from regcli.overlay import draw_text, magenta_green, reduce_for_display, save_png

__all__ = ["contact_sheet", "overlay_thumbnail", "plot_drift", "save_png", "verdict_colour"]

#: Tile colours of the label bars: trusted, not trusted, failed.
COLOURS = {"ok": (46, 125, 50), "suspect": (230, 120, 0), "error": (198, 40, 40)}
_LABEL_HEIGHT = 14
_GAP = 4


def _thumbnail_overlay(fixed: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Magenta = fixed, green = the other image (each by its own robust range): grey where
    they agree."""
    return np.rint(magenta_green(fixed, other) * 255.0).astype(np.uint8)


def overlay_thumbnail(fixed, moving, aligned, *, size: int = 96) -> np.ndarray:
    """A small RGB picture: the before overlay (fixed in magenta, moving in green) next to the
    after overlay (fixed and aligned), each at most ``size`` pixels a side.  Where the images
    agree the overlay is grey; misalignment shows as coloured fringes."""
    fixed, moving, aligned = (reduce_for_display(image, size) for image in (fixed, moving, aligned))
    before = _thumbnail_overlay(fixed, moving)
    after = _thumbnail_overlay(fixed, aligned)
    gap = np.full((before.shape[0], 2, 3), 255, np.uint8)
    return np.concatenate([before, gap, after], axis=1)


def verdict_colour(status: str) -> tuple[int, int, int]:
    """The label colour of ``status`` (``ok``; ``suspect`` or not converged; ``error``)."""
    return COLOURS.get(status, COLOURS["suspect"])


def contact_sheet(tiles, labels, statuses, *, columns: int | None = None) -> np.ndarray:
    """Arrange ``tiles`` (RGB uint8 arrays; ``None`` for a pair without one) in a grid, each
    under a coloured bar with its label (``statuses``: ``ok``, ``suspect``, ``error``).

    Returns an (rows, cols, 3) uint8 image; a legend line heads the sheet.
    """
    count = len(labels)
    sizes = [t.shape[:2] for t in tiles if t is not None] or [(48, 98)]
    tile_h = max(s[0] for s in sizes)
    tile_w = max(max(s[1] for s in sizes), 120)
    columns = columns or max(1, min(count, math.ceil(math.sqrt(count * 1.5)), 8))
    rows = max(1, math.ceil(count / columns))
    cell_w, cell_h = tile_w + _GAP, tile_h + _LABEL_HEIGHT + _GAP
    sheet = np.full(
        (_LABEL_HEIGHT + _GAP + rows * cell_h, columns * cell_w + _GAP, 3), 255, np.uint8
    )
    top = _LABEL_HEIGHT + _GAP
    for i, tile in enumerate(tiles):
        y, x = top + (i // columns) * cell_h, _GAP + (i % columns) * cell_w
        sheet[y : y + _LABEL_HEIGHT, x : x + tile_w] = verdict_colour(statuses[i])
        if tile is None:
            sheet[y + _LABEL_HEIGHT : y + _LABEL_HEIGHT + tile_h, x : x + tile_w] = 235
        else:
            h, w = tile.shape[:2]
            sheet[y + _LABEL_HEIGHT : y + _LABEL_HEIGHT + h, x : x + w] = tile
    legend = "each tile: before | after (fixed magenta, moving green; grey = aligned)"
    pieces = [(1, _GAP, legend, (0, 0, 0))]
    for i, label in enumerate(labels):
        y, x = top + (i // columns) * cell_h, _GAP + (i % columns) * cell_w
        pieces.append((y + 1, x + 2, label, (255, 255, 255)))
    return draw_text(sheet, pieces)


def plot_drift(path, drift: np.ndarray, flagged, *, title: str = "") -> Path:
    """Write the drift plot: tx and ty (pixels, top) and the angle (degrees, bottom) against
    the frame number; frames in ``flagged`` (not converged or suspect) marked with red rings.

    ``drift`` is (T, 3) as :func:`regcli.stack.drift` returns it.  Uses matplotlib's object
    API (``Figure`` and the Agg canvas): no pyplot, no global state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    drift = np.asarray(drift, dtype=float).reshape(-1, 3)
    frames = np.arange(len(drift))
    flagged = np.asarray(sorted(flagged), dtype=int)
    figure = Figure(figsize=(8, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    shift, angle = figure.subplots(2, 1, sharex=True)
    shift.plot(frames, drift[:, 0], label="tx (x, columns)", color="tab:blue")
    shift.plot(frames, drift[:, 1], label="ty (y, rows)", color="tab:orange")
    shift.set_ylabel("shift of the image centre [px]")
    angle.plot(frames, drift[:, 2], color="tab:green", label="angle")
    angle.set_ylabel("angle [deg]")
    angle.set_xlabel("frame")
    angle.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axes, columns in ((shift, (0, 1)), (angle, (2,))):
        axes.grid(True, alpha=0.3)
        if flagged.size:
            for k, column in enumerate(columns):
                axes.plot(
                    flagged,
                    drift[flagged, column],
                    "o",
                    mfc="none",
                    mec="red",
                    ms=8,
                    label=f"suspect / not converged ({flagged.size})" if k == 0 else None,
                )
        axes.legend(loc="best", fontsize="small")
    figure.suptitle(title or "drift: reference grid -> frame")
    with atomic_output(Path(path)) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return Path(path)
