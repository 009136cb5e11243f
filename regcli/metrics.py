"""Similarity criteria with one contract, and the ``METRICS`` registry.

Each criterion is a plain function ``f(image1, image2, **options) -> float`` with its textbook
definition (SSD is a *sum*; correlation, MI... are similarities, higher is better).  The
registry wraps it in a :class:`Metric` that adds what registration needs:

* ``cost(fixed, warped, mask=None, **options) -> float``: the quantity to *minimise*,
  computed over the pixels where ``mask`` is true (the overlap) and normalised per pixel
  (SSD becomes the mean squared difference; similarities are negated);
* ``cost_gradient(fixed, warped, mask=None, **options) -> (cost, dcost_dwarped)``: the same cost
  and its derivative with respect to every pixel of ``warped`` (zero outside ``mask``), or
  ``None`` when the metric has no analytic derivative.  The registration engine turns the
  per-pixel derivative into a parameter gradient with the chain rule (image gradient times the
  transform's Jacobian), so any metric that provides it works with every gradient optimiser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from regcli.io import check_image, check_same_shape

__all__ = ["METRICS", "Metric", "get_metric", "ssd"]


def _pair(image1, image2) -> tuple[np.ndarray, np.ndarray]:
    a = check_image(image1, name="image1")
    b = check_image(image2, name="image2")
    check_same_shape(a, b)
    return a, b


def _masked(fixed, warped, mask):
    """Flattened float64 views of the pixels to use, and their count."""
    f = np.asarray(fixed, dtype=np.float64)
    w = np.asarray(warped, dtype=np.float64)
    if mask is None:
        return f.ravel(), w.ravel(), f.size
    m = np.asarray(mask, dtype=bool)
    return f[m], w[m], int(np.count_nonzero(m))


# --------------------------------------------------------------------------- SSD


def ssd(image1, image2) -> float:
    """Sum of squared differences, accumulated in float64 (no integer wrap-around).

    >>> ssd(np.zeros((2, 2)), np.ones((2, 2)))
    4.0
    """
    a, b = _pair(image1, image2)
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.dot(d.ravel(), d.ravel()))


def _ssd_cost_gradient(fixed, warped, mask=None):
    """Mean squared difference over the mask, and its derivative per warped pixel."""
    diff = np.asarray(warped, dtype=np.float64) - np.asarray(fixed, dtype=np.float64)
    if mask is not None:
        diff = diff * mask
        n = int(np.count_nonzero(mask))
    else:
        n = diff.size
    if n == 0:
        return np.inf, np.zeros_like(diff)
    cost = float(np.vdot(diff, diff)) / n
    return cost, diff * (2.0 / n)


def _ssd_cost(fixed, warped, mask=None):
    f, w, n = _masked(fixed, warped, mask)
    if n == 0:
        return np.inf
    d = w - f
    return float(np.dot(d, d)) / n


# --------------------------------------------------------------------------- the contract


@dataclass(frozen=True)
class Metric:
    """A similarity criterion and what registration needs of it.

    Attributes
    ----------
    name : str
        Registry key, CLI choice and JSON key.
    function : callable
        ``function(image1, image2, **options) -> float``, the textbook definition.
    higher_is_better : bool
        True for similarities (correlation, MI, ...), False for distances (SSD).
    label : str
        What the value is, for tables and plot axes.
    cost : callable
        ``cost(fixed, warped, mask=None, **options) -> float`` to minimise, per pixel.
    cost_gradient : callable or None
        ``cost_gradient(fixed, warped, mask=None, **options) -> (cost, d cost / d warped)``.
    options : tuple of str
        Keyword options the metric accepts (e.g. ``("bins",)``).
    """

    name: str
    function: Callable[..., float]
    higher_is_better: bool
    label: str
    cost: Callable[..., float]
    cost_gradient: Callable[..., tuple[float, np.ndarray]] | None = None
    options: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cost_label(self) -> str:
        """How the cost relates to the criterion, e.g. ``"-correlation"``."""
        return f"-{self.name}" if self.higher_is_better else f"{self.name} per pixel"

    def __call__(self, image1, image2, **options) -> float:
        return self.function(image1, image2, **options)


#: Metrics by name.  Feeds the CLI choices and the tests' parametrize.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            name="ssd",
            function=ssd,
            higher_is_better=False,
            label="sum of squared differences",
            cost=_ssd_cost,
            cost_gradient=_ssd_cost_gradient,
        ),
    )
}


def get_metric(name: str) -> Metric:
    """The registered metric ``name``, or an :class:`InputError` listing the choices."""
    from regcli.errors import InputError

    try:
        return METRICS[name]
    except KeyError:
        raise InputError(f"unknown metric {name!r}; choose one of {', '.join(METRICS)}") from None
