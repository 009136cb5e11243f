"""The optimiser contract: what an optimiser is given, what it returns, how it is registered.

A leaf module: it imports nothing from :mod:`regcli.optimizers` (the implementations import it,
and the package imports them), so there is no import cycle.

* :class:`Objective` and :class:`GaussNewtonObjective`: what an optimiser may ask of the
  function it minimises;
* :class:`OptimizeOutcome`: what every optimiser returns;
* :class:`Optimizer`: a registry record, whose :meth:`Optimizer.run_options` is the one place
  where the options of a run are checked and completed with the optimiser's defaults.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from regcli._validate import fraction, integer, non_negative_number, positive_number
from regcli.errors import InputError

__all__ = [
    "DEFAULT_TOLERANCE",
    "REGISTRY",
    "GaussNewtonObjective",
    "Objective",
    "OptimizeOutcome",
    "Optimizer",
]

#: Default stopping tolerance: the step, in pixels of the current pyramid level.
DEFAULT_TOLERANCE = 1e-3

#: How each hyperparameter is checked (the same name means the same thing for every optimiser).
HYPERPARAMETER_CHECKS: dict[str, Callable[[Any, str], float]] = {
    "gamma": fraction,  # momentum / first-moment decay
    "beta": fraction,  # squared-gradient decay
    "step": positive_number,  # finite-difference step, pixels
}


# --------------------------------------------------------------------------- objectives

if sys.version_info >= (3, 12):
    _ObjectiveMeta = type(Protocol)
else:
    _MISSING = object()

    class _ObjectiveMeta(type(Protocol)):
        """``isinstance(obj, <protocol>)`` that looks members up without running ``obj``'s code.

        Before Python 3.12 a runtime-checkable protocol tests its members with ``hasattr``,
        which evaluates properties: for :class:`regcli.registration.LevelObjective` that
        measures the lazily computed ``curvature`` (as costly as a cost evaluation) only to
        learn that it exists.  Python 3.12 looks members up with ``inspect.getattr_static``;
        this does the same on older versions.
        """

        def __instancecheck__(cls, instance) -> bool:
            if not cls.__dict__.get("_is_protocol", False):  # a concrete subclass
                return super().__instancecheck__(instance)
            return all(
                inspect.getattr_static(instance, name, _MISSING) is not _MISSING
                for name in _protocol_members(cls)
            )

    @functools.cache
    def _protocol_members(cls) -> tuple[str, ...]:
        """The public members a protocol class and its protocol bases declare (read once:
        ``lm`` checks its objective at every pyramid level)."""
        names = set()
        for base in cls.__mro__:
            if base is not Protocol and base.__dict__.get("_is_protocol", False):
                members = (*vars(base), *vars(base).get("__annotations__", {}))
                names.update(name for name in members if not name.startswith("_"))
        return tuple(sorted(names))


@runtime_checkable
class Objective(Protocol, metaclass=_ObjectiveMeta):
    """A cost to minimise over a parameter vector ``x``, as every optimiser sees it.

    The registration engine hands optimisers objectives in *scaled* parameters: a unit change
    of any component of ``x`` moves the pixels by about one pixel (of the current pyramid
    level), so one learning rate and one tolerance fit translations, angles and scales alike.

    Attributes
    ----------
    curvature : float
        The cost's second derivative for a one-pixel shift.  The step rules divide the gradient
        by it, so the *normalised gradient* ``g / curvature`` is in pixels: near the optimum of
        a quadratic cost it is the distance to the optimum.  A value that is not finite and
        > 0 is read as 1.
    max_displacement : float
        How far (in units of ``x``, about pixels) the parameters may move from the start
        before the run counts as diverged (they left the image).

    has_gradient : bool
        Whether :meth:`cost_gradient` gives an analytic gradient.  Optimisers that need one
        are not given objectives without it; ``lbfgs`` uses finite differences of
        :meth:`cost` instead.
    """

    curvature: float
    max_displacement: float
    has_gradient: bool

    def cost(self, x: np.ndarray) -> float:
        """The cost at ``x`` (``inf`` where it is undefined, e.g. no overlap left).

        Parameters
        ----------
        x : (n,) ndarray
            Scaled parameters.

        Returns
        -------
        float
        """
        ...

    def cost_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The cost at ``x`` and its gradient with respect to ``x``.

        Parameters
        ----------
        x : (n,) ndarray
            Scaled parameters.

        Returns
        -------
        cost : float
            The same value as :meth:`cost`.
        gradient : (n,) ndarray
        """
        ...


@runtime_checkable
class GaussNewtonObjective(Objective, Protocol):
    """An :class:`Objective` that also offers a Gauss-Newton-type Hessian (used by ``lm``).

    ``lm`` runs Levenberg-Marquardt on objectives that satisfy this protocol (checked with
    ``isinstance``) and BFGS on the others.
    """

    def gauss_newton(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Cost, gradient and a Gauss-Newton-type Hessian at ``x``.

        Parameters
        ----------
        x : (n,) ndarray
            Scaled parameters.

        Returns
        -------
        cost : float
        gradient : (n,) ndarray
        hessian : (n, n) ndarray
            Symmetric positive semi-definite: exact Gauss-Newton for a least-squares cost, a
            scaled one for the other costs.
        """
        ...

    def grid_aligned(self, x: np.ndarray) -> bool:
        """True if at ``x`` every pixel centre maps onto a pixel centre (interpolation exact).

        There the cost of an interpolated image has a cusp that short steps cannot leave, and
        ``lm`` probes longer steps.

        Parameters
        ----------
        x : (n,) ndarray
            Scaled parameters.

        Returns
        -------
        bool
        """
        ...


def curvature_of(objective: Objective) -> float:
    """``objective.curvature`` when it is finite and > 0, else 1."""
    value = float(objective.curvature)
    return value if math.isfinite(value) and value > 0 else 1.0


# --------------------------------------------------------------------------- outcome


@dataclass
class OptimizeOutcome:
    """What an optimiser returns.

    Attributes
    ----------
    x : ndarray
        Best parameters found (scaled).
    costs : list of float
        The cost at the current parameters, one per iteration.
    iterations : int
        Iterations done (``len(costs)``).
    converged : bool
        True when a stopping tolerance was met; False at the iteration limit or on divergence.
    message : str
        Why it stopped, for people.
    diverged : bool
        True when it stopped because the run blew up (NaN, exploding cost, parameters off the
        image).
    """

    x: np.ndarray
    costs: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    message: str = ""
    diverged: bool = False


def report(callback, iteration: int, cost: float, x) -> None:
    """Call ``callback(iteration, cost, x)`` (with a copy of ``x``) unless it is None."""
    if callback is not None:
        callback(iteration, cost, np.array(x, dtype=float))


def distance(x, x0) -> float:
    """``|x - x0|``, or ``inf`` when it overflows.

    Parameters sent to 1e300 by an absurd learning rate are far off the image: every caller
    compares this with ``max_displacement`` and stops the run as diverged, so numpy's
    "overflow encountered" warning would only leak onto the user's terminal."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.linalg.norm(np.subtract(x, x0)))


def smaller_rate_advice(name: str, learning_rate: float) -> str:
    """What to try after ``learning_rate`` made ``name`` diverge: the optimiser's default when
    the rate was above it (a rate many times too large divided by 10 is still absurd), else
    a tenth of the rate."""
    record = REGISTRY.get(name)
    default = None if record is None else record.default_learning_rate
    if default is not None and learning_rate > default:
        return f"try a smaller learning rate (the default is {default:g})"
    return f"try a smaller learning rate (e.g. {learning_rate / 10:g})"


def diverged_outcome(name: str, learning_rate, reason: str, best_x, costs) -> OptimizeOutcome:
    """The outcome of a run that blew up: the best point seen and a message saying why."""
    if learning_rate is None:
        message = f"{name} diverged ({reason})"
    else:
        message = (
            f"{name} diverged ({reason}) with learning rate {learning_rate:g}; "
            f"{smaller_rate_advice(name, learning_rate)}"
        )
    return OptimizeOutcome(
        np.array(best_x, dtype=float), costs, len(costs), False, message, diverged=True
    )


# --------------------------------------------------------------------------- registry record

#: Every registered optimiser by name.  :mod:`regcli.optimizers` fills this dict and exports it
#: as ``OPTIMIZERS``; it is made here so that :meth:`Optimizer.run_options` can name the
#: optimisers that take an option without importing the package (which imports this module).
REGISTRY: dict[str, Optimizer] = {}


def _takers(option: str) -> list[str]:
    """The registered optimisers that take ``option``."""
    if option == "learning_rate":
        return [name for name, opt in REGISTRY.items() if opt.default_learning_rate is not None]
    return [name for name, opt in REGISTRY.items() if option in opt.hyperparameters]


def _not_taken(option: str, name: str, what: str) -> InputError:
    takers = _takers(option)
    choose = f" or choose one of {', '.join(takers)}" if takers else ""
    return InputError(f"{option}: optimizer {name!r} {what}; leave it out{choose}", param=option)


@dataclass(frozen=True, kw_only=True)
class Optimizer:
    """A registered optimiser.

    Attributes
    ----------
    name : str
        Registry key and CLI choice.
    label : str
        One line for help texts and plot legends.
    run : callable
        ``run(objective, x0, *, callback=None, learning_rate=None, iterations=None,
        tolerance=None, **hyper) -> OptimizeOutcome``: the options are checked and completed
        by :meth:`run_options` (``None`` means the default), then handed to the
        implementation given as ``run=`` when the record was made, which takes them all by
        keyword: ``run(objective, x0, *, callback=None, learning_rate, iterations,
        tolerance, **hyper)``.  ``callback(iteration, cost, x)`` is called once per recorded
        cost.
    needs_gradient : bool
        True if ``run`` calls ``objective.cost_gradient``.
    default_learning_rate : float or None
        ``None`` for optimisers without a learning rate.
    default_iterations : int
        Default iteration limit per pyramid level.
    default_tolerance : float
        Default stopping step, in pixels of the current pyramid level.
    hyperparameters : tuple of str
        Extra keyword options ``run`` takes (``"gamma"``, ``"beta"``, ``"step"``).
    defaults : dict
        Default value of each hyperparameter.
    """

    name: str
    label: str
    run: Callable[..., OptimizeOutcome]
    needs_gradient: bool
    default_learning_rate: float | None
    default_iterations: int
    default_tolerance: float = DEFAULT_TOLERANCE
    hyperparameters: tuple[str, ...] = ()
    defaults: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # ``run`` is given as the implementation, which takes checked options only; the record
        # exposes it behind the checks (a record copied by dataclasses.replace is not wrapped
        # twice).
        implementation = getattr(self.run, "implementation", self.run)

        def run(
            objective,
            x0,
            *,
            callback=None,
            learning_rate=None,
            iterations=None,
            tolerance=None,
            **hyper,
        ) -> OptimizeOutcome:
            options = self.run_options(
                learning_rate=learning_rate, iterations=iterations, tolerance=tolerance, **hyper
            )
            return implementation(objective, x0, callback=callback, **options)

        run.implementation = implementation
        run.__name__ = run.__qualname__ = f"run_{self.name.replace('-', '_')}"
        run.__doc__ = (
            f"Run {self.name!r} ({self.label}); options as in :meth:`Optimizer.run_options`."
        )
        object.__setattr__(self, "run", run)

    def run_options(
        self, *, learning_rate=None, iterations=None, tolerance=None, **hyper
    ) -> dict[str, Any]:
        """The checked keyword options of :attr:`run`, with this optimiser's defaults filled in.

        Parameters
        ----------
        learning_rate, iterations, tolerance : optional
            ``None`` means the optimiser's default.  ``learning_rate`` must be a finite number
            > 0 (and is refused by optimisers without one), ``iterations`` a whole number
            >= 1, ``tolerance`` a finite number >= 0 (pixels).
        **hyper
            The optimiser's :attr:`hyperparameters` (``None`` means the default): ``gamma``
            and ``beta`` in [0, 1), ``step`` > 0.

        Returns
        -------
        dict
            ``learning_rate`` (``None`` for optimisers without one), ``iterations`` and
            ``tolerance``, and every hyperparameter of the optimiser.

        Raises
        ------
        InputError
            For a bad value or an option the optimiser does not take, with ``param`` the
            option's name and a message that starts with it.
        """
        if learning_rate is not None and self.default_learning_rate is None:
            raise _not_taken("learning_rate", self.name, "has no learning rate")
        if learning_rate is None:
            learning_rate = self.default_learning_rate
        options: dict[str, Any] = {
            "learning_rate": (
                None if learning_rate is None else positive_number(learning_rate, "learning_rate")
            ),
            "iterations": integer(
                self.default_iterations if iterations is None else iterations, "iterations", 1
            ),
            "tolerance": non_negative_number(
                self.default_tolerance if tolerance is None else tolerance, "tolerance"
            ),
        }
        for key, value in hyper.items():
            if value is not None and key not in self.hyperparameters:
                raise _not_taken(key, self.name, f"does not take {key}")
        for key in self.hyperparameters:
            value = hyper.get(key)
            value = self.defaults[key] if value is None else value
            options[key] = HYPERPARAMETER_CHECKS[key](value, key)
        return options
