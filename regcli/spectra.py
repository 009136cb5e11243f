"""Rotation and scale from Fourier magnitudes, whatever the shift (the search's proposals).

The magnitude of an image's spectrum ignores translations; turning the image turns it, and
zooming the image by ``s`` shrinks it by ``s``.  Sampling the magnitudes on rings, the rotation
becomes a circular shift along the angle, and with rings at log-spaced radii (Fourier-Mellin)
the zoom becomes a shift along the log-radius.  Cross-correlating the two images' signatures
along those axes (FFTs) gives every rotation, or every (rotation, scale), at once:

* :func:`fourier_angles`: rotations modulo a half turn, for rigid and rotation transforms
  (rings at linear radii, the images at the same scale);
* :func:`fourier_mellin`: (rotation, scale) pairs for similarity and affine transforms.

Both are proposals: the magnitude cannot tell an angle from its half-turn twin, windows and
content leaving the frame blur the peaks, so the search verifies each with the metric.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import fft as _fft

__all__ = [
    "FOURIER_ANGLES",
    "FOURIER_RINGS",
    "fourier_angles",
    "fourier_mellin",
    "gradient_magnitude",
    "mellin_surface",
    "parabola_offset",
    "surface_peaks",
]

#: Angles sampled over half a turn by the signatures (1 degree apart).
FOURIER_ANGLES = 180
#: Rings of the rotation signature, between 2 cycles per image and 0.45 cycles per pixel.
FOURIER_RINGS = 24
#: Log-spaced rings of the Fourier-Mellin signature, over the same band.
MELLIN_RINGS = 48


def gradient_magnitude(images: np.ndarray) -> np.ndarray:
    """``|grad image|`` of an image or a stack (central differences; an axis of a single
    sample, the coarse copy of a very thin image, has no gradient along it)."""
    images = np.asarray(images)
    present = [np.gradient(images, axis=axis) for axis in (-2, -1) if images.shape[axis] > 1]
    if len(present) == 2:
        return np.hypot(*present)
    return np.abs(present[0]) if present else np.zeros(images.shape)


def zero_mean(images: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Subtract each image's weighted mean and apply the weights (a soft window)."""
    total = np.maximum(weights.sum(axis=(-2, -1), keepdims=True), 1e-12)
    mean = (images * weights).sum(axis=(-2, -1), keepdims=True) / total
    return (images - mean) * weights


def parabola_offset(minus: np.ndarray, centre: np.ndarray, plus: np.ndarray) -> np.ndarray:
    """Vertex of the parabola through three equally spaced samples, relative to the middle
    one and bounded to half a step (0 where the samples are collinear)."""
    denominator = minus - 2 * centre + plus
    safe = np.where(np.abs(denominator) > 1e-12, denominator, -1.0)
    return np.clip(0.5 * (minus - plus) / safe, -0.5, 0.5)


def _window(shape, center, radius, weights=None) -> np.ndarray:
    """Hann-tapered disc: 1 at ``center``, 0 from ``radius`` on; times ``weights`` (where the
    image has data) when given."""
    disc = _hann_disc(tuple(int(n) for n in shape), float(center[0]), float(center[1]), radius)
    return disc if weights is None else disc * weights


@functools.lru_cache(maxsize=8)
def _hann_disc(shape: tuple[int, int], cx: float, cy: float, radius: float) -> np.ndarray:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    r = np.hypot(x - cx, y - cy) / radius
    out = np.where(r < 1.0, 0.5 + 0.5 * np.cos(np.pi * np.minimum(r, 1.0)), 0.0)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=16)
def _polar_sampler(side: int, rings: int, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear sampling of a ``side x side`` spectrum on rings over half a turn.

    The samples lie in the half plane of non-negative vertical frequencies, which a real
    transform along the rows gives (the magnitudes of a real image's spectrum are symmetric):
    the spectrum is ``(side // 2 + 1, side)``, row ``k`` the vertical frequency ``k``, the
    columns centred (``fftshift``).  Returns flat indices ``(4, rings, angles)`` of the four
    neighbours of every sample and their weights: ``sum(weights * spectrum.ravel()[index],
    axis=0)`` is linear interpolation without its per-call set-up.  Radii from 2 frequency
    samples to 0.45 of the side, linearly or geometrically spaced.
    """
    theta = np.arange(FOURIER_ANGLES) * (math.pi / FOURIER_ANGLES)
    low, high = 2.0, 0.45 * side
    radii = np.geomspace(low, high, rings) if log else np.linspace(low, high, rings)
    center = side // 2
    rows = center + radii[:, None] * np.sin(theta)[None, :]
    cols = center + radii[:, None] * np.cos(theta)[None, :]
    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = rows - r0, cols - c0
    # (rows >= center: sin >= 0 over half a turn; the clip keeps r0 + 1 <= side // 2)
    r0 = np.clip(r0.astype(np.intp), 0, side - 2) - center
    c0 = np.clip(c0.astype(np.intp), 0, side - 2)
    base = r0 * side + c0
    index = np.stack([base, base + 1, base + side, base + side + 1])
    weights = np.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc])
    index.flags.writeable = False
    weights.flags.writeable = False
    return index, weights


def _rings(image: np.ndarray, window: np.ndarray, side: int, rings: int, log: bool):
    """Square-rooted Fourier magnitudes of the windowed image and of its gradient magnitude
    on the rings: ``(2, rings, FOURIER_ANGLES)``."""
    index, weights = _polar_sampler(side, rings, log)
    values = zero_mean(np.stack([image, gradient_magnitude(image)]), window)
    # Zero padding to a square: equal frequency steps along x and y; a real transform along
    # the rows (the half plane the rings sample), the columns centred.
    spectrum = _fft.rfft2(values, (side, side), axes=(-1, -2))
    magnitudes = np.abs(np.fft.fftshift(spectrum, axes=-1)).reshape(2, -1)
    return np.sqrt([np.einsum("kij,kij->ij", m[index], weights) for m in magnitudes])


def _unit_rows(rings: np.ndarray) -> np.ndarray:
    """Each ring zero-mean and unit-norm along the angle, so that every ring weighs the same."""
    out = rings - rings.mean(axis=-1, keepdims=True)
    return out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)


def _windows(pair, scale: float = 1.0):
    """Hann discs on each image's domain; the moving one ``scale`` times bigger (so that at
    the right scale both windows cover the same content)."""
    radius = 0.5 * min(*pair.fixed.shape, *pair.moving.shape)
    fixed_weights = None if pair.fixed_domain.full else pair.fixed_domain.valid()
    moving_weights = None if pair.moving_domain.full else pair.moving_domain.valid()
    return (
        _window(pair.fixed.shape, pair.fixed_center, radius, fixed_weights),
        _window(pair.moving.shape, pair.moving_center, radius * scale, moving_weights),
    )


def fourier_angles(pair, count: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` best rotation angles (modulo a half turn) of a coarse pair and their
    agreements.

    The circular cross-correlation of the two ring signatures along the angle peaks at the
    rotation of ``M``, found for every angle at once by FFTs of length
    :data:`FOURIER_ANGLES`.  The agreement is the peak divided by its largest possible value
    (1: same signatures up to the turn).

    Parameters
    ----------
    pair : regcli.search.CoarsePair

    Returns
    -------
    angles, agreements : (count,) ndarrays
        Radians in [0, pi), best first (one zero angle with zero agreement if no peak).
    """
    side = max(*pair.fixed.shape, *pair.moving.shape)
    fixed_window, moving_window = _windows(pair)
    fixed = _unit_rows(_rings(pair.fixed, fixed_window, side, FOURIER_RINGS, False))
    moving = _unit_rows(_rings(pair.moving, moving_window, side, FOURIER_RINGS, False))
    fixed, moving = fixed.reshape(-1, FOURIER_ANGLES), moving.reshape(-1, FOURIER_ANGLES)
    spectrum = np.conj(np.fft.rfft(fixed, axis=1)) * np.fft.rfft(moving, axis=1)
    corr = np.fft.irfft(spectrum.sum(axis=0), FOURIER_ANGLES) / len(fixed)
    before, after = np.roll(corr, 1), np.roll(corr, -1)
    peaks = np.flatnonzero((corr >= before) & (corr > after))
    peaks = peaks[np.argsort(corr[peaks])[::-1][:count]]
    if peaks.size == 0:
        return np.zeros(1), np.zeros(1)
    # Sub-degree angles from the parabola through the three samples around each peak.
    offset = parabola_offset(before[peaks], corr[peaks], after[peaks])
    angles = (peaks + offset) * (math.pi / FOURIER_ANGLES)
    return angles, corr[peaks]


def fourier_mellin(
    pair, scales: tuple[float, float] = (0.5, 2.0), count: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``count`` best (angle modulo a half turn, scale) pairs of a coarse pair.

    Log-polar Fourier magnitudes (Fourier-Mellin): a zoom of the moving image by ``s`` moves
    its rings by ``log(s)`` along the log-radius.  The best local maxima of
    :func:`mellin_surface` over ``scales``, with their agreements in [-1, 1].

    Returns
    -------
    angles, scales, agreements : (k,) ndarrays
        Radians in [0, pi), scales of ``M`` (fixed -> moving: > 1 when the moving content is
        bigger), best first.
    """
    surface, log_scales = mellin_surface(pair, scales)
    return surface_peaks(surface, log_scales, count)


def mellin_surface(pair, scales: tuple[float, float] = (0.5, 2.0)):
    """Agreement of the log-polar signatures for every (scale, angle).

    For every ring offset within ``scales`` the rings that overlap are correlated along the
    angle (each ring zero-mean and unit-norm, averaged over the rings).

    Returns
    -------
    surface : (n_scales, FOURIER_ANGLES) ndarray
        Row ``k``: the agreement at scale ``exp(log_scales[k])`` for each angle
        ``j * pi / FOURIER_ANGLES``.
    log_scales : (n_scales,) ndarray
    """
    side = max(*pair.fixed.shape, *pair.moving.shape)
    fixed_window, moving_window = _windows(pair)
    fixed = _rings(pair.fixed, fixed_window, side, MELLIN_RINGS, True)
    moving = _rings(pair.moving, moving_window, side, MELLIN_RINGS, True)
    step = math.log(0.45 * side / 2.0) / (MELLIN_RINGS - 1)  # log-radius between rings
    # A moving ring at radius rho shows the fixed ring at radius scale * rho.
    offsets = np.arange(
        math.floor(math.log(scales[0]) / step + 1e-9),
        math.ceil(math.log(scales[1]) / step - 1e-9) + 1,
    )
    fixed_spectra = np.fft.rfft(fixed, axis=-1)
    moving_spectra = np.fft.rfft(moving, axis=-1)
    fixed_spectra[..., 0] = moving_spectra[..., 0] = 0.0  # each ring zero-mean
    fixed_spectra /= _ring_norms(fixed)[..., None]
    moving_spectra /= _ring_norms(moving)[..., None]
    rows = []
    for k in offsets:
        lo, hi = max(0, -k), min(MELLIN_RINGS, MELLIN_RINGS - k)
        if hi - lo < MELLIN_RINGS // 3:
            rows.append(np.full(FOURIER_ANGLES, -1.0))
            continue
        product = np.conj(fixed_spectra[:, lo + k : hi + k]) * moving_spectra[:, lo:hi]
        corr = np.fft.irfft(product.sum(axis=(0, 1)), FOURIER_ANGLES)
        rows.append(corr / (2 * (hi - lo)))
    return np.array(rows), offsets * step


def _ring_norms(rings: np.ndarray) -> np.ndarray:
    """Norm of each ring after removing its mean along the angle (the correlation's scale)."""
    centred = rings - rings.mean(axis=-1, keepdims=True)
    return np.maximum(np.linalg.norm(centred, axis=-1), 1e-12)


def surface_peaks(surface: np.ndarray, log_scales: np.ndarray, count: int):
    """The ``count`` highest local maxima of the (scale offset, angle) surface, sub-sample."""
    padded = np.pad(surface, ((1, 1), (0, 0)), constant_values=-np.inf)
    around = [
        np.roll(padded, shift, axis=axis)[1:-1]
        for axis, shift in ((0, 1), (0, -1), (1, 1), (1, -1))
    ]
    is_peak = np.all([surface >= a for a in around], axis=0)
    rows, cols = np.nonzero(is_peak)
    order = np.argsort(surface[rows, cols])[::-1][:count]
    rows, cols = rows[order], cols[order]
    if rows.size == 0:
        return np.zeros(1), np.ones(1), np.zeros(1)
    value = surface[rows, cols]
    d_angle = parabola_offset(
        surface[rows, (cols - 1) % FOURIER_ANGLES],
        value,
        surface[rows, (cols + 1) % FOURIER_ANGLES],
    )
    up = surface[np.maximum(rows - 1, 0), cols]
    down = surface[np.minimum(rows + 1, len(surface) - 1), cols]
    d_scale = parabola_offset(up, value, down)
    angles = (cols + d_angle) * (math.pi / FOURIER_ANGLES)
    step = log_scales[1] - log_scales[0] if len(log_scales) > 1 else 0.0
    scales = np.exp(log_scales[rows] + d_scale * step)
    return angles, scales, value
