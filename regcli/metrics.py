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

from regcli import costs
from regcli._validate import check_image, check_same_shape, smoothing_scale
from regcli.costs import (
    DEFAULT_COST_BINS,
    DEFAULT_SIGMA,
    MAX_COST_BINS,
    MIN_COST_BINS,
    check_bins,
    check_sigma,
    dot,
    gradient_similarity_map,
)
from regcli.errors import InputError
from regcli.histogram import (
    joint_entropy,
    joint_histogram,
    marginal_entropies,
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


def _pair(image1, image2) -> tuple[np.ndarray, np.ndarray]:
    a = check_image(image1, name="image1")
    b = check_image(image2, name="image2")
    check_same_shape(a, b)
    return a, b


# --------------------------------------------------------------------------- SSD


def ssd(image1, image2) -> float:
    """Sum of squared differences, accumulated in float64 (no integer wrap-around).

    >>> ssd(np.zeros((2, 2)), np.ones((2, 2)))
    4.0
    """
    a, b = _pair(image1, image2)
    d = a.astype(np.float64) - b.astype(np.float64)
    return dot(d.ravel(), d.ravel())


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
    r = dot(a / np.sqrt(dot(a, a)), b / np.sqrt(dot(b, b)))
    return min(max(r, -1.0), 1.0)


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


# --------------------------------------------------------------------------- gradient similarity


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
    return float(gradient_similarity_map(a, b, check_sigma(sigma)).sum())


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
    same_modality : bool
        True if the metric compares intensities as they are, up to a linear map (SSD,
        correlation): the global search then locates shifts by correlating intensities only;
        otherwise by intensities and by edges (gradient magnitudes), which coincide across
        modalities.
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
    same_modality: bool = False

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
            fixed_bins, moving_bins = check_bins(bins)
            options["bins"] = fixed_bins if fixed_bins == moving_bins else (fixed_bins, moving_bins)
        if sigma is not None:
            if "sigma" not in self.options:
                raise InputError(
                    f"sigma: metric {self.name!r} has no smoothing scale (metrics that take "
                    f"one: {', '.join(n for n, m in METRICS.items() if 'sigma' in m.options)})",
                    param="sigma",
                )
            options["sigma"] = smoothing_scale(sigma, "sigma", positive=True)
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
            cost=costs.ssd_cost,
            cost_gradient=costs.ssd_cost_gradient,
            least_squares=True,
            same_modality=True,
        ),
        Metric(
            name="correlation",
            function=correlation,
            higher_is_better=True,
            label="Pearson correlation coefficient",
            cost=costs.correlation_cost,
            cost_gradient=costs.correlation_cost_gradient,
            same_modality=True,
        ),
        Metric(
            name="mi",
            function=mutual_information,
            higher_is_better=True,
            label="mutual information (nats)",
            cost=costs.mi_cost,
            cost_gradient=costs.mi_cost_gradient,
            options=("bins", "moving_range"),
        ),
        Metric(
            name="nmi",
            function=normalized_mutual_information,
            higher_is_better=True,
            label="normalised mutual information (H(A)+H(B))/H(A,B)",
            cost=costs.nmi_cost,
            cost_gradient=costs.nmi_cost_gradient,
            options=("bins", "moving_range"),
        ),
        Metric(
            name="gradient",
            function=gradient_similarity,
            higher_is_better=True,
            label="gradient similarity (Pluim 2000)",
            cost=costs.gradient_cost,
            options=("sigma",),
        ),
        Metric(
            name="pluim",
            function=pluim,
            higher_is_better=True,
            label="NMI x gradient similarity (Pluim 2000)",
            cost=costs.pluim_cost,
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
