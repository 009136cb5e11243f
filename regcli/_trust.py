"""Whether a registration result can be trusted, read the same way by batch and stack (private).

A result is trustworthy when it converged and its quality verdict (``result.quality``, when
the result has one) is not ``"suspect"``.  The verdict is read defensively: results that
carry no ``quality`` (or carry it as a dict, a string or an object with ``verdict`` and
``reasons``) all work.
"""

from __future__ import annotations

__all__ = ["quality_dict", "trustworthy", "verdict"]


def quality_dict(result) -> dict | None:
    """``result``'s quality as a JSON-able dict (``{"verdict": ..., "reasons": [...], ...}``),
    or ``None`` when the result has none."""
    quality = getattr(result, "quality", None)
    if quality is None:
        return None
    if isinstance(quality, dict):
        return dict(quality)
    if isinstance(quality, str):
        return {"verdict": quality, "reasons": []}
    to_dict = getattr(quality, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {
        "verdict": getattr(quality, "verdict", None),
        "reasons": list(getattr(quality, "reasons", None) or []),
    }


def verdict(result) -> str | None:
    """``"ok"``, ``"suspect"`` (or another word the engine uses), or ``None`` if unknown."""
    quality = quality_dict(result)
    return None if quality is None else quality.get("verdict")


def trustworthy(result) -> bool:
    """True if ``result`` converged and its verdict is not ``"suspect"``."""
    return bool(getattr(result, "converged", False)) and verdict(result) != "suspect"
