"""All-or-nothing output sets: the files of one run appear together, or none of them does.

Every command that writes files does it through one :class:`OutputSet`::

    with OutputSet(outdir, overwrite=overwrite, inputs=(fixed, moving), create=True) as out:
        aligned = out.stage("moving_aligned.png", suffixes=IMAGE_SUFFIXES)
        cost_png = out.stage("cost.png")
        ...                                  # read the inputs, compute: nothing written yet
        write_image(aligned, image)          # each writer writes to its staged path
        plots.plot_cost_curve(costs, cost_png)
    # here every output is in place; after an exception or a signal none of them is

:meth:`OutputSet.stage` is called for every output *before* the work starts.  It checks the
name at once (its ending, that it is not an input, not a folder, not an existing file without
``--overwrite`` (a dangling symlink counts as existing), that the folder exists or can be
created and can be written) and returns a path inside a hidden staging folder of the target
folder (``.regcli-tmp-<pid>-*``, the same file system, so the final rename is atomic).  Names
are relative to the set's folder; a path with its own folder (``--save-transform
elsewhere/t.json``) is staged in that folder.

A command names with :meth:`OutputSet.retire` the outputs it owns that this run does not
write (``register --plots none``: the figures); with ``--overwrite`` an earlier run's file of
such a name is removed in the commit, so a folder never shows one run's figures beside
another run's transform.  A file the command does not name, and an input, are never touched.

Leaving the ``with`` block normally renames every staged file onto its name, with signals
held so the renames are not cut apart; a replaced file keeps its permission bits (a private
0600 output stays private).  Leaving it by an exception or a signal removes the staging
folder, the locks and any folder the set created, and leaves existing files untouched.  An
``OSError`` from a writer is re-raised naming the output, not the staged file.

Locks: each output name is reserved by an exclusive-create lock file in its folder
(``.regcli-lock-<hash>``, holding the process id) for the whole run, and the checks above are
made while it is held, so two runs writing the same names into one folder cannot interleave:
the second fails at once with "another regcli run is writing into DIR".  A lock or staging
folder whose process is gone (killed with SIGKILL, a power cut) is stale and is removed by the
next run that writes into that folder, so a rerun needs no ``--overwrite`` when nothing was
completed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from regcli import _atomic
from regcli.cli import interrupts

__all__ = [
    "DISK_FULL",
    "FIGURE_SUFFIXES",
    "LOCK_PREFIX",
    "STAGING_PREFIX",
    "OutputSet",
    "describe_os_error",
    "input_at",
    "public_error",
    "refuse_input",
    "refuse_input_inside",
]

#: Hidden names an output set uses inside a target folder while it runs.
LOCK_PREFIX = ".regcli-lock-"
STAGING_PREFIX = ".regcli-tmp-"
#: Figure endings matplotlib writes for regcli's plots.
FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff")
#: The errnos of a full disk (or a full quota).
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
#: A lock file still empty after this many seconds was left by a run that died creating it.
_EMPTY_LOCK_SECONDS = 30.0


def _error(message: str, *, param: str | None = None):
    from regcli.errors import InputError

    return InputError(message, param=param)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return True
    return True


def _owner(path: Path) -> int | None:
    """The process id written in a lock file (or in a staging folder's name), if any."""
    if path.name.startswith(STAGING_PREFIX):
        text = path.name[len(STAGING_PREFIX) :].split("-", 1)[0]
    else:
        try:
            text = path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None
    return int(text) if text.isdigit() else None


def _stale(path: Path) -> bool:
    """True if the run that made this lock file or staging folder is gone."""
    pid = _owner(path)
    if pid is not None:
        return not _pid_alive(pid)
    try:  # empty lock: its run died between creating and writing it, or is doing so now
        return time.time() - path.lstat().st_mtime > _EMPTY_LOCK_SECONDS
    except OSError:
        return False


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def _is_same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


class _Folder:
    """One target folder of a set: its staging folder and the folders the set created."""

    def __init__(self, path: Path, created: list[Path]):
        self.path = path
        self.created = created
        self.staging: Path | None = None


class OutputSet:
    """Stage a run's outputs and put them in place together; see the module docstring.

    Parameters
    ----------
    folder : path
        The folder names given to :meth:`stage` are relative to (default: the current one).
    overwrite : bool
        Replace existing outputs (``--overwrite``); without it an existing name is an error.
    inputs : paths
        The run's input files: an output that is one of them is refused, even with
        ``overwrite``.
    create : bool
        Create ``folder`` (and missing parents) if needed; it is removed again if the run
        fails before anything is in place.
    """

    def __init__(self, folder=".", *, overwrite: bool = False, inputs=(), create: bool = False):
        self.folder = Path(folder)
        self.overwrite = overwrite
        self.inputs = [Path(p) for p in inputs if p is not None]
        self.create = create
        self._folders: dict[str, _Folder] = {}
        self._entries: list[tuple[Path, Path]] = []  # (final, staged)
        self._retired: list[Path] = []  # outputs of an earlier run to remove on commit
        self.removed: list[Path] = []  # those removed by the commit
        self._locks: list[Path] = []
        self._closed = False

    # ------------------------------------------------------------------ public

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            self.commit()
            return False
        self.discard()
        translated = self._translate(exc)
        if translated is not None:
            raise translated from exc
        return False

    @property
    def outputs(self) -> list[Path]:
        """The final paths staged so far, in order."""
        return [final for final, _ in self._entries]

    def stage(self, name, *, suffixes=None, kind: str = "file", option: str | None = None) -> Path:
        """Reserve output ``name`` (relative to the set's folder) and return the path to
        write it to.

        ``suffixes``: the endings allowed (lower case, with the dot); ``kind`` names them in
        the message ("unknown image format '.gif'").  ``option``: the Python name of the
        command-line option that gave the name; a bad ending is then a usage error on that
        option.  Raises :class:`~regcli.errors.InputError` naming the output.
        """
        if self._closed:
            raise RuntimeError("OutputSet.stage() after the set was closed")
        final = self.folder / name
        prefix = f"{option}: " if option else ""
        if final.is_dir() and not final.is_symlink():
            raise _error(f"{final}: is a directory, expected a file name")
        if suffixes is not None and final.suffix.lower() not in suffixes:
            ending = final.suffix.lower() or "(no ending)"
            raise _error(
                f"{prefix}{final}: unknown {kind} format {ending!r}; use one of "
                f"{', '.join(suffixes)}",
                param=option,
            )
        if any(_is_same_name(final, other) for other in self.outputs):
            raise _error(f"{prefix}{final}: the same output is given twice", param=option)
        with interrupts.deferred():
            folder = self._folder(final)
            self._lock(folder, final)
            self._check_target(final)
            staged = self._staging(folder) / final.name
            self._entries.append((final, staged))
        return staged

    def retire(self, name) -> None:
        """Declare ``name`` (relative to the set's folder) one of the command's outputs that
        this run does not write (``register --plots none``: ``cost.png``, ``overlay.png``).

        With ``overwrite``, an earlier run's file of that name is removed when the set is
        committed, with the renames (and put back if they fail), so that the folder holds
        one run's outputs, never figures of another run beside this run's transform; the
        commit lists it in :attr:`removed`.  The name is locked like a staged one.  Without
        ``overwrite`` nothing is removed (nothing of an earlier run is replaced either), nor
        ever an input, a folder, or a name this run stages.
        """
        if self._closed:
            raise RuntimeError("OutputSet.retire() after the set was closed")
        final = self.folder / name
        if not self.overwrite or any(_is_same_name(final, other) for other in self.outputs):
            return
        if any(_is_same_name(final, other) for other in self._retired):
            return
        with interrupts.deferred():
            folder = self._folder(final)
            self._lock(folder, final)
            self._retired.append(final)

    def commit(self) -> None:
        """Rename every staged output onto its name (called when the ``with`` block ends);
        if that fails, or a signal comes first, nothing is put in place."""
        if self._closed:
            return
        try:
            interrupts.pause("write")
            with interrupts.deferred():
                self._rename_all()
                self._cleanup(keep_created=True)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Remove everything staged, the locks and the folders this set created."""
        if self._closed:
            return
        with interrupts.deferred():
            self._cleanup(keep_created=False)

    # ------------------------------------------------------------------ folders and locks

    def _folder(self, final: Path) -> _Folder:
        parent = final.parent
        key = os.path.abspath(parent)
        if key in self._folders:
            return self._folders[key]
        created: list[Path] = []
        if not parent.is_dir():
            if os.path.lexists(parent) and not parent.is_dir():
                raise _error(f"{final}: {parent} is not a folder")
            if not self.create or os.path.abspath(parent) != os.path.abspath(self.folder):
                missing = _nearest_existing(parent)
                if missing is not None and not missing.is_dir():
                    raise _error(f"{final}: {missing} is not a folder")
                raise _error(f"{final}: folder {parent} does not exist")
            created = self._make_folders(final, parent)
        folder = _Folder(parent, created)
        self._folders[key] = folder
        self._sweep(folder.path)
        return folder

    def _make_folders(self, final: Path, parent: Path) -> list[Path]:
        missing = []
        probe = parent
        while not os.path.lexists(probe):
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        if os.path.lexists(probe) and not probe.is_dir():
            raise _error(f"{final}: {probe} is not a folder")
        created = []
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                for made in reversed(created):
                    with contextlib.suppress(OSError):
                        made.rmdir()
                raise _error(f"{final}: cannot create folder {path} ({exc.strerror})") from None
            created.append(path)
        return created

    def _sweep(self, folder: Path) -> None:
        """Remove locks and staging folders left in ``folder`` by runs that are gone."""
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith((LOCK_PREFIX, STAGING_PREFIX)):
                path = Path(entry.path)
                if _stale(path):
                    _remove(path)

    def _lock(self, folder: _Folder, final: Path) -> None:
        digest = hashlib.sha1(os.fsencode(final.name)).hexdigest()[:20]
        lock = folder.path / f"{LOCK_PREFIX}{digest}"
        for attempt in (1, 2):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if attempt == 1 and _stale(lock):
                    _remove(lock)
                    continue
                owner = _owner(lock)
                who = f" (process {owner})" if owner else ""
                raise _error(
                    f"{final}: another regcli run is writing into {folder.path}{who}; wait for "
                    f"it to finish or choose another output (if no run is active, remove {lock})"
                ) from None
            except OSError as exc:
                raise _error(
                    f"{final}: cannot write into folder {folder.path} ({exc.strerror})"
                ) from None
            self._locks.append(lock)
            try:
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(f"{os.getpid()}\n")
            except OSError as exc:  # a full disk: the write names no file, so name the output
                code = exc.errno if exc.errno is not None else errno.EIO
                raise OSError(code, exc.strerror or os.strerror(code), str(final)) from None
            return

    def _staging(self, folder: _Folder) -> Path:
        if folder.staging is None:
            try:
                made = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=folder.path)
            except OSError as exc:
                raise _error(
                    f"{folder.path}: cannot write into this folder ({exc.strerror})"
                ) from None
            folder.staging = Path(made)
            _atomic.mark_private(made)  # its files are written in place: see regcli._atomic
        return folder.staging

    def _check_target(self, final: Path) -> None:
        """Under the lock: the output is not an input, not a folder, and is new or may be
        replaced."""
        refuse_input(final, self.inputs)
        if not os.path.lexists(final):
            return
        if final.is_dir() and not final.is_symlink():
            raise _error(f"{final}: is a directory, expected a file name")
        if not self.overwrite:
            what = "already exists" if final.exists() else "already exists (a dangling link)"
            raise _error(f"{final}: {what}; pass --overwrite to replace it")

    # ------------------------------------------------------------------ commit and clean-up

    def _rename_all(self) -> None:
        for final, staged in self._entries:
            if not os.path.lexists(staged):
                raise _error(f"{final}: was not written (internal error)")
        done: list[Path] = []
        previous: list[tuple[Path, Path]] = []

        def keep_previous(final: Path, staging: Path) -> None:
            keep = staging / ".previous"
            keep.mkdir(exist_ok=True)
            backup = keep / final.name
            os.rename(final, backup)
            previous.append((final, backup))

        try:
            for final, staged in self._entries:
                if os.path.lexists(final):
                    old = os.lstat(final)
                    if stat.S_ISREG(old.st_mode):
                        os.chmod(staged, stat.S_IMODE(old.st_mode))
                    keep_previous(final, staged.parent)
                os.rename(staged, final)
                done.append(final)
            for final in self._retired:
                if self._removable(final):
                    keep_previous(final, self._staging(self._folder(final)))
                    self.removed.append(final)
        except BaseException:
            self.removed.clear()
            for final in reversed(done):
                with contextlib.suppress(OSError):
                    os.unlink(final)
            for final, backup in reversed(previous):
                with contextlib.suppress(OSError):
                    os.rename(backup, final)
            raise

    def _removable(self, final: Path) -> bool:
        """An earlier run's output named by :meth:`retire`: a file or a link, not an input."""
        if not os.path.lexists(final) or (final.is_dir() and not final.is_symlink()):
            return False
        return input_at(final, self.inputs) is None

    def _cleanup(self, *, keep_created: bool) -> None:
        self._closed = True
        for folder in self._folders.values():
            if folder.staging is not None:
                shutil.rmtree(folder.staging, ignore_errors=True)
                _atomic.unmark_private(folder.staging)
        for lock in self._locks:
            with contextlib.suppress(OSError):
                os.unlink(lock)
        self._locks.clear()
        if not keep_created:
            for folder in self._folders.values():
                for path in reversed(folder.created):
                    with contextlib.suppress(OSError):
                        path.rmdir()  # only if still empty

    def _public(self, text: str) -> str:
        """``text`` with every staged path replaced by the output's own path."""
        for final, staged in self._entries:
            text = text.replace(str(staged), str(final))
        for folder in self._folders.values():
            if folder.staging is not None:
                text = text.replace(str(folder.staging), str(folder.path))
        return text

    def _translate(self, exc: BaseException):
        """An error naming a staged file, re-made to name the output instead (``None`` when
        there is nothing to change)."""
        return public_error(exc, self._public)


def public_error(exc: BaseException, public):
    """``exc`` re-made with every hidden path in its file name or message replaced by
    ``public(text)`` (the staged file -> the output's own path), else ``None`` when there is
    nothing to change: an ``OSError`` keeps its errno, a :class:`~regcli.errors.RegcliError`
    its class and parameter.  :class:`OutputSet` and each ``batch`` pair (whose folder is
    staged whole) report their errors through it."""
    from regcli.errors import InputError, RegcliError

    if isinstance(exc, OSError) and exc.filename is not None:
        filename = os.fsdecode(exc.filename)
        renamed = public(filename)
        if renamed == filename:
            return None
        code = exc.errno if exc.errno is not None else errno.EIO
        return OSError(code, exc.strerror or os.strerror(code), renamed)
    if isinstance(exc, RegcliError):
        text = str(exc)
        renamed = public(text)
        if renamed == text:
            return None
        if isinstance(exc, InputError):
            return InputError(renamed, param=exc.param)
        return RegcliError(renamed)
    return None


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError``: the file first, the disk-full case said plainly (the
    ``Error:`` line of every command, and a failed ``batch`` pair's ``error``)."""
    name = os.fsdecode(exc.filename) if getattr(exc, "filename", None) is not None else None
    reason = exc.strerror or str(exc)
    if exc.errno in DISK_FULL:
        where = f": {name}" if name else ""
        return f"{os.strerror(exc.errno)}{where} (the disk is full; nothing was written)"
    return f"{name}: {reason}" if name else reason


def refuse_input(final, inputs, *, advice: str = "choose another output name") -> None:
    """Raise an :class:`~regcli.errors.InputError` naming both files if writing ``final``
    would replace one of ``inputs`` (the same file by name, a hard link or a symbolic link):
    an input is never overwritten, not even with ``--overwrite``.

    Every command's outputs are checked with it: those of an :class:`OutputSet` when they
    are staged, and the files ``batch`` writes outside one (its tables and contact sheet).
    """
    source = input_at(final, inputs)
    if source is not None:
        raise _error(
            f"{final}: refusing to overwrite the input file {source} (inputs are never "
            f"overwritten); {advice}"
        )


def input_at(path, inputs):
    """The first of ``inputs`` that is the file at ``path`` (by name, a hard link or a
    symbolic link), else ``None``."""
    return next((src for src in inputs if src is not None and _is_same_file(path, src)), None)


def refuse_input_inside(folder, inputs, *, advice: str) -> None:
    """:func:`refuse_input` for a ``folder`` that is about to be replaced whole (a ``batch``
    pair's folder): raise if one of ``inputs`` lies inside it, which the replacement would
    delete.  Symbolic links are resolved on both sides; a missing input has nothing to lose.
    """
    root = os.path.realpath(folder)
    for source in inputs:
        if source is None or not os.path.lexists(source):
            continue
        if os.path.commonpath([root, os.path.realpath(source)]) == root:
            raise _error(
                f"{folder}: refusing to replace this folder, it holds the input file {source} "
                f"(inputs are never overwritten); {advice}"
            )


def _is_same_name(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b) or _is_same_file(a, b)


def _nearest_existing(path: Path) -> Path | None:
    probe = path
    while not os.path.lexists(probe):
        if probe.parent == probe:
            return None
        probe = probe.parent
    return probe
