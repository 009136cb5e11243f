"""Each candidate pose's best shifts, for the global search (:mod:`regcli.search`).

A candidate's linear part (angle, scale) is guessed from the images' Fourier signatures; its
shift is found here, from a correlation of the two coarse images: for a pure translation the
masked, overlap-normalised correlation of the whole images (:mod:`regcli.xcorr`), for a turned
or scaled pose the peak of a partially whitened correlation of the fixed image with the moving
image resampled onto a canvas in fixed-image pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import fft as _fft

from regcli import spectra
from regcli.coarse import CoarsePair
from regcli.metrics import Metric
from regcli.resample import warp_linear
from regcli.transforms import translation_matrix
from regcli.xcorr import fisher_z

__all__ = ["shift_candidates", "shift_features"]


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
