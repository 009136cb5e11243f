"""One converter from regcli's values to JSON (private).

Every JSON regcli writes (``--json`` reports, ``transform.json``, batch rows) goes through
:func:`jsonable` and :func:`dumps`: numpy scalars and arrays become numbers and lists, paths
become strings, NaN and infinities become ``null`` (JSON has no such numbers), and objects
with a ``to_dict()`` method are converted through it.  Keys are sorted.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

__all__ = ["dumps", "jsonable"]


def jsonable(obj: Any) -> Any:
    """A plain-Python copy of ``obj`` that :func:`json.dumps` accepts with ``allow_nan=False``.

    >>> import numpy as np
    >>> jsonable({"m": np.eye(2), "n": np.float32("nan"), 3: np.int64(4)})
    {'m': [[1.0, 0.0], [0.0, 1.0]], 'n': None, '3': 4}
    """
    if isinstance(obj, dict):
        return {str(key): jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(value) for value in obj]
    if isinstance(obj, (str, type(None))):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars
    if callable(tolist) and not isinstance(obj, (bool, int, float)):
        return jsonable(tolist())
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """``obj`` as JSON text: converted by :func:`jsonable`, keys sorted, strict numbers."""
    return json.dumps(jsonable(obj), sort_keys=True, allow_nan=False, indent=indent)
