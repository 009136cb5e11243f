"""Reading, checking and writing images; transform JSON.

* :func:`read_image` reads PNG, JPEG, TIFF and ``.npy`` (nothing else) into a 2-D array of
  the file's own dtype, the image a registration uses; colour images become grey (luminance)
  with a warning, or give one channel (``channel=K``); palette images keep their indices.
* :func:`read_channels` reads every channel, ``(rows, cols[, channels])``, and the file's
  :class:`~regcli.images.ImageMeta` (channel meaning, pixel spacing from TIFF resolution
  tags): what the resampling commands move and write back.  The size a file declares is
  checked before it is decoded (at most 2**28 pixels, or ``$REGCLI_MAX_PIXELS``), so a small
  hostile file cannot claim gigabytes.
* :func:`check_image` is the one validation helper: every public function that takes an image
  calls it, so every bad array gets the same clear :class:`~regcli.errors.InputError`.
* :func:`write_image` writes 2-D or ``(rows, cols, channels)`` images (with a TIFF's
  resolution tags from an :class:`~regcli.images.ImageMeta`), converts to the requested
  dtype (rounding and clipping interpolation overshoot to the dtype's range) and writes
  through :func:`regcli._atomic.atomic_output`, so a failed run never leaves a half-written
  file; every
  dtype a format can hold reads back unchanged, the others are refused before anything is
  written.
* :func:`read_transform_json` refuses JSON bombs (deep nesting, huge integers, huge shapes)
  with one clear error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from regcli import _readers
from regcli._atomic import _named_os_error, atomic_output  # noqa: F401  (re-exported)
from regcli._json import dumps
from regcli._limits import MAX_TRANSFORM_JSON_BYTES
from regcli._transform_json import check_matrix_entries, parse_json, shape_pair
from regcli._validate import _describe, check_image, check_same_shape
from regcli.errors import InputError
from regcli.images import ImageMeta, check_spacing, grey_for_registration, tiff_resolution

__all__ = [
    "IMAGE_SUFFIXES",
    "MATRIX_UNITS",
    "TRANSFORM_CONVENTION",
    "atomic_output",
    "check_image",
    "check_input_path",
    "check_output_format",
    "check_output_path",
    "check_same_shape",
    "read_channels",
    "read_image",
    "read_transform_json",
    "to_dtype",
    "write_image",
    "write_transform_json",
]

log = logging.getLogger("regcli")

#: File endings regcli reads and writes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
#: Pixel dtypes each format can store (formats not listed store any numeric dtype).
_TIFF_DTYPES = (
    "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float16", "float32", "float64",
)  # fmt: skip
_FORMAT_DTYPES = {
    ".png": ("bool", "uint8", "uint16"),
    ".jpg": ("uint8",),
    ".jpeg": ("uint8",),
    ".tif": _TIFF_DTYPES,
    ".tiff": _TIFF_DTYPES,
}
#: Channel counts (beyond 1) each format stores, and the dtype it stores them in (formats not
#: listed store any count in any dtype they hold).
_FORMAT_CHANNELS = {".png": ((2, 3, 4), "uint8"), ".jpg": ((3,), "uint8"), ".jpeg": ((3,), "uint8")}
#: The sentence every transform JSON (and sample_images/truth.json) carries.
TRANSFORM_CONVENTION = (
    "matrix maps a fixed pixel (x=col, y=row, 1) to the moving pixel showing the same "
    "anatomy; aligned = regcli.warp(moving, matrix)"
)
#: What the matrix's numbers are in (every transform JSON says it).
MATRIX_UNITS = (
    "pixels: fixed image pixels (x=col, y=row) -> moving image pixels; a point in physical "
    "units is spacing * pixel (fixed_spacing, moving_spacing: [sy, sx] in fixed_unit, "
    "moving_unit); transform.tfm holds the same map in physical units"
)


def check_input_path(path, name: str | None = None) -> Path:
    """``path`` as a Path to an existing, readable, non-empty file of a format regcli reads
    (the checks :func:`read_image` makes before opening the file)."""
    name = os.fsdecode(path) if name is None else name
    p = Path(path)
    if not p.exists():
        if p.is_symlink():
            try:
                p.resolve(strict=True)
            except RuntimeError:
                raise InputError(f"{name}: a loop of symbolic links") from None
            except OSError:
                raise InputError(
                    f"{name}: a dangling symbolic link (its target is missing)"
                ) from None
        raise InputError(f"{name}: no such file")
    if p.is_dir():
        raise InputError(f"{name}: is a directory, not an image file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{name}: permission denied")
    if p.stat().st_size == 0:
        raise InputError(f"{name}: the file is empty (0 bytes), not an image")
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(
            f"{name}: unknown image format {p.suffix.lower() or '(no ending)'!r}; regcli reads "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    return p


def read_image(path, *, channel: int | None = None, allow_nan: bool = False) -> np.ndarray:
    """Read the 2-D image a registration uses from ``path``, in the file's own dtype.

    Formats (told by the ending): PNG and JPEG (through Pillow), TIFF (through tifffile) and
    NumPy ``.npy``; anything else is refused with the list.  The size the file declares is
    checked before decoding: at most :func:`regcli._limits.max_pixels` pixels (2**28 unless
    ``$REGCLI_MAX_PIXELS`` says otherwise).  A multi-channel image gives channel ``channel``
    when it is given; else colour (RGB, RGBA) is converted to grey (luminance, BT.709
    weights) with a warning on the ``regcli`` logger, grey + alpha gives its grey, and
    channels without a colour meaning (a ``(rows, cols, 2)`` array, a TIFF whose pages may
    be channels or a stack) are an error that says how to choose.  A palette image keeps its
    palette indices (it is a label map), noted at INFO level; 1-bit images and bool ``.npy``
    arrays come back as bool.  Raises :class:`InputError` for a missing, unreadable or
    non-image file, a TIFF with several images, a stack where a 2-D image is needed, an empty
    image, or NaN/inf pixels (NaN is read with ``allow_nan``: for the commands that treat NaN
    pixels as outside a mask).  :func:`read_channels` reads every channel.
    """
    return read_for_registration(path, channel=channel, allow_nan=allow_nan)[0]


def read_for_registration(
    path, *, channel: int | None = None, allow_nan: bool = False
) -> tuple[np.ndarray, np.ndarray, ImageMeta]:
    """``(image, pixels, meta)``: the 2-D image :func:`read_image` gives, every channel of
    the file (``(rows, cols[, channels])``; for a TIFF whose pages may be channels or frames,
    the page chosen by ``channel``) and the file's :class:`~regcli.images.ImageMeta`.
    ``allow_nan``: NaN pixels are let through (a registration treats them as masked)."""
    name = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
    arr, meta, pages = _read(path)
    if pages and channel is None:
        count = arr.shape[-1]
        shape = (count, *arr.shape[:2])
        raise InputError(
            f"{name}: got a 3-D stack of shape {shape} (a multi-page TIFF) where a 2-D image "
            "is needed; the file does not say whether its pages are channels or frames: choose "
            f"one page (channel=K, K from 0 to {count - 1}) or save a single page"
        )
    grey = grey_for_registration(arr, meta, channel=channel, name=name)
    checked = check_image(grey, name=name, allow_nan=allow_nan)
    if pages:  # the chosen page is the whole image
        arr, meta = grey, replace(meta, channels=1)
    elif arr.ndim == 3:
        for k in range(arr.shape[2]):
            check_image(arr[..., k], name=name, allow_nan=allow_nan)
    return (grey if grey.dtype == bool else checked), arr, meta


def read_channels(path, *, allow_nan: bool = False) -> tuple[np.ndarray, ImageMeta]:
    """Read every channel of the image at ``path``: ``(pixels, meta)``.

    ``pixels`` is ``(rows, cols)`` or ``(rows, cols, channels)`` in the file's dtype (RGB
    stays RGB, an RGBA image keeps its alpha, a ``(rows, cols, C)`` ``.npy`` its C channels,
    an ImageJ CYX or a TIFF with samples its channels, last).  ``meta`` is the file's
    :class:`~regcli.images.ImageMeta`: channel count and meaning, pixel spacing and unit
    (TIFF XResolution/YResolution and ResolutionUnit, or ImageJ's unit).  The same checks as
    :func:`read_image` (NaN pixels let through with ``allow_nan``); a TIFF whose pages may be
    channels or frames is an error.
    """
    name = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
    arr, meta, pages = _read(path)
    if pages:
        shape = (arr.shape[-1], *arr.shape[:2])
        raise InputError(
            f"{name}: got a 3-D stack of shape {shape} (a multi-page TIFF) where one image is "
            "needed, and the file does not say whether its pages are channels or frames; save "
            "channels as samples (rows x cols x C) or as an ImageJ CYX TIFF, frames as a stack"
        )
    planes = [arr] if arr.ndim == 2 else [arr[..., k] for k in range(arr.shape[-1])]
    for plane in planes:
        check_image(plane, name=name, allow_nan=allow_nan)
    return arr, meta


def _read(path) -> tuple[np.ndarray, ImageMeta, bool]:
    """The file's array (channels last), its metadata, and whether the last axis holds the
    pages of a TIFF that does not say what they are."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise InputError(f"path: expected a file name, got {path!r}", param="path")
    name = os.fsdecode(path)
    p = check_input_path(path, name)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr, meta = _readers.read_npy(p, name)
            pages = False
        elif suffix in (".tif", ".tiff"):
            arr, meta, pages = _readers.read_tiff(p, name)
        else:
            arr, meta = _readers.read_pillow(p, name)
            pages = False
    except InputError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # the decoders raise many types; all mean "cannot read this file"
        log.debug("%s: %s: %s", name, type(exc).__name__, exc)  # the details, for -vv
        kind = {".npy": "a NumPy .npy array", ".tif": "TIFF", ".tiff": "TIFF"}.get(
            suffix, "PNG or JPEG"
        )
        raise InputError(
            f"{name}: not a readable image (cannot decode the file as {kind}); "
            f"regcli reads {', '.join(IMAGE_SUFFIXES)}"
        ) from None
    arr = np.asarray(arr)
    if arr.ndim != 2 and (arr.ndim != 3 or meta.channels != arr.shape[2]):
        check_image(arr, name=name)  # a stack: says so
    return arr, meta, pages


def to_dtype(image: np.ndarray, dtype) -> np.ndarray:
    """Convert ``image`` to ``dtype``: integers are rounded and clipped to the dtype's range
    (saturating: a value past the range becomes the dtype's extreme, never wraps around);
    bool is ``value >= 0.5`` (a resampled mask stays a mask).  An array of ``dtype`` already
    is returned as it is (not copied)."""
    dtype = np.dtype(dtype)
    arr = np.asarray(image)
    if arr.dtype == dtype:
        return arr  # nothing to round or clip: its values are the dtype's
    if dtype.kind == "b":
        return arr.astype(bool) if arr.dtype.kind == "b" else arr >= 0.5
    if np.issubdtype(dtype, np.integer):
        if arr.dtype.kind in "biu":  # integer to integer: clip in integers, exactly
            if np.can_cast(arr.dtype, dtype):
                return arr.astype(dtype)
            source = np.iinfo(arr.dtype)
            info = np.iinfo(dtype)
            low, high = max(info.min, source.min), min(info.max, source.max)
            return np.clip(arr, arr.dtype.type(low), arr.dtype.type(high)).astype(dtype)
        low, high = _float_range(dtype)
        rounded = np.rint(arr.astype(np.float64, copy=False))
        return np.clip(rounded, low, high).astype(dtype)
    return arr.astype(dtype)


def _float_range(dtype: np.dtype) -> tuple[float, float]:
    """The smallest and largest float64 that the integer ``dtype`` holds.

    Not simply ``iinfo.min``/``iinfo.max`` as floats: float64 has 53 bits of mantissa, so the
    maximum of (u)int64 rounds up to 2**63 (2**64), one past the range, and casting that
    overflows (to INT64_MIN, or 0 for uint64) instead of saturating."""
    info = np.iinfo(dtype)
    low, high = float(info.min), float(info.max)
    if int(high) > info.max:
        high = float(np.nextafter(high, 0.0))
    if int(low) < info.min:
        low = float(np.nextafter(low, 0.0))
    return low, high


def check_output_path(path, *, overwrite: bool = False, inputs: Iterable = ()) -> Path:
    """Check that ``path`` may be written; raise :class:`InputError` if not.

    An input file is never overwritten, even with ``overwrite=True``; an existing output
    (a dangling symbolic link included: the name is taken) only with ``overwrite=True`` (else
    the error has ``param="overwrite"``); the folder must exist (it is not created here).
    """
    p = Path(path)
    for src in inputs:
        try:
            if p.exists() and os.path.samefile(p, src):
                raise InputError(
                    f"{path}: refusing to overwrite the input file {src} (inputs are never "
                    "overwritten); choose another output name"
                )
        except FileNotFoundError:
            continue
    if p.is_dir():
        raise InputError(f"{path}: is a directory, expected a file name")
    if os.path.lexists(p) and not overwrite:
        raise InputError(f"{path}: already exists (overwrite=True replaces it)", param="overwrite")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write into folder {parent} (permission denied)")
    return p


def check_output_format(path, dtype=None, channels: int = 1) -> str:
    """Check that ``path`` has an image ending regcli writes and can hold ``dtype`` pixels
    with ``channels`` channels.

    Returns the lower-case ending.  Call it before the work, so a run does not fail at the
    end because of the output's name.  What each format stores: PNG bool (1-bit), uint8 and
    uint16, and 2 to 4 channels (grey + alpha, RGB, RGBA) of uint8; JPEG uint8, grey or RGB;
    TIFF every integer and float dtype up to float64 and bool, any number of channels;
    ``.npy`` every numeric dtype and channel count.  Every dtype a format stores reads back
    as the same dtype.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(
            f"{path}: unknown image format {suffix or '(no ending)'!r}; "
            f"use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    if dtype is not None:
        name = np.dtype(dtype).name
        allowed = _FORMAT_DTYPES.get(suffix)
        if allowed is not None and name not in allowed:
            raise InputError(
                f"{path}: {suffix} cannot store {name} pixels ({', '.join(allowed)} only); "
                "write .tif or .npy instead"
                if suffix not in (".tif", ".tiff")
                else f"{path}: {suffix} cannot store {name} pixels; write .npy instead"
            )
    if channels > 1 and suffix in _FORMAT_CHANNELS:
        counts, stored = _FORMAT_CHANNELS[suffix]
        if channels not in counts or (dtype is not None and np.dtype(dtype).name != stored):
            what = "" if dtype is None else f" of {np.dtype(dtype).name}"
            raise InputError(
                f"{path}: {suffix} cannot store {channels} channels{what} "
                f"({' or '.join(map(str, counts))} channels of {stored} only); "
                "write .tif or .npy instead"
            )
    return suffix


def write_image(
    path, image, *, dtype=None, overwrite: bool = True, meta: ImageMeta | None = None
) -> Path:
    """Write ``image`` to ``path`` atomically, converted to ``dtype`` (default: its own).

    ``image`` is ``(rows, cols)`` or ``(rows, cols, channels)`` (channels last, as
    :func:`read_channels` gives them).  Integer dtypes are rounded and clipped to their range,
    so interpolation overshoot (cubic splines ring past the input's extremes) saturates
    instead of wrapping around.  PNG (zlib level 1, run-length: fast) holds bool (as
    1-bit), uint8 and uint16, and 2 to 4 channels of uint8; JPEG uint8 grey or RGB (written
    at quality 95); TIFF every integer and float dtype up to float64, and bool, with any
    number of channels; ``.npy`` any numeric dtype.  ``meta`` (an
    :class:`~regcli.images.ImageMeta`) says what the channels mean (a TIFF of 3 or 4
    channels is RGB or RGBA unless ``meta.colour`` says otherwise), for TIFF the pixel
    spacing to store (XResolution, YResolution, ResolutionUnit), and for a 2-D uint8 PNG
    the palette to write it with (``meta.palette``: a label map stays a palette PNG).
    Read back with :func:`read_channels`, every dtype a format holds comes back as itself.
    Raises :class:`InputError` for an unknown ending, a ``meta`` that is not an ImageMeta, a
    dtype or channel count the format cannot store, or an image that is empty, or has
    infinite pixels, or NaN pixels where the dtype written is not a float (a float image
    keeps its NaN: no data there).
    """
    if meta is not None and not isinstance(meta, ImageMeta):  # (it failed on meta.spacing)
        raise InputError(
            f"meta: expected a regcli.ImageMeta (as read_channels gives it) or None, got "
            f"{_describe(meta)}",
            param="meta",
        )
    p = Path(path)
    suffix = check_output_format(p)
    if not overwrite:
        check_output_path(p, overwrite=False)
    source = np.asarray(image) if not np.ma.isMaskedArray(image) else image
    try:
        target = np.asarray(source).dtype if dtype is None else np.dtype(dtype)
        floating = np.issubdtype(target, np.floating)
    except (TypeError, ValueError):
        floating = False
    arr = _checked_pixels(source, str(path), allow_nan=floating)
    arr = to_dtype(arr, arr.dtype if dtype is None else dtype)
    channels = arr.shape[2] if arr.ndim == 3 else 1
    check_output_format(p, arr.dtype, channels)
    with atomic_output(p, overwrite=overwrite) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, arr, **_tiff_layout(arr, meta), **tiff_resolution(meta))
        else:
            _write_pillow(tmp, arr, suffix, _palette_for(arr, suffix, meta, str(path)))
    return p


def _palette_for(arr: np.ndarray, suffix: str, meta: ImageMeta | None, name: str):
    """The palette to write ``arr`` with: ``meta``'s, for a 2-D uint8 PNG (the only
    palette image regcli writes); else ``None`` (a label map elsewhere is its indices)."""
    palette = None if meta is None else meta.palette
    if palette is None:
        return None
    if suffix == ".png" and arr.ndim == 2 and arr.dtype == np.uint8:
        return palette
    log.info("%s: written as the palette indices (a palette is kept in a .png only)", name)
    return None


def _write_pillow(path: Path, arr: np.ndarray, suffix: str, palette=None) -> None:
    """PNG or JPEG through Pillow directly (only its PNG or JPEG plugin is loaded).

    PNG is compressed at zlib level 1 with run-length matching (``Z_RLE``): on scans,
    photographs and 16-bit images as small as Pillow's default level and 2-3.5x faster to
    write (``regcli batch`` writes one per pair; drawings with long repeats pack better
    without run-length matching: the figures are written by :func:`regcli.overlay.save_png`).
    bool becomes a 1-bit PNG (reads back as bool), uint16 a 16-bit one; 2, 3, 4 channels of
    uint8 are LA, RGB, RGBA; with ``palette`` (a :class:`~regcli.images.Palette`), 2-D uint8
    is a palette PNG of those indices.  JPEG is written at quality 95.
    """
    import zlib

    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(arr))
    if suffix == ".png":
        from PIL import PngImagePlugin  # noqa: F401  (registers the PNG writer only)

        extra = {}
        if palette is not None:
            picture.putpalette(palette.rgb, "RGB")  # an "L" image becomes "P", same values
            if palette.transparency is not None:
                extra["transparency"] = palette.transparency
        picture.save(path, format="PNG", compress_level=1, compress_type=zlib.Z_RLE, **extra)
    else:
        from PIL import JpegImagePlugin  # noqa: F401  (registers the JPEG writer only)

        picture.save(path, format="JPEG", quality=95)


def _checked_pixels(source, name: str, *, allow_nan: bool = False) -> np.ndarray:
    """``source`` checked as a 2-D image or as ``(rows, cols, channels)`` (each channel a
    2-D image), bool kept; NaN pixels let through with ``allow_nan``."""
    raw = np.asarray(source)
    if raw.ndim == 3 and not np.ma.isMaskedArray(source):
        if raw.shape[2] == 1:
            raw = raw[..., 0]
        else:
            for k in range(raw.shape[2]):
                check_image(raw[..., k], name=name, allow_nan=allow_nan)
            return raw
    arr = check_image(source, name=name, allow_nan=allow_nan)
    return np.asarray(source) if np.asarray(source).dtype == bool else arr


def _tiff_layout(arr: np.ndarray, meta: ImageMeta | None) -> dict:
    """tifffile keywords for the photometric layout of ``arr``."""
    if arr.ndim == 2:
        return {"photometric": "minisblack"}
    count = arr.shape[2]
    colour = meta.colour if meta is not None and meta.channels == count else None
    if colour is None and (meta is None or meta.channels != count):
        colour = {3: "RGB", 4: "RGBA"}.get(count)
    if colour in ("RGB", "RGBA"):
        extras = {"extrasamples": ["unassalpha"]} if colour == "RGBA" else {}
        return {"photometric": "rgb", "planarconfig": "contig", **extras}
    extras = ["unassalpha"] if colour == "LA" else ["unspecified"] * (count - 1)
    return {"photometric": "minisblack", "planarconfig": "contig", "extrasamples": extras}


# --------------------------------------------------------------------------- transform JSON


def write_transform_json(
    path,
    matrix,
    *,
    transform: str | None = None,
    params: dict | None = None,
    fixed_shape=None,
    moving_shape=None,
    extra: dict | None = None,
    overwrite: bool = True,
    fixed_meta: ImageMeta | None = None,
    moving_meta: ImageMeta | None = None,
) -> Path:
    """Write a transform JSON file (what ``regcli register`` saves and ``regcli apply`` reads).

    Keys: ``matrix`` (3x3, fixed -> moving), ``convention`` (:data:`TRANSFORM_CONVENTION`),
    ``matrix_units`` (:data:`MATRIX_UNITS`: pixels), and when given ``transform``,
    ``params``, ``fixed_shape`` and ``moving_shape`` (``[rows, cols]``), ``fixed_spacing``
    and ``moving_spacing`` (``[sy, sx]``, 1 x 1 when the file gave none) with
    ``fixed_unit``/``moving_unit`` (from ``fixed_meta``/``moving_meta``), plus the keys of
    ``extra`` (metric, optimizer, ...).  Written atomically with sorted keys; NaN/inf values
    in ``extra`` become ``null``.
    """
    from regcli.transforms import check_matrix

    p = Path(path)
    if not overwrite:
        check_output_path(p, overwrite=False)
    data = dict(extra or {})
    data["matrix"] = check_matrix(matrix, name=f"{path}: matrix")
    data["convention"] = TRANSFORM_CONVENTION
    data["matrix_units"] = MATRIX_UNITS
    for role, meta in (("fixed", fixed_meta), ("moving", moving_meta)):
        if meta is not None:
            data[f"{role}_spacing"] = list(meta.pixel_spacing)
            data[f"{role}_unit"] = meta.unit
    optional = {"transform": transform, "params": params}
    optional["fixed_shape"] = None if fixed_shape is None else list(fixed_shape)[:2]
    optional["moving_shape"] = None if moving_shape is None else list(moving_shape)[:2]
    data.update({key: value for key, value in optional.items() if value is not None})
    text = dumps(data, indent=2) + "\n"
    with atomic_output(p, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return p


def read_transform_json(path) -> dict:
    """Read and check a transform JSON file; ``"matrix"`` comes back as a 3x3 float array.

    ``"fixed_shape"`` and ``"moving_shape"``, when present, come back as ``(rows, cols)``
    tuples (at most :func:`regcli._limits.max_pixels` pixels).  Raises :class:`InputError`
    naming the file for a missing or unreadable file, a file too large to be a transform,
    text that is not JSON (including nesting too deep to parse, integers of thousands of
    digits and repeated keys), or a missing or unusable matrix.
    """
    from regcli.transforms import check_matrix

    if not isinstance(path, (str, bytes, os.PathLike)):
        raise InputError(f"path: expected a file name, got {path!r}", param="path")
    p = Path(os.fsdecode(path))
    name = os.fsdecode(path)
    if not p.exists():
        raise InputError(f"{name}: no such file")
    if p.is_dir():
        raise InputError(f"{name}: is a directory, not a transform JSON file")
    try:
        size = p.stat().st_size
        if size > MAX_TRANSFORM_JSON_BYTES:
            raise InputError(
                f"{name}: {size} bytes, too large for a transform JSON file (at most "
                f"{MAX_TRANSFORM_JSON_BYTES >> 20} MiB)"
            )
        text = p.read_text(encoding="utf-8-sig")  # a BOM (Windows Notepad) is skipped
    except UnicodeDecodeError:
        raise InputError(
            f"{name}: not a text file; expected a transform JSON file (as written by "
            "regcli register)"
        ) from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None
    data = parse_json(text, name)
    if not isinstance(data, dict):
        raise InputError(
            f'{name}: expected a JSON object with a "matrix" key, got a {type(data).__name__}'
        )
    if "matrix" not in data:
        raise InputError(
            f'{name}: no "matrix" key; expected a transform JSON file with a 3x3 '
            "fixed -> moving matrix (as written by regcli register)"
        )
    check_matrix_entries(data["matrix"], name)
    data["matrix"] = check_matrix(data["matrix"], name=f"{name}: matrix")
    for key in ("fixed_shape", "moving_shape"):
        if data.get(key) is not None:
            data[key] = shape_pair(data[key], name=f"{name}: {key}")
    for key in ("fixed_spacing", "moving_spacing"):
        if data.get(key) is not None:
            data[key] = check_spacing(data[key], name=f"{name}: {key}")
    return data
