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
from scipy import fft as _fft

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
from regcli.spectra import fourier_angles
from regcli.transforms import (
    Transform,
    rotation_matrix,
    translation_matrix,
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

    def add(self, matrices: np.ndarray) -> np.ndarray:
        """Score ``matrices`` (n, 3, 3); return the best of them."""
        matrices = np.asarray(matrices, dtype=float).reshape(-1, 3, 3)
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


# --------------------------------------------------------------------------- shifts


def shift_candidates(
    pair: CoarsePair,
    linears: np.ndarray,
    features: Sequence[str] = ("intensity",),
    peaks: int = 1,
) -> np.ndarray:
    """Candidate coarse matrices: each linear part with its best shifts.

    For each linear part ``A`` (fixed -> moving, (2, 2)) the moving image is resampled onto a
    canvas in fixed-image pixels (``u -> A (u - c) + moving centre``) large enough to hold
    all of it, with its domain.  A pure translation (``A`` the identity: the moving image is
    its own canvas) is located by the masked, overlap-normalised correlation of the whole
    images (:mod:`regcli.xcorr`): the ``peaks`` best shifts by Fisher's z and the
    ``peaks - 1`` best correlations.  A turned or scaled canvas gets the peak of a partially
    whitened correlation of the zero-mean images, each weighted by its domain (so the fill
    outside a domain weighs nothing): two transforms per canvas instead of nine.  Returns
    ``(len(linears) * len(features) * peaks, 3, 3)`` matrices (fewer where a surface has
    fewer peaks).
    """
    linears = np.asarray(linears, dtype=float).reshape(-1, 2, 2)
    if not np.allclose(linears, np.eye(2)):
        return _canvas_candidates(pair, linears, features)
    # Two rectangles: the overlap's box sums are exact (float64 integral images), the cross
    # term's float32 transform is plenty; with masks every sum is a transform: float64.
    full = pair.fixed_domain.full and pair.moving_domain.full
    dtype = np.float32 if full else np.float64
    out = []
    for feature in features:
        moving_feature = pair.feature(feature)[1]
        mask = None if pair.moving_domain.full else pair.moving_domain.valid()
        correlator = pair.correlator(feature, moving_feature.shape, dtype)
        surface = correlator(moving_feature, mask)
        usable = surface.n >= pair.min_pixels
        z = np.where(usable, fisher_z(surface.r, surface.n), -np.inf)
        r = np.where(usable, surface.r, -np.inf)
        found = _peak_shifts(surface, z, surface.r, peaks)
        if peaks > 1:  # also the best correlations, whatever their overlap's size
            found += _peak_shifts(surface, r, surface.r, peaks - 1)
        out.extend(translation_matrix(*shift) for shift in found)
    return np.array(out).reshape(-1, 3, 3)


def _canvas_candidates(pair: CoarsePair, linears: np.ndarray, features) -> np.ndarray:
    """One candidate per canvas and feature: the peak of the partially whitened correlation."""
    canvas_shape, maps = _canvases(pair, linears)
    shape = tuple(
        _fft.next_fast_len(a + b - 1, real=True)
        for a, b in zip(pair.fixed.shape, canvas_shape, strict=True)
    )
    twins = _half_turn_twins(linears)
    masks = _canvas_stack(
        twins, lambda m: pair.moving_domain.inside(m, canvas_shape).astype(float), maps
    )
    out = []
    for feature in features:
        fixed_feature, moving_feature = pair.feature(feature)
        weights = np.ones(pair.fixed.shape) if pair.fixed_domain.full else pair.fixed_domain.valid()
        fixed = np.conj(_fft.rfft2(spectra.zero_mean(fixed_feature, weights), shape))
        images = _canvas_stack(
            twins, lambda m, f=moving_feature: warp_linear(f, m, canvas_shape), maps
        )
        spectrum = fixed * _fft.rfft2(
            spectra.zero_mean(images, masks).astype(np.float32), shape, axes=(-2, -1)
        )
        # Partial whitening: sharper peaks than plain correlation, less noise-prone than
        # full phase correlation.
        spectrum /= np.sqrt(np.maximum(np.abs(spectrum), 1e-12))
        corr = _fft.irfft2(spectrum, shape, axes=(-2, -1))
        shift_y, shift_x = (
            np.where(np.arange(size) < n, np.arange(size), np.arange(size) - size)
            for n, size in zip(canvas_shape, shape, strict=True)
        )
        for k, m in enumerate(maps):
            i, j = np.unravel_index(int(np.argmax(corr[k])), shape)
            c = corr[k]
            dy = spectra.parabola_offset(
                c[(i - 1) % shape[0], j], c[i, j], c[(i + 1) % shape[0], j]
            )
            dx = spectra.parabola_offset(
                c[i, (j - 1) % shape[1]], c[i, j], c[i, (j + 1) % shape[1]]
            )
            out.append(m @ translation_matrix(shift_x[j] + dx, shift_y[i] + dy))
    return np.array(out).reshape(-1, 3, 3)


def _half_turn_twins(linears: np.ndarray) -> list[int | None]:
    """For each linear part, the index of an earlier one that is its half turn (``-A``), or
    None."""
    out: list[int | None] = []
    for k, a in enumerate(linears):
        out.append(
            next((j for j in range(k) if np.allclose(linears[j], -a, rtol=0.0, atol=1e-12)), None)
        )
    return out


def _canvas_stack(twins: list[int | None], make, maps) -> np.ndarray:
    """``make(m)`` for every canvas map; a half-turn twin's canvas is its twin's turned by
    half a turn (the canvases are centred on the moving image: an array flip, no warp)."""
    images: list[np.ndarray] = []
    for m, twin in zip(maps, twins, strict=True):
        images.append(make(m) if twin is None else images[twin][::-1, ::-1])
    return np.array(images)


def _canvases(pair: CoarsePair, linears: np.ndarray) -> tuple[tuple[int, int], list]:
    """The canvas shape (shared by all) and, for each linear part, the matrix canvas pixel ->
    moving pixel."""
    rows, cols = pair.moving.shape
    corners = np.array([[0, 0], [cols - 1, 0], [0, rows - 1], [cols - 1, rows - 1]], float)
    corners -= pair.moving_center
    half = np.zeros(2)
    for a in linears:
        extent = np.abs(np.linalg.solve(a, corners.T)).max(axis=1)
        half = np.maximum(half, extent)
    # At most the larger image's size: shifts up to a full image width are still covered (a
    # moving image larger than the fixed one is searched whole).
    largest = np.maximum(pair.fixed.shape, pair.moving.shape)
    limit = np.floor(np.array(largest[::-1], dtype=float) / 2.0)
    half = np.minimum(np.ceil(half), limit)
    shape = (int(2 * half[1]) + 1, int(2 * half[0]) + 1)
    maps = []
    for a in linears:
        m = np.eye(3)
        m[:2, :2] = a
        m[:2, 2] = pair.moving_center - a @ half
        maps.append(m)
    return shape, maps


def _peak_shifts(surfaces, z: np.ndarray, r: np.ndarray, count: int) -> list[np.ndarray]:
    """The ``count`` best shifts of one surface by the score ``z`` (2 px apart at least),
    each refined to sub-pixel by a parabola through the correlations ``r`` around it."""
    out: list[np.ndarray] = []
    if not np.isfinite(z).any():
        return out
    work = z.copy()
    rows, cols = work.shape
    for _ in range(count):
        flat = int(np.argmax(work))
        if not np.isfinite(work.flat[flat]):
            break
        i, j = divmod(flat, cols)
        c = r[i, j]
        dy = spectra.parabola_offset(r[(i - 1) % rows, j], c, r[(i + 1) % rows, j])
        dx = spectra.parabola_offset(r[i, (j - 1) % cols], c, r[i, (j + 1) % cols])
        out.append(surfaces.shift_of((i, j)) + np.array([float(dx), float(dy)]))
        ii = np.arange(i - 2, i + 3) % rows
        jj = np.arange(j - 2, j + 3) % cols
        work[np.ix_(ii, jj)] = -np.inf
    return out


def shift_features(metric: Metric) -> tuple[str, ...]:
    """Which features locate the shifts: intensities for a metric that compares intensities
    as they are (SSD, correlation), intensities and edges otherwise."""
    return ("intensity",) if metric.same_modality else ("intensity", "gradient")


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
