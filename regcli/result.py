"""What :func:`regcli.register` returns: :class:`RegistrationResult`.

Every serialisation of a result (``--json`` reports, ``transform.json``, comparisons) starts
from :meth:`RegistrationResult.to_dict`, which goes through regcli's one JSON converter.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from regcli._json import jsonable
from regcli.quality import Quality

__all__ = ["RegistrationResult"]


@dataclass
class RegistrationResult:
    """Everything :func:`regcli.register` found.

    Attributes
    ----------
    matrix : (3, 3) ndarray
        Fixed -> moving matrix at full resolution: ``aligned = regcli.warp(moving, matrix)``.
    transform : str
        Transform name (``"rigid"``...).
    params : dict
        Named parameters (:meth:`Transform.describe`: ``angle_deg``, ``tx``..., ``center``).
    metric : str
        Metric name.
    cost_label : str
        What the cost is (``"ssd per pixel"``, ``"-correlation"``...).
    optimizer : str
        Optimiser name.
    learning_rate : float or None
        Learning rate used (``None`` for optimisers without one).
    cost_history : (n,) ndarray
        The cost at every iteration over all levels, coarse to fine.  Costs are computed on
        intensities scaled to [0, 1] and on the pyramid level's pixels, so they compare
        within a level only (:attr:`level_costs`; :attr:`initial_cost` is the finest
        level's first).
    level_starts : list of int
        Index in ``cost_history`` where each level begins.
    level_shapes : list of (rows, cols)
        Image shape of each level, coarse to fine.
    iterations : int
        Total iterations over all levels (``len(cost_history)``).
    converged : bool
        True if the finest level met its stopping tolerance near an optimum (the slope there
        is small and the cost did not rise: :mod:`regcli.convergence`) and no level
        diverged.
    message : str
        Why it stopped.
    quality : Quality
        How far the result can be trusted (:mod:`regcli.quality`): ``quality.verdict`` is
        ``"ok"`` or ``"suspect"``, ``quality.reasons`` says why.
    seconds : float
        Time spent registering (not reading or writing files, nor resampling ``warped``).
    warped : (rows, cols) ndarray
        The moving image resampled onto the fixed grid (cubic), in the moving image's units.
        :func:`regcli.register` hands over a function that makes it, called on first access
        (a cubic resampling costs as much as the whole registration of a 256^2 pair, and
        callers that only need the matrix never pay for it); an array is kept as given.
        Pixels that come from NaN pixels of the moving image are NaN.
    fixed_spacing, moving_spacing : (sy, sx) or None
        The pixel sizes the registration was physical in (None: pixels were the unit).  The
        matrix is in pixels either way; with spacing, ``params`` are physical (``tx``,
        ``ty`` and ``center`` in the spacing's unit).
    """

    matrix: np.ndarray
    transform: str
    params: dict
    metric: str
    cost_label: str
    optimizer: str
    learning_rate: float | None
    cost_history: np.ndarray
    level_starts: list[int]
    level_shapes: list[tuple[int, int]]
    iterations: int
    converged: bool
    message: str
    quality: Quality
    seconds: float
    warped: np.ndarray = field(repr=False)
    fixed_spacing: tuple[float, float] | None = None
    moving_spacing: tuple[float, float] | None = None

    @property
    def trustworthy(self) -> bool:
        """True if the run converged and its quality verdict is ``"ok"``."""
        return not self.problems()

    def problems(self) -> list[str]:
        """Why the result is not trustworthy, in sentences that say what to try (empty when
        it is): the quality's reasons, and non-convergence."""
        out = list(self.quality.reasons)
        if not self.converged and not any("did not converge" in r for r in out):
            out.insert(0, f"the optimisation did not converge: {self.message}")
        return out

    @property
    def initial_cost(self) -> float:
        """The cost at the start of the finest level (comparable with :attr:`final_cost`:
        the same pixels, the same resolution), NaN if none was recorded."""
        levels = self.level_costs
        return levels[-1][0] if levels else math.nan

    @property
    def final_cost(self) -> float:
        """Last recorded cost (finest level), NaN if none was recorded."""
        return float(self.cost_history[-1]) if len(self.cost_history) else math.nan

    @property
    def level_costs(self) -> list[tuple[float, float]]:
        """``(first, last)`` cost of each level, coarse to fine (levels with no cost left
        out): costs compare within a level only, as each level has its own pixels."""
        history = np.asarray(self.cost_history, dtype=float)
        bounds = [min(start, len(history)) for start in (*self.level_starts, len(history))]
        return [
            (float(history[a]), float(history[b - 1]))
            for a, b in itertools.pairwise(bounds)
            if b > a
        ]

    def _get_warped(self) -> np.ndarray:
        value = self.__dict__.get("_warped")
        if callable(value):
            value = self.__dict__["_warped"] = value()
        return value

    def _set_warped(self, value) -> None:
        self.__dict__["_warped"] = value

    def to_dict(self) -> dict:
        """JSON-able dict of every field except ``warped``, plus ``initial_cost``,
        ``final_cost`` and ``level_costs`` (NaN and infinities become ``None``).

        Keys: ``matrix``, ``transform``, ``params``, ``metric``, ``cost_label``,
        ``optimizer``, ``learning_rate``, ``cost_history``, ``level_starts``,
        ``level_shapes``, ``iterations``, ``converged``, ``message``, ``quality`` (a dict:
        ``verdict``, ``reasons`` and the measures), ``seconds``, ``initial_cost``,
        ``final_cost``, ``level_costs``, ``fixed_spacing`` and ``moving_spacing`` (null
        without spacing), ``units`` (what the matrix and the parameters are measured in).
        """
        fields = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("warped", "quality")
        }
        fields["quality"] = self.quality.to_dict()
        fields["initial_cost"] = self.initial_cost
        fields["final_cost"] = self.final_cost
        fields["level_costs"] = [list(pair) for pair in self.level_costs]
        physical = self.fixed_spacing is not None or self.moving_spacing is not None
        fields["units"] = {
            "matrix": "pixels (fixed pixel x, y -> moving pixel x, y)",
            "params": "physical (the unit of the pixel spacing; angles in degrees)"
            if physical
            else "pixels (angles in degrees)",
        }
        return jsonable(fields)

    def to_skimage(self):
        """The transform as a ``skimage.transform.AffineTransform``:
        ``skimage.transform.warp(moving, result.to_skimage())`` resamples ``moving`` onto the
        fixed grid like ``regcli.warp(moving, result.matrix)`` (same ``order`` and
        ``preserve_range=True``: equal to float precision)."""
        from skimage.transform import AffineTransform

        return AffineTransform(matrix=np.array(self.matrix, dtype=float))


# ``warped`` stays a dataclass field (constructor argument, dataclasses.fields) but is read
# through a property, so that it can be computed on first access.
RegistrationResult.warped = property(
    RegistrationResult._get_warped, RegistrationResult._set_warped, doc="Resampled moving image."
)
