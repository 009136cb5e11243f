"""The output folder of ``regcli batch``: one subfolder per pair that appears complete or not at
all, results tables rebuilt from the pairs, and a lock so that one batch writes at a time.

A pair's files are written into a hidden staging folder inside OUTDIR and renamed into place
when they are all there, so a pair's folder is complete whenever it exists: a killed batch
loses no finished pair, and a rerun keeps every complete pair whose inputs and options are
the same.  Hidden leftovers of a killed run are removed when the next run takes the lock.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import tempfile
import uuid
from pathlib import Path

#: Files of OUTDIR (pair names never take these).
RESULTS_CSV = "results.csv"
RESULTS_JSONL = "results.jsonl"
CONTACT_SHEET = "contact_sheet.png"
RESERVED = (RESULTS_CSV, RESULTS_JSONL, CONTACT_SHEET)
#: In each pair's folder (register's name for it).
TRANSFORM_NAME = "transform.json"
#: The hidden folder a pair is written into (``.staging-<name>-<random>``) before it is
#: renamed into place.
STAGING_PREFIX = ".staging-"
_STAGING, _TRASH = STAGING_PREFIX, ".trash-"
#: Hidden temporaries of OUTDIR itself (atomic writes of the tables and the sheet).
_TEMPORARY = (_STAGING, _TRASH, *(f".{name}." for name in RESERVED))


class BatchFolderError(Exception):
    """OUTDIR cannot be used (another batch holds it, it is a file...)."""


@contextlib.contextmanager
def locked(outdir: Path):
    """Create ``outdir`` if needed, hold an exclusive lock on it while the batch runs and
    remove a killed run's hidden leftovers (which only a lock holder may do)."""
    outdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(outdir, os.O_RDONLY)
    try:
        try:
            import fcntl
        except ImportError:  # no advisory locks here: one batch per OUTDIR is the user's job
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BatchFolderError(
                    f"{outdir}: another regcli batch is writing into this folder"
                ) from None
        clean(outdir)
        yield outdir
    finally:
        os.close(fd)


def clean(outdir: Path) -> None:
    """Remove hidden staging folders and temporary files (of this run or a killed one)."""
    for entry in os.scandir(outdir):
        if entry.name.startswith(_TEMPORARY):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def pair_folder(outdir: Path, name: str) -> Path:
    """``outdir/name``, refusing anything that would not be a plain folder inside OUTDIR."""
    if not name or name != os.path.basename(name) or name.startswith(".") or name in RESERVED:
        raise ValueError(f"unsafe pair name {name!r}")
    folder = outdir / name
    if folder.is_symlink():
        raise OSError(f"{folder}: is a symbolic link; refusing to write through it")
    return folder


def refuse_inputs(outdir: Path, inputs, pairs_written, *, contact_sheet: bool) -> None:
    """Raise :class:`~regcli.errors.InputError` before anything is written if the batch would
    replace one of its ``inputs`` (images, masks, the pairs CSV, the initial transform): a
    table or the contact sheet of OUTDIR that is one of them, or a pair folder to be
    replaced whole (``pairs_written``: the pairs that run) that holds one."""
    from regcli.cli.outputs import refuse_input, refuse_input_inside

    advice = "choose another output folder"
    for name in (RESULTS_CSV, RESULTS_JSONL, *([CONTACT_SHEET] if contact_sheet else [])):
        refuse_input(outdir / name, inputs, advice=advice)
    for name in pairs_written:
        folder = outdir / name
        if not folder.is_symlink():  # (never replaced: the pair fails, see pair_folder)
            refuse_input_inside(folder, inputs, advice=f"{advice} or move the input out of it")


def remove_earlier(path: Path, inputs) -> None:
    """Remove ``path``, an earlier run's file of OUTDIR that this run does not write (the
    contact sheet, after ``--overwrite --plots none``), so that OUTDIR does not show another
    run's verdicts beside this run's tables; never an input or a folder."""
    from regcli.cli.outputs import input_at

    if path.is_file() or path.is_symlink():
        if input_at(path, inputs) is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def aligned_name(moving) -> str:
    """``<moving stem>_aligned<suffix>`` (the name ``register`` gives the aligned image)."""
    moving = Path(moving) if isinstance(moving, (str, os.PathLike)) else Path("moving.npy")
    return f"{moving.stem}_aligned{moving.suffix or '.npy'}"


def fingerprint(paths: dict) -> dict:
    """``{role: [size, mtime_ns]}`` of each input file in ``paths`` (``None`` for a file that
    cannot be stat'ed): what a rerun compares to tell that a pair's input changed at the same
    path.  Cheap (no file is read), so a file rewritten within the file system's timestamp
    resolution with the same size goes unnoticed, and a ``touch`` makes the pair run again."""
    out = {}
    for role, path in paths.items():
        if path is None:
            continue
        try:
            stat = os.stat(path)
            out[role] = [stat.st_size, stat.st_mtime_ns]
        except (OSError, ValueError):  # (ValueError: a NUL in the name)
            out[role] = None
    return out


#: The key of a pair's job holding its input files' :func:`fingerprint`.
FILES = "files"


def completed(outdir: Path, name: str, job: dict) -> dict | None:
    """The saved report of pair ``name`` if its folder is complete and was made by the same
    ``job`` (inputs, options and the input files' :func:`fingerprint`); ``None`` if there is no
    folder, or if it was made by the same job from input files that changed since (or
    before fingerprints were recorded): the pair must run again and replace it.

    Raises :class:`FileExistsError` if a folder of that name exists but holds something else
    (other inputs or options, or not a complete pair): only ``--overwrite`` replaces it.
    """
    import json

    folder = pair_folder(outdir, name)
    if not folder.exists():
        return None
    try:
        report = json.loads((folder / TRANSFORM_NAME).read_text(encoding="utf-8"))
        recorded = report.get("batch")
        same = _without_files(recorded) == _without_files(job)
        complete = same and (folder / str(report["aligned"])).is_file()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        complete = False
    if not complete:
        raise FileExistsError(
            f"{folder} holds the outputs of another registration (other inputs or options); "
            "pass --overwrite to replace them"
        )
    if recorded.get(FILES) is None or recorded.get(FILES) != job.get(FILES):
        return None  # an input file changed (size or modification time): run it again
    return report


def _without_files(job) -> dict:
    if not isinstance(job, dict):
        raise TypeError("not a batch job")
    return {key: value for key, value in job.items() if key != FILES}


def publish(staging: Path, folder: Path) -> None:
    """Rename the complete ``staging`` folder to ``folder``, replacing an older one."""
    if folder.is_symlink():
        raise OSError(f"{folder}: is a symbolic link; refusing to replace it")
    old = None
    if folder.exists():
        old = folder.with_name(f"{_TRASH}{folder.name}-{uuid.uuid4().hex[:8]}")
        os.rename(folder, old)
    os.rename(staging, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def staging_folder(outdir: Path, name: str) -> Path:
    """A new hidden folder in ``outdir`` with the usual permissions (mkdtemp makes 0700)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{_STAGING}{name}-", dir=outdir))
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    return folder


# --------------------------------------------------------------------------- tables


def write_tables(outdir: Path, rows: list[dict]) -> None:
    """Write ``results.csv`` and ``results.jsonl`` (one row per pair, in input order),
    each atomically."""
    from regcli._json import dumps
    from regcli.io import atomic_output

    rows = sorted(rows, key=lambda row: row["index"])
    with atomic_output(outdir / RESULTS_JSONL) as tmp:
        tmp.write_text("".join(dumps(row) + "\n" for row in rows), encoding="utf-8")
    flat = [_flat(row) for row in rows]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    with (
        atomic_output(outdir / RESULTS_CSV) as tmp,
        open(tmp, "w", newline="", encoding="utf-8") as fh,
    ):
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(flat)


def _flat(row: dict) -> dict:
    """A results row as CSV cells: the matrix as m00..m12, parameters as their own columns."""
    out = {k: row[k] for k in ("index", "name", "fixed", "moving", "status", "converged")}
    quality = row.get("quality") or {}
    out["quality"] = quality.get("verdict") or ""
    out["seconds"] = "" if row.get("seconds") is None else f"{row['seconds']:.4f}"
    out["error"] = row.get("error") or ""
    matrix = row.get("matrix")
    for i in range(2):
        for j in range(3):
            out[f"m{i}{j}"] = "" if matrix is None else repr(float(matrix[i][j]))
    for key, value in (row.get("params") or {}).items():
        if isinstance(value, (list, tuple)):
            out[f"{key}_x"], out[f"{key}_y"] = value[0], value[1]
        else:
            out[key] = value
    out["message"] = row.get("message") or ""
    out["folder"] = row.get("folder") or ""
    return out
