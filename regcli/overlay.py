"""The before/after overlay of a registration as one RGB image, built with numpy alone.

A user checks a registration by eye: do the edges of the two images fall on each other?
:func:`overlay_image` answers that in one picture, without a plotting library::

    +---------------------+---------------------+
    | BEFORE              | AFTER               |   column titles
    | FIXED MOVING        | FIXED ALIGNED       |   legend, in the panels' colours
    | magenta / green     | magenta / green     |   fixed in magenta, the other in green:
    | composite           | composite           |   grey where they agree
    | checkerboard        | checkerboard        |   tiles alternate fixed / the other:
    | fixed / moving      | fixed / aligned     |   edges break at tile borders if misaligned
    +---------------------+---------------------+

Panels are shown pixel for pixel: images larger than ``max_side`` pixels a side are reduced
by block means, images smaller than :data:`MIN_PANEL_SIDE` are enlarged by repeating pixels
(a whole number of times), so that a panel's longest side is between 256 and 512 pixels.
:func:`save_overlay_image` writes it as a PNG (through Pillow) with a title and a
description of the panels in the PNG's text fields.  Nothing here imports matplotlib, so the
overlay costs a few milliseconds instead of a figure's fraction of a second;
:func:`regcli.plots.overlay_figure` draws the same panels as a matplotlib figure.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MAX_PANEL_SIDE",
    "MIN_PANEL_SIDE",
    "checkerboard",
    "display_range",
    "draw_text",
    "magenta_green",
    "overlay_image",
    "overlay_panels",
    "reduce_for_display",
    "save_overlay_image",
    "save_png",
]

#: Panels of :func:`overlay_image` are reduced (block means) to at most this many pixels a side.
MAX_PANEL_SIDE = 512
#: Panels whose longest side is shorter are enlarged to at least this by repeating pixels.
MIN_PANEL_SIDE = 256
#: What :func:`save_overlay_image` writes into the PNG's "Description" field.
DESCRIPTION = (
    "Left column: before registration (fixed vs moving); right column: after (fixed vs "
    "aligned). Top row: fixed in magenta, moving/aligned in green, grey where the two agree. "
    "Bottom row: checkerboard of tiles taken alternately from fixed and moving/aligned; "
    "misalignment shows as edges broken at the tile borders."
)

_BACKGROUND = 255
#: Height (pixels) of a line of Pillow's built-in font, with its spacing.
_LINE_HEIGHT = 14
_TITLE_COLOR = (40, 40, 40)
_MAGENTA = (190, 0, 190)  # darker than the panels' pure magenta and green: text on white
_GREEN = (0, 140, 0)


def display_range(image) -> tuple[float, float]:
    """Robust grey range (1st-99th percentile) so one bright pixel does not darken the rest."""
    arr = np.asarray(image, dtype=float)
    low, high = np.percentile(arr, [1.0, 99.0])
    if high <= low:
        low, high = float(arr.min()), float(arr.max())
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def _scaled(image, value_range) -> np.ndarray:
    low, high = value_range
    return np.clip((np.asarray(image, dtype=float) - low) / (high - low), 0.0, 1.0)


def magenta_green(fixed, moving, *, fixed_range=None, moving_range=None) -> np.ndarray:
    """RGB composite in [0, 1]: ``fixed`` in magenta, ``moving`` in green; grey where they agree.

    Where only ``fixed`` is bright the pixel is magenta, where only ``moving`` is bright it
    is green.  Each image is scaled by its own robust range (``display_range``) unless a range
    ``(low, high)`` is given.
    """
    f = _scaled(fixed, fixed_range or display_range(fixed))
    m = _scaled(moving, moving_range or display_range(moving))
    return np.dstack([f, m, f])


def checkerboard(image1, image2, *, tiles: int = 8) -> np.ndarray:
    """Tiles taken alternately from ``image1`` and ``image2`` (``tiles`` per side)."""
    a, b = np.asarray(image1), np.asarray(image2)
    rows, cols = a.shape
    row_tile = (np.arange(rows) * tiles) // rows
    col_tile = (np.arange(cols) * tiles) // cols
    take_first = (row_tile[:, None] + col_tile[None, :]) % 2 == 0
    return np.where(take_first, a, b)


def reduce_for_display(image, max_side: int = MAX_PANEL_SIDE) -> np.ndarray:
    """``image`` as float, reduced by an integer factor (block means) to <= ``max_side``."""
    arr = np.asarray(image, dtype=float)
    factor = -(-max(arr.shape) // max_side)
    if factor <= 1:
        return arr
    rows, cols = arr.shape[0] // factor, arr.shape[1] // factor
    blocks = arr[: rows * factor, : cols * factor].reshape(rows, factor, cols, factor)
    return blocks.mean(axis=(1, 3))


# --------------------------------------------------------------------------- text and files


def draw_text(canvas: np.ndarray, pieces) -> np.ndarray:
    """``canvas`` (uint8 RGB) with text drawn by Pillow's built-in font.

    ``pieces``: ``(top, left, text, rgb)`` tuples; a line that would run off the right edge
    is cut with an ellipsis.  Returns a new array.
    """
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.fromarray(np.ascontiguousarray(canvas))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    for top, left, text, color in pieces:
        width = canvas.shape[1] - left - 2
        if draw.textlength(text, font=font) > width:
            while text and draw.textlength(text + "...", font=font) > width:
                text = text[:-1]
            text += "..."
        draw.text((left, top), text, fill=tuple(color), font=font)
    return np.asarray(picture)


def save_png(path, rgb: np.ndarray, *, text: dict | None = None):
    """Write an RGB uint8 array as a PNG atomically (zlib level 1: a third of the default
    level's time for a file ~15 % larger), with ``text`` in its text fields; return ``path``."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from regcli import __version__
    from regcli.io import atomic_output

    info = PngInfo()
    for key, value in {**(text or {}), "Software": f"regcli {__version__}"}.items():
        info.add_text(key, value)
    with atomic_output(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(
            tmp, format="PNG", pnginfo=info, compress_level=1
        )
    return path


# --------------------------------------------------------------------------- the overlay


def overlay_panels(
    fixed, moving, aligned, *, tiles: int = 8, max_side: int = MAX_PANEL_SIDE
) -> list[np.ndarray]:
    """The four panels of :func:`overlay_image` as float RGB arrays in [0, 1], at most
    ``max_side`` pixels a side: composite before, composite after, checkerboard before,
    checkerboard after.  Raises :class:`~regcli.errors.InputError` unless the three are 2-D
    arrays of finite numbers of one shape."""
    from regcli._validate import check_image, check_same_shape

    images = {"fixed": fixed, "moving": moving, "aligned": aligned}
    images = {name: check_image(image, name=name) for name, image in images.items()}
    check_same_shape(images["fixed"], images["moving"], names=("fixed", "moving"))
    check_same_shape(images["fixed"], images["aligned"], names=("fixed", "aligned"))
    fixed, moving, aligned = (reduce_for_display(image, max_side) for image in images.values())
    fixed_range, moving_range = display_range(fixed), display_range(moving)
    fixed01 = _scaled(fixed, fixed_range)
    others = [_scaled(moving, moving_range), _scaled(aligned, moving_range)]
    composites = [np.dstack([fixed01, other, fixed01]) for other in others]
    boards = [np.repeat(checkerboard(fixed01, o, tiles=tiles)[..., None], 3, 2) for o in others]
    return composites + boards


def overlay_image(
    fixed, moving, aligned, *, tiles: int = 8, max_side: int = MAX_PANEL_SIDE, labels: bool = True
) -> np.ndarray:
    """Before / after picture of a registration as an ``(rows, cols, 3)`` uint8 RGB array.

    Parameters
    ----------
    fixed, moving, aligned : (rows, cols) arrays of the same shape
        The fixed image, the moving image as given, and the moving image resampled onto the
        fixed grid (``RegistrationResult.warped``).
    tiles : int
        Checkerboard tiles per side.
    max_side : int
        Panels of larger images are block means reduced to at most this many pixels a side;
        panels of images smaller than :data:`MIN_PANEL_SIDE` are enlarged (each pixel
        repeated a whole number of times) to at least that size.
    labels : bool
        Write "BEFORE" / "AFTER" and the colour legend above the columns.

    Returns
    -------
    ndarray of uint8, shape (rows, cols, 3)
        Two columns on a white background, separated by a thin white gap: left *before*
        (fixed vs ``moving``), right *after* (fixed vs ``aligned``).  Top row: ``fixed`` in
        magenta over the other image in green, so that aligned structures are grey, structures
        only in ``fixed`` magenta and structures only in the other image green.  Bottom row:
        a checkerboard of ``tiles`` x ``tiles`` tiles taken alternately from both, where
        misalignment shows as edges broken at the tile borders.  ``fixed`` is scaled by its own
        robust grey range, ``moving`` and ``aligned`` by the range of ``moving`` so that both
        columns compare.
    """
    panels = overlay_panels(fixed, moving, aligned, tiles=tiles, max_side=max_side)
    rows, cols = panels[0].shape[:2]
    zoom = -(-MIN_PANEL_SIDE // max(rows, cols))  # ceil: small images fill >= 256 px
    if zoom > 1:
        panels = [p.repeat(zoom, axis=0).repeat(zoom, axis=1) for p in panels]
        rows, cols = rows * zoom, cols * zoom
    gap = 8 if cols >= 200 else 4
    line = _LINE_HEIGHT
    header = 2 * line + gap if labels else 0
    canvas = np.full((header + 2 * rows + 3 * gap, 2 * cols + 3 * gap, 3), _BACKGROUND, np.uint8)
    for index, panel in enumerate(panels):
        top = header + gap + (index // 2) * (rows + gap)
        left = gap + (index % 2) * (cols + gap)
        canvas[top : top + rows, left : left + cols] = np.rint(panel * 255.0).astype(np.uint8)
    if labels:
        pieces = []
        for column, (title, other) in enumerate((("BEFORE", "moving"), ("AFTER", "aligned"))):
            left = gap + column * (cols + gap)
            pieces += [
                (gap, left, title, _TITLE_COLOR),
                (gap + line, left, "fixed", _MAGENTA),
                (gap + line, left + 40, other, _GREEN),
            ]
        canvas = draw_text(canvas, pieces)
    return canvas


def save_overlay_image(fixed, moving, aligned, path, *, title: str | None = None, **options):
    """Write :func:`overlay_image` (same keyword ``options``) to ``path`` as a PNG; return it.

    ``title`` goes into the PNG's "Title" text field and a description of the panels into its
    "Description" field.
    """
    text = {"Title": title} if title else {}
    text["Description"] = DESCRIPTION
    return save_png(path, overlay_image(fixed, moving, aligned, **options), text=text)
