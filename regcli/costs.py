"""The registration costs behind :data:`regcli.metrics.METRICS` (one per metric).

A cost is what registration *minimises*, per pixel, over the pixels where ``mask`` is true:

* ``cost(fixed, warped, mask=None, **options) -> float`` (``inf`` when it is undefined, e.g.
  no overlap or no contrast left);
* ``cost_gradient(fixed, warped, mask=None, **options) -> (cost, d cost / d warped)``, the
  derivative with respect to every pixel of ``warped`` (zero outside ``mask``).

SSD becomes the mean squared difference; similarities are negated.  The MI and NMI costs use
a Parzen-window joint histogram (:func:`regcli.histogram.parzen_joint_histogram`, Mattes et
al. 2003) with fixed bins, so they are differentiable; the gradient term and the Pluim measure
have a cost only.  The textbook functions and the registry live in :mod:`regcli.metrics`.
"""

from __future__ import annotations

import numpy as np

from regcli._validate import integer, smoothing_scale
from regcli.errors import InputError
from regcli.histogram import parzen_joint_histogram

#: Bins per axis of the Parzen joint histogram behind the MI / NMI / pluim *costs*.
DEFAULT_COST_BINS = 32


#: Fewest bins per axis of that histogram: the cubic B-spline window spans four bins.
MIN_COST_BINS = 4


#: Most bins per axis of that histogram (a 1024 x 1024 joint histogram is 8 MiB).
MAX_COST_BINS = 1024


#: Standard deviation (pixels) of the Gaussian that smooths images before their gradients
#: are taken for the gradient similarity (the chapter's value).
DEFAULT_SIGMA = 1.5


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` of two 1-D float arrays without BLAS.

    ``np.dot`` on pixel-sized vectors wakes OpenBLAS's threads, which then spin and slow
    everything else on a busy 2-core machine (correlation + lm on BrainMRI_4: 0.47 s instead
    of 0.125 s); einsum's own loop does the same sum on one core.
    """
    return float(np.einsum("i,i->", a, b))


def masked(fixed, warped, mask):
    """Flattened float64 views of the pixels to use, and their count."""
    f = np.asarray(fixed, dtype=np.float64)
    w = np.asarray(warped, dtype=np.float64)
    if mask is None:
        return f.ravel(), w.ravel(), f.size
    m = np.asarray(mask, dtype=bool)
    return f[m], w[m], int(np.count_nonzero(m))


def ssd_cost_gradient(fixed, warped, mask=None):
    """Mean squared difference over the mask, and its derivative per warped pixel."""
    diff = np.asarray(warped, dtype=np.float64) - np.asarray(fixed, dtype=np.float64)
    if mask is not None:
        diff = diff * mask
        n = int(np.count_nonzero(mask))
    else:
        n = diff.size
    if n == 0:
        return np.inf, np.zeros_like(diff)
    cost = dot(diff.ravel(), diff.ravel()) / n
    return cost, diff * (2.0 / n)


def ssd_cost(fixed, warped, mask=None):
    f, w, n = masked(fixed, warped, mask)
    if n == 0:
        return np.inf
    d = w - f
    return dot(d, d) / n


def correlation_cost_gradient(fixed, warped, mask=None):
    """``-r`` over the mask and ``d(-r)/d warped``: ``-(a / sqrt(Sa Sb) - r b / Sb)``."""
    f, w, n = masked(fixed, warped, mask)
    gradient = np.zeros(np.shape(warped), dtype=np.float64)
    if n < 2:
        return np.inf, gradient
    a = f - f.mean()
    b = w - w.mean()
    sum_aa, sum_bb = dot(a, a), dot(b, b)
    if sum_aa <= 0 or sum_bb <= 0:  # no contrast in the overlap: nothing to correlate
        return np.inf, gradient
    norm = np.sqrt(sum_aa * sum_bb)
    r = dot(a, b) / norm
    # Sum(a) = 0, so the mean of ``warped`` drops out of d(sum ab)/dw; d(Sb)/dw = 2 b.
    per_pixel = -(a / norm - r * b / sum_bb)
    if mask is None:
        gradient = per_pixel.reshape(gradient.shape)
    else:
        gradient[np.asarray(mask, dtype=bool)] = per_pixel
    return -r, gradient


def correlation_cost(fixed, warped, mask=None):
    f, w, n = masked(fixed, warped, mask)
    if n < 2:
        return np.inf
    a = f - f.mean()
    b = w - w.mean()
    sum_aa, sum_bb = dot(a, a), dot(b, b)
    if sum_aa <= 0 or sum_bb <= 0:
        return np.inf
    return -dot(a, b) / np.sqrt(sum_aa * sum_bb)


def check_bins(bins) -> tuple[int, int]:
    """Bins of the Parzen cost, ``None`` (the default), a whole number or a pair of them, each
    from :data:`MIN_COST_BINS` to :data:`MAX_COST_BINS` (``InputError(param="bins")``)."""
    if bins is None:
        bins = DEFAULT_COST_BINS
    pair = (bins, bins) if np.ndim(bins) == 0 else tuple(bins)
    if len(pair) != 2:
        raise InputError(
            f"bins: expected a whole number from {MIN_COST_BINS} to {MAX_COST_BINS} (or a pair "
            f"of them) for the MI cost, got {bins!r}",
            param="bins",
        )
    return (
        integer(pair[0], "bins", MIN_COST_BINS, MAX_COST_BINS),
        integer(pair[1], "bins", MIN_COST_BINS, MAX_COST_BINS),
    )


def check_range(value_range, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        lo = hi = np.nan
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InputError(
            f"{name}: expected (low, high) intensities with low < high, got {value_range!r}",
            param=name,
        )
    return lo, hi


def image_range(image) -> tuple[float, float]:
    lo, hi = float(np.min(image)), float(np.max(image))
    return (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)


def xlogx_terms(joint):
    """Marginals, their logs (0 where empty) and the three entropies of ``joint``."""
    fixed_marginal = joint.sum(axis=1)
    moving_marginal = joint.sum(axis=0)

    def safe_log(p):
        out = np.zeros_like(p)
        np.log(p, out=out, where=p > 0)
        return out

    log_joint = safe_log(joint)
    log_fixed = safe_log(fixed_marginal)
    log_moving = safe_log(moving_marginal)
    entropy_fixed = -float(np.dot(fixed_marginal, log_fixed))
    entropy_moving = -float(np.dot(moving_marginal, log_moving))
    entropy_joint = -float(np.vdot(joint, log_joint))
    return (log_joint, log_fixed, log_moving), (entropy_fixed, entropy_moving, entropy_joint)


def parzen_histogram(fixed, warped, mask, bins, moving_range, *, slopes: bool):
    """The checked options and the used pixels to :func:`parzen_joint_histogram`: its three
    results and the pixel count, or None when the mask is empty."""
    bin_pair = check_bins(bins)
    fixed_range = image_range(fixed)
    if moving_range is None:
        moving_range = image_range(warped)
    else:
        moving_range = check_range(moving_range, "moving_range")
    f, w, n = masked(fixed, warped, mask)
    if n == 0:
        return None
    joint, base, weight_slopes = parzen_joint_histogram(
        f, w, bin_pair, fixed_range, moving_range, slopes=slopes
    )
    return joint, base, weight_slopes, n


def parzen_cost_gradient(fixed, warped, mask, bins, moving_range, *, normalized, gradient):
    shape = np.shape(warped)
    parzen = parzen_histogram(fixed, warped, mask, bins, moving_range, slopes=gradient)
    if parzen is None:
        return (np.inf, np.zeros(shape)) if gradient else np.inf
    joint, base, slopes, n = parzen
    (log_joint, log_fixed, log_moving), (h_fixed, h_moving, h_joint) = xlogx_terms(joint)
    if normalized:
        value = (h_fixed + h_moving) / h_joint if h_joint > 0 else 2.0
    else:
        value = h_fixed + h_moving - h_joint
    if not gradient:
        return -value
    # d entropy / d P[i, j] = -(log p + 1) for the joint and each marginal holding P[i, j].
    d_joint = -(log_joint + 1)
    d_marginals = -(log_fixed[:, None] + 1) - (log_moving[None, :] + 1)
    if normalized:
        if h_joint <= 0:
            return -value, np.zeros(shape)
        d_value = (d_marginals * h_joint - (h_fixed + h_moving) * d_joint) / h_joint**2
    else:
        d_value = d_marginals - d_joint
    # d P[i, j] / d w(x) = slope_k(x) / n for the pixel's four bins; chain rule, negated.
    # One spare entry: the fourth bin of w == high is one past the end (with slope 0).
    flat_value = np.append(d_value.ravel(), 0.0) * (-1.0 / n)
    per_pixel = flat_value[base] * slopes[0]
    for k in (1, 2, 3):
        per_pixel += flat_value[base + k] * slopes[k]
    if mask is None:
        return -value, per_pixel.reshape(shape)
    out = np.zeros(shape)
    out[np.asarray(mask, dtype=bool)] = per_pixel
    return -value, out


def mi_cost(fixed, warped, mask=None, *, bins=DEFAULT_COST_BINS, moving_range=None):
    return parzen_cost_gradient(
        fixed, warped, mask, bins, moving_range, normalized=False, gradient=False
    )


def mi_cost_gradient(fixed, warped, mask=None, *, bins=DEFAULT_COST_BINS, moving_range=None):
    return parzen_cost_gradient(
        fixed, warped, mask, bins, moving_range, normalized=False, gradient=True
    )


def nmi_cost(fixed, warped, mask=None, *, bins=DEFAULT_COST_BINS, moving_range=None):
    return parzen_cost_gradient(
        fixed, warped, mask, bins, moving_range, normalized=True, gradient=False
    )


def nmi_cost_gradient(fixed, warped, mask=None, *, bins=DEFAULT_COST_BINS, moving_range=None):
    return parzen_cost_gradient(
        fixed, warped, mask, bins, moving_range, normalized=True, gradient=True
    )


def check_sigma(sigma) -> float:
    return smoothing_scale(sigma, "sigma")


def smoothed_gradient(image, sigma: float):
    """(d/dx, d/dy) of the image smoothed by a Gaussian of ``sigma`` pixels."""
    from scipy import ndimage

    arr = np.asarray(image, dtype=np.float64)
    if sigma == 0:
        gy, gx = np.gradient(arr)
        return gx, gy
    # Derivative-of-Gaussian filters; 'nearest' adds no false edge at the image border.
    gx = ndimage.gaussian_filter(arr, sigma, order=(0, 1), mode="nearest")
    gy = ndimage.gaussian_filter(arr, sigma, order=(1, 0), mode="nearest")
    return gx, gy


def gradient_similarity_map(image1, image2, sigma: float) -> np.ndarray:
    """Per-pixel ``w(a) min(|grad A|, |grad B|)`` with ``w(a) = (cos 2a + 1) / 2``."""
    ax, ay = smoothed_gradient(image1, sigma)
    bx, by = smoothed_gradient(image2, sigma)
    norm2_a = ax * ax + ay * ay
    norm2_b = bx * bx + by * by
    # A magnitude far below the image's largest one is numerical noise, and its angle is
    # meaningless: those pixels get weight 0.
    tiny = 1e-12 * max(float(norm2_a.max()), float(norm2_b.max()), np.finfo(float).tiny)
    valid = (norm2_a > tiny) & (norm2_b > tiny)
    dot = ax * bx + ay * by
    # (cos 2a + 1) / 2 = cos^2 a = (grad A . grad B)^2 / (|grad A|^2 |grad B|^2): no arccos.
    weight = np.zeros_like(dot)
    np.divide(dot * dot, norm2_a * norm2_b, out=weight, where=valid)
    return weight * np.sqrt(np.minimum(norm2_a, norm2_b))


def gradient_mean(fixed, warped, mask, sigma) -> float | None:
    """Gradient term averaged over the mask (so it does not grow with the image size)."""
    weights = gradient_similarity_map(fixed, warped, check_sigma(sigma))
    if mask is None:
        return float(weights.mean())
    used = np.asarray(mask, dtype=bool)
    count = int(np.count_nonzero(used))
    return float(weights[used].sum()) / count if count else None


def gradient_cost(fixed, warped, mask=None, *, sigma=DEFAULT_SIGMA):
    value = gradient_mean(fixed, warped, mask, sigma)
    return np.inf if value is None else -value


def pluim_cost(
    fixed, warped, mask=None, *, bins=DEFAULT_COST_BINS, sigma=DEFAULT_SIGMA, moving_range=None
):
    gradient_term = gradient_mean(fixed, warped, mask, sigma)
    if gradient_term is None:
        return np.inf
    # The Parzen NMI is smooth in the parameters, which suits derivative-free optimisers.
    information = -nmi_cost(fixed, warped, mask, bins=bins, moving_range=moving_range)
    return -(information * gradient_term)
