"""The global search behind ``init="search"``: a start for every transform, on coarse images.

Local optimisers only find the minimum of the cost basin they start in: past a few pixels of
shift, roughly 30-60 degrees of rotation or a few per cent of scale the identity is outside the
right basin.  The search finds a start inside it on a coarse copy of both images
(:func:`coarse_pair`, about :data:`SEARCH_SIZE` pixels a side), for each transform family:

* ``translation``: the masked, overlap-normalised cross-correlation of the whole images
  (:mod:`regcli.xcorr`, on images twice the search's size) over every shift; the best few
  peaks by Fisher's z (which weighs a correlation by the size of its overlap) and by the
  correlation itself are candidates;
* ``rotation`` (about its own centre) and ``rigid``: the rotation from the Fourier-magnitude
  signatures (:func:`regcli.spectra.fourier_angles`) and its half-turn twin, or the whole
  circle every ``angle_step`` degrees when the signatures disagree; each angle gets the
  peak of a partially whitened correlation of the domain-weighted, zero-mean images;
* ``similarity`` and ``affine``: (angle, scale) pairs from the log-polar Fourier-Mellin
  signature (:func:`regcli.spectra.fourier_mellin`) over scales 0.5-2 and a grid of scales,
  each with its half-turn twin and its best shift.

Each pose's shifts come from :mod:`regcli.shifts`.  When a small or sparse mask leaves too
few pixels in use at the coarse size, the search runs on a finer level
(:data:`regcli.initialize.MIN_SEARCH_PIXELS`).

The identity is always a candidate, and so is a pure translation (the unturned images' best
shift): the angle signatures can agree on a wrong angle (content moved far, an empty band).

Every candidate is scored by the registration's metric over the **overlap** of the two
images' domains (:mod:`regcli.domain`): pixels outside either image never count as content.
The best candidate wins; all of them, with their costs, are kept in :class:`SearchOutcome`
(the quality assessment asks whether the final result beats them).  Matrices here map coarse
fixed pixels to coarse moving pixels; :meth:`CoarsePair.to_full` turns one into a
full-resolution matrix.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from regcli import spectra
from regcli.coarse import (
    SEARCH_SIZE,
    CoarsePair,
    coarse_pair,
    physical_coarse_pair,
    whole_halvings,
)
from regcli.domain import overlap
from regcli.errors import InputError
from regcli.metrics import Metric, get_metric
from regcli.resample import warp_linear
from regcli.shifts import shift_candidates, shift_features
from regcli.spectra import fourier_angles
from regcli.transforms import (
    Transform,
    rotation_matrix,
)
from regcli.xcorr import fisher_z

__all__ = [
    "FOURIER_CONFIDENCE",
    "SEARCH_SIZE",
    "CoarsePair",
    "SearchOutcome",
    "best",
    "coarse_pair",
    "fourier_angles",
    "physical_coarse_pair",
    "ranking",
    "ranking_metric",
    "run_search",
    "select",
    "shift_candidates",
    "shift_features",
    "whole_halvings",
]

#: Signature agreement (normalised correlation, 1 = identical up to the rotation) from which
#: the Fourier estimate is trusted.  Measured on the sample and benchmark pairs: 0.53-0.98
#: when the estimate is right (multimodal pairs included), below 0.3 when it is wrong (content
#: shifted far relative to the window, rescaled content); below it the full circle is tried.
FOURIER_CONFIDENCE = 0.45
#: The Fourier signatures are used when the two coarse images' sides (sorted: a quarter turn
#: of a non-square image has the same view) differ at most this much; otherwise the search
#: tries the whole circle.
MAX_VIEW_RATIO = 1.25
#: Signature peaks above :data:`FOURIER_CONFIDENCE` verified by the metric (each with its
#: half-turn twin): a symmetric object (two strong peaks) gets both.
FOURIER_PEAKS = 2
#: Scales (of the fixed -> moving matrix) the similarity search covers.
SCALE_RANGE = (0.5, 2.0)
#: Fourier-Mellin peaks verified, and the scales of the grid verified at their best angle.
MELLIN_PEAKS = 4
SCALE_GRID = (0.5, 0.63, 0.79, 1.0, 1.26, 1.59, 2.0)
#: Shift peaks per correlation surface kept as candidates for a translation (periodic
#: content has several); one for the other families (the angle is what varies there).
TRANSLATION_PEAKS = 3

#: Candidates whose Fisher's z is at least this fraction of the best one's are compared by
#: the metric; the others are left out (a small overlap of blank background, say).
KEEP_Z = 0.5
#: ... and whose overlap is at least this fraction of the best-z one's: over a quarter of the
#: image, a chance match scored better than the truth over 70 %.
KEEP_OVERLAP = 0.5

#: ``rank(matrices (n, 3, 3)) -> (costs (n,), z (n,), covered (n,))``: the metric's cost
#: (lower is better, ``inf`` for unusable candidates), Fisher's z of the correlation over the
#: overlap (``-inf`` for unusable ones) and the overlap as a fraction of the fixed image.
Rank = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------- scoring


def ranking(metric: Metric | str, options: dict | None, pair: CoarsePair) -> Rank:
    """The function that scores candidate matrices on ``pair``: ``rank(matrices) -> (costs,
    z, covered)``, the registration's metric and Fisher's z of the correlation, both over
    each candidate's overlap, and that overlap's share of the fixed image.

    The metric's :attr:`~regcli.metrics.Metric.search_metric` ranks in its place if it names
    one.  The cost options are ``options`` prepared for the coarse moving image's own
    intensity range, so that the histogram bins stay put from candidate to candidate.  ``z``
    is the larger of the intensities' and (for metrics that compare across modalities) the
    edges' :func:`~regcli.xcorr.fisher_z`.
    """
    metric = metric if isinstance(metric, Metric) else get_metric(metric)
    scorer = ranking_metric(metric)
    low, high = float(pair.moving.min()), float(pair.moving.max())
    prepared = scorer.prepare_options(options, moving_range=(low, high))
    return functools.partial(_candidate_costs, pair, scorer, prepared, shift_features(metric))


def ranking_metric(metric: Metric | str) -> Metric:
    """The metric that ranks the candidates of ``metric`` (a name or a :class:`Metric`)."""
    metric = metric if isinstance(metric, Metric) else get_metric(metric)
    return get_metric(metric.search_metric) if metric.search_metric else metric


def _candidate_costs(
    pair: CoarsePair, metric: Metric, options: dict, features, matrices
) -> tuple[np.ndarray, np.ndarray]:
    matrices = np.asarray(matrices, dtype=float).reshape(-1, 3, 3)
    costs = np.full(len(matrices), np.inf)
    z = np.full(len(matrices), -np.inf)
    covered = np.zeros(len(matrices))
    for k, m in enumerate(matrices):
        if not _plausible(m):
            continue
        mask = overlap(pair.fixed_domain, pair.moving_domain, m)
        n = int(np.count_nonzero(mask))
        covered[k] = n / mask.size
        if n < pair.min_pixels:
            continue
        for feature in features:
            fixed, moving = pair.feature(feature)
            warped = warp_linear(moving, m, pair.fixed.shape)
            z[k] = max(z[k], float(fisher_z(_masked_r(fixed, warped, mask), n)))
            if feature == "intensity":
                try:
                    value = metric.cost(pair.fixed, warped, mask, **options)
                except InputError:  # e.g. no contrast left under this candidate
                    value = np.inf
                costs[k] = value if np.isfinite(value) else np.inf
    return costs, z, covered


def _masked_r(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of ``a`` and ``b`` over ``mask`` (0 without contrast)."""
    x, y = a[mask], b[mask]
    x = x - x.mean()
    y = y - y.mean()
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / denominator if denominator > 1e-12 else 0.0


def _plausible(m: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(m))) and np.linalg.det(m[:2, :2]) > 1e-6


def select(costs: np.ndarray, z: np.ndarray, covered: np.ndarray | None = None) -> int:
    """The winning candidate: the lowest metric cost among those whose Fisher's z is at
    least :data:`KEEP_Z` of the best (a correlation weighed by its overlap) and, given their
    ``covered`` overlaps, whose overlap is at least :data:`KEEP_OVERLAP` of the best-z
    candidate's, so that a small overlap never beats the alignment of the content."""
    costs, z = np.asarray(costs, dtype=float), np.asarray(z, dtype=float)
    top = float(np.max(z)) if z.size else -np.inf
    keep = z >= KEEP_Z * top if top > 0 else np.isfinite(z)
    if covered is not None and top > 0:
        covered = np.asarray(covered, dtype=float)
        keep &= covered >= KEEP_OVERLAP * covered[int(np.argmax(z))]
    if not keep.any():
        return int(np.argmin(costs))
    return int(np.argmin(np.where(keep, costs, np.inf)))


def best(candidates: np.ndarray, rank: Rank) -> np.ndarray:
    """The candidate (3, 3) of ``candidates`` (n, 3, 3) that :func:`select` picks."""
    return candidates[select(*rank(candidates))]


@dataclass(frozen=True, eq=False)
class SearchOutcome:
    """What the search found: the winner, and every candidate it scored.

    Attributes
    ----------
    pair : CoarsePair
    best : (3, 3) ndarray
        The winning coarse matrix.
    candidates : (n, 3, 3) ndarray
        Every coarse matrix scored (the winner among them).
    costs, z, covered : (n,) ndarrays
        Their metric costs (``inf``: unusable), Fisher's z (``-inf``: unusable) and overlaps
        (fractions of the fixed image).
    rank : callable
        The scoring function, to score another matrix the same way.
    """

    pair: CoarsePair
    best: np.ndarray
    candidates: np.ndarray
    costs: np.ndarray
    z: np.ndarray
    covered: np.ndarray
    rank: Rank


class _Pool:
    """The candidates scored so far."""

    def __init__(self, rank: Rank):
        self.rank = rank
        self.matrices: list[np.ndarray] = []
        self.costs: list[np.ndarray] = []
        self.z: list[np.ndarray] = []
        self.covered: list[np.ndarray] = []

    def add(self, matrices: np.ndarray) -> np.ndarray | None:
        """Score ``matrices`` (n, 3, 3); return the best of them (None if there are none)."""
        matrices = np.asarray(matrices, dtype=float).reshape(-1, 3, 3)
        if not len(matrices):
            return None
        costs, z, covered = self.rank(matrices)
        self.matrices.append(matrices)
        self.costs.append(costs)
        self.z.append(z)
        self.covered.append(covered)
        return matrices[select(costs, z, covered)]

    def ordered(self) -> np.ndarray:
        """Indices into :meth:`all` from the best (by :func:`select`, repeatedly) on."""
        _, costs, z, covered = self.all()
        order = []
        costs = costs.copy()
        while len(order) < len(costs) and np.isfinite(costs).any():
            k = select(costs, np.where(np.isfinite(costs), z, -np.inf), covered)
            order.append(k)
            costs[k] = np.inf
        return np.array(order, dtype=int)

    def all(self):
        return tuple(
            np.concatenate(part) for part in (self.matrices, self.costs, self.z, self.covered)
        )

    def best(self) -> np.ndarray:
        matrices, costs, z, covered = self.all()
        return matrices[select(costs, z, covered)]

    def outcome(self, pair: CoarsePair) -> SearchOutcome:
        matrices, costs, z, covered = self.all()
        best = matrices[select(costs, z, covered)]
        return SearchOutcome(pair, best, matrices, costs, z, covered, self.rank)


def _linear(angle: float, scale: float = 1.0) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return scale * np.array([[c, -s], [s, c]])


def _centred(pair: CoarsePair, angles, scales) -> np.ndarray:
    """Matrices of each (angle, scale) with the image centres aligned."""
    out = []
    for a, s in zip(angles, scales, strict=True):
        m = np.eye(3)
        m[:2, :2] = _linear(a, s)
        m[:2, 2] = pair.moving_center - m[:2, :2] @ pair.fixed_center
        out.append(m)
    return np.array(out)


def _poses(pair: CoarsePair, angles, scales, features) -> np.ndarray:
    """Candidates for each (angle, scale): centres aligned, and the best shift per feature."""
    linears = np.array([_linear(a, s) for a, s in zip(angles, scales, strict=True)])
    return np.concatenate(
        [_centred(pair, angles, scales), shift_candidates(pair, linears, features)]
    )


# --------------------------------------------------------------------------- the passes


def run_search(
    pair: CoarsePair,
    transform: Transform,
    metric: Metric,
    rank: Rank,
    *,
    step: float,
    scales: Sequence[float] | None = None,
    keep: int = 3,
) -> SearchOutcome:
    """The search for ``transform``'s family on ``pair``.

    Parameters
    ----------
    pair : CoarsePair
    transform : Transform
        Family searched: ``translation`` (shifts only), ``rotation`` (about its centre),
        ``rigid``, ``similarity`` and ``affine`` (searched as a similarity).
    metric : Metric
        The registration's metric (which features locate the shifts).
    rank : callable
        :func:`ranking` of the registration's metric.
    step : float
        Radians between the rotations of the whole-circle pass (used when the Fourier
        signatures disagree).
    scales : sequence of float, optional
        Scales tried at the best angle besides the Fourier-Mellin proposals (similarity and
        affine; default :data:`SCALE_GRID`).
    keep : int
        How many of the best whole-circle angles are refined.
    """
    pool = _Pool(rank)
    pool.add(np.eye(3)[None])  # the identity is always a candidate
    features = shift_features(metric)
    name = transform.name
    if name in ("rigid", "similarity", "affine"):
        # So is a pure translation: the angle signatures can agree on a wrong angle (an
        # image whose content moved far leaves an empty band that has edges of its own).
        pool.add(_poses(pair, [0.0], [1.0], features))
    if name == "translation":
        pool.add(shift_candidates(pair, np.eye(2)[None], features, TRANSLATION_PEAKS))
    elif name == "rotation":
        _rotation_pass(pair, transform, pool, step, keep)
    elif name == "rigid":
        _rigid_pass(pair, pool, step, keep, features)
    else:
        _similarity_pass(pair, pool, features, SCALE_GRID if scales is None else scales)
    return pool.outcome(pair)


def _trusted_angles(pair: CoarsePair) -> np.ndarray:
    """Fourier angles above the confidence, each with its half-turn twin (maybe none); none
    when the two images' fields of view differ in size (:data:`MAX_VIEW_RATIO`): their
    centred windows then show different content, and a chance agreement would mislead."""
    sides = np.sort(pair.fixed.shape), np.sort(pair.moving.shape)
    if np.max(np.maximum(sides[0], sides[1]) / np.minimum(sides[0], sides[1])) > MAX_VIEW_RATIO:
        return np.zeros(0)
    angles, agreements = fourier_angles(pair, FOURIER_PEAKS)
    angles = angles[agreements >= FOURIER_CONFIDENCE]
    return np.concatenate([angles, angles + math.pi])


def _rotation_pass(pair: CoarsePair, transform: Transform, pool: _Pool, step: float, keep) -> None:
    """Rotations about the transform's own centre: the Fourier angles, or the circle."""
    center = pair.center_of(transform)

    def poses(angles):
        return np.array([rotation_matrix(a, center) for a in angles])

    angles = _trusted_angles(pair)
    if angles.size:
        found = pool.add(poses(angles))
        finer = _angle_of(found) + np.radians([-2.0, -1.0, 1.0, 2.0])
        pool.add(poses(finer))
    else:
        _circle(pool, poses, step, keep)


def _rigid_pass(pair: CoarsePair, pool: _Pool, step: float, keep: int, features) -> None:
    """Rigid: the Fourier angles with their shifts; the whole circle when they disagree."""

    def poses(angles):
        return _poses(pair, angles, np.ones(len(angles)), features)

    angles = _trusted_angles(pair)
    if angles.size:
        pool.add(poses(angles))
    else:
        _circle(pool, poses, step, keep)


def _circle(pool: _Pool, poses, step: float, keep: int) -> None:
    """Pass 1: the whole circle every ``step``; pass 2: the best ``keep`` distinct angles in
    finer steps; pass 3: finer still around the best one.  ``poses(angles)`` makes the
    candidates of some angles."""
    circle = np.arange(0.0, 2 * math.pi - 1e-9, step)
    pool.add(poses(circle))
    matrices = pool.all()[0]
    chosen: list[float] = []
    for index in pool.ordered():
        angle = _angle_of(matrices[int(index)])
        if all(_angle_gap(angle, a) > step / 2 for a in chosen):
            chosen.append(angle)
        if len(chosen) == keep:
            break
    if not chosen:  # no angle left enough overlap to be scored: nothing to refine
        return
    fine = np.concatenate([a + np.linspace(-step, step, 7) for a in chosen])
    pool.add(poses(fine))
    angle = _angle_of(pool.best())
    pool.add(poses(angle + np.linspace(-step, step, 9)[[1, 2, 3, 5, 6, 7]] / 4))


def _similarity_pass(pair: CoarsePair, pool: _Pool, features, grid: Sequence[float]) -> None:
    """Similarity: Fourier-Mellin (angle, scale) proposals and a grid of scales at their
    best angle, each with its half-turn twin; then a finer look around the best."""
    surface, log_scales = spectra.mellin_surface(pair, SCALE_RANGE)
    angles, scales, _ = spectra.surface_peaks(surface, log_scales, MELLIN_PEAKS)
    grid = np.asarray(grid, dtype=float)
    rows = np.abs(log_scales[:, None] - np.log(grid)[None, :]).argmin(axis=0)
    grid_angles = surface[rows].argmax(axis=1) * (math.pi / spectra.FOURIER_ANGLES)
    angles = np.concatenate([angles, grid_angles])
    scales = np.concatenate([scales, grid])
    both = np.concatenate([angles, angles + math.pi])
    found = pool.add(_poses(pair, both, np.tile(scales, 2), features))
    angle, scale = _angle_of(found), math.sqrt(abs(np.linalg.det(found[:2, :2])))
    near_angles = angle + np.radians([-4.0, 4.0, 0.0, 0.0, -2.0, 2.0])
    near_scales = scale * np.array([1.0, 1.0, 0.94, 1.06, 0.97, 1.03])
    pool.add(_poses(pair, near_angles, near_scales, features))


def _angle_of(m: np.ndarray) -> float:
    return math.atan2(m[1, 0], m[0, 0])


def _angle_gap(a: float, b: float) -> float:
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)
