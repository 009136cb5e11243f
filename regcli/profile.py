"""The cost along one transform parameter: where the local optima are, and how smoothing helps.

:func:`cost_profile` holds every parameter of a transform at its value in a given alignment
(the identity, a transform read from a file, or one just found by :func:`regcli.register`)
and sweeps one of them (``angle``, ``tx``, ``ty`` or ``scale``) through a list of values,
recording the registration's own cost (:class:`regcli.objective.LevelObjective`: the
intensities scaled to [0, 1], linear interpolation, the overlap mask).  With ``smooth=sigma``
it also records the cost of the two images smoothed by a Gaussian of ``sigma`` pixels: the
ripples (local minima) that trap a local optimiser disappear, which is why registration works
coarse to fine (the scipy chapter's figure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from regcli._validate import check_image, check_same_shape, normalize_pair, smoothing_scale
from regcli.errors import InputError

__all__ = ["PROFILE_PARAMS", "CostProfile", "cost_profile", "default_values", "local_minima"]

#: Parameters a profile can sweep, with their display unit and default half-width and step
#: (display units) around the current value.
PROFILE_PARAMS: dict[str, tuple[str, float, float]] = {
    "angle": ("deg", 30.0, 0.5),
    "tx": ("px", 20.0, 0.25),
    "ty": ("px", 20.0, 0.25),
    "scale": ("", 0.2, 0.005),
}

#: Most values one profile evaluates (each is one warp and one cost).
MAX_VALUES = 5001


def _to_display(param: str, values):
    return np.degrees(values) if param == "angle" else np.asarray(values, dtype=float)


def _from_display(param: str, values):
    return np.radians(values) if param == "angle" else np.asarray(values, dtype=float)


@dataclass
class CostProfile:
    """A cost profile along one parameter.

    Attributes
    ----------
    param : str
        ``"angle"``, ``"tx"``, ``"ty"`` or ``"scale"``.
    values : (n,) ndarray
        Parameter values, in the core's units (radians for the angle).
    costs : (n,) ndarray
        The cost at each value (``inf`` where the images no longer overlap).
    smoothed_costs : (n,) ndarray or None
        The cost of the Gaussian-smoothed images, when ``sigma`` was given.
    sigma : float or None
        Smoothing (pixels).
    at : dict
        The other parameters (:meth:`Transform.describe` of the starting alignment).
    transform, metric, cost_label : str
    true_value : float or None
        The known true value of the parameter (core units), if given.
    """

    param: str
    values: np.ndarray
    costs: np.ndarray
    smoothed_costs: np.ndarray | None
    sigma: float | None
    at: dict
    transform: str
    metric: str
    cost_label: str
    true_value: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return PROFILE_PARAMS[self.param][0]

    def display_values(self) -> np.ndarray:
        """The values in display units (degrees for the angle)."""
        return _to_display(self.param, self.values)

    def minimum(self, smoothed: bool = False) -> float:
        """Value (core units) at the lowest cost of the raw or smoothed curve."""
        costs = self.smoothed_costs if smoothed else self.costs
        if costs is None or not np.any(np.isfinite(costs)):
            return math.nan
        return float(self.values[int(np.nanargmin(np.where(np.isfinite(costs), costs, np.nan)))])

    def to_dict(self) -> dict:
        """JSON-able summary, values in display units (degrees for the angle)."""

        def show(value):
            if value is None or not math.isfinite(value):
                return None
            return float(_to_display(self.param, value))

        def curve(costs):
            if costs is None:
                return None
            return [float(c) if math.isfinite(c) else None for c in costs]

        out = {
            "param": self.param,
            "unit": self.unit,
            "values": [float(v) for v in self.display_values()],
            "costs": curve(self.costs),
            "minimum": show(self.minimum()),
            "local_minima": [show(v) for v in local_minima(self.values, self.costs)],
            "smooth_sigma": self.sigma,
            "smoothed_costs": curve(self.smoothed_costs),
            "smoothed_minimum": show(self.minimum(True)) if self.sigma is not None else None,
            "smoothed_local_minima": (
                [show(v) for v in local_minima(self.values, self.smoothed_costs)]
                if self.smoothed_costs is not None
                else None
            ),
            "true_value": show(self.true_value),
            "at": self.at,
            "transform": self.transform,
            "metric": self.metric,
            "cost_label": self.cost_label,
        }
        out.update(self.extra)
        return out


def local_minima(values, costs) -> list[float]:
    """Values where the cost is lower than at both neighbours (plateaus count once)."""
    if costs is None:
        return []
    c = np.asarray(costs, dtype=float)
    v = np.asarray(values, dtype=float)
    c = np.where(np.isfinite(c), c, np.inf)
    found = []
    i, n = 1, len(c)
    while i < n - 1:
        j = i
        while j + 1 < n - 1 and c[j + 1] == c[i]:  # walk over a flat run
            j += 1
        if c[i] < c[i - 1] and c[j] < c[j + 1]:
            found.append(float(v[(i + j) // 2]))
        i = j + 1
    return found


def default_values(param: str, center_value: float) -> np.ndarray:
    """Default sweep (core units) centred on ``center_value`` (core units)."""
    _, half, step = PROFILE_PARAMS[param]
    middle = float(_to_display(param, center_value))
    count = round(2 * half / step)
    return _from_display(param, middle + step * (np.arange(count + 1) - count / 2))


def cost_profile(
    fixed: np.ndarray,
    moving: np.ndarray,
    *,
    param: str = "angle",
    values: Sequence[float] | None = None,
    transform: str = "rigid",
    metric: str = "ssd",
    at: np.ndarray | None = None,
    center: str | Sequence[float] | None = None,
    sigma: float | None = None,
    bins: int | None = None,
    true_value: float | None = None,
) -> CostProfile:
    """The registration cost as one parameter sweeps ``values``, the others held at ``at``.

    Parameters
    ----------
    fixed, moving : (rows, cols) arrays of the same shape
    param : {"angle", "tx", "ty", "scale"}
        Must be a parameter of ``transform`` (``scale``: ``similarity`` only).
    values : sequence of float, optional
        Values to evaluate, in core units (radians for the angle).  Default: around the value
        in ``at`` (angle +-30 deg by 0.5, shifts +-20 px by 0.25, scale +-0.2 by 0.005).
    transform : str
        Transform family whose parameter is swept (its centre: ``center``).
    metric : str
        Registered metric (:data:`regcli.metrics.METRICS`).
    at : (3, 3) array, optional
        Fixed -> moving matrix the other parameters are taken from (default: identity).
    center : optional
        Centre of the transform (see :func:`regcli.transforms.make_transform`).
    sigma : float, optional
        Also profile the images smoothed by a Gaussian of ``sigma`` pixels.
    bins : int, optional
        Histogram bins of MI-like metrics.
    true_value : float, optional
        Known true value (core units), kept for the plot and JSON.

    Returns
    -------
    CostProfile
    """
    from scipy import ndimage

    from regcli.metrics import get_metric
    from regcli.objective import LevelObjective
    from regcli.transforms import check_matrix, make_transform

    fixed_arr = check_image(fixed, name="fixed")
    moving_arr = check_image(moving, name="moving")
    check_same_shape(fixed_arr, moving_arr, names=("fixed", "moving"))
    metric_obj = get_metric(metric)
    shape = fixed_arr.shape
    family = make_transform(transform, center=center, shape=shape)
    if param not in PROFILE_PARAMS or param not in family.param_names:
        raise InputError(
            f"param: transform {transform!r} has parameters {', '.join(family.param_names)}; "
            f"got {param!r}",
            param="param",
        )
    start = np.eye(3) if at is None else check_matrix(at, name="at", param="at")
    base = family.params_from_matrix(start)
    index = family.param_names.index(param)
    if values is None:
        values = default_values(param, base[index])
    values = np.asarray(values, dtype=float).ravel()
    if values.size < 2 or not np.all(np.isfinite(values)):
        raise InputError(
            f"values: expected at least 2 finite values, got {values.size}", param="values"
        )
    if values.size > MAX_VALUES:
        raise InputError(f"values: at most {MAX_VALUES} values, got {values.size}", param="values")
    if sigma is not None:
        sigma = smoothing_scale(sigma, "sigma", positive=True)
    # The images are scaled to [0, 1], as register() scales them.
    options = metric_obj.prepare_options(metric_obj.check_options(bins=bins), moving_range=(0, 1))

    fixed_n, moving_n = normalize_pair(fixed_arr, moving_arr, joint=metric_obj.same_modality)
    params = np.repeat(base[None], values.size, axis=0)
    params[:, index] = values

    def sweep(f, m):
        objective = LevelObjective(f, m, family, metric_obj, options)
        return np.array([objective.cost(p * objective.scales) for p in params], dtype=float)

    costs = sweep(fixed_n, moving_n)
    smoothed = None
    if sigma is not None:
        smoothed = sweep(
            ndimage.gaussian_filter(fixed_n, sigma), ndimage.gaussian_filter(moving_n, sigma)
        )
    return CostProfile(
        param=param,
        values=values,
        costs=costs,
        smoothed_costs=smoothed,
        sigma=None if sigma is None else float(sigma),
        at=family.describe(base),
        transform=transform,
        metric=metric,
        cost_label=metric_obj.cost_label,
        true_value=None if true_value is None else float(true_value),
    )
