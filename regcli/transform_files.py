"""Transform files other tools read: ITK's text transform format (``.tfm``, ``.txt``), and one
reader for every transform file regcli takes (:func:`read_transform`).

ITK (and SimpleITK, ANTs, 3D Slicer, elastix's ITK exports) stores an affine transform as::

    #Insight Transform File V1.0
    #Transform 0
    Transform: AffineTransform_double_2_2
    Parameters: a00 a01 a10 a11 tx ty
    FixedParameters: cx cy

and maps a point ``p`` of the fixed (output) image to the moving image as
``T(p) = A (p - c) + c + t``, in physical coordinates: ``p = origin + spacing * index`` (with
the ``x`` axis along columns).  regcli's matrix maps a fixed pixel ``(x = col, y = row)`` to
a moving pixel, so with unit spacing, origin (0, 0) and identity direction the two are the
same map: ``M = [[A, c + t - A c], [0, 0, 1]]``.  With pixel spacings ``S = diag(sx, sy)``
(the fixed image's ``S_f``, the moving image's ``S_m``), ``T = S_m M S_f^-1``: the file holds
physical units, regcli's JSON pixels.  Origins are taken as (0, 0) and directions as the
identity (regcli's images have neither).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from regcli.errors import InputError

__all__ = [
    "ITK_SUFFIXES",
    "TRANSFORM_SUFFIXES",
    "itk_parameters",
    "read_itk_transform",
    "read_transform",
    "write_itk_transform",
]

#: Endings of ITK transform files regcli reads and writes.
ITK_SUFFIXES = (".tfm", ".txt")
#: Endings of every transform file regcli reads.
TRANSFORM_SUFFIXES = (".json", *ITK_SUFFIXES)
#: A real ITK text transform is a few hundred bytes.
_MAX_ITK_BYTES = 1 << 20
_HEADER = "#Insight Transform File V1.0"
_KIND = re.compile(r"^(\w+?)_(double|float)_(\d+)(?:_(\d+))?$")


def _spacing_matrix(spacing) -> np.ndarray:
    sy, sx = (1.0, 1.0) if spacing is None else (float(spacing[0]), float(spacing[1]))
    return np.diag([sx, sy, 1.0])


def itk_parameters(
    matrix, *, center=(0.0, 0.0), fixed_spacing=None, moving_spacing=None
) -> tuple[list[float], list[float]]:
    """ITK's ``(Parameters, FixedParameters)`` of the fixed -> moving pixel ``matrix``:
    ``[a00, a01, a10, a11, tx, ty]`` and the centre ``[cx, cy]`` (``center`` in fixed pixels,
    made physical), for images of the given spacings (``(sy, sx)``, default 1)."""
    from regcli.transforms import check_matrix

    m = check_matrix(matrix, name="matrix")
    physical = _spacing_matrix(moving_spacing) @ m @ np.linalg.inv(_spacing_matrix(fixed_spacing))
    a, offset = physical[:2, :2], physical[:2, 2]
    c = (_spacing_matrix(fixed_spacing) @ [float(center[0]), float(center[1]), 1.0])[:2]
    t = offset - c + a @ c
    return [*a.ravel().tolist(), *t.tolist()], c.tolist()


def write_itk_transform(
    path, matrix, *, center=(0.0, 0.0), fixed_spacing=None, moving_spacing=None
) -> Path:
    """Write ``matrix`` (fixed pixel -> moving pixel) as an ITK ``AffineTransform_double_2_2``
    text file that ``SimpleITK.ReadTransform`` / ``itk.transformread`` read.

    ``center`` (fixed pixels) becomes the FixedParameters; ``fixed_spacing`` and
    ``moving_spacing`` (``(sy, sx)``, default 1 x 1) turn pixels into ITK's physical units.
    Written atomically.
    """
    from regcli.io import atomic_output

    params, fixed = itk_parameters(
        matrix, center=center, fixed_spacing=fixed_spacing, moving_spacing=moving_spacing
    )
    text = "\n".join(
        [
            _HEADER,
            "#Transform 0",
            "Transform: AffineTransform_double_2_2",
            "Parameters: " + " ".join(repr(float(v)) for v in params),
            "FixedParameters: " + " ".join(repr(float(v)) for v in fixed),
            "",
        ]
    )
    p = Path(path)
    with atomic_output(p) as tmp:
        tmp.write_text(text, encoding="ascii")
    return p


# --------------------------------------------------------------------------- reading


def _numbers(text: str, name: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise InputError(f"{name}: {what}: expected numbers, got {text.strip()[:80]!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"{name}: {what}: not finite numbers: {text.strip()[:80]!r}")
    return values


def _blocks(text: str, name: str) -> list[dict]:
    """``[{"Transform": ..., "Parameters": ..., "FixedParameters": ...}]`` in file order."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or not lines[0].startswith("#Insight Transform File"):
        raise InputError(
            f"{name}: not an ITK transform file (its first line is not "
            f"'{_HEADER}'); regcli reads ITK .tfm/.txt and its own transform JSON"
        )
    blocks: list[dict] = []
    for line in lines[1:]:
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise InputError(f"{name}: not an ITK transform file: the line {line[:80]!r}")
        key = key.strip()
        if key == "Transform":
            blocks.append({"Transform": value.strip()})
        elif key in ("Parameters", "FixedParameters") and blocks:
            blocks[-1][key] = _numbers(value, name, key)
    if not blocks:
        raise InputError(f"{name}: an ITK transform file without a transform")
    return blocks


def _affine_of(block: dict, name: str) -> np.ndarray:
    """The 3x3 physical matrix of one ITK 2-D transform."""
    kind = block["Transform"]
    match = _KIND.match(kind)
    if match is None or match.group(3) != "2" or match.group(4) not in (None, "2"):
        raise InputError(
            f"{name}: {kind}: regcli reads 2-D transforms (AffineTransform_double_2_2, "
            "Euler2D, Similarity2D, Translation)"
        )
    family = match.group(1)
    p = block.get("Parameters", [])
    fixed = block.get("FixedParameters", [])
    center = np.array(fixed[:2] if len(fixed) >= 2 else [0.0, 0.0])
    expected = {
        "AffineTransform": 6,
        "MatrixOffsetTransformBase": 6,
        "Euler2DTransform": 3,
        "Rigid2DTransform": 3,
        "Similarity2DTransform": 4,
        "TranslationTransform": 2,
        "IdentityTransform": 0,
    }
    if family not in expected:
        raise InputError(
            f"{name}: {kind}: not a transform regcli reads (AffineTransform, Euler2D, "
            "Similarity2D, Translation, Identity; a CompositeTransform of them)"
        )
    if len(p) != expected[family]:
        raise InputError(f"{name}: {kind}: expected {expected[family]} Parameters, got {len(p)}")
    if family in ("AffineTransform", "MatrixOffsetTransformBase"):
        a, t = np.array(p[:4]).reshape(2, 2), np.array(p[4:6])
    elif family in ("Euler2DTransform", "Rigid2DTransform", "Similarity2DTransform"):
        scale, angle = (p[0], p[1]) if family == "Similarity2DTransform" else (1.0, p[0])
        c, s = math.cos(angle), math.sin(angle)
        a, t = scale * np.array([[c, -s], [s, c]]), np.array(p[-2:])
    elif family == "TranslationTransform":
        a, t = np.eye(2), np.array(p)
    else:
        a, t = np.eye(2), np.zeros(2)
    out = np.eye(3)
    out[:2, :2] = a
    out[:2, 2] = center + t - a @ center
    return out


def read_itk_transform(path, *, fixed_spacing=None, moving_spacing=None) -> dict:
    """Read an ITK text transform file (``.tfm``/``.txt``) as ``{"matrix": 3x3}``, the fixed
    pixel -> moving pixel matrix for images of the given spacings (``(sy, sx)``, default 1).

    Reads ``AffineTransform`` (and ``MatrixOffsetTransformBase``), ``Euler2DTransform``,
    ``Similarity2DTransform``, ``TranslationTransform`` and ``IdentityTransform`` in double or
    float, alone or in a ``CompositeTransform`` (applied as ITK does: the last listed
    first).  Raises :class:`InputError` naming the file for anything else.
    """
    from regcli.transforms import check_matrix

    name = os.fsdecode(path)
    text = _read_text(Path(name), name)
    blocks = _blocks(text, name)
    if blocks[0]["Transform"].startswith("CompositeTransform"):
        blocks = blocks[1:]
        if not blocks:
            raise InputError(f"{name}: an empty CompositeTransform")
    physical = np.eye(3)
    for block in blocks:  # T = T0(T1(...(x))): the first listed is applied last
        physical = physical @ _affine_of(block, name)
    pixels = np.linalg.inv(_spacing_matrix(moving_spacing)) @ physical
    pixels = pixels @ _spacing_matrix(fixed_spacing)
    return {"matrix": check_matrix(pixels, name=f"{name}: matrix"), "format": "itk"}


def _read_text(p: Path, name: str) -> str:
    if not p.exists():
        raise InputError(f"{name}: no such file")
    if p.is_dir():
        raise InputError(f"{name}: is a directory, not a transform file")
    try:
        if p.stat().st_size > _MAX_ITK_BYTES:
            raise InputError(f"{name}: too large for an ITK transform file")
        return p.read_text(encoding="utf-8-sig")  # a BOM (Windows Notepad) is skipped
    except UnicodeDecodeError:
        raise InputError(f"{name}: not a text file; expected an ITK transform file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None


def read_transform(path, *, fixed_spacing=None, moving_spacing=None) -> dict:
    """Read any transform file regcli takes: its JSON (:func:`regcli.io.read_transform_json`,
    pixels already) or an ITK ``.tfm``/``.txt`` (:func:`read_itk_transform`, converted with
    the spacings).  Always has ``"matrix"``: fixed pixel -> moving pixel."""
    suffix = Path(os.fsdecode(path)).suffix.lower()
    if suffix in ITK_SUFFIXES:
        return read_itk_transform(path, fixed_spacing=fixed_spacing, moving_spacing=moving_spacing)
    from regcli.io import read_transform_json

    return read_transform_json(path)
