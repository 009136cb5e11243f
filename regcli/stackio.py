"""Reading and writing stacks frame by frame, and the per-frame transforms CSV.

* :func:`open_stack` opens a multi-page TIFF (a time-lapse or a z-stack, ImageJ or plain), a
  ``.npy`` of shape (T, rows, cols), or several 2-D image files, as a :class:`FrameSource`
  that reads one frame at a time (TIFF pages one by one, ``.npy`` memory-mapped).
* :func:`write_stack` writes frames from an iterator as a multi-page TIFF, keeping the input's
  ImageJ metadata and resolution, atomically.
* :func:`write_transforms_csv` / :func:`read_transforms_csv`: one row per frame, ``frame`` and
  the matrix entries ``m00 m01 m02 m10 m11 m12`` (reference grid -> frame), then the
  parameters and the verdict (and, from ``regcli stack``, the aligned stack's file name).
  Reading parses numbers only.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from regcli.errors import InputError
from regcli.io import IMAGE_SUFFIXES, atomic_output, read_image

__all__ = [
    "MATRIX_COLUMNS",
    "FrameSource",
    "open_stack",
    "read_transforms_csv",
    "write_stack",
    "write_transforms_csv",
]

log = logging.getLogger("regcli")

#: The matrix columns of a transforms CSV (the third row of the 3x3 matrix is 0 0 1).
MATRIX_COLUMNS = ("m00", "m01", "m02", "m10", "m11", "m12")
#: ImageJ metadata that describes the file's layout; tifffile writes it anew from the shape.
_IMAGEJ_LAYOUT = {"ImageJ", "images", "frames", "slices", "channels", "hyperstack", "mode"}
#: Above this many bytes a TIFF needs the BigTIFF format (classic TIFF offsets are 32-bit).
_BIGTIFF_BYTES = 2**32 - 2**25
_TIFF = (".tif", ".tiff")


@dataclass
class FrameSource:
    """A stack read one frame at a time.

    Attributes
    ----------
    name : str
        What was opened (for messages).
    shape : (T, rows, cols)
    dtype : numpy dtype
    tiff : dict
        What :func:`write_stack` keeps: ``imagej`` metadata, ``axes``, ``resolution`` and
        ``resolutionunit`` (empty for non-TIFF inputs).
    """

    name: str
    shape: tuple[int, int, int]
    dtype: np.dtype
    tiff: dict = field(default_factory=dict)
    _frames: object = field(default=None, repr=False)
    _close: object = field(default=None, repr=False)

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (a TIFF stays open while frames are read)."""
        if self._close is not None:
            self._close()

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(self.shape[0]):
            yield self.frame(index)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (read from disk now)."""
        return self._frames(index)


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _channel_of(name: str, shape, axes: str, channel: int | None) -> int:
    """The channel to read from a stack whose ``axes`` hold channels (``S`` or ``C``)."""
    count = shape[axes.index("S" if "S" in axes else "C")]
    if channel is None:
        raise InputError(
            f"{name}: a stack of shape {shape} (axes {axes}) with {count} channels; regcli "
            f"aligns one channel: choose it (channel=K, K from 0 to {count - 1}) and move the "
            "others with the transforms it writes"
        )
    if not 0 <= channel < count:
        raise InputError(
            f"channel: {name} has {count} channels (0 to {count - 1}), got {channel}",
            param="channel",
        )
    return int(channel)


class _TiffNotes(logging.Handler):
    """tifffile's log records about one file: sent to regcli's debug output (``-vv``) instead
    of stderr, and the errors kept (a broken chain of pages is only logged by tifffile)."""

    def __init__(self, name: str):
        super().__init__()
        self.file_name, self.errors = name, []

    def emit(self, record) -> None:
        log.debug("%s: tifffile: %s", self.file_name, record.getMessage())
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())

    @contextlib.contextmanager
    def catching(self):
        logger = logging.getLogger("tifffile")
        propagate = logger.propagate
        logger.addHandler(self)
        logger.propagate = False
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.propagate = propagate


def _corrupt(name: str, what: str) -> InputError:
    return InputError(
        f"{name}: truncated or corrupt TIFF ({what}); copy or save the file again (regcli "
        "never modifies its inputs)"
    )


def _tiff_source(path: Path, channel: int | None = None) -> FrameSource:
    """A TIFF opened read-only; closed again when it cannot be used."""
    import tifffile

    name = str(path)
    notes = _TiffNotes(name)
    try:
        with notes.catching():
            tif = tifffile.TiffFile(path)  # opened "rb": an input is never written
    except Exception as exc:  # tifffile raises many types; all mean "cannot read this file"
        raise InputError(f"{name}: not a readable TIFF ({exc})") from exc
    try:
        with notes.catching():
            return _tiff_frames(tif, path, name, channel, notes)
    except BaseException:
        tif.close()
        raise


def _frame_pages(tif, name: str, notes: _TiffNotes):
    """``(axes, shape, pages)`` of the stack in ``tif``: its one series, or, for a file of
    several series (pages written one by one), every page when all share shape and dtype."""
    count = len(tif.pages)  # walks the whole chain of pages: a truncated file breaks it
    if notes.errors:
        reason = re.sub(r"<[^>]*>\s*", "", notes.errors[0])
        raise _corrupt(name, f"the chain of pages breaks after page {count - 1}: {reason}")
    series = tif.series
    if not series:
        raise InputError(f"{name}: not a readable TIFF (no image data in it)")
    if len(series) == 1:
        return series[0].axes, tuple(series[0].shape), series[0]
    pages = list(tif.pages)
    first = pages[0]
    for index, page in enumerate(pages):
        if page.shape != first.shape or page.dtype != first.dtype:
            raise InputError(
                f"{name}: page {index} is {' x '.join(map(str, page.shape))} {page.dtype} but "
                f"page 0 is {' x '.join(map(str, first.shape))} {first.dtype}; the frames of a "
                "stack share one shape and dtype: save frames of different sizes as separate "
                "images (regcli register aligns a pair)"
            )
    return "Q" + first.axes, (len(pages), *first.shape), _Pages(pages, first.dtype)


@dataclass
class _Pages:
    """Every page of a file of several series, as one series of pages."""

    pages: list
    dtype: np.dtype


def _read_page(page, name: str, index: int, total: int) -> np.ndarray:
    """Page ``page`` decoded, or an :class:`InputError` saying the file is truncated."""
    try:
        end = max(
            (o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)), default=0
        )
        if end > page.parent.filehandle.size:
            raise ValueError(f"its data ends at byte {end}, after the end of the file")
        return page.asarray()
    except Exception as exc:  # tifffile and the codecs raise many types
        raise _corrupt(
            name, f"frame {index} (page {page.index} of 0..{total - 1}) cannot be read: {exc}"
        ) from None


def _tiff_frames(tif, path: Path, name: str, channel, notes: _TiffNotes) -> FrameSource:
    import tifffile

    axes, shape, series = _frame_pages(tif, name, notes)
    full_shape = shape
    keep = [i for i, (ax, n) in enumerate(zip(axes, shape, strict=True)) if ax in "YX" or n != 1]
    axes, shape = "".join(axes[i] for i in keep), tuple(shape[i] for i in keep)
    pick = None  # (page stride, channel) of a C axis, or the sample of an S axis
    if axes in ("YXS", "TYXS", "ZYXS", "IYXS", "QYXS") or axes in ("CYX", "TCYX", "ZCYX"):
        k = _channel_of(name, shape, axes, channel)
        pick = ("S", k) if axes.endswith("S") else ("C", k)
        drop = axes.index("S" if pick[0] == "S" else "C")
        count = shape[drop]
        axes, shape = axes.replace(pick[0], ""), shape[:drop] + shape[drop + 1 :]
    if "S" in axes or "C" in axes or len(shape) not in (2, 3) or not axes.endswith("YX"):
        raise InputError(
            f"{name}: got a stack of shape {shape} (axes {axes}); regcli stacks are one "
            "channel of grey frames (T, rows, cols): save one channel per file"
        )
    if len(shape) == 2:
        shape, axes = (1, *shape), "T" + axes
    pages = series.pages
    total = len(pages)

    def page(index: int) -> np.ndarray:
        with notes.catching():
            return _read_page(pages[index], name, index, total)

    if pick is not None and pick[0] == "S" and total == shape[0]:

        def read(index: int) -> np.ndarray:
            return page(index).reshape((*shape[1:], count))[..., pick[1]]

    elif pick is not None and pick[0] == "C" and total == shape[0] * count:

        def read(index: int) -> np.ndarray:
            return page(index * count + pick[1]).reshape(shape[1:])

    elif pick is None and total == shape[0]:

        def read(index: int) -> np.ndarray:
            return page(index).reshape(shape[1:])

    elif pick is None and total == 1 and getattr(series, "dataoffset", None) is not None:
        # One page for the whole stack (ImageJ files over 4 GB): map it, read-only.
        end = series.dataoffset + math.prod(full_shape) * np.dtype(series.dtype).itemsize
        if end > os.path.getsize(path):
            raise _corrupt(name, f"{shape[0]} frames declared, the file ends before their data")
        data = tifffile.memmap(path, series=0, mode="r").reshape(shape)

        def read(index: int) -> np.ndarray:
            return np.array(data[index])

    elif total < shape[0] * (count if pick is not None and pick[0] == "C" else 1):
        raise _corrupt(name, f"{shape[0]} frames declared, {total} pages found")
    else:
        raise InputError(f"{name}: a stack of shape {full_shape} that regcli cannot read")
    page0 = tif.pages[0]
    info = {"axes": axes}
    if tif.is_imagej:
        info["imagej"] = {
            k: v for k, v in (tif.imagej_metadata or {}).items() if k not in _IMAGEJ_LAYOUT
        }
    if "XResolution" in page0.tags:
        info["resolution"] = page0.resolution
        info["resolutionunit"] = page0.resolutionunit
    return FrameSource(name, shape, np.dtype(series.dtype), info, read, tif.close)


def _npy_source(path: Path, channel: int | None = None) -> FrameSource:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a broken file
        raise InputError(f"{path}: not a readable NumPy .npy array ({exc})") from exc
    if data.ndim == 4 and data.shape[-1] <= 4:  # (T, rows, cols, C)
        data = data[..., _channel_of(str(path), data.shape, "TYXS", channel)]
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3 or not np.issubdtype(data.dtype, np.number):
        raise InputError(f"{path}: expected a (T, rows, cols) array of numbers, got {data.shape}")
    return FrameSource(
        str(path), tuple(data.shape), data.dtype, {}, lambda index: np.array(data[index])
    )


def _files_source(paths: Sequence[Path], name: str, channel: int | None = None) -> FrameSource:
    first = read_image(paths[0], channel=channel)

    def read(index: int) -> np.ndarray:
        image = first if index == 0 else read_image(paths[index], channel=channel)
        if image.shape != first.shape or image.dtype != first.dtype:
            raise InputError(
                f"{paths[index]}: shape {image.shape} {image.dtype.name} differs from the first "
                f"frame {paths[0]} ({first.shape} {first.dtype.name}); frames must match"
            )
        return image

    return FrameSource(name, (len(paths), *first.shape), first.dtype, {}, read)


def open_stack(paths, *, channel: int | None = None) -> FrameSource:
    """Open a stack: one multi-page TIFF or ``.npy`` (T, rows, cols), a folder of frame
    files, or several frame files (in the order given; a folder's in natural order:
    ``f2`` before ``f10``).

    ``channel``: the channel to read from a stack with channels (a TIFF's samples or ImageJ
    channels, a ``.npy`` of shape (T, rows, cols, C), colour frame files); a TIFF or
    ``.npy`` stack with channels needs it, frame files default to their luminance."""
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    if not paths:
        raise InputError("stack: no input given", param="stack")
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        found = sorted(
            (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
            key=_natural_key,
        )
        if not found:
            raise InputError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it")
        return _files_source(found, str(folder), channel)
    if len(paths) == 1:
        path = paths[0]
        if path.suffix.lower() in _TIFF:
            return _not_empty(_tiff_source(path, channel))
        if path.suffix.lower() == ".npy":
            return _not_empty(_npy_source(path, channel))
    return _files_source(paths, f"{paths[0]} ... ({len(paths)} files)", channel)


def _not_empty(source: FrameSource) -> FrameSource:
    """``source``, or an :class:`InputError` (the file closed) when it has no frames or its
    frames no pixels: said when the stack is opened, before any output is begun."""
    frames, *size = source.shape
    if frames and all(size):
        return source
    source.close()
    if not frames:
        raise InputError(f"{source.name}: the stack has no frames (shape {source.shape})")
    raise InputError(
        f"{source.name}: the frames are empty ({' x '.join(map(str, size))} pixels each)"
    )


def write_stack(path, frames: Iterable, *, shape, dtype, tiff: dict | None = None) -> Path:
    """Write ``frames`` (an iterator of 2-D arrays, consumed one at a time) as a multi-page
    TIFF of ``shape`` (T, rows, cols) and ``dtype``, atomically.

    ``tiff`` is :attr:`FrameSource.tiff` of the input: ImageJ metadata (written as an ImageJ
    hyperstack when the dtype allows), axes and resolution are kept.
    """
    import tifffile

    if not math.prod(shape):  # tifffile would warn and write a nonconformant TIFF
        raise InputError(f"write_stack: a stack of shape {tuple(shape)} has no pixels to write")
    info = dict(tiff or {})
    dtype = np.dtype(dtype)
    bigtiff = math.prod(shape) * dtype.itemsize > _BIGTIFF_BYTES
    imagej = "imagej" in info and dtype.name in ("uint8", "uint16", "float32") and not bigtiff
    options = {"photometric": "minisblack"}
    if "resolution" in info:
        options["resolution"] = tuple(info["resolution"])
        if not imagej:
            options["resolutionunit"] = info.get("resolutionunit")
    axes = info.get("axes", "TYX")
    if imagej:
        axes = axes if axes[0] in "TZC" else "T" + axes[1:]
        options["metadata"] = {**info["imagej"], "axes": axes}
    else:
        options["metadata"] = {"axes": axes}
    with atomic_output(Path(path)) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=bigtiff, imagej=imagej) as writer:
            writer.write(_checked(frames, shape, dtype), shape=tuple(shape), dtype=dtype, **options)
    return Path(path)


def _checked(frames: Iterable, shape, dtype) -> Iterator[np.ndarray]:
    count = 0
    for frame in frames:
        arr = np.asarray(frame)
        if arr.shape != tuple(shape[1:]) or arr.dtype != dtype:
            raise InputError(f"frame {count}: got {arr.shape} {arr.dtype}, expected {shape[1:]}")
        count += 1
        yield arr
    if count != shape[0]:
        raise InputError(f"write_stack: got {count} frames, expected {shape[0]}")


# --------------------------------------------------------------------------- transforms CSV


def write_transforms_csv(path, frames, *, aligned: str | None = None) -> Path:
    """Write one row per :class:`~regcli.stack.FrameResult`: ``frame``, ``m00``...``m12``,
    the parameters (``center`` as ``center_x``, ``center_y``), ``converged``, ``quality``,
    ``quality_reasons``, ``searched``, ``seconds``, ``message``; with ``aligned`` (the file
    name of the aligned stack the frames were written to) an ``aligned`` column, which tells
    a later ``stack --overwrite`` which stack of this folder is its own."""
    rows = []
    for record in frames:
        m = np.asarray(record.matrix, dtype=float)
        row = {"frame": record.index}
        row.update({name: repr(float(m[int(name[1]), int(name[2])])) for name in MATRIX_COLUMNS})
        for key, value in record.params.items():
            if isinstance(value, (list, tuple)):
                row.update({f"{key}_x": value[0], f"{key}_y": value[1]})
            else:
                row[key] = value
        quality = record.quality or {}
        row.update(
            converged=record.converged,
            quality=quality.get("verdict") or "",
            quality_reasons="; ".join(map(str, quality.get("reasons") or [])),
            searched=record.searched,
            seconds=f"{record.seconds:.4f}",
            message=record.message,
        )
        if aligned is not None:
            row["aligned"] = aligned
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_output(Path(path)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def read_transforms_csv(path) -> np.ndarray:
    """The (T, 3, 3) matrices of a transforms CSV (rows ``frame`` = 0, 1, ... in order),
    each an invertible affine matrix; errors name the file and the row."""
    from regcli.transforms import check_matrix

    name = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # a BOM (Excel) is skipped
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{name}: cannot read a transforms CSV ({exc})") from exc
    needed = ("frame", *MATRIX_COLUMNS)
    if not rows or any(col not in rows[0] for col in needed):
        raise InputError(
            f"{name}: expected a CSV with columns {', '.join(needed)} and one row per frame "
            "(as written by regcli stack)"
        )
    matrices = np.tile(np.eye(3), (len(rows), 1, 1))
    for i, row in enumerate(rows):
        try:
            frame = int(row["frame"])
            values = [float(row[col]) for col in MATRIX_COLUMNS]
        except (TypeError, ValueError):
            raise InputError(f"{name}: row {i + 2}: frame and m00..m12 must be numbers") from None
        if frame != i or not all(math.isfinite(v) for v in values):
            raise InputError(
                f"{name}: row {i + 2}: expected frame {i} with finite matrix entries, got "
                f"frame {row['frame']!r}"
            )
        try:
            matrices[i] = check_matrix(np.reshape(values, (2, 3)), name="m00..m12")
        except InputError as exc:
            raise InputError(f"{name}: row {i + 2} (frame {i}): {exc}") from None
    return matrices
