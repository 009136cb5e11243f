"""Joint histograms of two images and the entropies computed from them.

:func:`joint_histogram` counts, for every pair of intensity bins ``(i, j)``, the pixels whose
value in ``image1`` falls in bin ``i`` and whose value in ``image2`` falls in bin ``j``.  For two
images of ``(rows, cols)`` pixels the counts sum to ``rows * cols`` (when the bin range covers
both images, which is the default).  It gives the same numbers as :func:`numpy.histogram2d` on
the same bins, but counts with one :func:`numpy.bincount` call.

:func:`parzen_joint_histogram` is the smooth variant behind the MI and NMI registration costs
(:mod:`regcli.metrics`): the moving intensities spread over four bins with cubic B-spline
weights, so that the histogram has a derivative with respect to every moving pixel.

Entropies are in nats (natural logarithm), as in :mod:`scipy.stats` and scikit-image.
"""

from __future__ import annotations

import numpy as np

from regcli._validate import check_image, check_same_shape, histogram_bins, histogram_values
from regcli.errors import InputError

__all__ = [
    "MAX_DEFAULT_BINS",
    "default_edges",
    "entropy",
    "joint_entropy",
    "joint_histogram",
    "marginal_entropies",
    "parzen_joint_histogram",
]

#: Largest number of bins per axis chosen automatically.
MAX_DEFAULT_BINS = 256
#: Smallest number of bins per axis chosen automatically for float / wide integer images.
MIN_DEFAULT_BINS = 16


def _data_range(values: np.ndarray) -> tuple[float, float]:
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:  # a constant image still needs a bin of non-zero width
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def default_edges(image, *, value_range=None) -> np.ndarray:
    """Bin edges regcli uses for ``image`` when no bins are given.

    * 8-bit images: one bin per grey level of the dtype, centred on it (256 bins, edges at
      ``level +- 0.5``), so histograms of different 8-bit images share their bins.
    * Other integer images whose values span at most :data:`MAX_DEFAULT_BINS` grey levels:
      one bin per grey level from the minimum to the maximum.
    * Float images and integer images with a wider range (16-bit): the Rice rule,
      ``2 * (number of pixels) ** (1/3)`` equal bins over the intensity range, clipped to
      ``[16, 256]`` (81 bins for a 256 x 256 image).

    Parameters
    ----------
    image : ndarray
        The image whose intensities will be binned.
    value_range : (float, float), optional
        Intensity range to cover; default: the image's minimum and maximum.

    Returns
    -------
    edges : (bins + 1,) float64 ndarray
    """
    arr = np.asarray(image)
    lo, hi = _data_range(arr) if value_range is None else map(float, value_range)
    if arr.dtype.itemsize == 1 and value_range is None:  # 8-bit: all 256 grey levels
        info = np.iinfo(arr.dtype)
        return np.arange(info.min, info.max + 2, dtype=np.float64) - 0.5
    if np.issubdtype(arr.dtype, np.integer):
        first, last = np.ceil(lo), np.floor(hi)
        if value_range is None:
            first, last = float(arr.min()), float(arr.max())
        levels = int(last - first) + 1
        if 1 <= levels <= MAX_DEFAULT_BINS:
            return np.arange(first, last + 2, dtype=np.float64) - 0.5
    count = int(np.clip(round(2.0 * arr.size ** (1.0 / 3.0)), MIN_DEFAULT_BINS, MAX_DEFAULT_BINS))
    return np.linspace(lo, hi, count + 1)


def _edges_for_axis(spec, values: np.ndarray, value_range, name: str) -> np.ndarray:
    """Bin edges for one axis from an int, an array of edges or ``None`` (default)."""
    if spec is None:
        return default_edges(values, value_range=value_range)
    if np.ndim(spec) == 0:
        if isinstance(spec, (bool, np.bool_)) or not float(spec).is_integer() or int(spec) < 1:
            raise InputError(f"bins for {name}: expected a whole number >= 1, got {spec!r}")
        lo, hi = _data_range(values) if value_range is None else map(float, value_range)
        return np.linspace(lo, hi, int(spec) + 1)
    edges = np.asarray(spec, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2:
        raise InputError(
            f"bins for {name}: explicit edges must be a 1-D array of at least 2 values, "
            f"got shape {edges.shape}"
        )
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise InputError(f"bins for {name}: edges must be finite and strictly increasing")
    return edges


def _split_bins(bins):
    """``bins`` as a pair (one spec per image), following numpy.histogram2d."""
    if isinstance(bins, (list, tuple)) and len(bins) == 2:
        return bins[0], bins[1]
    if bins is None or np.ndim(bins) == 0:
        return bins, bins
    if np.ndim(bins) == 1:  # one array of edges shared by both axes
        return bins, bins
    raise InputError(
        "bins: expected an int, a pair (int or edges for each image) or an array of edges, "
        f"got {type(bins).__name__} of shape {np.shape(bins)}"
    )


def _split_range(value_range):
    if value_range is None:
        return None, None
    try:
        pair = [None if r is None else (float(r[0]), float(r[1])) for r in value_range]
    except (TypeError, IndexError, ValueError):
        pair = []
    if len(pair) != 2 or any(r is not None and not r[0] < r[1] for r in pair):
        raise InputError(
            f"range: expected ((lo1, hi1), (lo2, hi2)) with lo < hi, got {value_range!r}"
        )
    return pair[0], pair[1]


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of every value: right edges open except the last one; -1 outside the edges."""
    index = np.searchsorted(edges, values, side="right") - 1
    index[values == edges[-1]] = edges.size - 2  # the right-most edge is inclusive
    index[(index < 0) | (index > edges.size - 2)] = -1
    return index


def joint_histogram(image1, image2, *, bins=None, range=None, normed: bool = False):
    """Joint histogram of two images of the same shape.

    Parameters
    ----------
    image1, image2 : (rows, cols) arrays
        Images of the same shape; any integer or float dtype.
    bins : int, (int, int), array or (array, array), optional
        As :func:`numpy.histogram2d`: a number of equal bins over the intensity range (for both
        images, or one per image), or explicit bin edges.  Default: :func:`default_edges` for
        each image (one bin per grey level for 8-bit images).
    range : ((float, float), (float, float)), optional
        Intensity range of the bins of each image when ``bins`` are counts; default: each
        image's minimum and maximum.  Pixels outside the range are not counted.
    normed : bool
        Divide by the total so the histogram sums to 1 (a joint probability).

    Returns
    -------
    hist : (bins1, bins2) float64 ndarray
        ``hist[i, j]`` counts pixels with ``image1`` in bin ``i`` and ``image2`` in bin ``j``.
        With the default range the counts sum to ``rows * cols``.
    edges1, edges2 : (bins + 1,) float64 ndarrays
        Bin edges of each image (``bins + 1`` values); the last bin includes its right edge.

    Examples
    --------
    >>> a = np.array([[0, 1], [1, 1]], dtype=np.int32)
    >>> hist, e1, e2 = joint_histogram(a, a)
    >>> hist
    array([[1., 0.],
           [0., 3.]])
    >>> float(hist.sum()) == a.size
    True
    """
    histogram_bins(bins)
    a = check_image(image1, name="image1")
    b = check_image(image2, name="image2")
    check_same_shape(a, b)
    spec1, spec2 = _split_bins(bins)
    range1, range2 = _split_range(range)
    edges1 = _edges_for_axis(spec1, a, range1, "image1")
    edges2 = _edges_for_axis(spec2, b, range2, "image2")
    index1 = _bin_index(a.ravel(), edges1)
    index2 = _bin_index(b.ravel(), edges2)
    nbins1, nbins2 = edges1.size - 1, edges2.size - 1
    inside = (index1 >= 0) & (index2 >= 0)
    if not inside.all():
        index1, index2 = index1[inside], index2[inside]
    counts = np.bincount(index1 * nbins2 + index2, minlength=nbins1 * nbins2)
    hist = counts.reshape(nbins1, nbins2).astype(np.float64)
    if normed:
        total = hist.sum()
        if total > 0:
            hist /= total
    return hist, edges1, edges2


def entropy(hist) -> float:
    """Shannon entropy ``-sum(p log p)`` in nats of a histogram of any shape.

    The histogram is normalised first (counts or probabilities both work); empty bins
    contribute nothing.  An empty histogram has entropy 0.

    >>> round(entropy([1, 1]), 6)  # log 2
    0.693147
    """
    h = histogram_values(hist).ravel()
    total = h.sum()
    if total <= 0:
        return 0.0
    p = h[h > 0] / total
    return float(max(-np.dot(p, np.log(p)), 0.0))


def marginal_entropies(hist) -> tuple[float, float]:
    """Entropies ``(H(image1), H(image2))`` of the marginals of a joint histogram."""
    h = np.asarray(hist, dtype=np.float64)
    return entropy(h.sum(axis=1)), entropy(h.sum(axis=0))


def joint_entropy(hist) -> float:
    """Joint entropy ``H(image1, image2)`` of a joint histogram (nats)."""
    return entropy(hist)


# --------------------------------------------------------------------------- Parzen window


def parzen_joint_histogram(
    fixed_values: np.ndarray,
    moving_values: np.ndarray,
    bins: tuple[int, int],
    fixed_range: tuple[float, float],
    moving_range: tuple[float, float],
    *,
    slopes: bool = True,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...] | None]:
    """Parzen-window joint probability of pixel pairs (Mattes et al. 2003).

    Fixed intensities fall in hard bins over ``fixed_range``.  A moving intensity ``w`` sits at
    the continuous bin coordinate ``t = 1 + (w - lo) / width`` over ``moving_range`` and
    spreads over the four bins ``floor(t) - 1 .. floor(t) + 2`` with cubic B-spline weights,
    which sum to 1 and are twice differentiable in ``w``: the joint probability (and any
    entropy of it) has an exact derivative with respect to every moving value.  One bin of
    padding on each side keeps the four bins inside the histogram; values outside
    ``moving_range`` (interpolation overshoot) are clipped to it, with zero derivative.

    The four weights are accumulated by four ``bincount`` calls on ``base + k`` rather than on
    stacked ``(4, n)`` arrays: no copies, half the time.

    Parameters
    ----------
    fixed_values, moving_values : (n,) float64 arrays
        The pixel pairs (the used pixels of the two images, flattened), ``n >= 1``.
    bins : (int, int)
        Fixed and moving bins (checked by the caller: at least 4 each).
    fixed_range, moving_range : (float, float)
        Intensity ranges ``lo < hi`` the bins cover.
    slopes : bool
        Also return the weights' derivatives.

    Returns
    -------
    joint : (fixed bins, moving bins) ndarray
        The joint probability (sums to 1).
    base : (n,) intp ndarray
        Flat index into ``joint`` of each pair's first bin; its four bins are ``base + 0..3``.
    slopes : tuple of four (n,) ndarrays, or None
        ``d weight_k / d w`` for ``k = 0..3`` (``None`` unless ``slopes``).

    References
    ----------
    Mattes, Haynor, Vesselle, Lewellen, Eubank, "PET-CT image registration in the chest using
    free-form deformations", IEEE TMI 22(1), 2003. :doi:`10.1109/TMI.2003.809072`
    """
    f, w = fixed_values, moving_values
    n = f.size
    fixed_bins, moving_bins = bins
    fixed_lo, fixed_hi = fixed_range
    moving_lo, moving_hi = moving_range
    fixed_index = np.clip(
        ((f - fixed_lo) * (fixed_bins / (fixed_hi - fixed_lo))).astype(np.intp),
        0,
        fixed_bins - 1,
    )
    scale = (moving_bins - 3) / (moving_hi - moving_lo)  # moving bins per intensity unit
    t = np.clip(w, moving_lo, moving_hi)
    t -= moving_lo
    t *= scale
    t += 1.0
    first = np.floor(t)
    s = t - first
    base = fixed_index * moving_bins
    base += first.astype(np.intp)
    base -= 1
    # Cubic B-spline weights; w2 from the partition of unity.  At w == high the fourth bin is
    # one past the row with weight exactly 0 (its count is dropped below).
    s2 = s * s
    s3 = s2 * s
    rest = 1.0 - s
    w0 = rest * rest * rest / 6.0
    w1 = 0.5 * s3 - s2 + 2.0 / 3.0
    w3 = s3 / 6.0
    w2 = 1.0 - w0 - w1 - w3
    size = fixed_bins * moving_bins
    joint = np.bincount(base, weights=w0, minlength=size)[:size]
    for k, weight in ((1, w1), (2, w2), (3, w3)):
        joint += np.bincount(base + k, weights=weight, minlength=size)[:size]
    joint = joint.reshape(fixed_bins, moving_bins) / n
    if not slopes:
        return joint, base, None
    # d weight_k / d w = d weight_k / d s * scale (0 where w was clipped).
    factor = scale * ((w > moving_lo) & (w < moving_hi))
    d0 = -0.5 * rest * rest * factor
    d1 = (1.5 * s2 - 2.0 * s) * factor
    d3 = 0.5 * s2 * factor
    d2 = -(d0 + d1 + d3)
    return joint, base, (d0, d1, d2, d3)
