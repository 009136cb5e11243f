"""The checks every public function shares (private: import the public names from regcli).

Each check takes the value and the Python name of the argument it came from, and returns the
value in the form the core uses or raises :class:`~regcli.errors.InputError` with
``param=name`` and a message that starts with ``"name: "``, says what was received and what
would work.  One place for them means one wording, and the CLI can turn any of them into a
usage error on the matching option.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from regcli._limits import (
    MAX_HISTOGRAM_BINS,
    MAX_SIGMA,
    MIN_REGISTER_SIDE,
    describe_pixels,
    max_pixels,
)
from regcli.errors import InputError

__all__ = [
    "affine_matrix",
    "check_callable",
    "check_image",
    "check_mask",
    "check_same_shape",
    "finite_number",
    "fraction",
    "histogram_bins",
    "histogram_values",
    "integer",
    "non_negative_number",
    "normalize",
    "normalize_pair",
    "positive_number",
    "robust_range",
    "same_units",
    "shape_pair",
    "smoothing_scale",
    "spacing_pair",
]

#: Rows converted at a time by :func:`normalize` (bounds the float64 temporaries).
_NORMALIZE_BLOCK = 1 << 20


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_image(image, *, name: str = "image", allow_nan: bool = False) -> np.ndarray:
    """Return ``image`` as a 2-D numeric array or raise :class:`InputError` saying why not.

    Booleans become ``uint8``.  Rejects: anything that is not an array of numbers (ragged
    lists, strings, ``None``, complex or object arrays), masked arrays whose mask hides
    pixels (the mask would be silently ignored), anything that is not 2-D, empty images, and
    NaN or infinite pixels (NaN is let through with ``allow_nan``, for the functions that
    treat NaN pixels as outside the image's mask; infinities never are).

    >>> check_image([[1, 2], [3, 4]]).shape
    (2, 2)
    >>> check_image([[1, 2], [3]], name="fixed")
    Traceback (most recent call last):
    ...
    regcli.errors.InputError: fixed: expected a 2-D array of numbers, got [[1, 2], [3]]
    """
    if isinstance(image, np.ma.MaskedArray):
        if np.ma.getmaskarray(image).any():
            raise InputError(
                f"{name}: masked arrays are not supported (the mask would be ignored); pass "
                "the plain array (image.filled(value)) and the mask as mask=... where a "
                "function takes one",
                param=name,
            )
        image = np.ma.getdata(image)
    try:
        arr = np.asarray(image)
    except (TypeError, ValueError, OverflowError):
        raise InputError(
            f"{name}: expected a 2-D array of numbers, got {_describe(image)}", param=name
        ) from None
    if arr.dtype == object and arr.ndim >= 1:
        raise InputError(
            f"{name}: expected a 2-D array of numbers, got {_describe(image)}", param=name
        )
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{name}: expected a numeric image, got dtype {arr.dtype}", param=name)
    if arr.ndim != 2:
        what = "3-D stack" if arr.ndim == 3 else f"{arr.ndim}-D array"
        raise InputError(
            f"{name}: got a {what} of shape {arr.shape} where a 2-D image is needed", param=name
        )
    if arr.size == 0:
        raise InputError(f"{name}: the image is empty (shape {arr.shape})", param=name)
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        if allow_nan:
            bad = int(np.count_nonzero(np.isinf(arr)))
            if bad:
                raise InputError(f"{name}: {bad} pixel(s) are infinite", param=name)
        else:
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            raise InputError(f"{name}: {bad} pixel(s) are NaN or infinite", param=name)
    return arr


def check_mask(mask, shape, *, name: str = "mask") -> np.ndarray:
    """``mask`` as a boolean image of ``shape``: True where a pixel is used (non-zero, not NaN).

    Any numeric or boolean dtype (a label image, a 0/255 PNG) is accepted; an error names
    ``name`` in ``param`` for something that is not a 2-D array of numbers, or another shape.

    >>> check_mask([[0, 255], [1, 0]], (2, 2), name="fixed_mask").tolist()
    [[False, True], [True, False]]
    """
    arr = check_image(mask, name=name, allow_nan=True)
    if arr.shape != tuple(shape):
        raise InputError(
            f"{name}: the mask has shape {arr.shape} but its image has shape {tuple(shape)}; "
            "a mask must have its image's shape",
            param=name,
        )
    out = arr != 0
    if np.issubdtype(arr.dtype, np.floating):
        out &= ~np.isnan(arr)
    return out


def check_same_shape(a, b, *, names=("image1", "image2")) -> None:
    """Raise :class:`InputError` naming both shapes if ``a`` and ``b`` differ in shape."""
    if np.shape(a) != np.shape(b):
        raise InputError(
            f"{names[0]} and {names[1]} must have the same shape, got {np.shape(a)} "
            f"and {np.shape(b)}"
        )


#: The largest ratio between two pixel sizes of a pair (any two of sy, sx of both images).
MAX_SPACING_RATIO = 100.0


def spacing_pair(value, name: str) -> tuple[float, float] | None:
    """A pixel size ``(sy, sx)`` (along rows, along columns; any unit): two finite numbers
    > 0, or None.

    >>> spacing_pair((2, 0.5), "moving_spacing")
    (2.0, 0.5)
    """
    if value is None:
        return None
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) != 2 or isinstance(value, str):
        raise InputError(
            f"{name}: expected (sy, sx), the size of a pixel along rows and along columns, "
            f"got {_describe(value)}",
            param=name,
        )
    expected = "a pixel size (sy, sx): two finite numbers > 0"
    sy, sx = (_real(item, name, expected) for item in items)
    if not (sy > 0 and sx > 0):
        raise InputError(
            f"{name}: expected (sy, sx), two finite numbers > 0, got {_describe(value)}",
            param=name,
        )
    return sy, sx


def check_callable(value, name: str):
    """``value`` if it is ``None`` or callable."""
    if value is not None and not callable(value):
        raise InputError(f"{name}: expected a function, got {_describe(value)}", param=name)
    return value


def shape_pair(value, name: str, *, limit: bool = True) -> tuple[int, int]:
    """``value`` as ``(rows, cols)``: two whole numbers >= 1 (with ``limit``, at most
    :func:`regcli._limits.max_pixels` pixels in all).

    >>> shape_pair((2.0, 3), "output_shape")
    (2, 3)
    """
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) != 2:
        raise InputError(
            f"{name}: expected (rows, cols), two whole numbers >= 1, got {_describe(value)}",
            param=name,
        )
    rows, cols = (integer(item, name, 1) for item in items)
    if limit and rows * cols > max_pixels():
        raise InputError(
            f"{name}: {rows} x {cols} is more than the limit of {describe_pixels(max_pixels())} "
            "pixels",
            param=name,
        )
    return rows, cols


def histogram_bins(bins, name: str = "bins") -> None:
    """Check a ``bins`` argument of the histogram functions before anything is allocated:
    ``None``, a whole number from 1 to :data:`~regcli._limits.MAX_HISTOGRAM_BINS`, an array
    of at most that many + 1 edges, or a pair of these (one per image)."""
    for item in bins if isinstance(bins, (list, tuple)) and len(bins) == 2 else (bins,):
        if item is None:
            continue
        if isinstance(item, (bool, np.bool_)):
            raise InputError(f"{name}: expected a number of bins, got {item!r}", param=name)
        if isinstance(item, Real):
            integer(item, name, 1, MAX_HISTOGRAM_BINS)
            continue
        count = np.size(item) if np.ndim(item) == 1 else -1
        if count < 0 or count > MAX_HISTOGRAM_BINS + 1:
            raise InputError(
                f"{name}: expected a number of bins from 1 to {MAX_HISTOGRAM_BINS} or at most "
                f"{MAX_HISTOGRAM_BINS + 1} edges, got {_describe(item)}",
                param=name,
            )


def histogram_values(hist, name: str = "hist") -> np.ndarray:
    """``hist`` as a float64 array of finite values >= 0 (counts or probabilities)."""
    try:
        values = np.asarray(hist, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{name}: expected an array of counts or probabilities, got {_describe(hist)}",
            param=name,
        ) from None
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise InputError(f"{name}: histogram values must be finite and non-negative", param=name)
    return values


def affine_matrix(matrix, name: str) -> np.ndarray:
    """``matrix`` as a float 3x3 array (a 2x3 gets the row [0, 0, 1]) of finite numbers;
    unlike :func:`regcli.transforms.check_matrix` a singular matrix is allowed."""
    try:
        m = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{name}: expected a 3x3 matrix of numbers, got {_describe(matrix)}", param=name
        ) from None
    if m.shape == (2, 3):
        m = np.vstack([m, [0.0, 0.0, 1.0]])
    if m.shape != (3, 3):
        raise InputError(f"{name}: expected a 3x3 (or 2x3) matrix, got shape {m.shape}", param=name)
    if not np.all(np.isfinite(m)):
        raise InputError(f"{name}: the matrix has NaN or infinite entries", param=name)
    return m


def _real(value, name: str, expected: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise InputError(f"{name}: expected {expected}, got {_describe(value)}", param=name)
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"{name}: expected {expected}, got {_describe(value)}", param=name)
    return number


def finite_number(value, name: str) -> float:
    """``value`` as a finite float (not a bool, a string or NaN)."""
    return _real(value, name, "a finite number")


def positive_number(value, name: str) -> float:
    """``value`` as a finite float > 0."""
    number = _real(value, name, "a finite number > 0")
    if not number > 0:
        raise InputError(f"{name}: expected a finite number > 0, got {value!r}", param=name)
    return number


def non_negative_number(value, name: str) -> float:
    """``value`` as a finite float >= 0."""
    number = _real(value, name, "a finite number >= 0")
    if not number >= 0:
        raise InputError(f"{name}: expected a finite number >= 0, got {value!r}", param=name)
    return number


def smoothing_scale(value, name: str, *, positive: bool = False) -> float:
    """``value`` as a Gaussian scale in pixels: finite, >= 0 (> 0 with ``positive``) and at
    most :data:`~regcli._limits.MAX_SIGMA` (a wider blur leaves nothing to compare and its
    kernel alone would not fit in memory)."""
    number = positive_number(value, name) if positive else non_negative_number(value, name)
    if number > MAX_SIGMA:
        raise InputError(
            f"{name}: expected at most {MAX_SIGMA:g} pixels, got {value!r}", param=name
        )
    return number


def fraction(value, name: str) -> float:
    """``value`` as a float in [0, 1) (decays and momentum factors)."""
    number = _real(value, name, "a number in [0, 1)")
    if not 0 <= number < 1:
        raise InputError(f"{name}: expected a number in [0, 1), got {value!r}", param=name)
    return number


def integer(value, name: str, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (a float with no fraction is accepted)."""
    span = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
    expected = f"a whole number {span}"
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}: expected {expected}, got {value!r}", param=name)
    if isinstance(value, Integral):
        number = int(value)
    elif isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer():
        number = int(value)
    else:
        raise InputError(f"{name}: expected {expected}, got {_describe(value)}", param=name)
    if number < minimum or (maximum is not None and number > maximum):
        raise InputError(f"{name}: expected {expected}, got {number}", param=name)
    return number


#: :func:`normalize` maps these quantiles of an image to 0 and 1: a few outlier pixels (a hot
#: pixel at twice the maximum) do not squeeze the contrast of everything else.
LOW_QUANTILE = 0.001
HIGH_QUANTILE = 0.999
#: The quantiles are measured on a regular subsample of at most this many pixels.
QUANTILE_SAMPLES = 1 << 14


def robust_range(image: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """The intensities :func:`normalize` maps to 0 and 1: the 0.1 % and 99.9 % quantiles of a
    regular subsample (at most :data:`QUANTILE_SAMPLES` pixels), measured in float64; the
    minimum and maximum when those are equal (sparse content: a few bright pixels on a
    uniform background).  With ``mask`` (a boolean image: the pixels in use) only those
    pixels count.

    >>> image = np.zeros((100, 100)); image[:, 50:] = 1.0; image[0, 0] = 100.0
    >>> robust_range(image)
    (0.0, 1.0)
    >>> ramp = np.tile(np.linspace(0.0, 1.0, 100), (100, 1)); ramp[:, :20] = 1e6  # a label
    >>> mask = np.ones((100, 100), bool); mask[:, :20] = False
    >>> [round(v, 3) for v in robust_range(ramp, mask)]
    [0.202, 1.0]
    """
    arr = np.asarray(image)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        count = int(np.count_nonzero(mask))
        stride = max(1, math.ceil(math.sqrt(count / QUANTILE_SAMPLES)))
        sample = np.asarray(arr[::stride, ::stride][mask[::stride, ::stride]], np.float64)
        if sample.size < min(count, QUANTILE_SAMPLES // 4):  # a thin mask the stride misses
            sample = np.asarray(arr[mask], dtype=np.float64)
        arr = sample
    else:
        stride = max(1, math.ceil(math.sqrt(arr.size / QUANTILE_SAMPLES)))
        sample = np.asarray(arr[::stride, ::stride], dtype=np.float64).ravel()
    last = sample.size - 1
    ranks = (math.floor(LOW_QUANTILE * last), math.ceil(HIGH_QUANTILE * last))
    ordered = np.partition(sample, ranks)
    lo, hi = float(ordered[ranks[0]]), float(ordered[ranks[1]])
    if not hi > lo:
        lo, hi = float(np.min(arr)), float(np.max(arr))
    return lo, hi


def same_units(a: np.ndarray, b: np.ndarray, range_a, range_b) -> bool:
    """Whether two images' intensities look like one scale: the same integer dtype, or
    robust ranges of similar span that mostly overlap (two float images, or an 8-bit file
    and a float copy of one: scaled apart, a few grey levels of offset between them biased an
    SSD registration by 0.1 px)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == b.dtype and np.issubdtype(a.dtype, np.integer):
        return True
    span_a, span_b = range_a[1] - range_a[0], range_b[1] - range_b[0]
    common = min(range_a[1], range_b[1]) - max(range_a[0], range_b[0])
    larger = max(span_a, span_b)
    return bool(larger > 0 and min(span_a, span_b) >= larger / 2 and common >= larger / 2)


def normalize_pair(
    fixed: np.ndarray,
    moving: np.ndarray,
    *,
    joint: bool,
    min_side: int = MIN_REGISTER_SIDE,
    masks: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> tuple[np.ndarray, np.ndarray]:
    """Both images scaled to [0, 1] (:func:`normalize`): each by its own robust range, or, when
    ``joint`` and the two are on one intensity scale (:func:`same_units`), both by the union
    of their ranges, so that equal intensities stay equal (what SSD compares).  ``masks``
    (boolean images or None) restrict the ranges to the pixels in use.

    >>> a = np.array([[0, 100], [200, 250]], np.uint8); b = np.array([[0, 5], [5, 0]], np.uint8)
    >>> [round(float(normalize_pair(a, b, joint=j, min_side=1)[1].max()), 3) for j in (True, False)]
    [0.02, 1.0]
    """
    range_f, range_m = robust_range(fixed, masks[0]), robust_range(moving, masks[1])
    if joint and range_f[1] > range_f[0] and range_m[1] > range_m[0]:
        if same_units(fixed, moving, range_f, range_m):
            common = (min(range_f[0], range_m[0]), max(range_f[1], range_m[1]))
            range_f = range_m = common
    return (
        normalize(fixed, "fixed", bounds=range_f, min_side=min_side),
        normalize(moving, "moving", bounds=range_m, min_side=min_side),
    )


def normalize(
    image: np.ndarray,
    name: str,
    *,
    bounds: tuple[float, float] | None = None,
    min_side: int = MIN_REGISTER_SIDE,
) -> np.ndarray:
    """``image`` scaled to [0, 1] by robust bounds (:func:`robust_range`, or ``bounds``), as
    float32, for registering.

    Values beyond the bounds are clipped to 0 and 1 (NaN stays NaN).  The offset is removed
    in float64 before anything is rounded to float32, so images with a large offset
    (``+1e10``) or a tiny range (``1e-300``) keep their contrast; dtypes that float32 holds
    exactly are converted directly.  Raises :class:`InputError` (``param=name``) for a
    constant image, or one with a side shorter than ``min_side`` pixels (too small to
    register: no gradient, no pyramid, no overlap to measure).

    >>> normalize(np.array([[1e10, 1e10 + 1.0], [1e10 + 2.0, 1e10 + 4.0]]), "fixed", min_side=1)
    array([[0.  , 0.25],
           [0.5 , 1.  ]], dtype=float32)
    """
    arr = np.asarray(image)
    if min(arr.shape) < min_side:
        rows, cols = arr.shape
        raise InputError(
            f"{name}: image too small to register ({rows} x {cols} pixels; at least "
            f"{min_side} x {min_side} are needed)",
            param=name,
        )
    lo, hi = robust_range(arr) if bounds is None else bounds
    if not hi > lo:
        raise InputError(
            f"{name}: the image is constant (every pixel is {lo:g}); there is nothing to align",
            param=name,
        )
    out = np.empty(arr.shape, dtype=np.float32)
    small_dtype = arr.dtype.itemsize <= 2 or arr.dtype == np.float32
    if small_dtype and hi - lo > 1e-30 and max(abs(lo), abs(hi)) < 1e30:
        # float32 holds these values exactly, and hi - lo is a normal float32 number.
        np.subtract(arr, np.float32(lo), out=out, dtype=np.float32)
        out *= np.float32(1.0 / (hi - lo))
    else:
        # Halving both bounds keeps hi - lo finite for values near the float64 maximum.
        half_lo, half_span = lo / 2.0, hi / 2.0 - lo / 2.0
        rows = max(1, _NORMALIZE_BLOCK // max(1, arr.shape[-1]))
        for start in range(0, arr.shape[0], rows):
            block = np.asarray(arr[start : start + rows], dtype=np.float64) / 2.0
            block -= half_lo
            block /= half_span
            out[start : start + rows] = block
    np.clip(out, 0.0, 1.0, out=out)
    return out
