"""Figures (matplotlib, Agg backend).  Imported only by the commands that draw.

Every function takes arrays/results and an output path, draws one figure, writes it
atomically (so a failed run leaves no half-written PNG) and returns the path.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from regcli.io import atomic_output

__all__ = ["save_figure"]


def save_figure(fig, path, *, dpi: int = 120):
    """Write ``fig`` to ``path`` atomically and close it."""
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=str(path).rsplit(".", 1)[-1])
    finally:
        plt.close(fig)
    return path
