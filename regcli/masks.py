"""Masks and NaN pixels: which pixels of an image take part in a registration.

A user mask (``register(fixed_mask=..., moving_mask=...)``: non-zero = use) and the NaN pixels
of an image say where the image has no usable data: a region to ignore (a burned-in label, a
corrupted stripe, the outside of an organ), or pixels that were never measured.
:func:`valid_pixels` turns both into one boolean image, which becomes the image's
:class:`~regcli.domain.Domain`; every stage (the global search, the cost and its gradient, the
quality measures) then compares only pixels inside both domains.

The pixel values outside a domain are never compared, but the smoothing of the pyramid and of
the search's coarse images would spread them into the pixels next to them.  So the images the
engine works on are built from the valid pixels alone: :func:`filled` replaces the others by
the local mean of the valid ones around them (a NaN never reaches a filter, whatever a masked
region holds changes nothing, and differences of neighbouring pixels stay plausible at the
mask's border), and :func:`masked_pyramid` reduces an image by normalised convolution
(``reduce(image * valid) / reduce(valid)``), so that a coarse pixel is the mean of the valid
pixels under it.  A coarse pixel counts as valid when most of its support is
(:data:`regcli.domain.MOSTLY_VALID`).
"""

from __future__ import annotations

import numpy as np

from regcli import pyramid
from regcli._validate import check_mask
from regcli.errors import InputError

__all__ = ["MIN_MASK_PIXELS", "filled", "masked_downsample", "masked_pyramid", "valid_pixels"]

#: The fewest valid pixels an image may have (fewer cannot be registered).
MIN_MASK_PIXELS = 64
#: A reduced pixel whose support holds less than this much valid weight gets the fill value.
_MIN_WEIGHT = 1e-6


def valid_pixels(
    image: np.ndarray, mask=None, *, name: str = "image", mask_name: str = "mask"
) -> np.ndarray | None:
    """The pixels of ``image`` in use: ``mask`` non-zero (when given) and not NaN.

    Returns a boolean image, or None when every pixel is in use (the common case costs
    nothing downstream).  Raises :class:`InputError` for a mask of the wrong shape
    (``param=mask_name``) and for an image with fewer than :data:`MIN_MASK_PIXELS` pixels in
    use (``param=mask_name`` when a mask was given, else ``name``).

    >>> image = np.ones((10, 10)); image[0, 0] = np.nan
    >>> int(valid_pixels(image).sum()), valid_pixels(np.ones((10, 10))) is None
    (99, True)
    """
    valid = None if mask is None else check_mask(mask, np.shape(image), name=mask_name)
    if np.issubdtype(image.dtype, np.floating):
        nan = np.isnan(image)
        if nan.any():
            valid = ~nan if valid is None else valid & ~nan
    if valid is None:
        return None
    count = int(np.count_nonzero(valid))
    if count < MIN_MASK_PIXELS:
        where = "inside its mask and not NaN" if mask is not None else "not NaN"
        raise InputError(
            f"{mask_name if mask is not None else name}: only {count} pixel(s) of the {name} "
            f"image are {where}; at least {MIN_MASK_PIXELS} are needed to register",
            param=mask_name if mask is not None else name,
        )
    return None if count == valid.size else valid


def filled(image: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """``image`` with the pixels outside ``valid`` replaced by the mean of the valid pixels
    near them (within a few pixels: the normalised convolution of one pyramid step; the mean
    of all valid pixels where none is near); ``image`` itself when ``valid`` is None.  NaN
    pixels may be among those replaced.

    >>> image = np.array([[1.0, np.nan], [1.0, 100.0]]); valid = ~np.isnan(image)
    >>> valid[1, 1] = False
    >>> filled(image, valid)
    array([[1., 1.],
           [1., 1.]])
    """
    if valid is None:
        return image
    dtype = image.dtype if image.dtype == np.float32 else np.float64
    values = np.where(valid, image, 0).astype(dtype, copy=False)
    mean = float(np.mean(values[valid], dtype=np.float64))
    weights = valid.astype(dtype)
    rows, cols = image.shape
    half = _normalised(
        pyramid.gaussian_pyramid(values, 2)[-1], pyramid.gaussian_pyramid(weights, 2)[-1], mean
    )
    local = np.repeat(np.repeat(half, 2, axis=0), 2, axis=1)[:rows, :cols]
    return np.where(valid, values, local.astype(dtype, copy=False))


def masked_pyramid(image: np.ndarray, valid: np.ndarray | None, levels: int) -> list[np.ndarray]:
    """:func:`regcli.pyramid.gaussian_pyramid` of ``image`` from its ``valid`` pixels only.

    Level 0 is :func:`filled`; each coarser level is the normalised convolution
    ``reduce(image * valid) / reduce(valid)`` (the mean of the valid pixels under each coarse
    pixel), the mean of the valid pixels where none is under it.  Without ``valid`` this is the
    plain pyramid.
    """
    if valid is None:
        return pyramid.gaussian_pyramid(image, levels)
    base = filled(image, valid)
    fill = float(np.mean(base[valid], dtype=np.float64))
    weights = valid.astype(base.dtype)
    sums = pyramid.gaussian_pyramid(base * weights, levels)
    counts = pyramid.gaussian_pyramid(weights, levels)
    out = [base]
    for total, weight in zip(sums[1:], counts[1:], strict=True):
        out.append(_normalised(total, weight, fill))
    return out


def masked_downsample(image: np.ndarray, valid: np.ndarray | None, factor) -> np.ndarray:
    """:func:`regcli.pyramid.downsample` of ``image`` from its ``valid`` pixels only (as
    :func:`masked_pyramid`); ``factor`` is a number or ``(fy, fx)``."""
    if valid is None:
        return pyramid.downsample(image, factor)
    base = filled(np.asarray(image, dtype=np.float64), valid)
    fill = float(np.mean(base[valid], dtype=np.float64))
    weights = valid.astype(np.float64)
    total = pyramid.downsample(base * weights, factor)
    weight = pyramid.downsample(weights, factor)
    return _normalised(total, weight, fill)


def _normalised(total: np.ndarray, weight: np.ndarray, fill: float) -> np.ndarray:
    safe = np.maximum(weight, _MIN_WEIGHT)
    return np.where(weight > _MIN_WEIGHT, total / safe, total.dtype.type(fill))
