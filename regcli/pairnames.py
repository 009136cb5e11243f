"""Pair names for :func:`regcli.register_many` and ``regcli batch``: safe file names, unique
within a batch, that depend only on the inputs (a rerun gets the same names)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["MAX_NAME_LENGTH", "pair_names", "safe_name"]

#: Longest pair name (characters); longer names are cut.
MAX_NAME_LENGTH = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text, *, default: str = "pair") -> str:
    """``text`` as a safe file name: ASCII letters, digits and ``. _ + -`` only, no leading
    dot or dash (no hidden names, no ``..``), at most :data:`MAX_NAME_LENGTH` characters.

    >>> safe_name("../evil"), safe_name("/abs/path"), safe_name("scan 01.tif")
    ('evil', 'abs_path', 'scan_01.tif')
    """
    name = _UNSAFE.sub("_", str(text)).lstrip("._-").rstrip(". ")
    name = name[:MAX_NAME_LENGTH].rstrip(". ")
    return name or default


def _path_parts(value) -> list[str] | None:
    """The folder names and stem of a path-like ``value`` (innermost last), or None."""
    if not isinstance(value, (str, os.PathLike)):
        return None
    path = Path(value)
    return [*[p for p in path.parent.parts if p not in ("/", ".", "..")], path.stem]


def pair_names(movings: Sequence, names: Sequence | None = None, *, reserved=()) -> list[str]:
    """Unique, safe names for pairs: the given ``names`` made safe, else the moving image's
    file stem; equal stems get their folder names in front (``a_frame``, ``b_frame``), and
    names still equal (case-insensitively) or in ``reserved`` get ``-2``, ``-3``...

    The names depend only on the inputs, so a rerun of the same batch gets the same names.

    >>> pair_names(["a/frame.png", "b/frame.png", "c.png"])
    ['a_frame', 'b_frame', 'c']
    >>> pair_names(["x.png", "y.png"], names=["../evil", "/abs"])
    ['evil', 'abs']
    """
    names = list(names) if names is not None else [None] * len(movings)
    candidates: list[list[str]] = []
    for index, (moving, given) in enumerate(zip(movings, names, strict=True)):
        if given not in (None, ""):
            candidates.append([safe_name(given)])
            continue
        parts = _path_parts(moving)
        if parts is None:
            candidates.append([f"pair-{index:04d}"])
            continue
        # Stem, then parent_stem, grandparent_parent_stem ... (each made safe).
        candidates.append(
            [safe_name("_".join(parts[len(parts) - k :])) for k in range(1, len(parts) + 1)]
        )
    chosen = [c[0] for c in candidates]
    depth = [0] * len(chosen)
    for _ in range(max((len(c) for c in candidates), default=0)):
        counts: dict[str, int] = {}
        for name in chosen:
            counts[name.casefold()] = counts.get(name.casefold(), 0) + 1
        clashing = [i for i, n in enumerate(chosen) if counts[n.casefold()] > 1]
        moved = False
        for i in clashing:
            if depth[i] + 1 < len(candidates[i]):
                depth[i] += 1
                chosen[i] = candidates[i][depth[i]]
                moved = True
        if not moved:
            break
    taken = {r.casefold() for r in reserved}
    out = []
    for name in chosen:
        unique, k = name, 1
        while unique.casefold() in taken:
            k += 1
            unique = f"{name}-{k}"
        taken.add(unique.casefold())
        out.append(unique)
    return out
