"""Masked, overlap-normalised cross-correlation over every shift at once (FFT).

For two images with masks of where each has data, :func:`masked_ncc` gives, for every shift
``s = (sx, sy)``, the Pearson correlation of ``fixed(x)`` and ``moving(x + s)`` over the pixels
``x`` where both have data, and how many pixels that is.  Pixels outside either mask never count
as content, so zero padding (or a white background cut off by the frame) does not pull the
peak, and a shift with a small overlap is judged on that overlap alone.  This is the
formulation of D. Padfield, "Masked object registration in the Fourier domain", IEEE Trans.
Image Processing 21(5), 2012 (doi:10.1109/TIP.2011.2181402): six sums over the overlap, each
one correlation of masked images, computed with real FFTs.

:func:`fisher_z` turns a correlation over ``n`` pixels into a significance that accounts for
the overlap's size, ``atanh(r) * sqrt(n - 3)``: a correlation of 0.9 over 40 pixels is weaker
evidence than 0.8 over 4000.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as _fft

__all__ = ["Correlation", "MaskedCorrelator", "fisher_z", "masked_ncc"]

#: Correlations are clipped to this magnitude before ``atanh`` (r = 1 is an exact copy).
MAX_R = 0.9999


@dataclass(frozen=True)
class Correlation:
    """Correlation surfaces of a fixed image against one or more moving images.

    The surfaces are in the FFT's circular layout: index ``[..., i, j]`` is the shift
    ``(sx, sy) = (shift_x[j], shift_y[i])``, i.e. ``fixed(x, y)`` compared with
    ``moving(x + sx, y + sy)``.  Indices of no shift with an overlap have ``n = 0``.  A
    :class:`MaskedCorrelator` with ``max_shift`` keeps only the rows and columns of the
    shifts within it and of their neighbours (left-out indices lie between two kept ones
    with ``n = 0``, so the neighbouring indices of a shift are its neighbouring shifts or
    have ``n = 0``, as in the whole layout).

    Attributes
    ----------
    r : ndarray
        Pearson correlation over the overlap (0 where it is undefined: too few pixels or no
        contrast in either image there).
    n : ndarray
        Pixels in the overlap.
    shift_y, shift_x : 1-D ndarrays
        The shift of each row and each column of the surfaces.
    """

    r: np.ndarray
    n: np.ndarray
    shift_y: np.ndarray
    shift_x: np.ndarray

    def shift_of(self, index) -> np.ndarray:
        """The shift ``(sx, sy)`` of a surface index ``(..., i, j)``."""
        return np.array([self.shift_x[index[-1]], self.shift_y[index[-2]]], dtype=float)

    def z(self) -> np.ndarray:
        """:func:`fisher_z` of every shift."""
        return fisher_z(self.r, self.n)


def fisher_z(r, n) -> np.ndarray:
    """``atanh(r) * sqrt(n - 3)``: the correlation ``r`` over ``n`` pixels as a significance.

    >>> round(float(fisher_z(0.5, 103)), 3)
    5.493
    """
    r = np.clip(np.asarray(r, dtype=float), -MAX_R, MAX_R)
    return np.arctanh(r) * np.sqrt(np.maximum(np.asarray(n, dtype=float) - 3.0, 0.0))


def _centred(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` minus its mean over ``mask``, times the mask (better-conditioned sums)."""
    axes = (-2, -1)
    count = np.maximum(mask.sum(axis=axes, keepdims=True), 1.0)
    mean = (image * mask).sum(axis=axes, keepdims=True) / count
    return (image - mean) * mask


def masked_ncc(
    fixed: np.ndarray,
    fixed_mask: np.ndarray | None,
    moving: np.ndarray,
    moving_mask: np.ndarray | None,
    *,
    min_overlap: int = 16,
) -> Correlation:
    """Masked normalised cross-correlation of ``fixed`` with ``moving`` for every shift.

    Parameters
    ----------
    fixed : (rows_f, cols_f) array
    fixed_mask : (rows_f, cols_f) bool array or None
        Where ``fixed`` has data (None: everywhere).
    moving : (rows_m, cols_m) or (k, rows_m, cols_m) array
        One moving image or a stack of them (each correlated with ``fixed``).
    moving_mask : array of ``moving``'s shape, or None
    min_overlap : int
        Shifts with fewer overlapping pixels get ``r = 0``.

    Returns
    -------
    Correlation
        Surfaces covering every shift with an overlap (at least ``(rows_f + rows_m - 1,
        cols_f + cols_m - 1)`` of them).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random((20, 24))
    >>> b = np.zeros((20, 24)); b[3:, 5:] = a[:-3, :-5]     # a moved 5 right, 3 down
    >>> mask = np.zeros((20, 24), bool); mask[3:, 5:] = True
    >>> c = masked_ncc(a, None, b, mask)
    >>> index = np.unravel_index(np.argmax(c.r), c.r.shape)
    >>> c.shift_of(index).tolist(), round(float(c.r[index]), 4)
    ([5.0, 3.0], 1.0)
    """
    moving = np.asarray(moving)
    return MaskedCorrelator(fixed, fixed_mask, moving.shape[-2:], dtype=np.float64)(
        moving, moving_mask, min_overlap=min_overlap
    )


class MaskedCorrelator:
    """:func:`masked_ncc` of one fixed image against many moving images of one shape: the
    fixed image's spectra are computed once.

    ``dtype`` of the transforms: float32 (twice as fast) ranks shifts well, but its rounding
    (about 1e-7 of the whole image's energy) hides the contrast of a faint region; float64
    sees contrast a million times fainter.  When neither image has a mask (both domains are
    whole rectangles) the overlap's sums of ``1, f, f^2, g, g^2`` are box sums of integral
    images (Lewis, "Fast normalized cross-correlation", 1995) and only ``sum f g`` needs
    transforms.  ``max_shift`` (pixels, each axis) limits the shifts: the transforms are
    shorter, and the surfaces hold those shifts alone (:class:`Correlation`).
    """

    def __init__(self, fixed, fixed_mask, moving_shape, *, dtype=np.float32, max_shift=None):
        self.dtype = np.dtype(dtype)
        f = np.asarray(fixed, dtype=np.float64)
        self.rectangle = fixed_mask is None or bool(np.all(fixed_mask))
        # Variances below this fraction of the image's energy per pixel are rounding noise
        # (none with box sums: they are exact).
        self.floor = 1e-5 if self.dtype == np.float32 else 1e-10
        a = np.ones(f.shape) if self.rectangle else np.asarray(fixed_mask, dtype=np.float64)
        f = _centred(f, a)
        self.fixed_shape = f.shape
        self.moving_shape = (int(moving_shape[0]), int(moving_shape[1]))
        # Every shift needs transforms of rows_f + rows_m - 1 samples; shifts up to
        # ``max_shift`` only need max(rows) + max_shift (the others then alias: left out).
        self.shape = tuple(
            _fft.next_fast_len(
                int(a) + int(b) - 1
                if max_shift is None
                else min(int(a) + int(b) - 1, max(int(a), int(b)) + int(max_shift)),
                real=True,
            )
            for a, b in zip(f.shape, moving_shape, strict=True)
        )
        self.power = max(float(np.mean(f * f)), 1e-30)
        # Circular index k is the shift k, or k - size past the moving image's extent.
        self.shift_y, self.shift_x = (
            np.where(np.arange(size) < int(m), np.arange(size), np.arange(size) - size)
            for m, size in zip(moving_shape, self.shape, strict=True)
        )
        # Indices where a positive and a negative shift both overlap and alias.
        aliased = [
            (np.arange(size) >= size - int(a) + 1) & (np.arange(size) <= int(m) - 1)
            for a, m, size in zip(f.shape, moving_shape, self.shape, strict=True)
        ]
        # The surfaces keep the rows and columns of unaliased shifts and their neighbours (so
        # that a neighbour of a kept shift is a kept index or nothing, as in the whole layout):
        # with ``max_shift`` most of the transform's samples alias, and everything after the
        # transforms works on the kept ones alone.
        self._keep = [_kept(~a) for a in aliased]
        self.shift_y, self.shift_x = (
            s if k is None else s[k]
            for s, k in zip((self.shift_y, self.shift_x), self._keep, strict=True)
        )
        self.valid = ~(self._crop(aliased[0][:, None]) | self._crop(aliased[1][None, :]))
        self._fixed = (a, f)
        self._spectra = None
        self._box = None  # integral images and spectrum of f, made on first use

    @property
    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """Integral images of ``f``, ``f^2`` and the conjugate spectrum of ``f``."""
        if self._box is None:
            _, f = self._fixed
            self._box = (
                _integral(np.stack([f, f * f])),
                np.conj(_fft.rfft2(f.astype(self.dtype), self.shape)),
            )
        return self._box

    @property
    def spectra(self) -> np.ndarray:
        """Conjugate spectra of ``a``, ``a f``, ``a f^2`` (made on first use)."""
        if self._spectra is None:
            a, f = self._fixed
            stack = np.stack([a, f, f * f]).astype(self.dtype)
            self._spectra = np.conj(_fft.rfft2(stack, self.shape, axes=(-2, -1)))
        return self._spectra

    def _crop(self, surfaces: np.ndarray) -> np.ndarray:
        """The kept rows and columns of ``surfaces`` (the last two axes; an axis of length 1
        is a broadcast one, left as it is)."""
        out = surfaces
        for axis, keep in ((-2, self._keep[0]), (-1, self._keep[1])):
            if keep is not None and out.shape[axis] > 1:
                out = np.take(out, keep, axis=axis)
        return out

    def __call__(self, moving, moving_mask, *, min_overlap: int = 16) -> Correlation:
        g = np.asarray(moving, dtype=np.float64)
        floor = self.floor
        if self.rectangle and (moving_mask is None or bool(np.all(moving_mask))):
            g = _centred(g, np.ones(g.shape))
            n, sum_f, sum_g, sum_fg, sum_ff, sum_gg = self._box_sums(g)
            floor = 1e-10
        else:
            b = np.ones(g.shape) if moving_mask is None else np.asarray(moving_mask, np.float64)
            b = np.broadcast_to(b, g.shape)
            g = _centred(g, b)
            n, sum_f, sum_g, sum_fg, sum_ff, sum_gg = self._masked_sums(g, b)
        power_g = np.maximum(np.mean(g * g, axis=(-2, -1), keepdims=True), 1e-30)
        n = np.rint(n)
        safe_n = np.maximum(n, 1.0)
        cov = sum_fg - sum_f * sum_g / safe_n
        var_f = sum_ff - sum_f * sum_f / safe_n
        var_g = sum_gg - sum_g * sum_g / safe_n
        # Variances below a relative floor are rounding noise of the sums (no contrast there).
        defined = (
            (n >= min_overlap)
            & self.valid
            & (var_f > floor * safe_n * self.power)
            & (var_g > floor * safe_n * power_g)
        )
        denominator = np.sqrt(np.where(defined, var_f * var_g, 1.0))
        r = np.where(defined, cov / denominator, 0.0)
        n = np.where(self.valid, n, 0.0)
        return Correlation(r=np.clip(r, -1.0, 1.0), n=n, shift_y=self.shift_y, shift_x=self.shift_x)

    def _masked_sums(self, g: np.ndarray, b: np.ndarray):
        """n, sum f, sum g, sum f g, sum f^2, sum g^2 over the overlap, by transforms."""
        forward = _fft.rfft2(np.stack([b, g, g * g]).astype(self.dtype), self.shape, axes=(-2, -1))
        fa, ff, ff2 = self.spectra[:, None] if g.ndim == 3 else self.spectra
        gb, gg, gg2 = forward
        products = np.stack([fa * gb, ff * gb, fa * gg, ff * gg, ff2 * gb, fa * gg2])
        return self._crop(_fft.irfft2(products, self.shape, axes=(-2, -1)))

    def _box_sums(self, g: np.ndarray):
        """The same sums for two whole rectangles: box sums, and one transform for f g."""
        rows_f, cols_f = self.fixed_shape
        rows_m, cols_m = self.moving_shape
        # Fixed rows [y0, y1) face moving rows [y0 + s, y1 + s) at shift s (same for x).
        y0 = np.clip(-self.shift_y, 0, rows_f)
        y1 = np.clip(rows_m - self.shift_y, y0, rows_f)
        x0 = np.clip(-self.shift_x, 0, cols_f)
        x1 = np.clip(cols_m - self.shift_x, x0, cols_f)
        integrals, fixed_spectrum = self.box
        fixed = _box(integrals, y0, y1, x0, x1)
        # A shift with no overlap (an empty range, y0 == y1) may point past the moving image
        # (the transform's length exceeds both images by more than a thin moving image has
        # rows): clamped, its range stays empty.  Overlapping ranges are inside already.
        moving = _box(
            _integral(np.stack([g, g * g], axis=0)),
            np.clip(y0 + self.shift_y, 0, rows_m),
            np.clip(y1 + self.shift_y, 0, rows_m),
            np.clip(x0 + self.shift_x, 0, cols_m),
            np.clip(x1 + self.shift_x, 0, cols_m),
        )
        n = np.outer(y1 - y0, x1 - x0).astype(np.float64)
        if g.ndim == 3:
            fixed = fixed[:, None]
        spectrum = fixed_spectrum * _fft.rfft2(g.astype(self.dtype), self.shape, axes=(-2, -1))
        sum_fg = self._crop(_fft.irfft2(spectrum, self.shape, axes=(-2, -1)))
        return n, fixed[0], moving[0], sum_fg, fixed[1], moving[1]


def _kept(valid: np.ndarray) -> np.ndarray | None:
    """Indices of the ``valid`` entries of an axis and of their neighbours, or None when
    that is every index."""
    near = valid.copy()
    near[1:] |= valid[:-1]
    near[:-1] |= valid[1:]
    return None if near.all() else np.flatnonzero(near)


def _integral(images: np.ndarray) -> np.ndarray:
    """Integral images with a leading row and column of zeros (last two axes)."""
    out = np.zeros((*images.shape[:-2], images.shape[-2] + 1, images.shape[-1] + 1))
    np.cumsum(np.cumsum(images, axis=-2), axis=-1, out=out[..., 1:, 1:])
    return out


def _box(integral: np.ndarray, y0, y1, x0, x1) -> np.ndarray:
    """Sums over the boxes ``[y0, y1) x [x0, x1)`` for every (row range, column range)."""
    rows = np.take(integral, y1, axis=-2) - np.take(integral, y0, axis=-2)
    return np.take(rows, x1, axis=-1) - np.take(rows, x0, axis=-1)
