"""Output files that never appear half-written.

A file is written in one of two ways:

* under a temporary name beside its final one, renamed onto it when complete
  (:func:`atomic_output`, the default);
* in place, when its folder is a *private* staging folder (:func:`mark_private`,
  :func:`private_folder`): a folder no one else reads before its owner publishes it whole, by
  renaming it or the files in it (``regcli``'s output sets, ``batch``'s pair folders).  There
  the temporary file and the rename are pure cost (about 0.2 ms a file, three files a pair of
  a batch); a writer that fails still leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from regcli.errors import InputError

__all__ = ["atomic_output", "mark_private", "private_folder", "unmark_private"]

#: Absolute paths of the private staging folders of this process.
_PRIVATE: set[str] = set()


def mark_private(folder) -> None:
    """Declare ``folder`` a private staging folder: :func:`atomic_output` writes the files
    directly inside it until :func:`unmark_private`."""
    _PRIVATE.add(os.path.abspath(folder))


def unmark_private(folder) -> None:
    _PRIVATE.discard(os.path.abspath(folder))


@contextlib.contextmanager
def private_folder(folder) -> Iterator[Path]:
    """:func:`mark_private` for the ``with`` block."""
    mark_private(folder)
    try:
        yield Path(folder)
    finally:
        unmark_private(folder)


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


def _exists_error(path: Path) -> InputError:
    return InputError(f"{path}: already exists (overwrite=True replaces it)", param="overwrite")


@contextlib.contextmanager
def atomic_output(path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield the path to write ``path``'s content to; when the block ends normally the
    content is at ``path``, and after an error nothing new is.

    Outside a private staging folder that is a temporary file beside ``path``, renamed onto
    it on success.  On any error the temporary file is removed and ``path`` is left as it
    was; an ``OSError`` names ``path``, not the temporary file.  With ``overwrite=False`` the
    file is put in place only if the name is still free at that moment (a hard link, which
    fails if the name exists), so no check-then-write race can replace a file.  Inside a
    private staging folder it is ``path`` itself, removed again on error.
    """
    p = Path(path)
    if os.path.abspath(p.parent) in _PRIVATE:
        if not overwrite and os.path.lexists(p):
            raise _exists_error(p)
        with _removed_on_error(p, p):
            yield p
        return
    # A short temporary name: "<final name>.<random>" could pass the file-name length limit.
    try:
        fd, tmp = tempfile.mkstemp(prefix=".regcli-", suffix=p.suffix[:16], dir=p.parent or ".")
    except OSError as exc:
        raise _named_os_error(exc, p) from None
    os.close(fd)
    tmp_path = Path(tmp)
    with _removed_on_error(tmp_path, p):
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        if overwrite:
            os.replace(tmp_path, p)
        else:
            _link_new(tmp_path, p)


@contextlib.contextmanager
def _removed_on_error(written: Path, final: Path) -> Iterator[None]:
    """Remove ``written`` when the block fails; an ``OSError`` is re-raised naming ``final``
    (the file asked for, never a temporary one)."""
    try:
        yield
    except OSError as exc:
        named = _named_os_error(exc, final)  # before the removal, while a disk is still full
        written.unlink(missing_ok=True)
        raise named from exc
    except BaseException:
        written.unlink(missing_ok=True)
        raise


def _link_new(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # no hard links on this file system: check, then rename
        if os.path.lexists(path):
            raise _exists_error(path) from None
        os.replace(tmp, path)
        return
    tmp.unlink(missing_ok=True)
