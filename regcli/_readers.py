"""One reader per image format, each checking the size the file declares before decoding it
(private: :func:`regcli.io.read_image` is the public reader).

Every reader returns the file's array as stored (2-D, or 3-D with channels last) and an
:class:`~regcli.images.ImageMeta` (channels, their colour meaning, pixel spacing), or raises
:class:`~regcli.errors.InputError` naming the file.  The pixel count comes from the
header (Pillow's size for PNG/JPEG, the TIFF series shape, the ``.npy`` header) and is checked
against :func:`regcli._limits.max_pixels` first, so a small file declaring a huge image
(a "decompression bomb") costs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from pathlib import Path

import numpy as np

from regcli._limits import MAX_PIXELS_ENV, describe_pixels, max_pixels
from regcli.errors import InputError
from regcli.images import ImageMeta, Palette, spacing_from_tiff

log = logging.getLogger("regcli")

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
#: Series listed in the message about a TIFF with several of them.
_SERIES_SHOWN = 4
#: More pages than this and a TIFF is refused without looking at them.
_MAX_TIFF_PAGES = 4096
#: Most channels (a TIFF's samples or ImageJ channels) an image may have.
MAX_CHANNELS = 64
#: A ``.npy`` of shape (rows, cols, C) with C at most this is an image with C channels.
_NPY_CHANNELS = 4


def check_pixels(shape, name: str) -> None:
    """Raise :class:`InputError` if an image of ``shape`` has more pixels than allowed."""
    count = math.prod(int(s) for s in shape)
    limit = max_pixels()
    if count > limit:
        dims = " x ".join(_number(int(s)) for s in shape)
        count = _number(count)
        raise InputError(
            f"{name}: the image declares {dims} = {count} pixels, more than the limit of "
            f"{describe_pixels(limit)}; set {MAX_PIXELS_ENV} to read larger images"
        )


def _number(value: int) -> str:
    """A whole number for a message: digits, or ``about 10^300`` for absurd ones."""
    text = str(value)
    return text if len(text) <= 15 else f"about 10^{len(text) - 1}"


# --------------------------------------------------------------------------- PNG and JPEG


def read_pillow(path: Path, name: str) -> tuple[np.ndarray, ImageMeta]:
    """PNG or JPEG (told apart by content, not by name) through Pillow.

    Palette images keep their indices (a palette PNG is a label map; its colours are only
    for display, kept in ``ImageMeta.palette`` for writing it back).  1-bit images come back
    as bool, 16-bit grey as uint16, colour as (rows, cols, 3 or 4).
    """
    from PIL import Image, JpegImagePlugin, PngImagePlugin

    with open(path, "rb") as handle:
        magic = handle.read(8)
    if magic.startswith(_PNG_MAGIC):
        opener = PngImagePlugin.PngImageFile
    elif magic.startswith(_JPEG_MAGIC):
        opener = JpegImagePlugin.JpegImageFile
    else:
        raise ValueError("the content is neither PNG nor JPEG")
    with warnings.catch_warnings():
        # regcli's own limit applies; Pillow's warning would be a second, different one.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            # The plugin class reads the header only (no decoding, no Pillow size check).
            image = opener(str(path))
        except Image.DecompressionBombError as exc:
            raise InputError(f"{name}: {exc}; set {MAX_PIXELS_ENV} to raise the limit") from None
        with image:
            width, height = image.size
            check_pixels((height, width), name)
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                raise InputError(
                    f"{name}: an animated image with {frames} frames; regcli reads one 2-D "
                    "image (save a single frame)"
                )
            arr = _pillow_array(image, name)
            palette = _palette(image) if image.mode in ("P", "PA") and arr.ndim == 2 else None
    if arr.ndim == 2:
        return arr, ImageMeta(palette=palette)
    colour = {2: "LA", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    return arr, ImageMeta(channels=arr.shape[2], colour=colour)


def _palette(image) -> Palette:
    """The palette of a ``P`` or ``PA`` image (kept so that a resampled label map is written
    with its colours)."""
    colours = image.getpalette("RGB") or []
    transparency = image.info.get("transparency")
    if not isinstance(transparency, (int, bytes)):
        transparency = None
    return Palette(bytes(colours), transparency)


def _pillow_array(image, name: str) -> np.ndarray:
    mode = image.mode
    if mode in ("P", "PA"):
        log.info(
            "%s: palette image: using its palette indices as the pixel values (a label map); "
            "convert it to grey or RGB first to register its colours",
            name,
        )
        arr = np.asarray(image)
        return arr[..., 0] if arr.ndim == 3 else arr
    if mode == "I" and image.format == "PNG":
        # A 16-bit grey PNG: Pillow before 10.? opens it as 32-bit "I"; its values are uint16.
        return np.asarray(image).astype(np.uint16)
    if mode in ("1", "L", "LA", "I", "F", "RGB", "RGBA") or mode.startswith("I;16"):
        return np.asarray(image)
    return np.asarray(image.convert("RGB"))  # CMYK and YCbCr JPEGs


# --------------------------------------------------------------------------- TIFF


class _ToDebug(logging.Handler):
    def __init__(self, name: str):
        super().__init__()
        self.file_name = name

    def emit(self, record) -> None:
        log.debug("%s: tifffile: %s", self.file_name, record.getMessage())


@contextlib.contextmanager
def _tifffile_notes_as_debug(name: str):
    """tifffile's warnings about a broken file ("contains no pages") go to regcli's debug
    output (``-vv``) instead of stderr; the error that follows says what matters."""
    logger = logging.getLogger("tifffile")
    handler, propagate = _ToDebug(name), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def read_tiff(path: Path, name: str) -> tuple[np.ndarray, ImageMeta, bool]:
    """The one series of a TIFF, channels last, its metadata, and whether the third axis
    holds pages (``True``: a stack or channels, the file does not say which).

    tifffile's axis labels tell colour samples (``S``) and ImageJ channels (``C``) from pages
    (``Q``, ``I``, ``Z``...), which the array shape alone cannot: a 3-page 5x3 stack and a
    5x3 RGB image are both 3-D with a 3 in them.  A file with several series (pages of
    different shapes, or images appended one after another) is refused, naming them; so is
    more than one axis beyond the image's own.
    """
    import tifffile

    with _tifffile_notes_as_debug(name), tifffile.TiffFile(path) as tif:
        # Count the pages first: it walks the chain of pages with tifffile's loop checks (on
        # some corrupt files, listing the series before that never ends).
        pages = len(tif.pages)
        if pages > _MAX_TIFF_PAGES:
            raise InputError(
                f"{name}: a TIFF with {pages} pages; regcli reads one 2-D image (at most "
                f"{_MAX_TIFF_PAGES} pages are looked at)"
            )
        series = list(tif.series)
        if not series:
            raise ValueError("no image data in the TIFF")
        if len(series) > 1:
            shown = "; ".join(
                f"series {i}: {' x '.join(map(str, s.shape))} {s.dtype}"
                for i, s in enumerate(series[:_SERIES_SHOWN])
            )
            more = "; ..." if len(series) > _SERIES_SHOWN else ""
            raise InputError(
                f"{name}: a TIFF with {len(series)} separate images ({shown}{more}); regcli "
                "reads one 2-D image: save the one to use on its own (for example with "
                "tifffile.imwrite(out, tifffile.imread(file, series=N)))"
            )
        first = series[0]
        axes = first.axes
        samples = first.shape[axes.index("S")] if "S" in axes else 1
        check_pixels([n for n, ax in zip(first.shape, axes, strict=False) if ax != "S"], name)
        if samples > 4:
            raise ValueError(f"{samples} samples per pixel")
        page = tif.pages[0]
        tags = {tag.name: tag.value for tag in page.tags.values()} if page is not None else {}
        photometric = int(getattr(page, "photometric", 1) or 0)
        extras = tuple(int(e) for e in (getattr(page, "extrasamples", ()) or ()))
        spacing, unit = spacing_from_tiff(tags, tif.imagej_metadata)
        arr = first.asarray()
    return _tiff_layout(arr, axes, name, photometric, extras, spacing, unit)


def _tiff_layout(arr, axes: str, name: str, photometric: int, extras, spacing, unit):
    """Channels last (``S`` samples, else ImageJ ``C``), length-1 axes dropped; at most one
    axis beyond rows and columns."""
    channel_axis = "S" if "S" in axes else ("C" if "C" in axes else None)
    if channel_axis is not None:
        arr = np.moveaxis(arr, axes.index(channel_axis), -1)
        axes = axes.replace(channel_axis, "") + channel_axis
    # Drop length-1 axes other than the image's own (ImageJ writes e.g. TZCYX with T=Z=C=1).
    keep = [i for i, ax in enumerate(axes) if ax in "YX" or arr.shape[i] != 1]
    arr = arr.reshape([arr.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    planes = [ax for ax in axes if ax not in "YX"]
    if len(planes) > 1 or (planes and axes.index(planes[0]) not in (0, len(axes) - 1)):
        raise InputError(
            f"{name}: got a {arr.ndim}-D stack of shape {arr.shape} (axes {axes}) where a 2-D "
            "image is needed; save a single image"
        )
    if not planes:
        return arr, ImageMeta(spacing=spacing, unit=unit), False
    count = arr.shape[axes.index(planes[0])]
    if count > MAX_CHANNELS and planes[0] in "SC":
        raise InputError(f"{name}: {count} channels, more than {MAX_CHANNELS}")
    if planes[0] not in "SC":  # pages: a stack, or channels saved as pages
        return np.moveaxis(arr, 0, -1), ImageMeta(count, None, spacing, unit), True
    colour = None
    alpha = bool(extras) and extras[-1] in (1, 2)
    if planes[0] == "S" and photometric in (2, 6) and count in (3, 4):  # RGB, YCbCr
        colour = "RGB" if count == 3 else "RGBA"
    elif planes[0] == "S" and photometric in (0, 1) and count == 2 and alpha:
        colour = "LA"
    return arr, ImageMeta(count, colour, spacing, unit), False


# --------------------------------------------------------------------------- .npy


def read_npy(path: Path, name: str) -> tuple[np.ndarray, ImageMeta]:
    """A ``.npy`` array, its header checked (shape, dtype) before the data is read.

    Arrays of Python objects (pickles) are never loaded.  ``(rows, cols, C)`` with C from 2
    to 4 is an image with C channels: 3 and 4 are taken as RGB and RGBA (scikit-image's and
    imageio's layout), 2 has no colour meaning; ``(1, rows, cols)`` is one plane.
    """
    fmt = np.lib.format
    with open(path, "rb") as handle:
        version = fmt.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(handle)
        else:
            raise ValueError(f".npy format version {version}")
    if dtype.hasobject or dtype.kind not in "biuf":
        what = "Python objects (a pickle)" if dtype.hasobject else f"dtype {dtype}"
        raise InputError(
            f"{name}: the array holds {what}; regcli reads arrays of numbers (bool, integer "
            "or float)"
        )
    if len(shape) == 3 and shape[-1] <= _NPY_CHANNELS:
        check_pixels(shape[:2], name)
    else:
        check_pixels(shape, name)
    arr = np.load(path, allow_pickle=False)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]  # one plane, saved as a stack
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and 2 <= arr.shape[-1] <= _NPY_CHANNELS:
        colour = {2: None, 3: "RGB", 4: "RGBA"}[arr.shape[-1]]
        return arr, ImageMeta(channels=arr.shape[-1], colour=colour)
    return arr, ImageMeta()
