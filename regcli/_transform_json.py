"""Parsing a transform JSON file safely (private; :func:`regcli.io.read_transform_json` is the
public reader): no JSON bombs (huge integers, repeated keys, deep nesting), matrix entries
and shapes checked before numpy sees them."""

from __future__ import annotations

import json
import math

from regcli import _readers
from regcli.errors import InputError

__all__ = ["check_matrix_entries", "parse_json", "shape_pair"]

#: Integers in a transform JSON longer than this are refused (Python's own limit is 4300).
_MAX_JSON_DIGITS = 40


def shape_pair(value, *, name: str) -> tuple[int, int]:
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


def parse_json(text: str, name: str):
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


def check_matrix_entries(value, name: str) -> None:
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
