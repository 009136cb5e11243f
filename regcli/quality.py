"""How far a registration result can be trusted: :class:`Quality`, made by :func:`assess`.

Every result is assessed on a small pyramid level (about :data:`QUALITY_SIZE` ^ 2 pixels),
reusing what the global search computed, in a small fraction of the registration's time.
The measures:

``correlation``, ``nmi``
    Pearson correlation and normalised mutual information ``(H(A) + H(B)) / H(A, B)`` (1 to 2)
    of the fixed image and the aligned moving image over their overlap: similarities on the
    same scale whatever the metric that was optimised.
``overlap``
    The fraction of the fixed image's pixels that the aligned moving image covers (with
    masks: of the fixed mask's pixels that the moving mask's, carried through the transform,
    covers); the verdict also accepts the moving image's share (``moving_overlap`` in the
    details: a small moving image may lie wholly inside a large fixed one).  Every measure
    is taken on the pixels inside both images' domains (masks, non-NaN pixels) alone.
``significance``
    How far the solution stands above chance, in units of the spread of displaced
    alignments: the correlation at the solution against the correlation at every other shift
    of the aligned moving image (a masked, overlap-normalised correlation surface,
    :mod:`regcli.xcorr`), in Fisher-z units, ``(z0 - median) / spread``.  Edges (gradient
    magnitudes) count as well as intensities for metrics that compare across modalities.  Two
    unrelated images, or a sparse pattern lost in noise, stand no higher than their own
    displaced copies.
``distinctness``
    How far the solution stands above its best **rival** shift, in the same units: the best
    other peak of that surface.  Near zero: another shift is as good (a periodic pattern, a
    ramp that can slide along itself); below zero: clearly better.
``rival_gap``
    (:mod:`regcli.rivals`) The best candidate of the global search in another basin (or,
    when no search ran, the solution turned by quarter turns, each with its best shift),
    compared under the
    registration's own metric: ``(rival - solution) / (typical candidate - solution)``.
    Near zero: another pose is as good (a symmetric object); below zero: clearly better
    (the optimiser stopped in a wrong basin).  A candidate counts as a rival only if the
    cost rises between it and the solution (another basin) or stays flat far along the way
    (a ridge: an object that turns freely); a slightly worse neighbour is the same basin.
``richer_gap`` (in ``details``)
    (:func:`regcli.rivals.richer_gap`, ``rotation`` results only) The best pose of a rigid
    search elsewhere against the result, in units of that search's own contrast: clearly
    below zero, the images turned about another point than the rotation's.
``residual_px``
    How far an affine transform, refined from the solution by a few Levenberg-Marquardt
    steps on the same small level, moves the image (pixels at full resolution): large when
    the transform model cannot fit the images.

The verdict is ``"suspect"`` when any rule of :func:`_reasons` fires, each with a sentence
that says what is wrong and what to try; ``"ok"`` otherwise.  The thresholds were set on a
calibration corpus (random poses of pictures with noise, T1/T2 pairs, unrelated pairs, local
optimisations far from the answer: ``bench/trust.py``), measured again by every benchmark.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from regcli import pyramid
from regcli._json import jsonable
from regcli.costs import dot
from regcli.domain import Domain, overlap
from regcli.metrics import METRICS, Metric
from regcli.objective import LevelObjective
from regcli.optimizers import OPTIMIZERS
from regcli.resample import warp_linear
from regcli.rivals import MIN_GAP, richer_gap, search_rivals
from regcli.spectra import gradient_magnitude
from regcli.transforms import Transform, implausible, make_transform
from regcli.xcorr import MaskedCorrelator

__all__ = ["QUALITY_SIZE", "Evidence", "Quality", "assess", "evaluate"]

#: Longest side (pixels) of the pyramid level the measures are taken on.
QUALITY_SIZE = 64
#: Longest side of the level the model-fit residual is measured on, and the iterations the
#: affine refinement may take there.
RESIDUAL_SIZE = 64
RESIDUAL_ITERATIONS = 5
#: Bins of the NMI measure (per image, over [0, 1]).
NMI_BINS = 32
#: Shifts within this radius (quality-level pixels) belong to the solution's own peak.
PEAK_RADIUS = 3.0
#: Rival shifts need at least this fraction of the solution's overlap.
RIVAL_OVERLAP = 0.5
#: Floor of the spread of the displaced alignments (Fisher-z units).
MIN_SPREAD = 0.02
# Verdict thresholds (measured on the calibration corpus, see the README's "Quality").
MIN_SIGNIFICANCE = 4.0
MIN_DISTINCTNESS = 2.0
#: A solution no better than chance but correlating this well is a repeating pattern.
PERIODIC_CORRELATION = 0.95
#: Least overlap trusted (unrelated images matched by chance over 11 % of the image).
MIN_OVERLAP = 0.2
#: With masks, the fewest overlapping pixels (in use in both images) at the quality level: a
#: mask that leaves a sliver of the image cannot be judged.
MIN_MASKED_OVERLAP_PIXELS = 100
#: Residual limit, in pixels of the level it is measured on.
MAX_RESIDUAL = 0.4
MAX_ANISOTROPY = 4.0
MAX_SCALE = 4.0


@dataclass(frozen=True)
class Quality:
    """The quality assessment of one registration result.

    Attributes
    ----------
    verdict : {"ok", "suspect"}
    reasons : tuple of str
        Why the verdict is ``"suspect"``, each with what to try (empty when ``"ok"``).
    correlation, nmi, overlap, significance, distinctness, rival_gap, residual_px : float
        The measures (see :mod:`regcli.quality`; NaN when they could not be taken).
    seconds : float
        Time the assessment took.
    """

    verdict: str
    reasons: tuple[str, ...]
    correlation: float
    nmi: float
    overlap: float
    significance: float
    distinctness: float
    rival_gap: float
    residual_px: float
    seconds: float = 0.0
    details: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_dict(self) -> dict:
        """JSON-able dict: ``verdict``, ``reasons`` (a list) and the measures."""
        return jsonable(
            {
                "verdict": self.verdict,
                "reasons": list(self.reasons),
                "correlation": self.correlation,
                "nmi": self.nmi,
                "overlap": self.overlap,
                "significance": self.significance,
                "distinctness": self.distinctness,
                "rival_gap": self.rival_gap,
                "residual_px": self.residual_px,
                "seconds": self.seconds,
            }
        )


@dataclass(frozen=True, eq=False)
class Evidence:
    """What :func:`assess` looks at (``register()`` gathers it)."""

    fixed_levels: list
    moving_levels: list
    domains: tuple[Domain, Domain]
    #: The full-resolution result (fixed -> moving).
    matrix: np.ndarray
    family: Transform
    metric: Metric
    metric_options: dict
    #: The global search's outcome (regcli.search.SearchOutcome), or None if none ran.
    search: object | None
    converged: bool
    message: str


# --------------------------------------------------------------------------- measures


def masked_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of ``a`` and ``b`` over ``mask`` (0 without contrast)."""
    x = np.asarray(a, dtype=np.float64)[mask]
    y = np.asarray(b, dtype=np.float64)[mask]
    if x.size < 3:
        return 0.0
    x = x - x.mean()
    y = y - y.mean()
    denominator = math.sqrt(dot(x, x) * dot(y, y))
    return dot(x, y) / denominator if denominator > 1e-12 else 0.0


def masked_nmi(a: np.ndarray, b: np.ndarray, mask: np.ndarray, bins: int = NMI_BINS) -> float:
    """``(H(A) + H(B)) / H(A, B)`` of ``a`` and ``b`` (in [0, 1]) over ``mask``."""
    x = np.clip(np.asarray(a, dtype=np.float64)[mask], 0.0, 1.0)
    y = np.clip(np.asarray(b, dtype=np.float64)[mask], 0.0, 1.0)
    if x.size < 3:
        return math.nan
    i = np.minimum((x * bins).astype(np.intp), bins - 1)
    j = np.minimum((y * bins).astype(np.intp), bins - 1)
    joint = np.bincount(i * bins + j, minlength=bins * bins).astype(np.float64) / x.size

    def entropy(p):
        p = p[p > 0]
        return -float(np.sum(p * np.log(p)))

    h_joint = entropy(joint)
    table = joint.reshape(bins, bins)
    h_a, h_b = entropy(table.sum(axis=1)), entropy(table.sum(axis=0))
    return (h_a + h_b) / h_joint if h_joint > 0 else math.nan


def _level_of(shapes: list, size: int) -> int:
    """The finest level whose longest side is at most ``size`` (the coarsest if none is)."""
    for level, shape in enumerate(shapes):
        if max(shape) <= size:
            return level
    return len(shapes) - 1


def _level_of_area(shapes: list, size: int) -> int:
    """The finest level of at most ``size``^2 pixels: :func:`_level_of` for a square image;
    for a thin one a finer level than ``size`` long (a 100 x 300 image: 25 x 75, not 13 x 38)."""
    return next((k for k, s in enumerate(shapes) if s[0] * s[1] <= size * size), len(shapes) - 1)


def _surface_measures(fixed, fixed_mask, warped, warped_mask, n0: int) -> tuple:
    """``(significance, distinctness, rival significance)`` of one feature's shift surface at
    the solution: in units of the spread of the displaced alignments, how far the solution
    stands above their median and above the best other peak, and how far that peak stands
    above the median."""
    # Rivals need half the solution's overlap: shifts up to half the image (a pattern's next
    # period can lie beyond a quarter; the search's rivals cover basins further away).
    correlator = MaskedCorrelator(
        fixed, fixed_mask, warped.shape, dtype=np.float32, max_shift=max(fixed.shape) // 2
    )
    surface = correlator(warped, warped_mask, min_overlap=max(16, int(RIVAL_OVERLAP * n0)))
    r, n = surface.r, surface.n
    radius = np.hypot(surface.shift_x[None, :], surface.shift_y[:, None])
    valid = n >= max(16, RIVAL_OVERLAP * n0)
    near = valid & (radius <= 1.5)
    if not near.any():
        return math.nan, math.nan, math.nan
    z = np.arctanh(np.clip(r, -0.9999, 0.9999))
    z0 = float(z[near].max())
    null = valid & (radius >= PEAK_RADIUS)
    if np.count_nonzero(null) < 8:
        return math.nan, math.nan, z0
    values = z[null]
    median = float(np.median(values))
    spread = max(1.4826 * float(np.median(np.abs(values - median))), MIN_SPREAD)
    # Rival peaks: local maxima of the surface away from the solution's own peak.
    padded = np.pad(np.where(valid, z, -np.inf), 1, constant_values=-np.inf)
    rows, cols = z.shape
    neighbours = np.full(z.shape, -np.inf)
    for di, dj in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        np.maximum(
            neighbours, padded[1 + di : rows + 1 + di, 1 + dj : cols + 1 + dj], out=neighbours
        )
    peaks = null & (z >= neighbours)
    rival = float(z[peaks].max()) if peaks.any() else median
    return (z0 - median) / spread, (z0 - rival) / spread, (rival - median) / spread


def _shift_evidence(evidence: Evidence, level: int) -> dict:
    """Correlation, NMI, overlap, significance and the shift surface's distinctness."""
    fixed = np.asarray(evidence.fixed_levels[level], dtype=np.float64)
    moving = np.asarray(evidence.moving_levels[level], dtype=np.float64)
    fixed_domain = evidence.domains[0].level(level)
    moving_domain = evidence.domains[1].level(level)
    m = pyramid.to_level(evidence.matrix, level)
    mask = overlap(fixed_domain, moving_domain, m)
    n0 = int(np.count_nonzero(mask))
    covered = np.count_nonzero(overlap(*evidence.domains, evidence.matrix))  # full resolution
    out = {"overlap": covered / max(evidence.domains[0].count(), 1), "n0": n0}
    # The moving image's share (a fixed pixel covers |det A| moving pixels).
    area = abs(float(np.linalg.det(evidence.matrix[:2, :2])))
    out["moving_overlap"] = min(1.0, covered * area / max(evidence.domains[1].count(), 1))
    warped = warp_linear(moving, m, fixed.shape)
    out["correlation"] = masked_correlation(fixed, warped, mask)
    out["nmi"] = masked_nmi(fixed, warped, mask)
    features = [(fixed, warped)]
    if not evidence.metric.same_modality:
        features.append((gradient_magnitude(fixed), gradient_magnitude(warped)))
    fixed_mask = None if fixed_domain.full else fixed_domain.valid()
    warped_mask = moving_domain.inside(m, fixed.shape)
    best = (-math.inf, math.nan, math.nan)
    for f, w in features:
        measured = _surface_measures(f, fixed_mask, w, warped_mask, n0)
        if math.isfinite(measured[0]) and measured[0] > best[0]:
            best = measured
    out["significance"], out["shift_distinctness"], out["rival_significance"] = best
    if not math.isfinite(out["significance"]):
        out["significance"] = math.nan
    return out


def _residual(evidence: Evidence) -> float:
    """How far an affine transform, refined by a few Levenberg-Marquardt steps from the result
    on a small level with the same metric, moves the image's content (full-resolution
    pixels, mean weighted by the fixed image's gradient magnitude over the overlap): near
    zero when the transform model fits the images; NaN for an affine result (nothing richer
    to try).  Returns ``(residual, limit)``, the limit being :data:`MAX_RESIDUAL` level
    pixels."""
    level = _level_of([im.shape for im in evidence.fixed_levels], RESIDUAL_SIZE)
    limit = MAX_RESIDUAL * 2.0**level
    if evidence.family.name == "affine":
        return math.nan, limit
    fixed = evidence.fixed_levels[level]
    transform = make_transform("affine", shape=fixed.shape)
    domains = (evidence.domains[0].level(level), evidence.domains[1].level(level))
    # Correlation for the metrics that compare intensities as they are (a contrast that is
    # not quite the same then does not pass for a misfit of the model); NMI for the metrics
    # without a gradient; the metric itself otherwise.
    metric, options = evidence.metric, evidence.metric_options
    if metric.same_modality:
        metric, options = METRICS["correlation"], {}
    elif metric.cost_gradient is None:  # (gradient, pluim) their NMI part
        metric = METRICS["nmi"]
        options = metric.prepare_options(options, moving_range=(0.0, 1.0))
    objective = LevelObjective(
        fixed, evidence.moving_levels[level], transform, metric, options, domains=domains
    )
    start = pyramid.to_level(evidence.matrix, level)
    x0 = transform.params_from_matrix(start) * objective.scales
    outcome = OPTIMIZERS["lm"].run(objective, x0, iterations=RESIDUAL_ITERATIONS)
    refined = objective.matrix(outcome.x)
    if not np.all(np.isfinite(refined)):
        return math.nan, limit
    # The move where the content is (weighted by the fixed image's edges in the overlap): a
    # small object's affine freedom moves the empty corners far, and means nothing.
    weights = gradient_magnitude(np.asarray(fixed, dtype=np.float64))
    weights *= overlap(*domains, start)
    total = float(weights.sum())
    if not total > 0:
        return math.nan, limit
    rows, cols = fixed.shape
    d = refined - start
    moved = np.hypot(
        d[0, 0] * np.arange(cols)[None, :] + d[0, 1] * np.arange(rows)[:, None] + d[0, 2],
        d[1, 0] * np.arange(cols)[None, :] + d[1, 1] * np.arange(rows)[:, None] + d[1, 2],
    )
    return float((moved * weights).sum() / total) * 2.0**level, limit


# --------------------------------------------------------------------------- verdict


def assess(evidence: Evidence) -> Quality:
    """The quality of the result in ``evidence`` (see :mod:`regcli.quality`)."""
    started = time.perf_counter()
    level = _level_of_area([im.shape for im in evidence.fixed_levels], QUALITY_SIZE)
    measures = _shift_evidence(evidence, level)
    measures.update(search_rivals(evidence))
    measures.update(richer_gap(evidence))
    measures["residual_px"], measures["residual_limit"] = _residual(evidence)
    reasons = _reasons(evidence, measures)
    return Quality(
        verdict="suspect" if reasons else "ok",
        reasons=tuple(reasons),
        correlation=float(measures["correlation"]),
        nmi=float(measures["nmi"]),
        overlap=float(measures["overlap"]),
        significance=float(measures["significance"]),
        distinctness=float(measures.get("shift_distinctness", math.nan)),
        rival_gap=float(measures.get("search_gap", math.nan)),
        residual_px=float(measures["residual_px"]),
        seconds=time.perf_counter() - started,
        details=measures,
    )


def _reasons(evidence: Evidence, measures: dict) -> list[str]:
    """The verdict's reasons, in words, each with what to try (empty: ok)."""
    reasons = []
    if not evidence.converged:
        reasons.append(f"the optimisation did not converge: {evidence.message}")
    physical = evidence.family.to_physical(evidence.matrix)
    why = implausible(physical, max_scale=MAX_SCALE, max_anisotropy=MAX_ANISOTROPY)
    if why is not None:
        reasons.append(
            f"the transform cannot be an alignment: {why}; try a transform with fewer "
            "degrees of freedom (rigid or similarity)"
        )
    overlap_fraction = max(measures["overlap"], measures["moving_overlap"])
    masked = not (evidence.domains[0].full and evidence.domains[1].full)
    if masked and not (
        overlap_fraction >= MIN_OVERLAP and measures["n0"] >= MIN_MASKED_OVERLAP_PIXELS
    ):
        reasons.append(
            f"too little of the masked images overlaps ({100 * overlap_fraction:.1f}% of the "
            f"pixels in use, {measures['n0']} pixels at the {QUALITY_SIZE}-pixel level) to "
            "trust the result; check the masks and the overlay, or mask less"
        )
    elif not overlap_fraction >= MIN_OVERLAP:
        reasons.append(
            f"only {100 * overlap_fraction:.1f}% of the fixed image is covered by the aligned "
            "moving image (and of the moving image used): too little to trust; check the "
            "overlay, or crop both images to their common part"
        )
    significance = measures["significance"]
    distinct = measures.get("shift_distinctness", math.nan)
    rival = measures.get("rival_significance", math.nan)
    gap = measures.get("search_gap", math.nan)
    chance = not significance >= MIN_SIGNIFICANCE or (
        distinct < MIN_DISTINCTNESS and not rival >= MIN_SIGNIFICANCE
    )
    if chance and measures["correlation"] >= PERIODIC_CORRELATION:
        reasons.append(
            "ambiguous: the images match well here, but as well at many other shifts (a "
            f"repeating pattern or featureless content; significance {significance:.2g}); "
            "check the overlay, or crop to a region without the repetition"
        )
    elif chance:
        reasons.append(
            "the alignment is no better than chance (the images agree no more here than "
            f"when displaced; significance {significance:.2g}, distinctness {distinct:.2g}): "
            "the images may be unrelated, featureless or mostly noise; check the overlay, "
            "try another metric (mi for different modalities)"
        )
    elif distinct < -MIN_DISTINCTNESS or gap < -MIN_GAP:
        reasons.append(
            "another alignment matches clearly better than the result: the optimiser "
            "stopped in a wrong basin; use the global search (init search) or start "
            "nearer the answer"
        )
    elif distinct < MIN_DISTINCTNESS or gap < MIN_GAP:
        reasons.append(
            "ambiguous: another, different alignment is about as good (a repeating "
            "pattern, a symmetric object, or content that can slide along itself); check "
            "the overlay, or crop to a region without the ambiguity"
        )
    if measures.get("richer_gap", math.nan) < -MIN_GAP:
        name, richer = evidence.family.name, measures["richer_family"]
        reasons.append(
            f"a {richer} transform matches clearly better elsewhere: the images moved in a "
            f"way a {name} about its centre cannot follow (a turn about another point); try "
            f"--transform {richer}, or set --center"
        )
    residual = measures["residual_px"]
    if residual > measures["residual_limit"]:
        reasons.append(
            f"parts of the images stay misaligned (an affine transform moves them by "
            f"{residual:.2g} px more): the {evidence.family.name} model does not fit these "
            "images; try a transform with more freedom (similarity or affine)"
        )
    return reasons


def evaluate(
    fixed,
    moving,
    matrix,
    *,
    transform: str = "affine",
    metric: str = "ssd",
    bins: int | None = None,
    fixed_mask=None,
    moving_mask=None,
) -> Quality:
    """The quality of any fixed -> moving ``matrix`` for two images, as :func:`regcli.register`
    would assess its own result (a matrix from another tool, or a guess).

    ``transform`` is the family the matrix is judged in (the model-fit residual compares it
    with an affine refinement; ``"affine"`` skips that test), ``metric`` the one the rivals
    are compared with.  The images may have different shapes; ``fixed_mask``, ``moving_mask``
    and NaN pixels leave pixels out, as in :func:`regcli.register`.

    >>> from scipy import ndimage
    >>> from regcli.resample import translate
    >>> image = ndimage.gaussian_filter(np.random.default_rng(0).random((128, 128)), 3.0)
    >>> moved = translate(image, 6.0, -3.0)  # content 6 px right, 3 px up
    >>> right = np.array([[1.0, 0, 6], [0, 1, -3], [0, 0, 1]])
    >>> wrong = np.array([[1.0, 0, -20], [0, 1, 15], [0, 0, 1]])
    >>> [evaluate(image, moved, m, transform="translation").verdict for m in (right, wrong)]
    ['ok', 'suspect']
    """
    from regcli._validate import check_image, normalize_pair
    from regcli.masks import masked_pyramid, valid_pixels
    from regcli.metrics import get_metric
    from regcli.transforms import check_matrix

    fixed = check_image(fixed, name="fixed", allow_nan=True)
    moving = check_image(moving, name="moving", allow_nan=True)
    m = check_matrix(matrix)
    metric_obj = get_metric(metric)
    options = metric_obj.prepare_options(metric_obj.check_options(bins=bins), moving_range=(0, 1))
    valid = (
        valid_pixels(fixed, fixed_mask, name="fixed", mask_name="fixed_mask"),
        valid_pixels(moving, moving_mask, name="moving", mask_name="moving_mask"),
    )
    fixed_n, moving_n = normalize_pair(fixed, moving, joint=metric_obj.same_modality, masks=valid)
    shape = tuple(min(a, b) for a, b in zip(fixed.shape, moving.shape, strict=True))
    levels = pyramid.auto_levels(shape)
    family = make_transform(transform, shape=fixed.shape)
    return assess(
        Evidence(
            fixed_levels=masked_pyramid(fixed_n, valid[0], levels),
            moving_levels=masked_pyramid(moving_n, valid[1], levels),
            domains=(Domain.of(fixed, valid[0]), Domain.of(moving, valid[1])),
            matrix=m,
            family=family,
            metric=metric_obj,
            metric_options=options,
            search=None,
            converged=True,
            message="",
        )
    )
