"""A global starting point for registration, so that any rotation can be recovered.

Local optimisers (gradient descent, Gauss-Newton, Powell...) only find the minimum of the cost
basin they start in; for a rotation past roughly 30-60 degrees the identity is outside the
right basin and they stop in a wrong one.  :func:`initial_matrix` finds a start inside it:

``"search"``
    At a coarse level (about 64 pixels a side) turn the moving image through the whole circle
    (every ``angle_step`` degrees).  For each angle the best translation comes from an FFT
    cross-correlation of the images and of their gradient magnitudes (the latter works across
    modalities), plus centring.  Every (angle, translation) candidate is scored with the
    registration's own metric over a central disc (the same pixels whatever the angle); the
    best few are refined with finer angle steps and the best one wins.
``"moments"``
    Centres of mass and principal axes of the foreground (second moments); the 180 degree
    (and 90 degree) ambiguity of the axes is resolved by the metric.
``"none"``
    The identity.

The result is a 3x3 matrix in the usual convention (fixed pixel -> moving pixel, full
resolution), ready to start :func:`regcli.register`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from regcli._validate import check_image
from regcli.errors import InputError
from regcli.resample import warp_linear
from regcli.transforms import Transform, make_transform

__all__ = ["INIT_METHODS", "default_method", "initial_matrix"]

#: Initialisation methods by name (CLI choices of ``--init``).
INIT_METHODS: dict[str, str] = {
    "search": "coarse search over the whole circle of rotations and over translations",
    "moments": "centres of mass and principal axes of the foreground",
    "none": "start from the identity",
}

#: Metrics whose candidates are ranked by another: the Pluim measure's gradient term (edges
#: 1.5 px wide) means little at the search's coarse level and misleads it when the scale is
#: wrong; its NMI factor ranks the candidates reliably.
_RANKED_BY = {"pluim": "nmi"}

#: Transforms whose parameters include a free rotation and translation: searched by default.
_SEARCHED_BY_DEFAULT = ("rigid", "similarity")

#: Longest side (pixels) of the coarse images the search runs on.
SEARCH_SIZE = 64

#: Transforms whose rotation is first estimated from the Fourier magnitudes (a similarity's
#: scale change moves the spectrum radially, which the angular signature does not follow).
_FOURIER_FIRST = ("rigid", "rotation")
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


def default_method(transform) -> str:
    """The default initialisation for ``transform`` (a name or a :class:`Transform`).

    ``"search"`` for ``rigid`` and ``similarity``; ``"none"`` otherwise (translation and the
    course's rotation about the top-left pixel keep the plain local optimisation).
    """
    name = transform if isinstance(transform, str) else transform.name
    return "search" if name in _SEARCHED_BY_DEFAULT else "none"


def initial_matrix(
    fixed,
    moving,
    transform="rigid",
    metric="ssd",
    method: str | None = None,
    *,
    center=None,
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
        Cost that ranks the candidates: the registration's own metric (NMI for ``pluim``,
        whose gradient term is unreliable at the coarse level).
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
        Degrees between the rotations tried in the first pass (a second pass refines).
    scales : sequence of float, optional
        Scales tried for ``similarity`` (default 7 from 0.75 to 1.33, after the angle is
        found at scale 1); ignored for other transforms.
    keep : int
        How many of the best first-pass candidates are refined.
    coarse : (fixed, moving) pair of arrays, optional
        The two images already reduced to the search's size, when that is a whole number
        ``k`` of halvings: pixel centres at ``2**k * x + (2**k - 1) / 2``, as level ``k`` of
        :func:`regcli.pyramid.gaussian_pyramid` (``register`` passes its pyramid level, so
        the images are not reduced twice).  Ignored unless the shapes are those ``k``
        halvings give.

    Returns
    -------
    (3, 3) ndarray

    Examples
    --------
    >>> from regcli.resample import rotate
    >>> y, x = np.mgrid[:96, :96]
    >>> img = np.exp(-((x - 40.0) ** 2 / 200 + (y - 50.0) ** 2 / 60))
    >>> turned = rotate(img, np.radians(135), center="center")  # 135 deg clockwise
    >>> m = initial_matrix(img, turned, "rigid", "ssd")
    >>> angle = np.degrees(np.arctan2(m[1, 0], m[0, 0]))  # close: the optimiser refines it
    >>> int(5 * round(angle / 5))
    135
    """
    method = default_method(transform) if method is None else method
    if method not in INIT_METHODS:
        raise InputError(
            f"init: unknown method {method!r}; choose one of {', '.join(INIT_METHODS)}"
        )
    fixed = check_image(fixed, name="fixed")
    moving = check_image(moving, name="moving")
    if not isinstance(transform, Transform):
        transform = make_transform(transform, center=center, shape=fixed.shape)
    if method == "none":
        return np.eye(3)
    if size < 8:
        raise InputError(f"init: size must be at least 8 pixels, got {size}")
    if not 0.1 <= angle_step <= 90:
        raise InputError(f"init: angle_step must be in [0.1, 90] degrees, got {angle_step}")
    search = _Search(fixed, moving, transform, metric, metric_options or {}, size, coarse=coarse)
    if method == "moments":
        best = search.moments()
    else:
        if scales is None:
            scales = np.geomspace(0.75, 4 / 3, 7) if transform.name == "similarity" else (1.0,)
        best = search.search(math.radians(angle_step), tuple(float(s) for s in scales), keep)
    return search.to_full(best)


# --------------------------------------------------------------------------- the search


def _coarse_factor(shape: Sequence[int], size: int) -> float:
    return max(1.0, max(shape) / float(size))


def _downsample(image: np.ndarray, factor: float) -> np.ndarray:
    """Anti-aliased image sampled at full-resolution points ``factor * x + (factor - 1) / 2``.

    Whole halvings use the pyramid's one-pass binomial filter (same pixel-centre geometry,
    far cheaper than a wide Gaussian on the full image); what is left of the factor (< 2) is
    a Gaussian and linear sampling on the already small image.
    """
    from regcli.pyramid import _halve_axis

    img = np.asarray(image)
    if factor <= 1.0:
        return img.astype(np.float64)
    if factor >= 2.0 - 1e-9 and (img.dtype != np.float64 or float(np.max(np.abs(img))) < 1e30):
        # The halvings in float32 (twice as fast; a search needs no more), unless the values
        # would overflow it.
        img = img.astype(np.float32)
    else:
        img = img.astype(np.float64)
    while factor >= 2.0 - 1e-9 and min(img.shape) >= 2:
        img = _halve_axis(_halve_axis(img, 0), 1)
        factor /= 2.0
    img = img.astype(np.float64)
    if factor <= 1.0 + 1e-9:
        return img
    smooth = ndimage.gaussian_filter(img, sigma=0.5 * factor, mode="nearest")
    shape = tuple(max(1, round(n / factor)) for n in img.shape)
    offset = (factor - 1.0) / 2.0
    return ndimage.affine_transform(
        smooth,
        [factor, factor],
        offset=[offset, offset],
        output_shape=shape,
        order=1,
        mode="nearest",
    )


def _halvings_match(coarse, factor: float, fixed_shape, moving_shape):
    """``coarse`` as two float64 images if it is ``factor`` (a power of two) worth of
    halvings of images of these shapes, else None."""
    if coarse is None:
        return None
    halvings = round(math.log2(factor)) if factor >= 2 else 0
    if halvings < 1 or 2.0**halvings != factor:
        return None
    out = []
    for image, shape in zip(coarse, (fixed_shape, moving_shape), strict=True):
        expected = tuple(shape)
        for _ in range(halvings):
            expected = tuple(max(1, -(-n // 2)) for n in expected)
        image = np.asarray(image)
        if image.shape != expected:
            return None
        out.append(image.astype(np.float64))
    return out


def _rotation(angle: float, scale: float = 1.0) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return scale * np.array([[c, -s], [s, c]])


def _matrix(linear: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``x -> linear @ (x - source) + target`` as a 3x3 matrix."""
    m = np.eye(3)
    m[:2, :2] = linear
    m[:2, 2] = target - linear @ source
    return m


def _zero_mean(images: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Subtract each image's weighted mean and apply the weights (a soft window)."""
    total = np.maximum(weights.sum(axis=(-2, -1), keepdims=True), 1e-12)
    mean = (images * weights).sum(axis=(-2, -1), keepdims=True) / total
    return (images - mean) * weights


def _gradient_magnitude(images: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(images, axis=(-2, -1))
    return np.hypot(gx, gy)


class _Search:
    """Coarse copies of both images and the candidate scoring shared by the methods."""

    def __init__(
        self, fixed, moving, transform: Transform, metric, options: dict, size: int, coarse=None
    ):
        from regcli.metrics import Metric, get_metric

        self.metric = metric if isinstance(metric, Metric) else get_metric(metric)
        if self.metric.name in _RANKED_BY:
            self.metric = get_metric(_RANKED_BY[self.metric.name])
        self.transform = transform
        self.factor = _coarse_factor(fixed.shape, size)
        given = _halvings_match(coarse, self.factor, fixed.shape, moving.shape)
        if given is not None:
            self.fixed, self.moving = given
        else:
            self.fixed = _downsample(fixed, self.factor)
            self.moving = _downsample(moving, self.factor)
        rows, cols = self.fixed.shape
        self.fixed_center = np.array([(cols - 1) / 2.0, (rows - 1) / 2.0])
        mr, mc = self.moving.shape
        self.moving_center = np.array([(mc - 1) / 2.0, (mr - 1) / 2.0])
        # The pixels every candidate is scored on: a central disc, the same set whatever the
        # angle, so that turning the image does not change how many corners are compared.
        y, x = np.mgrid[0:rows, 0:cols]
        radius = 0.5 * min(rows, cols)
        self.disc = (x - self.fixed_center[0]) ** 2 + (y - self.fixed_center[1]) ** 2 <= radius**2
        self.options = {k: v for k, v in options.items() if k in self.metric.options}
        if "moving_range" in self.metric.options:
            # Always the range of the images searched here (a caller's range may be that of
            # rescaled copies), so that the histogram bins stay put from candidate to candidate.
            self.options["moving_range"] = (float(self.moving.min()), float(self.moving.max()))
        self._fixed_spectra = None  # made by the first _shifts
        # The coarse grid in full-resolution pixels: x_full = S @ x_coarse.
        f = self.factor
        self.to_full_matrix = _matrix(np.eye(2) * f, np.zeros(2), np.full(2, (f - 1) / 2.0))

    # -- geometry ------------------------------------------------------------------------
    def to_full(self, coarse: np.ndarray) -> np.ndarray:
        """A coarse fixed -> moving matrix as the full-resolution matrix, in the family."""
        s = self.to_full_matrix
        full = s @ coarse @ np.linalg.inv(s)
        # Project onto the transform family (exact for the families searched).
        return self.transform.matrix(self.transform.params_from_matrix(full))

    def _coarse_center(self) -> np.ndarray:
        """The transform's centre in coarse pixels."""
        return (self.transform.center - (self.factor - 1) / 2.0) / self.factor

    # -- scoring -------------------------------------------------------------------------
    def _warp_many(self, matrices: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
        """The moving coarse image (or ``image``) warped by each matrix (bilinear, 0 outside).

        :func:`regcli.resample.warp_linear`: the same bilinear values as ``warp(order=1)``
        inside the image, three times faster on these small images.
        """
        image = np.asarray(self.moving if image is None else image, dtype=np.float64)
        out = np.empty((len(matrices), *self.fixed.shape))
        for k, m in enumerate(matrices):
            out[k] = warp_linear(image, m, self.fixed.shape)
        return out

    def costs(self, matrices: np.ndarray) -> np.ndarray:
        warped = self._warp_many(matrices)
        out = np.empty(len(matrices))
        for k, image in enumerate(warped):
            try:
                value = self.metric.cost(self.fixed, image, self.disc, **self.options)
            except InputError:  # e.g. no contrast left under this candidate: a bad candidate
                value = np.inf
            out[k] = value if np.isfinite(value) else np.inf
        return out

    # -- translations by FFT cross-correlation --------------------------------------------
    def _shifts(self, rotated: np.ndarray, valid: np.ndarray) -> list[np.ndarray]:
        """Best shifts ``s`` (x, y) with ``rotated(x + s) ~ fixed(x)``, one per feature."""
        rows, cols = self.fixed.shape
        shape = (2 * rows, 2 * cols)  # zero padding: no wrap-around between shifts
        if self._fixed_spectra is None:  # the same for every call
            window = self.disc.astype(np.float64)
            self._fixed_spectra = [
                # float32: a peak position needs no more, and the transforms run twice as fast.
                np.conj(np.fft.rfft2(_zero_mean(image, window).astype(np.float32), shape))
                for image in (self.fixed, _gradient_magnitude(self.fixed))
            ]
        out = []
        for feature, fixed_spectrum in zip(
            (lambda a: a, _gradient_magnitude), self._fixed_spectra, strict=True
        ):
            r = _zero_mean(feature(rotated), valid).astype(np.float32)
            spectrum = fixed_spectrum * np.fft.rfft2(r, shape, axes=(-2, -1))
            # Partial whitening: sharper peaks than plain correlation, less noise-prone
            # than full phase correlation.
            spectrum /= np.sqrt(np.maximum(np.abs(spectrum), 1e-12))
            corr = np.fft.irfft2(spectrum, shape, axes=(-2, -1))
            out.append(_peaks(corr, shape))
        return out

    # -- methods -------------------------------------------------------------------------
    def _candidates(self, angles: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Candidate coarse matrices, shape ``(variants, n, 3, 3)``, for each (angle, scale).

        Variant 0 only aligns the image centres; variants 1 and 2 add the shift found by
        cross-correlating the intensities and the gradient magnitudes.
        """
        name = self.transform.name
        if name == "rotation":
            center = self._coarse_center()
            return np.array([[_matrix(_rotation(a), center, center) for a in angles]])
        rotations = np.array(
            [
                _matrix(_rotation(a, s), self.fixed_center, self.moving_center)
                for a, s in zip(angles, scales, strict=True)
            ]
        )
        rotated = self._warp_many(rotations)
        valid = self._warp_many(rotations, np.ones_like(self.moving))  # where there is data
        candidates = [rotations]
        for shifts in self._shifts(rotated, valid):
            moved = rotations.copy()
            moved[:, :2, 2] += np.einsum("nij,nj->ni", rotations[:, :2, :2], shifts)
            candidates.append(moved)
        return np.array(candidates)

    def _window(self, shape, center, radius) -> np.ndarray:
        """Hann-tapered disc: 1 at ``center``, 0 from ``radius`` on (read-only, cached)."""
        return _hann_disc(tuple(int(n) for n in shape), float(center[0]), float(center[1]), radius)

    def _signature(self, image: np.ndarray, window: np.ndarray) -> np.ndarray:
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

    def fourier_angles(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``count`` best rotation angles (modulo a half turn) and their agreements.

        The spectrum magnitude of the moving image is that of the fixed image turned by the
        rotation of ``M`` (translation only changes the phase), so the circular
        cross-correlation of the two signatures along the angle peaks at that rotation, found
        for every angle at once by FFTs of length :data:`FOURIER_ANGLES`.  The agreement is
        the peak divided by its largest possible value (1: same signatures up to the turn).
        """
        radius = 0.5 * min(*self.fixed.shape, *self.moving.shape)
        fixed = self._signature(
            self.fixed, self._window(self.fixed.shape, self.fixed_center, radius)
        )
        moving = self._signature(
            self.moving, self._window(self.moving.shape, self.moving_center, radius)
        )
        spectrum = np.conj(np.fft.rfft(fixed, axis=1)) * np.fft.rfft(moving, axis=1)
        corr = np.fft.irfft(spectrum.sum(axis=0), FOURIER_ANGLES) / len(fixed)
        before, after = np.roll(corr, 1), np.roll(corr, -1)
        peaks = np.flatnonzero((corr >= before) & (corr > after))
        peaks = peaks[np.argsort(corr[peaks])[::-1][:count]]
        if peaks.size == 0:
            return np.zeros(1), np.zeros(1)
        # Parabola through the three samples around each peak: sub-degree angles.
        denominator = before[peaks] - 2 * corr[peaks] + after[peaks]
        safe = np.where(np.abs(denominator) > 1e-12, denominator, -1.0)
        offset = np.clip(0.5 * (before[peaks] - after[peaks]) / safe, -0.5, 0.5)
        angles = (peaks + offset) * (math.pi / FOURIER_ANGLES)
        return angles, corr[peaks]

    def search(self, step: float, scales: tuple[float, ...], keep: int) -> np.ndarray:
        if self.transform.name == "translation":
            first = self._candidates(np.zeros(1), np.ones(1)).reshape(-1, 3, 3)
            return first[int(np.argmin(self.costs(first)))]
        if self.transform.name in _FOURIER_FIRST:
            angles, agreements = self.fourier_angles(FOURIER_PEAKS)
            angles = angles[agreements >= FOURIER_CONFIDENCE]
            if angles.size:
                # Each angle and its half-turn twin (the magnitude cannot tell them apart);
                # the metric decides, over the shifts found for each.
                both = np.concatenate([angles, angles + math.pi])
                candidates = self._candidates(both, np.ones(both.size)).reshape(-1, 3, 3)
                return candidates[int(np.argmin(self.costs(candidates)))]
        # Pass 1: the whole circle at scale 1.
        angles = np.arange(0.0, 2 * math.pi - 1e-9, step)
        first = self._candidates(angles, np.ones(angles.size))
        cost = self.costs(first.reshape(-1, 3, 3))
        # Pass 2: the best few distinct angles in finer steps.
        order = np.argsort(cost)
        chosen: list[float] = []
        for index in order:
            angle = float(angles[int(index) % angles.size])
            if all(_angle_gap(angle, a) > step / 2 for a in chosen):
                chosen.append(angle)
            if len(chosen) == keep:
                break
        fine = np.concatenate([a + np.linspace(-step, step, 7) for a in chosen])
        second = self._candidates(fine, np.ones(fine.size)).reshape(-1, 3, 3)
        second = np.concatenate([first.reshape(-1, 3, 3)[order[:1]], second])
        best = second[int(np.argmin(self.costs(second)))]
        angle = math.atan2(best[1, 0], best[0, 0])
        # Pass 3: finer still around the best angle (steps of step / 12).
        finer = angle + np.linspace(-step, step, 9)[[1, 2, 3, 5, 6, 7]] / 4
        third = self._candidates(finer, np.ones(finer.size)).reshape(-1, 3, 3)
        third = np.concatenate([best[None], third])
        best = third[int(np.argmin(self.costs(third)))]
        if len(scales) == 1 and scales[0] == 1.0:
            return best
        # Pass 4 (similarity): scales around the best angle.
        angle = math.atan2(best[1, 0], best[0, 0])
        near = angle + np.array([-step, 0.0, step]) / 6
        fourth = self._candidates(np.repeat(near, len(scales)), np.tile(scales, near.size))
        fourth = np.concatenate([best[None], fourth.reshape(-1, 3, 3)])
        return fourth[int(np.argmin(self.costs(fourth)))]

    def moments(self) -> np.ndarray:
        """Align centres of mass and principal axes; the metric picks among the 4 axis flips."""
        fixed_stats = _moments(self.fixed)
        moving_stats = _moments(self.moving)
        (cf, af, mass_f), (cm, am, mass_m) = fixed_stats, moving_stats
        name = self.transform.name
        scale = math.sqrt(mass_m / mass_f) if name in ("similarity", "affine") else 1.0
        angles = am - af + np.arange(4) * (math.pi / 2)
        if name == "translation":
            return _matrix(np.eye(2), cf, cm)
        if name == "rotation":
            center = self._coarse_center()
            candidates = np.array([_matrix(_rotation(a), center, center) for a in angles])
        else:
            candidates = np.array([_matrix(_rotation(a, scale), cf, cm) for a in angles])
        return candidates[int(np.argmin(self.costs(candidates)))]


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


def _angle_gap(a: float, b: float) -> float:
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


def _peaks(corr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Sub-pixel (x, y) position of the maximum of each correlation surface, as signed shifts."""
    n = len(corr)
    flat = corr.reshape(n, -1).argmax(axis=1)
    iy, ix = np.unravel_index(flat, shape)
    rows = np.arange(n)

    def refine(centre, minus, plus):
        # Parabola through three samples: the vertex offset, bounded to half a pixel.
        denominator = minus - 2 * centre + plus
        safe = np.where(np.abs(denominator) > 1e-12, denominator, -1.0)
        return np.clip(0.5 * (minus - plus) / safe, -0.5, 0.5)

    h, w = shape
    c = corr[rows, iy, ix]
    dy = refine(c, corr[rows, (iy - 1) % h, ix], corr[rows, (iy + 1) % h, ix])
    dx = refine(c, corr[rows, iy, (ix - 1) % w], corr[rows, iy, (ix + 1) % w])
    sy = np.where(iy > h // 2, iy - h, iy) + dy
    sx = np.where(ix > w // 2, ix - w, ix) + dx
    return np.column_stack([sx, sy])


def _moments(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centre (x, y), principal-axis angle and area of the image's foreground.

    The foreground is where the (smoothed) image exceeds 10 % of its range above the darkest
    decile, a definition that does not depend much on the modality's contrast.
    """
    low, high = np.percentile(image, [10, 99.5])
    if high <= low:
        raise InputError("init: the image is constant; moments are undefined")
    weight = (image > low + 0.1 * (high - low)).astype(np.float64)
    mass = weight.sum()
    if mass < 3:
        raise InputError("init: the image has no foreground to take moments of")
    y, x = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float64)
    cx, cy = (weight * x).sum() / mass, (weight * y).sum() / mass
    mu20 = (weight * (x - cx) ** 2).sum() / mass
    mu02 = (weight * (y - cy) ** 2).sum() / mass
    mu11 = (weight * (x - cx) * (y - cy)).sum() / mass
    angle = 0.5 * math.atan2(2 * mu11, mu20 - mu02)
    return np.array([cx, cy]), angle, float(mass)
