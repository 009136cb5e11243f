"""Sub-pixel precision: the images the finest pyramid level compares.

Why the finest level does not compare the images as they are
-------------------------------------------------------------
Bilinear interpolation at a fractional shift ``t`` is the two-tap filter ``[1 - t, t]``: it
leaves a whole-pixel shift untouched and smooths a half-pixel shift most (its response at
frequency ``w`` is ``|H_t(w)|^2 = 1 - 2 t (1 - t) (1 - cos w)``).  A cost that compares the
sharp fixed image with the bilinearly warped moving image is therefore lowest where the
warped image is smoothed least, and its minimum is pulled towards whole-pixel shifts.  On
``skimage.data.camera()`` shifted by sub-pixel amounts with ``scipy.ndimage.fourier_shift``
the minimum of the bilinear SSD itself, on an interior mask (neither the stopping rule nor
the border), lies 0.01-0.07 px from the truth.

What the finest level compares instead
--------------------------------------
* The moving image **upsampled by 2 with cubic B-spline interpolation** (:func:`upsample`):
  its even samples are the image, its odd samples the spline between them.  The objective
  reads it with the same bilinear kernel as every other level, at half-pixel spacing, where
  what is left of the position-dependent smoothing is four times smaller.
* For the metrics that compare intensities linearly (``Metric.same_modality``: SSD,
  correlation), **both images smoothed** by the binomial filter ``[1, 2, 1] / 4`` along each
  axis first (:func:`smooth`; standard deviation 0.71 px): it removes the frequencies whose
  amplitude interpolation changes most, and smoothing commutes with a linear intensity map,
  so the two smoothed images still match.  Across modalities it does not (MI of smoothed T1 /
  T2 pairs ended 0.05 px off instead of 0.03), so MI-like metrics get the upsampling alone.
* Pixels within :data:`MARGIN` of either image's border are left out (the smoothing reads
  repeated edge pixels there; without the margin the camera shifts ended 0.03-0.07 px off,
  and a zero-filled moving image, whose fill edge lies on the fixed border, 0.2 px off),
  and within :data:`MASK_MARGIN` of a mask.

Measured on the camera shifts (minimum of the objective, interior mask): smoothing with
sigma 1 and bilinear interpolation on the original grid, 0.004-0.011 px; the same with the 2x
upsampled image, within 0.002 px; a cubic B-spline warp of the smoothed image, within 0.001 px
but five times the cost per evaluation at 256^2.  Registrations with this module: median
0.002-0.003 px, at most 0.009 px, noise-free or with 2 % noise (``bench/run.py --parts
precision``).

The upsampled copy is made once per registration (float32, four times the pixels; about
0.7 ms at 256^2, and the finest level then often needs fewer steps); above
:data:`MAX_UPSAMPLED_PIXELS` (time, memory) the moving image is only smoothed.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from regcli.domain import KEEP_ERODED
from regcli.objective import LevelObjective

__all__ = [
    "MARGIN",
    "MASK_MARGIN",
    "MAX_UPSAMPLED_PIXELS",
    "SMOOTHING",
    "finest_objective",
    "smooth",
    "upsample",
]

#: The smoothing of both images at the finest level for ``same_modality`` metrics: binomial
#: ``[1, 2, 1] / 4`` along each axis (variance 0.5 px^2).  ``[1, 4, 6, 4, 1] / 16`` removes a
#: little more of the interpolation bias on noise-free images but, on the benchmark's noisy
#: pairs, gave 10 % larger errors.
SMOOTHING = np.array([1.0, 2.0, 1.0]) / 4.0
#: Pixels this close to an image's border (or its domain's) are not compared at the finest
#: level: the smoothing and the cubic spline's ringing reach that far.  A moving image made by
#: warping with zero fill has the fill's edge exactly on the fixed image's border (the fill is
#: what maps outside it); with 1 px its leak biased translations by 0.2 px.
MARGIN = 3.0
#: Pixels this close to a domain's mask are not compared at the finest level: the filters put
#: more than 1 % of the (filled) pixels outside a mask into the pixels within 2 px of it.  A
#: mask that this erosion would mostly remove (scattered pixels: scikit-image's example with a
#: quarter of the pixels corrupted at random) leaves the finest level as it is (bilinear, no
#: smoothing): smoothed, the fill reached nearly every pixel and the error went from 0.008 to
#: 0.08 px.
MASK_MARGIN = 2.0
#: Moving images of more pixels than this (about 724^2) are only smoothed, not upsampled: the
#: copy has four times the pixels, and at 1024^2 making it took 15 ms of a 50 ms registration.
#: On the benchmark's 1024^2 pairs (cubic upsamplings of a 256^2 slice, smooth at the pixel
#: scale) smoothing alone was as precise (median 0.0031 px, both); on a picture with detail at
#: the pixel scale it leaves about 0.01-0.02 px of the bias (bilinear at 0.07 px before).
MAX_UPSAMPLED_PIXELS = 1 << 19
#: Taps of the half-sample filter below this size are dropped (the next ones are 1e-3; the
#: rest then sum to 1).  Twelve taps instead of eight changed no result by 1e-4 px.
_TAP_CUTOFF = 2e-3


@functools.cache
def _half_sample_taps(smoothed: bool = True) -> tuple[np.ndarray, int]:
    """The filter that gives the (``smoothed``: :data:`SMOOTHING` first) image's cubic
    B-spline at ``j + 1/2`` from its samples: ``value(j + 1/2) = sum_i taps[i] *
    image[j + first + i]``; returns ``(taps, first)``.

    Built from its definition on an impulse: the smoothing, the B-spline prefilter
    (``scipy.ndimage.spline_filter1d``) and the cubic B-spline's weights at half a sample,
    ``(1, 23, 23, 1) / 48``.
    """
    size = 64
    centre = size // 2
    impulse = np.zeros(size)
    impulse[centre] = 1.0
    signal = np.convolve(impulse, SMOOTHING, mode="same") if smoothed else impulse
    coefficients = ndimage.spline_filter1d(signal, 3, mode="mirror")
    # half[i]: the spline at i + 1.5
    half = (
        coefficients[:-3] + 23.0 * coefficients[1:-2] + 23.0 * coefficients[2:-1] + coefficients[3:]
    ) / 48.0
    # The impulse at ``centre`` adds half[j - 1] to the value at j + 1/2: the tap of offset
    # centre - j.
    offsets = np.arange(3 - centre, centre)
    taps = half[centre - offsets - 1]
    keep = np.abs(taps) >= _TAP_CUTOFF
    offsets, taps = offsets[keep], taps[keep]
    return taps / taps.sum(), int(offsets[0])


def _correlate(image, weights, first: int, axis: int, output) -> None:
    """``output[j] = sum_i weights[i] * image[j + first + i]`` along ``axis`` (edges
    repeated)."""
    # ndimage.correlate1d centres the weights at len // 2 + origin.
    origin = -(len(weights) // 2) - first
    ndimage.correlate1d(image, weights, axis=axis, output=output, mode="nearest", origin=origin)


def smooth(image: np.ndarray) -> np.ndarray:
    """``image`` smoothed by :data:`SMOOTHING` along both axes, as float32 (edges repeated);
    the same operations as the even samples of :func:`upsample`, so the same values."""
    image = np.asarray(image, dtype=np.float32)
    reach = len(SMOOTHING) // 2
    rows = image.shape[0]
    tall = np.empty((rows + 2 * reach, image.shape[1]), dtype=np.float32)
    inner = tall[reach : reach + rows]
    ndimage.correlate1d(image, SMOOTHING, axis=1, output=inner, mode="nearest")
    tall[:reach] = inner[0]
    tall[reach + rows :] = inner[-1]
    out = np.empty_like(image)
    _symmetric_filter(tall, SMOOTHING, 0, out, np.empty_like(image))
    return out


def upsample(image: np.ndarray, *, smoothed: bool = True) -> np.ndarray:
    """``image`` (``smoothed``: by :func:`smooth` first) sampled at half-pixel steps by cubic
    B-spline interpolation, as float32 ``(2 rows, 2 cols)`` (:data:`regcli.objective.UPSAMPLED`):
    sample ``(i, j)`` is the image at pixel ``(i / 2, j / 2)``, so the even samples are the
    (smoothed) image itself; the last row and column, half a pixel outside, repeat the edge.

    Along the rows first (``correlate1d``, into the even and odd columns of an array with the
    edge rows repeated around it), then along the columns by whole-row sums of symmetric pairs
    into the even and odd rows of the result: a third faster than the other order, whose
    second pass filtered twice the pixels into strided columns.
    """
    image = np.asarray(image, dtype=np.float32)
    taps, first = _half_sample_taps(smoothed)
    even = SMOOTHING if smoothed else np.ones(1)
    even_first = -(len(even) // 2)
    before = max(-first, -even_first)
    after = max(first + len(taps), even_first + len(even)) - 1
    rows, cols = image.shape
    wide = np.empty((rows + before + after, 2 * cols), dtype=np.float32)
    inner = wide[before : before + rows]
    ndimage.correlate1d(image, even, axis=1, output=inner[:, 0::2], mode="nearest")
    _correlate(image, taps, first, 1, inner[:, 1::2])
    wide[:before] = inner[0]
    wide[before + rows :] = inner[-1]
    out = np.empty((2 * rows, 2 * cols), dtype=np.float32)
    term = np.empty((rows, 2 * cols), dtype=np.float32)
    _symmetric_filter(wide, even, before + even_first, out[0::2], term)
    _symmetric_filter(wide, taps, before + first, out[1::2], term)
    return out


def _symmetric_filter(padded, weights, start: int, out, term) -> None:
    """``out[j] = sum_i weights[i] * padded[j + start + i]`` along axis 0, for symmetric
    ``weights`` (``weights[i] == weights[-1 - i]``), by whole-row sums of the pairs of rows
    that share a weight (``correlate1d`` along axis 0 is several times slower); ``term`` is
    scratch space of ``out``'s shape."""
    n, size = out.shape[0], len(weights)
    weights = np.asarray(weights, dtype=np.float32)
    for i in range(size // 2):
        np.add(padded[start + i : start + i + n], padded[start + size - 1 - i :][:n], out=term)
        if i == 0:
            np.multiply(term, weights[i], out=out)
        else:
            term *= weights[i]
            out += term
    if size % 2:
        middle = padded[start + size // 2 : start + size // 2 + n]
        if size == 1:
            np.multiply(middle, weights[0], out=out)
        else:
            np.multiply(middle, weights[size // 2], out=term)
            out += term


def finest_objective(
    fixed: np.ndarray, moving: np.ndarray, transform, metric, options=None, *, domains=None
) -> LevelObjective:
    """The :class:`~regcli.objective.LevelObjective` of the finest level (the module's
    docstring): the moving image upsampled (only smoothed above
    :data:`MAX_UPSAMPLED_PIXELS`), both images smoothed for a ``same_modality`` metric,
    compared at least :data:`MARGIN` pixels inside both images (:data:`MASK_MARGIN` inside a
    mask); the plain objective when a mask is scattered pixels."""
    margins = []
    for domain in domains or ():
        if domain.full:
            margins.append(MARGIN)
        elif _compact(domain.mask):
            margins.append(MASK_MARGIN)
        else:
            return LevelObjective(fixed, moving, transform, metric, options, domains=domains)
    smoothed = bool(metric.same_modality)
    if moving.size <= MAX_UPSAMPLED_PIXELS:
        extra = {"upsampled": upsample(moving, smoothed=smoothed)}
    else:
        moving, extra = (smooth(moving) if smoothed else moving), {}
    return LevelObjective(
        smooth(fixed) if smoothed else fixed,
        moving,
        transform,
        metric,
        options,
        domains=domains,
        margins=tuple(margins) if margins else (MARGIN, MARGIN),
        **extra,
    )


def _compact(mask: np.ndarray) -> bool:
    """Whether eroding ``mask`` by :data:`MASK_MARGIN` pixels keeps at least half of it (the
    rule :class:`~regcli.domain.Domain` erodes masks by)."""
    eroded = ndimage.binary_erosion(
        mask, np.ones((3, 3), bool), iterations=int(MASK_MARGIN), border_value=1
    )
    return np.count_nonzero(eroded) >= KEEP_ERODED * np.count_nonzero(mask)
