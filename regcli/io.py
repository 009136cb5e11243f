"""Reading, checking and writing images; atomic output files; transform JSON.

* :func:`read_image` reads PNG, JPEG, TIFF and ``.npy`` (nothing else) into a 2-D array of
  the file's own dtype; colour images become grey (luminance) with a warning, palette images
  keep their indices.  The size a file declares is checked before it is decoded (at most
  2**28 pixels, or ``$REGCLI_MAX_PIXELS``), so a small hostile file cannot claim gigabytes.
* :func:`check_image` is the one validation helper: every public function that takes an image
  calls it, so every bad array gets the same clear :class:`~regcli.errors.InputError`.
* :func:`write_image` converts to the requested dtype (rounding and clipping interpolation
  overshoot to the dtype's range) and writes through :func:`atomic_output`, so a failed run
  never leaves a half-written file; every dtype a format can hold reads back unchanged, the
  others are refused before anything is written.
* :func:`read_transform_json` refuses JSON bombs (deep nesting, huge integers, huge shapes)
  with one clear error.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from regcli import _readers
from regcli._json import dumps
from regcli._limits import MAX_TRANSFORM_JSON_BYTES
from regcli._validate import check_image, check_same_shape
from regcli.errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "TRANSFORM_CONVENTION",
    "atomic_output",
    "check_image",
    "check_input_path",
    "check_output_format",
    "check_output_path",
    "check_same_shape",
    "read_image",
    "read_transform_json",
    "to_dtype",
    "write_image",
    "write_transform_json",
]

log = logging.getLogger("regcli")

#: File endings regcli reads and writes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
_LUMINANCE = np.array([0.2125, 0.7154, 0.0721])  # ITU-R BT.709, as skimage.color.rgb2gray
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
#: Integers in a transform JSON longer than this are refused (Python's own limit is 4300).
_MAX_JSON_DIGITS = 40
#: The sentence every transform JSON (and sample_images/truth.json) carries.
TRANSFORM_CONVENTION = (
    "matrix maps a fixed pixel (x=col, y=row, 1) to the moving pixel showing the same "
    "anatomy; aligned = regcli.warp(moving, matrix)"
)


def _to_gray(arr: np.ndarray, name: str) -> np.ndarray:
    """Grey version of an (h, w, c) image; keeps integer dtypes (rounded luminance)."""
    channels = arr.shape[2]
    if channels in (1, 2):  # grey, grey + alpha
        return arr[..., 0]
    if channels in (3, 4):
        kind = "RGBA" if channels == 4 else "RGB"
        log.warning("%s: converted %s image to grey (luminance)", name, kind)
        gray = arr[..., :3].astype(np.float64) @ _LUMINANCE
        if np.issubdtype(arr.dtype, np.integer):
            return to_dtype(gray, arr.dtype)
        return gray.astype(arr.dtype)
    raise InputError(f"{name}: got a 3-D stack of shape {arr.shape} where a 2-D image is needed")


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


def read_image(path, *, allow_nan: bool = False) -> np.ndarray:
    """Read a 2-D grey image from ``path`` in the file's own dtype.

    Formats (told by the ending): PNG and JPEG (through Pillow), TIFF (through tifffile) and
    NumPy ``.npy``; anything else is refused with the list.  The size the file declares is
    checked before decoding: at most :func:`regcli._limits.max_pixels` pixels (2**28 unless
    ``$REGCLI_MAX_PIXELS`` says otherwise).  Colour (RGB, RGBA) is converted to grey
    (luminance, BT.709 weights) with a warning on the ``regcli`` logger; a palette image keeps
    its palette indices (it is a label map), noted at INFO level; 1-bit images and bool
    ``.npy`` arrays come back as bool.  Raises :class:`InputError` for a missing, unreadable
    or non-image file, a TIFF with several images, a stack where a 2-D image is needed, an
    empty image, or NaN/inf pixels (NaN is read with ``allow_nan``: for the commands that
    treat NaN pixels as outside a mask).
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise InputError(f"path: expected a file name, got {path!r}", param="path")
    name = os.fsdecode(path)
    p = check_input_path(path, name)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = _readers.read_npy(p, name)
        elif suffix in (".tif", ".tiff"):
            arr = _readers.read_tiff(p, name)
        else:
            arr = _readers.read_pillow(p, name)
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
    if suffix == ".npy" and arr.ndim == 3 and arr.shape[0] == 1:  # one plane, saved as a stack
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[2] <= 4:
        arr = _to_gray(arr, name)
    checked = check_image(arr, name=name, allow_nan=allow_nan)
    return arr if arr.dtype == bool else checked


def to_dtype(image: np.ndarray, dtype) -> np.ndarray:
    """Convert ``image`` to ``dtype``: integers are rounded and clipped to the dtype's range;
    bool is ``value >= 0.5`` (a resampled mask stays a mask)."""
    dtype = np.dtype(dtype)
    arr = np.asarray(image)
    if dtype.kind == "b":
        return arr.astype(bool) if arr.dtype.kind == "b" else arr >= 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(arr), info.min, info.max).astype(dtype)
    return arr.astype(dtype)


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


def check_output_format(path, dtype=None) -> str:
    """Check that ``path`` has an image ending regcli writes and can hold ``dtype`` pixels.

    Returns the lower-case ending.  Call it before the work, so a run does not fail at the
    end because of the output's name.  What each format stores: PNG bool (1-bit), uint8 and
    uint16; JPEG uint8; TIFF every integer and float dtype up to float64 and bool; ``.npy``
    every numeric dtype.  Every dtype a format stores reads back as the same dtype.
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
    return suffix


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _named_os_error(exc: OSError, path: Path) -> OSError:
    """``exc`` re-made to name ``path`` (the file asked for, never the temporary one).

    A short write (numpy's "N requested and M written", which carries no error number) on a
    file system with no free blocks left is the full disk it is: ENOSPC.  Call it before the
    partial file is removed, while the disk is still full.
    """
    code = exc.errno
    if code is None:
        short_write = re.search(r"requested and \d+ written", str(exc)) is not None
        try:
            full = os.statvfs(path.parent or ".").f_bavail == 0
        except (OSError, AttributeError):
            full = False
        code = errno.ENOSPC if (full or short_write) else errno.EIO
        strerror = os.strerror(code) if code == errno.ENOSPC else str(exc)
    else:
        strerror = exc.strerror or os.strerror(code)
    return OSError(code, strerror, str(path))


@contextlib.contextmanager
def atomic_output(path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any error the temporary file is removed and ``path`` is left as it was; an
    ``OSError`` names ``path``, not the temporary file.  With ``overwrite=False`` the
    file is put in place only if the name is still free at that moment (a hard link, which
    fails if the name exists), so no check-then-write race can replace a file.
    """
    p = Path(path)
    # A short temporary name: "<final name>.<random>" could pass the file-name length limit.
    try:
        fd, tmp = tempfile.mkstemp(prefix=".regcli-", suffix=p.suffix[:16], dir=p.parent or ".")
    except OSError as exc:
        raise _named_os_error(exc, p) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        if overwrite:
            os.replace(tmp_path, p)
        else:
            _link_new(tmp_path, p)
    except OSError as exc:
        named = _named_os_error(exc, p)
        tmp_path.unlink(missing_ok=True)
        raise named from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _link_new(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise InputError(
            f"{path}: already exists (overwrite=True replaces it)", param="overwrite"
        ) from None
    except OSError:  # no hard links on this file system: check, then rename
        if os.path.lexists(path):
            raise InputError(
                f"{path}: already exists (overwrite=True replaces it)", param="overwrite"
            ) from None
        os.replace(tmp, path)
        return
    tmp.unlink(missing_ok=True)


def write_image(path, image, *, dtype=None, overwrite: bool = True) -> Path:
    """Write ``image`` to ``path`` atomically, converted to ``dtype`` (default: its own).

    Integer dtypes are rounded and clipped to their range, so interpolation overshoot (cubic
    splines ring past the input's extremes) saturates instead of wrapping around.  PNG holds
    bool (as 1-bit), uint8 and uint16, JPEG uint8 (written at quality 95); TIFF every integer
    and float dtype up to float64, and bool; ``.npy`` any numeric dtype.  Read back with
    :func:`read_image`, every dtype a format holds comes back as itself.  Raises
    :class:`InputError` for an unknown ending, a dtype the format cannot store, or an image
    that is not 2-D, empty, or has infinite pixels, or NaN pixels where the dtype written is
    not a float (a float image keeps its NaN: no data there).
    """
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
    arr = check_image(source, name=str(path), allow_nan=floating)
    if np.asarray(source).dtype == bool:
        arr = np.asarray(source)
    arr = to_dtype(arr, arr.dtype if dtype is None else dtype)
    check_output_format(p, arr.dtype)
    with atomic_output(p, overwrite=overwrite) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, arr, photometric="minisblack")
        elif arr.dtype == bool:
            from PIL import Image

            Image.fromarray(arr).save(tmp, format="PNG")  # mode "1": reads back as bool
        else:
            import imageio.v3 as iio

            options = {"quality": 95} if suffix in (".jpg", ".jpeg") else {}
            iio.imwrite(tmp, arr, extension=suffix, **options)
    return p


# --------------------------------------------------------------------------- transform JSON


def _shape_pair(value, *, name: str) -> tuple[int, int]:
    """``value`` as ``(rows, cols)`` of positive whole numbers within the pixel limit, or
    :class:`InputError`."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InputError(f"{name}: expected [rows, cols], got {_short(value)}")
    shape = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise InputError(
                f"{name}: expected two positive whole numbers [rows, cols], got {_short(value)}"
            )
        if not (math.isfinite(item) and float(item).is_integer() and item >= 1):
            raise InputError(
                f"{name}: expected two positive whole numbers [rows, cols], got {_short(value)}"
            )
        shape.append(int(item))
    _readers.check_pixels(shape, name)
    return shape[0], shape[1]


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
) -> Path:
    """Write a transform JSON file (what ``regcli register`` saves and ``regcli apply`` reads).

    Keys: ``matrix`` (3x3, fixed -> moving), ``convention`` (:data:`TRANSFORM_CONVENTION`),
    and when given ``transform``, ``params``, ``fixed_shape`` and ``moving_shape``
    (``[rows, cols]``), plus the keys of ``extra`` (metric, optimizer, ...).  Written
    atomically with sorted keys; NaN/inf values in ``extra`` become ``null``.
    """
    from regcli.transforms import check_matrix

    p = Path(path)
    if not overwrite:
        check_output_path(p, overwrite=False)
    data = dict(extra or {})
    data["matrix"] = check_matrix(matrix, name=f"{path}: matrix")
    data["convention"] = TRANSFORM_CONVENTION
    optional = {"transform": transform, "params": params}
    optional["fixed_shape"] = None if fixed_shape is None else list(fixed_shape)[:2]
    optional["moving_shape"] = None if moving_shape is None else list(moving_shape)[:2]
    data.update({key: value for key, value in optional.items() if value is not None})
    text = dumps(data, indent=2) + "\n"
    with atomic_output(p, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return p


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_JSON_DIGITS:
        raise ValueError(f"an integer with {len(text)} digits")
    return int(text)


def _no_duplicate_keys(pairs):
    data = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"the key {key!r} appears twice")
        data[key] = value
    return data


def _parse_json(text: str, name: str):
    try:
        return json.loads(text, parse_int=_parse_int, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise InputError(f"{name}: not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"{name}: not a usable transform JSON file: {exc}") from None


def _check_matrix_entries(value, name: str) -> None:
    """The matrix is a list of rows of plain numbers (not strings, booleans or deeper
    lists), checked before numpy sees it."""
    rows = value if isinstance(value, list) else None
    if rows is None or not all(isinstance(row, list) for row in rows):
        return  # check_matrix says what is wrong with the shape
    for row in rows:
        for item in row:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise InputError(
                    f"{name}: matrix: expected numbers, got {_short(item)} in {_short(value)}"
                )


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
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{name}: not a text file; expected a transform JSON file (as written by "
            "regcli register)"
        ) from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None
    data = _parse_json(text, name)
    if not isinstance(data, dict):
        raise InputError(
            f'{name}: expected a JSON object with a "matrix" key, got a {type(data).__name__}'
        )
    if "matrix" not in data:
        raise InputError(
            f'{name}: no "matrix" key; expected a transform JSON file with a 3x3 '
            "fixed -> moving matrix (as written by regcli register)"
        )
    _check_matrix_entries(data["matrix"], name)
    data["matrix"] = check_matrix(data["matrix"], name=f"{name}: matrix")
    for key in ("fixed_shape", "moving_shape"):
        if data.get(key) is not None:
            data[key] = _shape_pair(data[key], name=f"{name}: {key}")
    return data
