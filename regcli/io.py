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
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from regcli.errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "atomic_output",
    "check_image",
    "check_output_path",
    "check_same_shape",
    "read_image",
    "to_dtype",
    "write_image",
]

log = logging.getLogger("regcli")

#: File endings regcli reads and writes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
_LUMINANCE = np.array([0.2125, 0.7154, 0.0721])  # ITU-R BT.709, as skimage.color.rgb2gray


def check_image(image, *, name: str = "image") -> np.ndarray:
    """Return ``image`` as a 2-D numeric array or raise :class:`InputError` saying why not.

    Rejects: non-numeric data, anything that is not 2-D (after squeezing nothing), empty
    images, and NaN or infinite pixels.
    """
    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{name}: expected a numeric image, got dtype {arr.dtype}")
    if arr.ndim != 2:
        what = "3-D stack" if arr.ndim == 3 else f"{arr.ndim}-D array"
        raise InputError(
            f"{name}: got a {what} of shape {arr.shape} where a 2-D image is needed"
        )
    if arr.size == 0:
        raise InputError(f"{name}: the image is empty (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise InputError(f"{name}: {bad} pixel(s) are NaN or infinite")
    return arr


def check_same_shape(a: np.ndarray, b: np.ndarray, *, names=("image1", "image2")) -> None:
    """Raise :class:`InputError` naming both shapes if ``a`` and ``b`` differ in shape."""
    if np.shape(a) != np.shape(b):
        raise InputError(
            f"{names[0]} and {names[1]} must have the same shape, got {np.shape(a)} "
            f"and {np.shape(b)}"
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
            return np.clip(np.rint(gray), 0, np.iinfo(arr.dtype).max).astype(arr.dtype)
        return gray.astype(arr.dtype)
    raise InputError(
        f"{name}: got a 3-D stack of shape {arr.shape} where a 2-D image is needed"
    )


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
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            import imageio.v3 as iio

            arr = iio.imread(p)
    except Exception as exc:  # imageio raises many types; all mean "cannot read this file"
        raise InputError(
            f"{name}: not a readable image ({type(exc).__name__}); "
            f"regcli reads {', '.join(IMAGE_SUFFIXES)}"
        ) from exc
    arr = np.asarray(arr)
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
    with ``overwrite=True``; the folder must exist (it is not created here).
    """
    p = Path(path)
    for src in inputs:
        try:
            if p.exists() and os.path.samefile(p, src):
                raise InputError(f"{path}: refusing to overwrite the input file {src}")
        except FileNotFoundError:
            continue
    if p.exists() and not overwrite:
        raise InputError(f"{path}: already exists; pass --overwrite to replace it")
    if p.exists() and p.is_dir():
        raise InputError(f"{path}: is a directory, expected a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{path}: folder {parent} does not exist")
    return p


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

    PNG holds uint8 and uint16, JPEG uint8; TIFF and ``.npy`` hold any dtype.  Raises
    :class:`InputError` for an unknown ending or a dtype the format cannot store.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(
            f"{path}: unknown image format {suffix or '(no ending)'!r}; "
            f"use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    if not overwrite:
        check_output_path(p, overwrite=False)
    arr = check_image(image, name=str(path)) if dtype is None else None
    arr = to_dtype(np.asarray(image) if arr is None else arr, dtype or np.asarray(image).dtype)
    allowed = {".png": ("uint8", "uint16"), ".jpg": ("uint8",), ".jpeg": ("uint8",)}
    if suffix in allowed and arr.dtype.name not in allowed[suffix]:
        raise InputError(
            f"{path}: {suffix} cannot store {arr.dtype} pixels ({', '.join(allowed[suffix])} "
            "only); write .tif or .npy instead"
        )
    with atomic_output(p) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        else:
            import imageio.v3 as iio

            iio.imwrite(tmp, arr, extension=suffix)
    return p
