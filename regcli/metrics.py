"""Similarity criteria with one contract, and the ``METRICS`` registry.

Each criterion is a plain function ``f(image1, image2, **options) -> float`` with its textbook
definition (SSD is a *sum*; correlation, MI... are similarities, higher is better).  The
registry wraps it in a :class:`Metric` that adds what registration needs:

* ``cost(fixed, warped, mask=None, **options) -> float``: the quantity to *minimise*,
  computed over the pixels where ``mask`` is true (the overlap) and normalised per pixel
  (SSD becomes the mean squared difference; similarities are negated);
* ``cost_gradient(fixed, warped, mask=None, **options) -> (cost, dcost_dwarped)``: the same cost
  and its derivative with respect to every pixel of ``warped`` (zero outside ``mask``), or
  ``None`` when the metric has no analytic derivative.  The registration engine turns the
  per-pixel derivative into a parameter gradient with the chain rule (image gradient times the
  transform's Jacobian), so any metric that provides it works with every gradient optimiser.

The plain functions count a hard-binned :func:`~regcli.histogram.joint_histogram`.  The MI and
NMI *costs* use a Parzen-window joint histogram instead
(:func:`~regcli.histogram.parzen_joint_histogram`: cubic B-spline window on the moving axis,
Mattes et al. 2003), with :data:`DEFAULT_COST_BINS` bins (:data:`MIN_COST_BINS` to
:data:`MAX_COST_BINS`) over fixed intensity ranges (the fixed image's own, and
``moving_range`` for the moving image), so they are differentiable and their bins do not move
during an optimisation.  :meth:`Metric.prepare_options` sets ``moving_range`` for a pair of
images.  ``gradient`` and ``pluim`` provide a cost
only, for derivative-free optimisers.

Reference for the Parzen window: Mattes, Haynor, Vesselle, Lewellen, Eubank, "PET-CT image
registration in the chest using free-form deformations", IEEE TMI 22(1), 2003.
doi:10.1109/TMI.2003.809072
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from regcli._validate import check_image, check_same_shape, integer, positive_number
from regcli.errors import InputError
from regcli.histogram import (
    joint_entropy,
    joint_histogram,
    marginal_entropies,
    parzen_joint_histogram,
)

__all__ = [
    "DEFAULT_COST_BINS",
    "DEFAULT_SIGMA",
    "MAX_COST_BINS",
    "METRICS",
    "MIN_COST_BINS",
    "Metric",
    "correlation",
    "get_metric",
    "gradient_similarity",
    "mutual_information",
    "normalized_mutual_information",
    "pluim",
    "ssd",
]

#: Bins per axis of the Parzen joint histogram behind the MI / NMI / pluim *costs*.
DEFAULT_COST_BINS = 32
#: Fewest bins per axis of that histogram: the cubic B-spline window spans four bins.
MIN_COST_BINS = 4
#: Most bins per axis of that histogram (a 1024 x 1024 joint histogram is 8 MiB).
MAX_COST_BINS = 1024
#: Standard deviation (pixels) of the Gaussian that smooths images before their gradients
#: are taken for the gradient similarity (the chapter's value).
DEFAULT_SIGMA = 1.5


def _pair(image1, image2) -> tuple[np.ndarray, np.ndarray]:
    a = check_image(image1, name="image1")
    b = check_image(image2, name="image2")
    check_same_shape(a, b)
    return a, b


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` of two 1-D float arrays without BLAS.

    ``np.dot`` on pixel-sized vectors wakes OpenBLAS's threads, which then spin and slow
    everything else on a busy 2-core machine (correlation + lm on BrainMRI_4: 0.47 s instead
    of 0.125 s); einsum's own loop does the same sum on one core.
    """
    return float(np.einsum("i,i->", a, b))


def _masked(fixed, warped, mask):
    """Flattened float64 views of the pixels to use, and their count."""
    f = np.asarray(fixed, dtype=np.float64)
    w = np.asarray(warped, dtype=np.float64)
    if mask is None:
        return f.ravel(), w.ravel(), f.size
    m = np.asarray(mask, dtype=bool)
    return f[m], w[m], int(np.count_nonzero(m))


# --------------------------------------------------------------------------- SSD


def ssd(image1, image2) -> float:
    """Sum of squared differences, accumulated in float64 (no integer wrap-around).

    >>> ssd(np.zeros((2, 2)), np.ones((2, 2)))
    4.0
    """
    a, b = _pair(image1, image2)
    d = a.astype(np.float64) - b.astype(np.float64)
    return _dot(d.ravel(), d.ravel())


def _ssd_cost_gradient(fixed, warped, mask=None):
    """Mean squared difference over the mask, and its derivative per warped pixel."""
    diff = np.asarray(warped, dtype=np.float64) - np.asarray(fixed, dtype=np.float64)
    if mask is not None:
        diff = diff * mask
        n = int(np.count_nonzero(mask))
    else:
        n = diff.size
    if n == 0:
        return np.inf, np.zeros_like(diff)
    cost = _dot(diff.ravel(), diff.ravel()) / n
    return cost, diff * (2.0 / n)


def _ssd_cost(fixed, warped, mask=None):
    f, w, n = _masked(fixed, warped, mask)
    if n == 0:
        return np.inf
    d = w - f
    return _dot(d, d) / n


# --------------------------------------------------------------------------- correlation


def _check_not_constant(values: np.ndarray, name: str, what: str) -> None:
    if values.size and np.ptp(values) == 0:
        raise InputError(
            f"{name} is constant (every pixel is {values.flat[0]:g}): {what} is undefined "
            "for an image without contrast; use the 'ssd' metric or another image"
        )


def correlation(image1, image2) -> float:
    """Pearson correlation coefficient of the pixel values of two images, in [-1, 1].

    ``r = sum(a b) / sqrt(sum(a^2) sum(b^2))`` with ``a``, ``b`` the images minus their means.
    Invariant to a linear change of intensity (gain and offset) of either image.

    Raises
    ------
    InputError
        If the shapes differ, or if an image is constant (``r`` would be 0/0).

    >>> image = np.arange(6.0).reshape(2, 3)
    >>> round(correlation(image, 2 * image + 1), 12), round(correlation(image, -image), 12)
    (1.0, -1.0)
    """
    a, b = _pair(image1, image2)
    _check_not_constant(a, "image1", "the correlation")
    _check_not_constant(b, "image2", "the correlation")
    a = a.ravel().astype(np.float64)
    b = b.ravel().astype(np.float64)
    a -= a.mean()
    b -= b.mean()
    # Normalising each vector first keeps the product of two large sums from overflowing.
    r = _dot(a / np.sqrt(_dot(a, a)), b / np.sqrt(_dot(b, b)))
    return min(max(r, -1.0), 1.0)


def _correlation_cost_gradient(fixed, warped, mask=None):
    """``-r`` over the mask and ``d(-r)/d warped``: ``-(a / sqrt(Sa Sb) - r b / Sb)``."""
    f, w, n = _masked(fixed, warped, mask)
    gradient = np.zeros(np.shape(warped), dtype=np.float64)
    if n < 2:
        return np.inf, gradient
    a = f - f.mean()
    b = w - w.mean()
    sum_aa, sum_bb = _dot(a, a), _dot(b, b)
    if sum_aa <= 0 or sum_bb <= 0:  # no contrast in the overlap: nothing to correlate
        return np.inf, gradient
    norm = np.sqrt(sum_aa * sum_bb)
    r = _dot(a, b) / norm
    # Sum(a) = 0, so the mean of ``warped`` drops out of d(sum ab)/dw; d(Sb)/dw = 2 b.
    per_pixel = -(a / norm - r * b / sum_bb)
    if mask is None:
        gradient = per_pixel.reshape(gradient.shape)
    else:
        gradient[np.asarray(mask, dtype=bool)] = per_pixel
    return -r, gradient


def _correlation_cost(fixed, warped, mask=None):
    f, w, n = _masked(fixed, warped, mask)
    if n < 2:
        return np.inf
    a = f - f.mean()
    b = w - w.mean()
    sum_aa, sum_bb = _dot(a, a), _dot(b, b)
    if sum_aa <= 0 or sum_bb <= 0:
        return np.inf
    return -_dot(a, b) / np.sqrt(sum_aa * sum_bb)


# --------------------------------------------------------------------------- mutual information


def _entropies(image1, image2, bins):
    hist, _, _ = joint_histogram(image1, image2, bins=bins)
    entropy1, entropy2 = marginal_entropies(hist)
    return entropy1, entropy2, joint_entropy(hist)


def mutual_information(image1, image2, *, bins=None) -> float:
    """Mutual information ``H(A) + H(B) - H(A, B)`` in nats, from the joint histogram.

    Parameters
    ----------
    image1, image2 : (rows, cols) arrays
    bins : int, pair or edges, optional
        Bins of :func:`regcli.histogram.joint_histogram`; default one bin per grey level for
        8-bit images, the Rice rule for float and 16-bit images.

    Returns
    -------
    float
        ``>= 0``; ``MI(I, I) = H(I)``, and 0 for independent images (up to the bias of a
        histogram estimate, which grows with the number of bins).

    References
    ----------
    Pluim, Maintz, Viergever, "Mutual-information-based registration of medical images: a
    survey", IEEE TMI 22(8), 2003. :doi:`10.1109/TMI.2003.815867`
    """
    entropy1, entropy2, joint = _entropies(image1, image2, bins)
    return max(entropy1 + entropy2 - joint, 0.0)


def normalized_mutual_information(image1, image2, *, bins=None) -> float:
    """Studholme's normalised mutual information ``(H(A) + H(B)) / H(A, B)``, in [1, 2].

    1 for independent images, 2 for images that determine each other (``NMI(I, I) = 2``).
    Less sensitive than MI to the size of the overlap.  Two constant images give 2 (each
    determines the other), by convention.

    References
    ----------
    Studholme, Hill, Hawkes, "An overlap invariant entropy measure of 3D medical image
    alignment", Pattern Recognition 32(1), 1999. :doi:`10.1016/S0031-3203(98)00091-0`
    """
    entropy1, entropy2, joint = _entropies(image1, image2, bins)
    if joint <= 0:
        return 2.0
    return min(max((entropy1 + entropy2) / joint, 1.0), 2.0)


def _check_bins(bins) -> tuple[int, int]:
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


def _check_range(value_range, name: str) -> tuple[float, float]:
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


def _image_range(image) -> tuple[float, float]:
    lo, hi = float(np.min(image)), float(np.max(image))
    return (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)


def _xlogx_terms(joint):
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


def _parzen_histogram(fixed, warped, mask, bins, moving_range, *, slopes: bool):
    """The checked options and the used pixels to :func:`parzen_joint_histogram`: its three
    results and the pixel count, or None when the mask is empty."""
    bin_pair = _check_bins(bins)
    fixed_range = _image_range(fixed)
    if moving_range is None:
        moving_range = _image_range(warped)
    else:
        moving_range = _check_range(moving_range, "moving_range")
    f, w, n = _masked(fixed, warped, mask)
    if n == 0:
        return None
    joint, base, weight_slopes = parzen_joint_histogram(
        f, w, bin_pair, fixed_range, moving_range, slopes=slopes
    )
    return joint, base, weight_slopes, n


def _parzen_cost_gradient(fixed, warped, mask, bins, moving_range, *, normalized, gradient):
    shape = np.shape(warped)
    parzen = _parzen_histogram(fixed, warped, mask, bins, moving_range, slopes=gradient)
    if parzen is None:
        return (np.inf, np.zeros(shape)) if gradient else np.inf
    joint, base, slopes, n = parzen
    (log_joint, log_fixed, log_moving), (h_fixed, h_moving, h_joint) = _xlogx_terms(joint)
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


def _mi_cost(fixed, warped, mask=None, *, bins=DEFAULT_COST_BINS, moving_range=None):
    return _parzen_cost_gradient(
        fixed, warped, mask, bins, moving_range, normalized=False, gradient=False
    )


def _mi_cost_gradient(fixed, warped, mask=None, *, bins=DEFAULT_COST_BINS, moving_range=None):
    return _parzen_cost_gradient(
        fixed, warped, mask, bins, moving_range, normalized=False, gradient=True
    )


def _nmi_cost(fixed, warped, mask=None, *, bins=DEFAULT_COST_BINS, moving_range=None):
    return _parzen_cost_gradient(
        fixed, warped, mask, bins, moving_range, normalized=True, gradient=False
    )


def _nmi_cost_gradient(fixed, warped, mask=None, *, bins=DEFAULT_COST_BINS, moving_range=None):
    return _parzen_cost_gradient(
        fixed, warped, mask, bins, moving_range, normalized=True, gradient=True
    )


# --------------------------------------------------------------------------- gradient similarity


def _check_sigma(sigma) -> float:
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        value = np.nan
    if not (np.isfinite(value) and value >= 0):
        raise InputError(f"sigma: expected a number of pixels >= 0, got {sigma!r}")
    return value


def _smoothed_gradient(image, sigma: float):
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


def _gradient_similarity_map(image1, image2, sigma: float) -> np.ndarray:
    """Per-pixel ``w(a) min(|grad A|, |grad B|)`` with ``w(a) = (cos 2a + 1) / 2``."""
    ax, ay = _smoothed_gradient(image1, sigma)
    bx, by = _smoothed_gradient(image2, sigma)
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


def gradient_similarity(image1, image2, *, sigma: float = DEFAULT_SIGMA) -> float:
    """Pluim's gradient term: edges present in both images, with the same orientation.

    ``G = sum over pixels of w(a) * min(|grad A|, |grad B|)``, where ``a`` is the angle between
    the two Gaussian-smoothed gradients and ``w(a) = (cos 2a + 1) / 2`` maps both 0 and pi to
    1 (an edge may be bright-to-dark in one modality and dark-to-bright in the other).
    Pixels where either gradient vanishes contribute 0.  Units: intensity per pixel, summed
    (it grows with the image size and contrast; the registration cost divides by the pixel
    count).

    Parameters
    ----------
    image1, image2 : (rows, cols) arrays
    sigma : float
        Standard deviation in pixels of the Gaussian applied before differentiating
        (0: plain central differences).

    References
    ----------
    Pluim, Maintz, Viergever, "Image registration by maximization of combined mutual
    information and gradient information", IEEE TMI 19(8), 2000. :doi:`10.1109/42.876307`
    """
    a, b = _pair(image1, image2)
    return float(_gradient_similarity_map(a, b, _check_sigma(sigma)).sum())


def pluim(image1, image2, *, bins=None, sigma: float = DEFAULT_SIGMA, normalized=True) -> float:
    """The chapter's combined measure: mutual information times the gradient term.

    ``NMI(A, B) * G(A, B)`` (``normalized=True``, the chapter's default and Pluim et al.'s
    choice) or ``MI(A, B) * G(A, B)``; see :func:`normalized_mutual_information`,
    :func:`mutual_information` and :func:`gradient_similarity`.

    References
    ----------
    Pluim, Maintz, Viergever, IEEE TMI 19(8), 2000. :doi:`10.1109/42.876307`
    """
    a, b = _pair(image1, image2)
    information = (normalized_mutual_information if normalized else mutual_information)(
        a, b, bins=bins
    )
    return information * gradient_similarity(a, b, sigma=sigma)


def _gradient_mean(fixed, warped, mask, sigma) -> float | None:
    """Gradient term averaged over the mask (so it does not grow with the image size)."""
    weights = _gradient_similarity_map(fixed, warped, _check_sigma(sigma))
    if mask is None:
        return float(weights.mean())
    used = np.asarray(mask, dtype=bool)
    count = int(np.count_nonzero(used))
    return float(weights[used].sum()) / count if count else None


def _gradient_cost(fixed, warped, mask=None, *, sigma=DEFAULT_SIGMA):
    value = _gradient_mean(fixed, warped, mask, sigma)
    return np.inf if value is None else -value


def _pluim_cost(
    fixed, warped, mask=None, *, bins=DEFAULT_COST_BINS, sigma=DEFAULT_SIGMA, moving_range=None
):
    gradient_term = _gradient_mean(fixed, warped, mask, sigma)
    if gradient_term is None:
        return np.inf
    # The Parzen NMI is smooth in the parameters, which suits derivative-free optimisers.
    information = -_nmi_cost(fixed, warped, mask, bins=bins, moving_range=moving_range)
    return -(information * gradient_term)


# --------------------------------------------------------------------------- the contract


@dataclass(frozen=True)
class Metric:
    """A similarity criterion and what registration needs of it.

    Attributes
    ----------
    name : str
        Registry key, CLI choice and JSON key.
    function : callable
        ``function(image1, image2, **options) -> float``, the textbook definition.
    higher_is_better : bool
        True for similarities (correlation, MI, ...), False for distances (SSD).
    label : str
        What the value is, for tables and plot axes.
    cost : callable
        ``cost(fixed, warped, mask=None, **options) -> float`` to minimise, per pixel.
    cost_gradient : callable or None
        ``cost_gradient(fixed, warped, mask=None, **options) -> (cost, d cost / d warped)``.
    options : tuple of str
        Keyword options the metric accepts (e.g. ``("bins",)``).
    least_squares : bool
        True if the cost is the mean of the squared residuals ``warped - fixed`` over the mask
        (SSD): the registration engine then computes it and its exact Gauss-Newton Hessian
        itself, on every pixel.
    search_metric : str or None
        The metric that ranks the global search's candidates in this one's place (``None``:
        itself).  The Pluim measure's gradient term (edges 1.5 px wide) means little at the
        search's coarse level and misleads it when the scale is wrong; its NMI factor ranks
        the candidates reliably.
    """

    name: str
    function: Callable[..., float]
    higher_is_better: bool
    label: str
    cost: Callable[..., float]
    cost_gradient: Callable[..., tuple[float, np.ndarray]] | None = None
    options: tuple[str, ...] = field(default_factory=tuple)
    least_squares: bool = False
    search_metric: str | None = None

    @property
    def cost_label(self) -> str:
        """How the cost relates to the criterion, e.g. ``"-correlation"``."""
        return f"-{self.name}" if self.higher_is_better else f"{self.name} per pixel"

    def __call__(self, image1, image2, **options) -> float:
        return self.function(image1, image2, **options)

    def check_options(
        self, *, bins: int | Sequence[int] | None = None, sigma: float | None = None
    ) -> dict:
        """The cost options given by a caller's arguments, checked (``None``: not given).

        ``bins`` must be one the metric takes, from :data:`MIN_COST_BINS` to
        :data:`MAX_COST_BINS`; ``sigma`` one it takes and > 0.  Raises :class:`InputError`
        with ``param="bins"`` or ``param="sigma"``.

        >>> METRICS["mi"].check_options(bins=16)
        {'bins': 16}
        """
        options = {}
        if bins is not None:
            if "bins" not in self.options:
                raise InputError(
                    f"bins: metric {self.name!r} does not use histogram bins (metrics that do: "
                    f"{', '.join(n for n, m in METRICS.items() if 'bins' in m.options)})",
                    param="bins",
                )
            fixed_bins, moving_bins = _check_bins(bins)
            options["bins"] = fixed_bins if fixed_bins == moving_bins else (fixed_bins, moving_bins)
        if sigma is not None:
            if "sigma" not in self.options:
                raise InputError(
                    f"sigma: metric {self.name!r} has no smoothing scale (metrics that take "
                    f"one: {', '.join(n for n, m in METRICS.items() if 'sigma' in m.options)})",
                    param="sigma",
                )
            options["sigma"] = positive_number(sigma, "sigma")
        return options

    def prepare_options(
        self, options: Mapping | None = None, *, moving_range: tuple[float, float]
    ) -> dict:
        """The keyword options of :attr:`cost` and :attr:`cost_gradient` for one image pair.

        Keeps the ``options`` this metric takes and, if it bins the moving intensities, sets
        ``moving_range``: the range those intensities are known to span (``(0, 1)`` for
        images scaled to [0, 1]), so that the bins stay put from one evaluation to the next.

        >>> METRICS["nmi"].prepare_options({"bins": 16, "sigma": 2.0}, moving_range=(0.0, 1.0))
        {'bins': 16, 'moving_range': (0.0, 1.0)}
        >>> METRICS["ssd"].prepare_options({"bins": 16}, moving_range=(0.0, 1.0))
        {}
        """
        prepared = {k: v for k, v in (options or {}).items() if k in self.options}
        if "moving_range" in self.options:
            prepared["moving_range"] = (float(moving_range[0]), float(moving_range[1]))
        return prepared


#: Metrics by name.  Feeds the CLI choices and the tests' parametrize.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            name="ssd",
            function=ssd,
            higher_is_better=False,
            label="sum of squared differences",
            cost=_ssd_cost,
            cost_gradient=_ssd_cost_gradient,
            least_squares=True,
        ),
        Metric(
            name="correlation",
            function=correlation,
            higher_is_better=True,
            label="Pearson correlation coefficient",
            cost=_correlation_cost,
            cost_gradient=_correlation_cost_gradient,
        ),
        Metric(
            name="mi",
            function=mutual_information,
            higher_is_better=True,
            label="mutual information (nats)",
            cost=_mi_cost,
            cost_gradient=_mi_cost_gradient,
            options=("bins", "moving_range"),
        ),
        Metric(
            name="nmi",
            function=normalized_mutual_information,
            higher_is_better=True,
            label="normalised mutual information (H(A)+H(B))/H(A,B)",
            cost=_nmi_cost,
            cost_gradient=_nmi_cost_gradient,
            options=("bins", "moving_range"),
        ),
        Metric(
            name="gradient",
            function=gradient_similarity,
            higher_is_better=True,
            label="gradient similarity (Pluim 2000)",
            cost=_gradient_cost,
            options=("sigma",),
        ),
        Metric(
            name="pluim",
            function=pluim,
            higher_is_better=True,
            label="NMI x gradient similarity (Pluim 2000)",
            cost=_pluim_cost,
            options=("bins", "sigma", "moving_range"),
            search_metric="nmi",
        ),
    )
}


def get_metric(name: str) -> Metric:
    """The registered metric ``name``, or an :class:`InputError` (``param="metric"``) listing
    the choices."""
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise InputError(
            f"metric: unknown metric {name!r}; choose one of {', '.join(METRICS)}", param="metric"
        ) from None
