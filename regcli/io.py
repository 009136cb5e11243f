"""Reading, checking and writing images; atomic output files.

* :func:`read_image` reads PNG, JPEG, TIFF (8/16-bit integer, float32/64) and ``.npy`` into a
  2-D array of the file's own dtype; colour images become grey (luminance) with a warning.
* :func:`check_image` is the one validation helper: every public function that takes an image
  calls it, so every bad array gets the same clear :class:`~regcli.errors.InputError`.
* :func:`write_image` converts to the requested dtype (rounding and clipping interpolation
  overshoot to the dtype's range) and writes through :func:`atomic_output`, so a failed run
  never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from regcli._json import dumps
from regcli._validate import check_image, check_same_shape
from regcli.errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "TRANSFORM_CONVENTION",
    "atomic_output",
    "check_image",
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
_FORMAT_DTYPES = {".png": ("uint8", "uint16"), ".jpg": ("uint8",), ".jpeg": ("uint8",)}
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


def _read_tiff(path: Path, name: str) -> np.ndarray:
    """Read the first series of a TIFF; colour samples go last, extra pages are an error.

    tifffile's axis labels tell colour samples (``S``) from pages (``Q``, ``I``, ``Z``...),
    which the array shape alone cannot: a 3-page 5x3 stack and a 5x3 RGB image are both
    3-D with a 3 in them.
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes = series.axes
        arr = series.asarray()
    if "S" in axes:
        arr = np.moveaxis(arr, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    # Drop length-1 axes other than the image's own (ImageJ writes e.g. TZCYX with T=Z=C=1).
    keep = [i for i, ax in enumerate(axes) if ax in "YXS" or arr.shape[i] != 1]
    arr = arr.reshape([arr.shape[i] for i in keep])
    planes = arr.ndim - (1 if axes.endswith("S") else 0)
    if planes > 2:
        raise InputError(
            f"{name}: got a 3-D stack of shape {arr.shape} (a multi-page TIFF) where a 2-D "
            "image is needed; save a single page"
        )
    return arr


def read_image(path) -> np.ndarray:
    """Read a 2-D grey image from ``path`` in the file's own dtype.

    Colour (RGB, RGBA) is converted to grey (luminance, BT.709 weights) with a warning on the
    ``regcli`` logger.  Raises :class:`InputError` for a missing, unreadable or non-image file,
    a stack where a 2-D image is needed, an empty image, or NaN/inf pixels.
    """
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise InputError(f"{name}: no such file")
    if p.is_dir():
        raise InputError(f"{name}: is a directory, not an image file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{name}: permission denied")
    if p.stat().st_size == 0:
        raise InputError(f"{name}: the file is empty (0 bytes), not an image")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            arr = _read_tiff(p, name)
        else:
            import imageio.v3 as iio

            # Pillow reads PNG and JPEG; letting imageio try every plugin on a broken file
            # ends in a confusing message from whichever plugin it tried last.
            plugin = "pillow" if suffix in (".png", ".jpg", ".jpeg") else None
            arr = iio.imread(p, plugin=plugin)
    except InputError:
        raise
    except Exception as exc:  # the readers raise many types; all mean "cannot read this file"
        log.debug("%s: %s: %s", name, type(exc).__name__, exc)  # the details, for -vv
        kind = {".npy": "a NumPy .npy array", ".tif": "TIFF", ".tiff": "TIFF"}.get(
            suffix, suffix[1:].upper() or "an image"
        )
        raise InputError(
            f"{name}: not a readable image (cannot decode the file as {kind}); "
            f"regcli reads {', '.join(IMAGE_SUFFIXES)}"
        ) from exc
    arr = np.asarray(arr)
    if suffix == ".npy" and arr.ndim == 3 and arr.shape[0] == 1:  # one plane, saved as a stack
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[2] <= 4:
        arr = _to_gray(arr, name)
    return check_image(arr, name=name)


def to_dtype(image: np.ndarray, dtype) -> np.ndarray:
    """Convert ``image`` to ``dtype``: integers are rounded and clipped to the dtype's range."""
    dtype = np.dtype(dtype)
    arr = np.asarray(image)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(arr), info.min, info.max).astype(dtype)
    return arr.astype(dtype)


def check_output_path(path, *, overwrite: bool = False, inputs: Iterable = ()) -> Path:
    """Check that ``path`` may be written; raise :class:`InputError` if not.

    An input file is never overwritten, even with ``overwrite=True``; an existing output only
    with ``overwrite=True`` (else the error has ``param="overwrite"``); the folder must exist
    (it is not created here).
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
    if p.exists() and not overwrite:
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
    end because of the output's name.
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
            )
    return suffix


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=p.suffix, dir=p.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, p)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_image(path, image, *, dtype=None, overwrite: bool = True) -> Path:
    """Write ``image`` to ``path`` atomically, converted to ``dtype`` (default: its own).

    Integer dtypes are rounded and clipped to their range, so interpolation overshoot (cubic
    splines ring past the input's extremes) saturates instead of wrapping around.  PNG holds
    uint8 and uint16, JPEG uint8 (written at quality 95); TIFF and ``.npy`` hold any numeric
    dtype.  Raises :class:`InputError` for an unknown ending, a dtype the format cannot store,
    or an image that is not 2-D, empty, or has NaN/inf pixels.
    """
    p = Path(path)
    suffix = check_output_format(p)
    if not overwrite:
        check_output_path(p, overwrite=False)
    arr = check_image(image, name=str(path))
    arr = to_dtype(arr, arr.dtype if dtype is None else dtype)
    check_output_format(p, arr.dtype)
    with atomic_output(p) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, arr, photometric="minisblack")
        else:
            import imageio.v3 as iio

            options = {"quality": 95} if suffix in (".jpg", ".jpeg") else {}
            iio.imwrite(tmp, arr, extension=suffix, **options)
    return p


# --------------------------------------------------------------------------- transform JSON


def _shape_pair(value, *, name: str) -> tuple[int, int]:
    """``value`` as ``(rows, cols)`` of positive integers, or :class:`InputError`."""
    try:
        rows, cols = value
        shape = (int(rows), int(cols))
        exact = float(rows) == shape[0] and float(cols) == shape[1]
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected [rows, cols], got {value!r}") from None
    if not exact or min(shape) < 1:
        raise InputError(f"{name}: expected two positive whole numbers [rows, cols], got {value!r}")
    return shape


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
    with atomic_output(p) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return p


def read_transform_json(path) -> dict:
    """Read and check a transform JSON file; ``"matrix"`` comes back as a 3x3 float array.

    ``"fixed_shape"`` and ``"moving_shape"``, when present, come back as ``(rows, cols)``
    tuples.  Raises :class:`InputError` naming the file for a missing or unreadable file,
    text that is not JSON, or a missing or unusable matrix.
    """
    from regcli.transforms import check_matrix

    p = Path(path)
    name = str(path)
    if not p.exists():
        raise InputError(f"{name}: no such file")
    if p.is_dir():
        raise InputError(f"{name}: is a directory, not a transform JSON file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{name}: not a text file; expected a transform JSON file (as written by "
            "regcli register)"
        ) from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f'{name}: expected a JSON object with a "matrix" key, got a {type(data).__name__}'
        )
    if "matrix" not in data:
        raise InputError(
            f'{name}: no "matrix" key; expected a transform JSON file with a 3x3 '
            "fixed -> moving matrix (as written by regcli register)"
        )
    data["matrix"] = check_matrix(data["matrix"], name=f"{name}: matrix")
    for key in ("fixed_shape", "moving_shape"):
        if data.get(key) is not None:
            data[key] = _shape_pair(data[key], name=f"{name}: {key}")
    return data
