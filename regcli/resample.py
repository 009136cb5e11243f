"""Resampling an image through a transform matrix (scipy.ndimage), and the two course verbs.

``warp(moving, M)`` gives the image ``aligned`` with ``aligned(x) = moving(M @ x)`` for every
pixel ``x = (col, row)`` of the output: ``M`` is the fixed -> moving matrix a registration
returns.  To *move content* by a geometric map ``G`` (shift it right, turn it clockwise), warp
by the inverse of ``G``: that is what :func:`translate` and :func:`rotate` do.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from regcli._validate import check_image, finite_number, shape_pair
from regcli.errors import InputError
from regcli.transforms import (
    check_matrix,
    resolve_center,
    rotation_matrix,
    translation_matrix,
)

__all__ = [
    "as_float",
    "inside_mask",
    "rotate",
    "translate",
    "warp",
    "warp_keeping_nan",
    "warp_linear",
]


def as_float(image) -> np.ndarray:
    """``image`` as a floating-point array (float32 stays float32, everything else float64)."""
    arr = np.asarray(image)
    if arr.dtype in (np.float32, np.float64):
        return arr
    return arr.astype(np.float64)


def _index_space(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) matrix written for ndimage's (row, col) indices: swap both axes."""
    swap = [1, 0]
    return matrix[:2, :2][np.ix_(swap, swap)], matrix[:2, 2][swap]


def warp(
    image,
    matrix,
    *,
    output_shape: Sequence[int] | None = None,
    order: int = 1,
    fill: float = 0.0,
    output=None,
) -> np.ndarray:
    """Resample ``image`` so that ``out[row, col] = image(M @ (col, row, 1))``.

    Parameters
    ----------
    image : (rows, cols) array
    matrix : (3, 3) array
        Maps output (fixed) pixel coordinates ``(x, y)`` to input (moving) coordinates.
    output_shape : (rows, cols), optional
        Shape of the result; by default the shape of ``image``.
    order : {0, 1, 3, 5} or 0..5
        Spline order: 0 nearest (label maps), 1 linear, 3 cubic.
    fill : float
        Value of output pixels that map outside ``image``.
    output : ndarray, optional
        Preallocated float array to write into (saves an allocation in loops).

    Returns
    -------
    ndarray of float (float32 for float32 input, otherwise float64).

    Raises
    ------
    InputError
        ``image`` is not a 2-D array of finite numbers, ``matrix`` is not an invertible
        affine matrix, ``output_shape`` is not two whole numbers >= 1 (within the pixel
        limit), ``order`` is not 0..5, or ``fill`` is not a finite number.

    Examples
    --------
    A matrix that maps every fixed pixel one column to the right reads the moving image one
    column further on, so the content moves left:

    >>> from regcli.transforms import translation_matrix
    >>> image = np.array([[0.0, 1.0, 2.0, 3.0]])
    >>> warp(image, translation_matrix(1, 0), order=0)
    array([[1., 2., 3., 0.]])
    """
    img = as_float(check_image(image, name="image"))
    shape = img.shape if output_shape is None else shape_pair(output_shape, "output_shape")
    fill = finite_number(fill, "fill")
    m = check_matrix(matrix)
    # Snap float noise (cos(pi/2) = 6e-17, offsets like 30.000000000000004) to the integer it
    # stands for: otherwise a border pixel maps to -1e-15, just outside, and gets `fill`.
    m = np.where(np.abs(m - np.rint(m)) < 1e-9, np.rint(m), m)
    if isinstance(order, bool) or order not in range(6):
        raise InputError(f"order: expected a spline order 0..5, got {order!r}", param="order")
    linear, offset = _index_space(m)
    return ndimage.affine_transform(
        img,
        linear,
        offset=offset,
        output_shape=shape if output is None else None,
        output=img.dtype if output is None else output,
        order=order,
        mode="constant",
        cval=fill,
        prefilter=order > 1,
    )


def warp_keeping_nan(
    image,
    matrix,
    *,
    output_shape: Sequence[int] | None = None,
    order: int = 3,
    fill: float = 0.0,
) -> np.ndarray:
    """:func:`warp` of an image whose NaN pixels mean "no data" (the masked pixels of a
    registration): they are filled for the interpolation, so that they spread no further
    than that, and the output pixels whose value comes from one are NaN (those that map
    outside the image get ``fill``).  Without NaN pixels, exactly :func:`warp`."""
    values = check_image(image, name="image", allow_nan=True)  # infinities are refused
    nan = np.isnan(values) if np.issubdtype(values.dtype, np.floating) else None
    if nan is None or not nan.any():
        return warp(values, matrix, output_shape=output_shape, order=order, fill=fill)
    stand_in = 0.0 if nan.all() else np.nanmean(values)
    out = warp(
        np.where(nan, stand_in, values),
        matrix,
        output_shape=output_shape,
        order=order,
        fill=fill,
    )
    spread = warp(nan.astype(values.dtype), matrix, output_shape=output_shape, order=1)
    out[spread > 0.5] = np.nan
    return out


def warp_linear(image, matrix, output_shape: Sequence[int], *, dtype=np.float64) -> np.ndarray:
    """Bilinear :func:`warp` for the optimisation loops (float64 result).

    Points more than one pixel outside the image give 0; within a pixel of the border the
    values blend towards 0 (callers read only pixels inside, see :func:`inside_mask`).
    Uses scikit-image's compiled affine kernel: inside the image it gives the same values as
    ``warp(image, matrix, order=1)``, about three times faster on small images (no spline
    machinery, no per-call validation).  ``matrix`` is not checked here: callers pass the
    matrices they built.  ``dtype=np.float32`` runs the kernel in single precision (image,
    matrix and coordinates; a float32 result): half the memory traffic, coordinates exact to
    about ``1e-7`` of the image side.
    """
    dtype = np.dtype(dtype)
    img = np.ascontiguousarray(image, dtype=dtype)
    m = np.ascontiguousarray(matrix, dtype=dtype)
    shape = (int(output_shape[0]), int(output_shape[1]))
    kernel = None if _KERNEL_BROKEN else _affine_kernel(dtype.name)
    if kernel is not None:
        try:
            return np.asarray(
                kernel(img, m, output_shape=shape, order=1, mode="constant", cval=dtype.type(0))
            )
        except TypeError:  # the private kernel's signature changed: use the public API
            _KERNEL_BROKEN.append(True)
    from skimage.transform import warp as skimage_warp  # public API: ~0.1 s more to import

    return skimage_warp(
        img,
        m,
        output_shape=shape,
        order=1,
        mode="constant",
        cval=0.0,
        preserve_range=True,
        clip=False,
    ).astype(dtype, copy=False)


#: Set when the private kernel failed on a call: from then on the public API is used.
_KERNEL_BROKEN: list = []


@functools.cache
def _affine_kernel(dtype: str = "float64"):
    """scikit-image's Cython affine warp for ``dtype`` ("float64" or "float32") images, or
    None if its private module moved or its call failed once (then the public
    ``skimage.transform.warp``, which calls the same kernel, is used).  Importing the kernel
    alone takes ~2 ms; ``skimage.transform`` takes ~0.1 s, paid by every ``regcli register``
    run."""
    try:
        from skimage.transform._warps_cy import _warp_fast

        return _warp_fast[f"{dtype}_t"]
    except (ImportError, KeyError, TypeError):
        return None


def inside_mask(
    matrix, output_shape: Sequence[int], input_shape: Sequence[int], *, margin: float = 0.0
) -> np.ndarray:
    """Boolean mask of output pixels ``x`` whose ``M @ x`` lies inside the input image, at
    least ``margin`` pixels from its border.

    Computed row by row: for an affine ``M`` the valid pixels of a row form one interval of
    columns, found from the four edge constraints, so no per-pixel coordinates are formed
    (the registration engine calls this at every evaluation).
    """
    m = np.asarray(matrix, dtype=float)
    rows, cols = int(output_shape[0]), int(output_shape[1])
    low, high = _column_bounds(m, rows, (input_shape[1], input_shape[0]), margin)
    start = np.minimum(np.maximum(np.ceil(low), 0), cols)
    stop = np.maximum(np.minimum(np.maximum(np.floor(high) + 1, 0), cols), start)
    # Row r is ``0 <= x - start[r] < stop[r] - start[r]``: one subtraction in the narrowest
    # signed integers that hold +-cols, read as unsigned (a negative difference becomes
    # huge), and one comparison: four times faster than two comparisons of intp columns.
    signed = np.int16 if cols < 1 << 15 else np.int64
    unsigned = np.uint16 if cols < 1 << 15 else np.uint64
    offsets = np.arange(cols, dtype=signed) - start.astype(signed)[:, None]
    return offsets.view(unsigned) < (stop - start).astype(unsigned)[:, None]


def _column_bounds(m: np.ndarray, rows: int, sizes, margin: float):
    """Per output row, the real interval ``[low, high]`` of columns ``x`` whose ``M @ x``
    lies within ``margin`` of the input's ``sizes = (cols, rows)``: both axes at once (the
    engine calls this for every evaluation, mostly on 64^2 grids, where numpy's per-call
    cost is most of the time)."""
    ys = np.arange(rows, dtype=np.float64)
    eps = 1e-9
    lo = margin - eps
    hi = np.array([sizes[0] - 1 - margin + eps, sizes[1] - 1 - margin + eps])
    offset = np.multiply.outer(m[:2, 1], ys)  # the coordinate is a * x + offset
    offset += m[:2, 2:3]
    a = m[:2, 0]
    if a[0] != 0.0 and a[1] != 0.0:
        first = (lo - offset) / a[:, None]
        second = (hi[:, None] - offset) / a[:, None]
        return np.minimum(first, second).max(axis=0), np.maximum(first, second).min(axis=0)
    low = np.full(rows, -np.inf)
    high = np.full(rows, np.inf)
    for axis in (0, 1):
        if a[axis] == 0.0:
            outside = (offset[axis] < lo) | (offset[axis] > hi[axis])
            high[outside] = -np.inf
            continue
        first, second = (lo - offset[axis]) / a[axis], (hi[axis] - offset[axis]) / a[axis]
        low = np.maximum(low, np.minimum(first, second))
        high = np.minimum(high, np.maximum(first, second))
    return low, high


def translate(image, dx: float, dy: float, *, order: int = 3, fill: float = 0.0) -> np.ndarray:
    """Move the content of ``image`` by ``dx`` pixels right and ``dy`` pixels down (sub-pixel).

    >>> translate(np.array([[0.0, 1.0, 2.0, 3.0]]), 1, 0, order=1)
    array([[0., 0., 1., 2.]])
    """
    dx, dy = finite_number(dx, "dx"), finite_number(dy, "dy")
    return warp(image, translation_matrix(-dx, -dy), order=order, fill=fill)


def rotate(
    image, angle_deg: float, *, center="topleft", order: int = 3, fill: float = 0.0
) -> np.ndarray:
    """Turn the content of ``image`` by ``angle_deg`` degrees about ``center``.

    ``center`` is ``"topleft"`` (pixel (0, 0), the course's definition), ``"center"`` or
    ``(x, y)``.  With ``y`` pointing down a positive angle is clockwise on screen, so a turn of
    90 degrees about the centre of a square image equals ``np.rot90(image, k=-1)``
    (``skimage.transform.rotate`` turns counter-clockwise about the centre: its
    ``rotate(image, a)`` is ``regcli.rotate(image, -a, center="center")``).

    >>> image = np.arange(9.0).reshape(3, 3)
    >>> bool(np.allclose(rotate(image, 90, center="center"), np.rot90(image, k=-1)))
    True
    """
    angle_deg = finite_number(angle_deg, "angle_deg")
    c = resolve_center(center, np.shape(check_image(image, name="image")))
    return warp(image, rotation_matrix(-np.radians(angle_deg), c), order=order, fill=fill)
