"""A global starting point for registration, so that any rotation can be recovered.

Local optimisers (gradient descent, Gauss-Newton, Powell...) only find the minimum of the cost
basin they start in; for a rotation past roughly 30-60 degrees the identity is outside the
right basin and they stop in a wrong one.  :func:`initial_matrix` finds a start inside it with
one of the :data:`INIT_METHODS`:

``"search"`` (the default for every transform)
    At a coarse level (about 64 pixels a side): shifts from the masked, overlap-normalised
    cross-correlation of the whole images; rotations from the Fourier-magnitude signatures
    (or the whole circle every ``angle_step`` degrees); rotations and scales together from
    the log-polar Fourier-Mellin signature and a grid of scales.  Every candidate is scored
    with the registration's own metric over the overlap of the two images and the best one
    wins (:mod:`regcli.search`).
``"moments"``
    Centres of mass and principal axes of the foreground (second moments); the 180 degree
    (and 90 degree) ambiguity of the axes is resolved by the metric.
``"none"``
    The identity.

The result is a 3x3 matrix in the usual convention (fixed pixel -> moving pixel, full
resolution), ready to start :func:`regcli.register`.  :func:`search_level` tells
:func:`regcli.register` which of its pyramid levels the search can reuse, and
:attr:`InitMethod.coarsest_side` how coarse a pyramid is still worth registering after a start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from regcli import search
from regcli._validate import check_image
from regcli.errors import InputError
from regcli.metrics import Metric, get_metric
from regcli.search import SEARCH_SIZE
from regcli.transforms import (
    Transform,
    make_transform,
    rotation_matrix,
    similarity_matrix,
    translation_matrix,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

#: Longest side of the images the translation search correlates.
TRANSLATION_SEARCH_SIZE = 2 * SEARCH_SIZE
#: Fewest pixels in use (in both images' domains) the search's level must keep; a small or
#: sparse mask moves the search to a finer level (16 x 16 pixels: a shift surface's peak).
MIN_SEARCH_PIXELS = 256

__all__ = [
    "INIT_METHODS",
    "SEARCH_SIZE",
    "InitMethod",
    "Start",
    "default_method",
    "get_init_method",
    "initial_matrix",
    "search_level",
]


@dataclass(frozen=True)
class InitMethod:
    """A registered initialisation method.

    Attributes
    ----------
    name : str
        Registry key and CLI choice (``--init``).
    description : str
        One line for help texts.
    start : callable
        ``start(fixed, moving, transform, metric, metric_options, **search_options)
        -> Start``: the full-resolution start for checked ``(rows, cols)`` images and
        a :class:`~regcli.transforms.Transform`.  ``search_options`` are those of
        :func:`initial_matrix` (``size``, ``angle_step``, ``scales``, ``keep``, ``coarse``);
        a method ignores those it does not use.
    coarsest_side : int or None
        The start is within about a pixel of the optimum on images of this many pixels a
        side: a coarser pyramid level has nothing left to find (and MI gets noisier there),
        so :func:`regcli.register` stops its automatic pyramid here.  ``None``: no limit.
    """

    name: str
    description: str
    start: Callable[..., np.ndarray]
    coarsest_side: int | None = None


@dataclass(frozen=True, eq=False)
class Start:
    """What an initialisation method found.

    Attributes
    ----------
    matrix : (3, 3) ndarray
        The full-resolution start (fixed -> moving).
    search : SearchOutcome or None
        The global search's candidates and their costs (``"search"`` only): the quality
        assessment compares the final result with them.
    """

    matrix: np.ndarray
    search: search.SearchOutcome | None = None


def default_method(transform: str | Transform) -> str:
    """The default initialisation for ``transform`` (a name or a :class:`Transform`):
    ``"search"`` for every transform (``"none"``, the plain local optimisation from the
    identity, only when asked for)."""
    return "search"


def get_init_method(name: str) -> InitMethod:
    """The registered method ``name``, or an :class:`InputError` (``param="init"``) listing
    the choices."""
    try:
        return INIT_METHODS[name]
    except (KeyError, TypeError):
        raise InputError(
            f"init: unknown method {name!r}; choose one of {', '.join(INIT_METHODS)}",
            param="init",
        ) from None


def search_level(shape: Sequence[int], size: int = SEARCH_SIZE) -> int | None:
    """The pyramid level (of halvings of ``shape = (rows, cols)``) the search runs on.

    ``k >= 1`` when reducing the longest side to ``size`` pixels takes exactly ``k``
    halvings: level ``k`` of :func:`regcli.pyramid.gaussian_pyramid` can then be handed to
    :func:`initial_matrix` as ``coarse`` instead of reducing the images again.  ``None``
    otherwise.

    >>> search_level((256, 256)), search_level((256, 200)), search_level((300, 300))
    (2, 2, None)
    """
    return search.whole_halvings(max(shape) / float(size))


def initial_matrix(
    fixed: ArrayLike,
    moving: ArrayLike,
    transform: str | Transform = "rigid",
    metric: str | Metric = "ssd",
    method: str | None = None,
    *,
    center: str | Sequence[float] | None = None,
    metric_options: dict | None = None,
    size: int = SEARCH_SIZE,
    angle_step: float = 10.0,
    scales: Sequence[float] | None = None,
    keep: int = 3,
    coarse: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """A starting matrix (fixed -> moving, full resolution) for registering ``moving``.

    Parameters
    ----------
    fixed, moving : (rows, cols) arrays
    transform : str or Transform
        The transform family being registered; the result is a member of it (a pure rotation
        about the transform's centre for ``rotation``, a shift for ``translation``, a rotation
        plus shift (and scale for ``similarity``) otherwise).
    metric : str or Metric
        Cost that ranks the candidates: the registration's own metric (or its
        :attr:`~regcli.metrics.Metric.search_metric`: NMI for ``pluim``, whose gradient term
        is unreliable at the coarse level).
    method : {"search", "moments", "none"}, optional
        Default: :func:`default_method` of ``transform``.
    center : optional
        Centre for a transform given by name (see :func:`regcli.transforms.make_transform`).
    metric_options : dict, optional
        Options for the metric (e.g. ``bins``); only those in ``Metric.options`` are passed,
        and ``moving_range`` is always replaced by the range of the moving image.
    size : int
        Longest side, in pixels, of the coarse images the search runs on.
    angle_step : float
        Degrees between the rotations tried over the whole circle when the Fourier
        signatures disagree (a second pass refines).
    scales : sequence of float, optional
        Scales tried for ``similarity`` and ``affine`` at their best Fourier-Mellin angle,
        besides the (angle, scale) peaks of the Fourier-Mellin signature (default
        :data:`regcli.search.SCALE_GRID`, 0.5 to 2); ignored for other transforms.
    keep : int
        How many of the best first-pass candidates are refined.
    coarse : (fixed, moving) pair of arrays, optional
        The two images already reduced to the search's size, when that is a whole number
        ``k`` of halvings: pixel centres at ``2**k * x + (2**k - 1) / 2``, as level ``k`` of
        :func:`regcli.pyramid.gaussian_pyramid` (``register`` passes its pyramid level
        :func:`search_level`, so the images are not reduced twice).  Ignored unless the shapes
        are those ``k`` halvings give.

    Returns
    -------
    (3, 3) ndarray

    Examples
    --------
    >>> from regcli.resample import rotate
    >>> y, x = np.mgrid[:96, :96]
    >>> img = np.exp(-((x - 40.0) ** 2 / 200 + (y - 50.0) ** 2 / 60))
    >>> turned = rotate(img, 135, center="center")  # 135 deg clockwise
    >>> m = initial_matrix(img, turned, "rigid", "ssd")
    >>> angle = np.degrees(np.arctan2(m[1, 0], m[0, 0]))  # close: the optimiser refines it
    >>> int(5 * round(angle / 5))
    135
    """
    chosen = get_init_method(default_method(transform) if method is None else method)
    fixed = check_image(fixed, name="fixed")
    moving = check_image(moving, name="moving")
    if not isinstance(transform, Transform):
        transform = make_transform(transform, center=center, shape=fixed.shape)
    start = chosen.start(
        fixed,
        moving,
        transform,
        metric,
        metric_options or {},
        size=size,
        angle_step=angle_step,
        scales=scales,
        keep=keep,
        coarse=coarse,
    )
    return start.matrix


# --------------------------------------------------------------------------- the methods


def _identity_start(fixed, moving, transform, metric, metric_options, **search_options):
    """``"none"``: the identity."""
    return Start(np.eye(3))


def _coarse_pair(
    fixed, moving, size: int, coarse, domains=None, pyramids=None, transform=None
) -> search.CoarsePair:
    """The search's coarse pair; ``pyramids`` (register's (fixed, moving) pyramids) give the
    level of ``size`` when there is one.  A transform with pixel spacing
    (:class:`regcli.spacing.PhysicalTransform`) gets a pair of square physical pixels."""
    if size < 8:
        raise InputError(f"size: expected at least 8 pixels, got {size}", param="size")
    spacings = getattr(transform, "spacings", None)
    while True:
        if spacings is not None:
            pair = search.physical_coarse_pair(fixed, moving, spacings, size, domains)
        else:
            given = coarse
            level = None if pyramids is None else search_level(fixed.shape, size)
            if level is not None and level < len(pyramids[0]):
                given = (pyramids[0][level], pyramids[1][level])
            pair = search.coarse_pair(fixed, moving, size, given, domains)
            coarse = None  # (a finer size is reduced from the images or the pyramids)
        # A small or sparse mask can leave (almost) nothing at the coarse size: search a
        # finer level, down to full resolution, until enough pixels in use remain.
        in_use = min(pair.fixed_domain.count(), pair.moving_domain.count())
        if in_use >= MIN_SEARCH_PIXELS or pair.factor <= 1.0:
            return pair
        size *= 2


def search_start(
    fixed: np.ndarray,
    moving: np.ndarray,
    transform: Transform,
    metric: Metric | str = "ssd",
    metric_options: dict | None = None,
    *,
    size: int = SEARCH_SIZE,
    angle_step: float = 10.0,
    scales: Sequence[float] | None = None,
    keep: int = 3,
    coarse: tuple[np.ndarray, np.ndarray] | None = None,
    domains=None,
    pyramids=None,
) -> Start:
    """``"search"``: the full-resolution start :func:`regcli.search.run_search` finds, with
    its candidates.

    The arguments are those of :func:`initial_matrix` (``fixed``, ``moving``: checked
    ``(rows, cols)`` arrays; ``transform``: a :class:`Transform`); ``domains`` the images'
    (fixed, moving) :class:`~regcli.domain.Domain` (default: their rectangles); ``pyramids``
    their (fixed, moving) Gaussian pyramids, whose level of the search's size is used.  A
    translation is searched on images twice as big (:data:`TRANSLATION_SEARCH_SIZE`): one
    correlation of the whole images, which sees a small overlap of fine texture.
    """
    metric = metric if isinstance(metric, Metric) else get_metric(metric)  # fails early
    if not 0.1 <= angle_step <= 90:
        raise InputError(
            f"angle_step: expected a number of degrees in [0.1, 90], got {angle_step}",
            param="angle_step",
        )
    if transform.name == "translation" and size == SEARCH_SIZE:
        size = TRANSLATION_SEARCH_SIZE
    pair = _coarse_pair(fixed, moving, size, coarse, domains, pyramids, transform)
    outcome = search.run_search(
        pair,
        transform,
        metric,
        search.ranking(metric, metric_options, pair),
        step=math.radians(angle_step),
        scales=None if scales is None else tuple(float(s) for s in scales),
        keep=keep,
    )
    return Start(pair.to_full(outcome.best, transform), outcome)


def moments_start(
    fixed: np.ndarray,
    moving: np.ndarray,
    transform: Transform,
    metric: Metric | str = "ssd",
    metric_options: dict | None = None,
    *,
    size: int = SEARCH_SIZE,
    coarse: tuple[np.ndarray, np.ndarray] | None = None,
    domains=None,
    pyramids=None,
    **search_options,
) -> Start:
    """``"moments"``: centres of mass and principal axes; the metric picks among the four
    axis flips.  The arguments are those of :func:`initial_matrix`."""
    search.ranking_metric(metric)
    pair = _coarse_pair(fixed, moving, size, coarse, domains, pyramids, transform)
    (cf, af, mass_f) = _moments(pair.fixed, pair.fixed_domain.mask)
    (cm, am, mass_m) = _moments(pair.moving, pair.moving_domain.mask)
    name = transform.name
    if name == "translation":
        return Start(pair.to_full(translation_matrix(*(cm - cf)), transform))
    scale = math.sqrt(mass_m / mass_f) if name in ("similarity", "affine") else 1.0
    angles = am - af + np.arange(4) * (math.pi / 2)
    if name == "rotation":
        center = pair.center_of(transform)
        candidates = np.array([rotation_matrix(a, center) for a in angles])
    else:
        candidates = np.array([similarity_matrix(a, scale, cf, cm) for a in angles])
    rank = search.ranking(metric, metric_options, pair)
    return Start(pair.to_full(search.best(candidates, rank), transform))


def _moments(image: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """Centre (x, y), principal-axis angle and area of the image's foreground (among the
    ``valid`` pixels, when given).

    The foreground is where the (smoothed) image exceeds 10 % of its range above the darkest
    decile, a definition that does not depend much on the modality's contrast.
    """
    low, high = np.percentile(image if valid is None else image[valid], [10, 99.5])
    if high <= low:
        raise InputError("init: the image is constant; moments are undefined", param="init")
    weight = (image > low + 0.1 * (high - low)).astype(np.float64)
    if valid is not None:
        weight *= valid
    mass = weight.sum()
    if mass < 3:
        raise InputError("init: the image has no foreground to take moments of", param="init")
    y, x = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float64)
    cx, cy = (weight * x).sum() / mass, (weight * y).sum() / mass
    mu20 = (weight * (x - cx) ** 2).sum() / mass
    mu02 = (weight * (y - cy) ** 2).sum() / mass
    mu11 = (weight * (x - cx) * (y - cy)).sum() / mass
    angle = 0.5 * math.atan2(2 * mu11, mu20 - mu02)
    return np.array([cx, cy]), angle, float(mass)


#: Initialisation methods by name (the CLI's ``--init`` choices), each with its start.
INIT_METHODS: dict[str, InitMethod] = {
    m.name: m
    for m in (
        InitMethod(
            name="search",
            description="coarse search over the whole circle of rotations and over translations",
            start=search_start,
            coarsest_side=SEARCH_SIZE,
        ),
        InitMethod(
            name="moments",
            description="centres of mass and principal axes of the foreground",
            start=moments_start,
        ),
        InitMethod(name="none", description="start from the identity", start=_identity_start),
    )
}
