"""The global search behind ``init="search"``: any rotation, found on coarse images.

Local optimisers only find the minimum of the cost basin they start in; for a rotation past
roughly 30-60 degrees the identity is outside the right basin.  The search finds a start
inside it, on a coarse copy of both images (:func:`coarse_pair`, about :data:`SEARCH_SIZE`
pixels a side):

1. rigid and rotation: the rotation from the Fourier magnitudes (:func:`fourier_angles`);
   when the signatures agree, that angle and its half-turn twin are the only ones tried;
2. otherwise the whole circle every ``angle_step`` degrees, then finer steps around the best
   few angles, then finer still around the best one;
3. similarity: scales around the best angle.

Every rotation gets three translations (:func:`translation_candidates`: the image centres
aligned, and the shifts found by FFT cross-correlation of the intensities and of the gradient
magnitudes, the latter working across modalities), and every candidate is scored by the
registration's metric (:func:`ranking`) over a central disc, the same pixels whatever the
angle.  The best candidate wins.  Matrices here map coarse fixed pixels to coarse moving
pixels; :meth:`CoarsePair.to_full` turns the winner into a full-resolution one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from regcli import pyramid
from regcli.errors import InputError
from regcli.metrics import Metric, get_metric
from regcli.resample import warp_linear
from regcli.transforms import (
    Transform,
    compose,
    rotation_matrix,
    scaling_matrix,
    similarity_matrix,
    translation_matrix,
)

__all__ = [
    "SEARCH_SIZE",
    "CoarsePair",
    "best",
    "coarse_pair",
    "fourier_angles",
    "ranking",
    "ranking_metric",
    "search_rotations",
    "translation_candidates",
    "whole_halvings",
]

#: Longest side (pixels) of the coarse images the search runs on.
SEARCH_SIZE = 64
#: Transforms whose rotation is first estimated from the Fourier magnitudes (a similarity's
#: scale change moves the spectrum radially, which the angular signature does not follow).
FOURIER_FIRST = ("rigid", "rotation")
#: Angles sampled over half a turn by the Fourier signature (1 degree apart).
FOURIER_ANGLES = 180
#: Rings of the Fourier signature, between 2 cycles per image and 0.45 cycles per pixel.
FOURIER_RINGS = 24
#: Signature agreement (normalised correlation, 1 = identical up to the rotation) from which
#: the Fourier estimate is trusted.  Measured on the sample and benchmark pairs: 0.53-0.98
#: when the estimate is right (multimodal pairs included), below 0.3 when it is wrong (content
#: shifted far relative to the window, rescaled content); below it the full search runs.
FOURIER_CONFIDENCE = 0.45
#: At most this many signature peaks above :data:`FOURIER_CONFIDENCE` (each with its half-turn
#: twin) are verified by the metric.  On the sample and benchmark pairs the runner-up peak
#: is below 0.06: usually only the best and its twin are tried; a symmetric object (two
#: strong peaks) gets both.
FOURIER_PEAKS = 2

#: ``rank(matrices (n, 3, 3)) -> costs (n,)``: lower is better, ``inf`` for unusable ones.
Rank = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- coarse images


@dataclass(frozen=True)
class CoarsePair:
    """The two images the search runs on, and the geometry shared by its candidates.

    Attributes
    ----------
    fixed, moving : (rows, cols) float64 ndarrays
        The coarse images.
    factor : float
        Full-resolution pixels per coarse pixel: coarse pixel ``x`` is the full-resolution
        point ``factor * x + (factor - 1) / 2``.
    fixed_center, moving_center : (2,) ndarrays
        The images' centres ``(x, y)`` in coarse pixels.
    disc : (rows, cols) bool ndarray
        The fixed pixels every candidate is scored on: a central disc, the same set whatever
        the angle, so that turning the image does not change how many corners are compared.
    """

    fixed: np.ndarray
    moving: np.ndarray
    factor: float
    fixed_center: np.ndarray
    moving_center: np.ndarray
    disc: np.ndarray

    @functools.cached_property
    def fixed_spectra(self) -> list[np.ndarray]:
        """Conjugate spectra of the windowed fixed image and of its gradient magnitude,
        zero-padded to twice its shape (the same for every cross-correlation)."""
        shape = (2 * self.fixed.shape[0], 2 * self.fixed.shape[1])
        window = self.disc.astype(np.float64)
        return [
            # float32: a peak position needs no more, and the transforms run twice as fast.
            np.conj(np.fft.rfft2(_zero_mean(image, window).astype(np.float32), shape))
            for image in (self.fixed, _gradient_magnitude(self.fixed))
        ]

    def center_of(self, transform: Transform) -> np.ndarray:
        """The transform's centre in coarse pixels."""
        return (transform.center - (self.factor - 1) / 2.0) / self.factor

    def to_full(self, coarse: np.ndarray, transform: Transform) -> np.ndarray:
        """A coarse fixed -> moving matrix as the full-resolution matrix, in ``transform``'s
        family (the projection is exact for the families searched)."""
        offset = (self.factor - 1) / 2.0
        # The coarse grid in full-resolution pixels: x_full = S @ x_coarse.
        s = compose(scaling_matrix(self.factor), translation_matrix(offset, offset))
        full = s @ coarse @ np.linalg.inv(s)
        return transform.matrix(transform.params_from_matrix(full))


def coarse_pair(
    fixed: np.ndarray,
    moving: np.ndarray,
    size: int = SEARCH_SIZE,
    coarse: tuple[np.ndarray, np.ndarray] | None = None,
) -> CoarsePair:
    """Both images reduced so that the fixed image's longest side is about ``size`` pixels.

    ``coarse`` is the pair already reduced (a pyramid level), used when the reduction is a
    whole number of halvings and the shapes are theirs; otherwise :func:`pyramid.downsample`
    reduces ``fixed`` and ``moving`` (``(rows, cols)`` arrays).
    """
    factor = max(1.0, max(fixed.shape) / float(size))
    given = _halvings_match(coarse, factor, fixed.shape, moving.shape)
    if given is not None:
        small_fixed, small_moving = given
    else:
        small_fixed = pyramid.downsample(fixed, factor)
        small_moving = pyramid.downsample(moving, factor)
    rows, cols = small_fixed.shape
    fixed_center = np.array([(cols - 1) / 2.0, (rows - 1) / 2.0])
    mr, mc = small_moving.shape
    y, x = np.mgrid[0:rows, 0:cols]
    radius = 0.5 * min(rows, cols)
    return CoarsePair(
        fixed=small_fixed,
        moving=small_moving,
        factor=factor,
        fixed_center=fixed_center,
        moving_center=np.array([(mc - 1) / 2.0, (mr - 1) / 2.0]),
        disc=(x - fixed_center[0]) ** 2 + (y - fixed_center[1]) ** 2 <= radius**2,
    )


def whole_halvings(factor: float) -> int | None:
    """``k`` if ``factor == 2**k`` for a whole ``k >= 1``, else None."""
    halvings = round(math.log2(factor)) if factor >= 2 else 0
    if halvings < 1 or 2.0**halvings != factor:
        return None
    return halvings


def _halvings_match(coarse, factor: float, fixed_shape, moving_shape):
    """``coarse`` as two float64 images if it is ``factor`` (a power of two) worth of
    halvings of images of these shapes, else None."""
    if coarse is None:
        return None
    halvings = whole_halvings(factor)
    if halvings is None:
        return None
    out = []
    for image, shape in zip(coarse, (fixed_shape, moving_shape), strict=True):
        image = np.asarray(image)
        if image.shape != pyramid.level_shape(shape, halvings):
            return None
        out.append(image.astype(np.float64))
    return out


# --------------------------------------------------------------------------- scoring


def ranking(metric: Metric | str, options: dict | None, pair: CoarsePair) -> Rank:
    """The function that scores candidate matrices on ``pair`` with ``metric``.

    The metric's :attr:`~regcli.metrics.Metric.search_metric` ranks in its place if it names
    one.  The cost options are ``options`` prepared for the coarse moving image's own
    intensity range (a caller's range may be that of rescaled copies), so that the histogram
    bins stay put from candidate to candidate.
    """
    scorer = ranking_metric(metric)
    low, high = float(pair.moving.min()), float(pair.moving.max())
    prepared = scorer.prepare_options(options, moving_range=(low, high))
    return functools.partial(_candidate_costs, pair, scorer, prepared)


def ranking_metric(metric: Metric | str) -> Metric:
    """The metric that ranks the candidates of ``metric`` (a name or a :class:`Metric`)."""
    metric = metric if isinstance(metric, Metric) else get_metric(metric)
    return get_metric(metric.search_metric) if metric.search_metric else metric


def _candidate_costs(pair: CoarsePair, metric: Metric, options: dict, matrices) -> np.ndarray:
    warped = _warp_many(pair.moving, matrices, pair.fixed.shape)
    out = np.empty(len(matrices))
    for k, image in enumerate(warped):
        try:
            value = metric.cost(pair.fixed, image, pair.disc, **options)
        except InputError:  # e.g. no contrast left under this candidate: a bad candidate
            value = np.inf
        out[k] = value if np.isfinite(value) else np.inf
    return out


def best(candidates: np.ndarray, rank: Rank) -> np.ndarray:
    """The candidate (3, 3) of ``candidates`` (n, 3, 3) with the lowest cost."""
    return candidates[int(np.argmin(rank(candidates)))]


def _warp_many(image: np.ndarray, matrices: np.ndarray, shape) -> np.ndarray:
    """``image`` warped by each matrix (bilinear, 0 outside) onto ``shape = (rows, cols)``.

    :func:`regcli.resample.warp_linear`: the same bilinear values as ``warp(order=1)``
    inside the image, three times faster on these small images.
    """
    image = np.asarray(image, dtype=np.float64)
    out = np.empty((len(matrices), *shape))
    for k, m in enumerate(matrices):
        out[k] = warp_linear(image, m, shape)
    return out


def _zero_mean(images: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Subtract each image's weighted mean and apply the weights (a soft window)."""
    total = np.maximum(weights.sum(axis=(-2, -1), keepdims=True), 1e-12)
    mean = (images * weights).sum(axis=(-2, -1), keepdims=True) / total
    return (images - mean) * weights


def _gradient_magnitude(images: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(images, axis=(-2, -1))
    return np.hypot(gx, gy)


def _parabola_offset(minus: np.ndarray, centre: np.ndarray, plus: np.ndarray) -> np.ndarray:
    """Vertex of the parabola through three equally spaced samples, relative to the middle
    one and bounded to half a step (0 where the samples are collinear)."""
    denominator = minus - 2 * centre + plus
    safe = np.where(np.abs(denominator) > 1e-12, denominator, -1.0)
    return np.clip(0.5 * (minus - plus) / safe, -0.5, 0.5)


# --------------------------------------------------------------------------- translations


def translation_candidates(
    pair: CoarsePair, transform: Transform, angles: np.ndarray, scales: np.ndarray
) -> np.ndarray:
    """Candidate coarse matrices, shape ``(variants, n, 3, 3)``, for each (angle, scale).

    A ``rotation`` turns about its own centre (one variant).  Otherwise variant 0 only
    aligns the image centres; variants 1 and 2 add the shift found by cross-correlating the
    intensities and the gradient magnitudes.
    """
    if transform.name == "rotation":
        center = pair.center_of(transform)
        return np.array([[rotation_matrix(a, center) for a in angles]])
    rotations = np.array(
        [
            similarity_matrix(a, s, pair.fixed_center, pair.moving_center)
            for a, s in zip(angles, scales, strict=True)
        ]
    )
    shape = pair.fixed.shape
    rotated = _warp_many(pair.moving, rotations, shape)
    valid = _warp_many(np.ones_like(pair.moving), rotations, shape)  # where there is data
    candidates = [rotations]
    for shifts in _shifts(pair, rotated, valid):
        moved = rotations.copy()
        moved[:, :2, 2] += np.einsum("nij,nj->ni", rotations[:, :2, :2], shifts)
        candidates.append(moved)
    return np.array(candidates)


def _shifts(pair: CoarsePair, rotated: np.ndarray, valid: np.ndarray) -> list[np.ndarray]:
    """Best shifts ``s`` (x, y) with ``rotated(x + s) ~ fixed(x)``, one per feature."""
    rows, cols = pair.fixed.shape
    shape = (2 * rows, 2 * cols)  # zero padding: no wrap-around between shifts
    out = []
    for feature, fixed_spectrum in zip(
        (lambda a: a, _gradient_magnitude), pair.fixed_spectra, strict=True
    ):
        r = _zero_mean(feature(rotated), valid).astype(np.float32)
        spectrum = fixed_spectrum * np.fft.rfft2(r, shape, axes=(-2, -1))
        # Partial whitening: sharper peaks than plain correlation, less noise-prone
        # than full phase correlation.
        spectrum /= np.sqrt(np.maximum(np.abs(spectrum), 1e-12))
        corr = np.fft.irfft2(spectrum, shape, axes=(-2, -1))
        out.append(_peaks(corr, shape))
    return out


def _peaks(corr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Sub-pixel (x, y) position of the maximum of each correlation surface, as signed shifts."""
    n = len(corr)
    flat = corr.reshape(n, -1).argmax(axis=1)
    iy, ix = np.unravel_index(flat, shape)
    rows = np.arange(n)
    h, w = shape
    c = corr[rows, iy, ix]
    dy = _parabola_offset(corr[rows, (iy - 1) % h, ix], c, corr[rows, (iy + 1) % h, ix])
    dx = _parabola_offset(corr[rows, iy, (ix - 1) % w], c, corr[rows, iy, (ix + 1) % w])
    sy = np.where(iy > h // 2, iy - h, iy) + dy
    sx = np.where(ix > w // 2, ix - w, ix) + dx
    return np.column_stack([sx, sy])


# --------------------------------------------------------------------------- Fourier angle


def fourier_angles(pair: CoarsePair, count: int = FOURIER_PEAKS) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` best rotation angles (modulo a half turn) and their agreements.

    The spectrum magnitude of the moving image is that of the fixed image turned by the
    rotation of ``M`` (translation only changes the phase), so the circular
    cross-correlation of the two signatures along the angle peaks at that rotation, found
    for every angle at once by FFTs of length :data:`FOURIER_ANGLES`.  The agreement is
    the peak divided by its largest possible value (1: same signatures up to the turn).

    Returns
    -------
    angles, agreements : (count,) ndarrays
        Radians in [0, pi), best first (one zero angle with zero agreement if no peak).
    """
    radius = 0.5 * min(*pair.fixed.shape, *pair.moving.shape)
    fixed = _signature(pair.fixed, _window(pair.fixed.shape, pair.fixed_center, radius))
    moving = _signature(pair.moving, _window(pair.moving.shape, pair.moving_center, radius))
    spectrum = np.conj(np.fft.rfft(fixed, axis=1)) * np.fft.rfft(moving, axis=1)
    corr = np.fft.irfft(spectrum.sum(axis=0), FOURIER_ANGLES) / len(fixed)
    before, after = np.roll(corr, 1), np.roll(corr, -1)
    peaks = np.flatnonzero((corr >= before) & (corr > after))
    peaks = peaks[np.argsort(corr[peaks])[::-1][:count]]
    if peaks.size == 0:
        return np.zeros(1), np.zeros(1)
    # Sub-degree angles from the parabola through the three samples around each peak.
    offset = _parabola_offset(before[peaks], corr[peaks], after[peaks])
    angles = (peaks + offset) * (math.pi / FOURIER_ANGLES)
    return angles, corr[peaks]


def _window(shape, center, radius) -> np.ndarray:
    """Hann-tapered disc: 1 at ``center``, 0 from ``radius`` on (read-only, cached)."""
    return _hann_disc(tuple(int(n) for n in shape), float(center[0]), float(center[1]), radius)


def _signature(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Fourier-magnitude rings of the windowed image and of its gradient magnitude.

    Shape ``(2 * FOURIER_RINGS, FOURIER_ANGLES)``: each ring sampled over half a turn
    (the magnitude of a real image's spectrum is symmetric), square-rooted, zero-mean and
    unit-norm, so that every ring weighs the same.  Turning the image turns its spectrum
    by the same angle and a shift leaves the magnitude unchanged (up to the window).
    """
    side = max(image.shape)
    index, weights = _polar_sampler(side)
    rings = []
    for feature in (image, _gradient_magnitude(image)):
        values = _zero_mean(feature, window)
        # Zero padding to a square: equal frequency steps along x and y.
        magnitude = np.abs(np.fft.fftshift(np.fft.fft2(values, (side, side)))).ravel()
        rings.append(np.sqrt(np.einsum("kij,kij->ij", magnitude[index], weights)))
    out = np.concatenate(rings)
    out -= out.mean(axis=1, keepdims=True)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


@functools.lru_cache(maxsize=8)
def _hann_disc(shape: tuple[int, int], cx: float, cy: float, radius: float) -> np.ndarray:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    r = np.hypot(x - cx, y - cy) / radius
    out = np.where(r < 1.0, 0.5 + 0.5 * np.cos(np.pi * np.minimum(r, 1.0)), 0.0)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=8)
def _polar_sampler(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear sampling of a centred ``side x side`` spectrum on the signature's rings.

    Returns flat indices ``(4, rings, angles)`` of the four neighbours of every sample and
    their weights: ``sum(weights * spectrum.ravel()[index], axis=0)`` is linear
    interpolation (``ndimage.map_coordinates(order=1)``) without its per-call set-up.
    """
    theta = np.arange(FOURIER_ANGLES) * (math.pi / FOURIER_ANGLES)
    radii = np.linspace(2.0, 0.45 * side, FOURIER_RINGS)  # in frequency samples
    center = side // 2
    rows = center + radii[:, None] * np.sin(theta)[None, :]
    cols = center + radii[:, None] * np.cos(theta)[None, :]
    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0 = np.clip(r0.astype(np.intp), 0, side - 2)
    c0 = np.clip(c0.astype(np.intp), 0, side - 2)
    base = r0 * side + c0
    index = np.stack([base, base + 1, base + side, base + side + 1])
    weights = np.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc])
    index.flags.writeable = False
    weights.flags.writeable = False
    return index, weights


# --------------------------------------------------------------------------- the passes


def search_rotations(
    pair: CoarsePair,
    transform: Transform,
    rank: Rank,
    *,
    step: float,
    scales: Sequence[float] = (1.0,),
    keep: int = 3,
) -> np.ndarray:
    """The best coarse (3, 3) matrix of ``transform``'s family found by the search.

    Parameters
    ----------
    pair : CoarsePair
    transform : Transform
        Family searched: ``translation`` (shifts only), ``rotation`` (about its centre),
        ``rigid``, ``similarity`` (and ``affine``, searched as a similarity).
    rank : callable
        :func:`ranking` of the registration's metric.
    step : float
        Radians between the rotations of the first pass over the whole circle.
    scales : sequence of float
        Scales tried in the last pass (only ``(1.0,)``: no scale pass).
    keep : int
        How many of the best first-pass angles are refined.
    """
    if transform.name == "translation":
        return best(translation_candidates(pair, transform, np.zeros(1), np.ones(1))[:, 0], rank)
    if transform.name in FOURIER_FIRST:
        found = _fourier_start(pair, transform, rank)
        if found is not None:
            return found
    found = _circle_search(pair, transform, rank, step, keep)
    if len(scales) == 1 and scales[0] == 1.0:
        return found
    # Pass 4 (similarity): scales around the best angle.
    angle = math.atan2(found[1, 0], found[0, 0])
    near = angle + np.array([-step, 0.0, step]) / 6
    fourth = translation_candidates(
        pair, transform, np.repeat(near, len(scales)), np.tile(scales, near.size)
    )
    return best(np.concatenate([found[None], fourth.reshape(-1, 3, 3)]), rank)


def _fourier_start(pair: CoarsePair, transform: Transform, rank: Rank) -> np.ndarray | None:
    """The best candidate at the angles the Fourier signatures trust, or None if none."""
    angles, agreements = fourier_angles(pair, FOURIER_PEAKS)
    angles = angles[agreements >= FOURIER_CONFIDENCE]
    if not angles.size:
        return None
    # Each angle and its half-turn twin (the magnitude cannot tell them apart); the metric
    # decides, over the shifts found for each.
    both = np.concatenate([angles, angles + math.pi])
    return best(
        translation_candidates(pair, transform, both, np.ones(both.size)).reshape(-1, 3, 3), rank
    )


def _circle_search(
    pair: CoarsePair, transform: Transform, rank: Rank, step: float, keep: int
) -> np.ndarray:
    """Passes 1-3 at scale 1: the whole circle, then the best ``keep`` distinct angles in
    finer steps, then finer still around the best one."""
    angles = np.arange(0.0, 2 * math.pi - 1e-9, step)
    first = translation_candidates(pair, transform, angles, np.ones(angles.size))
    cost = rank(first.reshape(-1, 3, 3))
    order = np.argsort(cost)
    chosen: list[float] = []
    for index in order:
        angle = float(angles[int(index) % angles.size])
        if all(_angle_gap(angle, a) > step / 2 for a in chosen):
            chosen.append(angle)
        if len(chosen) == keep:
            break
    fine = np.concatenate([a + np.linspace(-step, step, 7) for a in chosen])
    second = translation_candidates(pair, transform, fine, np.ones(fine.size)).reshape(-1, 3, 3)
    found = best(np.concatenate([first.reshape(-1, 3, 3)[order[:1]], second]), rank)
    angle = math.atan2(found[1, 0], found[0, 0])
    # Pass 3: steps of step / 12 around the best angle.
    finer = angle + np.linspace(-step, step, 9)[[1, 2, 3, 5, 6, 7]] / 4
    third = translation_candidates(pair, transform, finer, np.ones(finer.size)).reshape(-1, 3, 3)
    return best(np.concatenate([found[None], third]), rank)


def _angle_gap(a: float, b: float) -> float:
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)
