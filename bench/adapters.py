"""One adapter per registration method, each returning regcli's matrix convention.

An adapter is called as ``adapter(fixed, moving, metric=...)`` with two float32 arrays of the
same shape and returns the 3x3 matrix ``M`` that maps a fixed pixel ``(x=col, y=row, 1)`` to the
moving pixel showing the same anatomy (``aligned = regcli.warp(moving, M)``).  What each library
returns and why it is (or is not) already in that convention is written next to its call; the
conversions are checked on a pure translation and on a rotation in
``tests/test_bench_adapters.py``.

``prepare(fixed, moving)`` does the untimed work (type conversions); ``run(prepared, metric)``
is the registration that is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Adapter:
    """A method under test."""

    name: str
    label: str
    prepare: Callable[[np.ndarray, np.ndarray], Any]
    run: Callable[..., np.ndarray]
    #: metrics the method is run with: "ssd" cases (monomodal), "mi" cases (multimodal)
    metrics: tuple[str, ...] = ("ssd", "mi")

    def __call__(self, fixed, moving, *, metric: str = "ssd") -> np.ndarray:
        return self.run(self.prepare(fixed, moving), metric=metric)


# ------------------------------------------------------------------------------------ regcli


def _regcli_prepare(fixed, moving):
    return fixed, moving


def _regcli_run(prepared, *, metric: str = "ssd") -> np.ndarray:
    import regcli

    fixed, moving = prepared
    # Default flags; only the metric changes across modalities (SSD is meaningless there).
    result = regcli.register(fixed, moving, metric=metric)
    return np.asarray(result.matrix, dtype=float)


def _regcli_translation_run(prepared, *, metric: str = "ssd") -> np.ndarray:
    import regcli

    fixed, moving = prepared
    result = regcli.register(fixed, moving, metric=metric, transform="translation")
    return np.asarray(result.matrix, dtype=float)


# --------------------------------------------------------------------------------- SimpleITK


def _sitk_prepare(fixed, moving):
    import SimpleITK as sitk

    # GetImageFromArray: array [row, col] -> image index (i=col, j=row), origin 0, spacing 1,
    # identity direction, so a physical point (x, y) is exactly regcli's pixel (x=col, y=row).
    return (
        sitk.GetImageFromArray(np.ascontiguousarray(fixed, dtype=np.float32)),
        sitk.GetImageFromArray(np.ascontiguousarray(moving, dtype=np.float32)),
    )


def _sitk_run(prepared, *, metric: str = "ssd") -> np.ndarray:
    import SimpleITK as sitk

    fixed, moving = prepared
    size = max(fixed.GetSize())
    method = sitk.ImageRegistrationMethod()
    if metric == "mi":
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
        # A seeded random 20 % of the pixels, as the SimpleITK examples do for Mattes MI:
        # every pixel costs minutes per case at 1024^2 for no better accuracy.
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(0.2, 1)
    else:
        method.SetMetricAsMeanSquares()
    method.SetInterpolator(sitk.sitkLinear)
    # Initial step of about 1/128 of the image side (2 px at 256^2), as in the SimpleITK
    # examples; the step halves whenever the direction turns.
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=size / 128.0,
        minStep=1e-4,
        numberOfIterations=200,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    transform = sitk.CenteredTransformInitializer(
        fixed,
        moving,
        sitk.Euler2DTransform(),
        sitk.CenteredTransformInitializerFilter.GEOMETRY,
    )
    # In place: the optimised parameters end up in ``transform`` itself (an Euler2DTransform),
    # rather than in a composite transform that would need unpacking.
    method.SetInitialTransform(transform, inPlace=True)
    method.Execute(fixed, moving)
    return sitk_matrix(transform)


def sitk_matrix(transform) -> np.ndarray:
    """regcli matrix of a SimpleITK 2-D matrix-offset transform.

    ITK registration transforms map fixed physical points to moving physical points:
    ``T(x) = A (x - c) + c + t`` with ``A = GetMatrix()``, ``c = GetCenter()``,
    ``t = GetTranslation()``; with unit spacing and zero origin that is regcli's convention.
    """
    linear = np.array(transform.GetMatrix(), dtype=float).reshape(2, 2)
    center = np.array(transform.GetCenter(), dtype=float)
    shift = np.array(transform.GetTranslation(), dtype=float)
    out = np.eye(3)
    out[:2, :2] = linear
    out[:2, 2] = center - linear @ center + shift
    return out


# -------------------------------------------------------------------------------- OpenCV ECC


def _ecc_prepare(fixed, moving):
    return (
        np.ascontiguousarray(fixed, dtype=np.float32),
        np.ascontiguousarray(moving, dtype=np.float32),
    )


def _ecc_run(prepared, *, metric: str = "ssd") -> np.ndarray:
    import cv2

    fixed, moving = prepared
    warp_matrix = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    # findTransformECC(template, input, ...) returns W with input(W @ x) ~ template(x), i.e.
    # template = fixed, input = moving, W = fixed -> moving in (x=col, y=row): regcli's matrix
    # (it is the map that cv2.warpAffine(moving, W, flags=WARP_INVERSE_MAP) applies).
    _, warp_matrix = cv2.findTransformECC(
        fixed, moving, warp_matrix, cv2.MOTION_EUCLIDEAN, criteria, None, 5
    )
    return np.vstack([warp_matrix.astype(float), [0.0, 0.0, 1.0]])


# -------------------------------------------------------------------------------- pystackreg


def _stackreg_prepare(fixed, moving):
    return np.asarray(fixed, dtype=np.float64), np.asarray(moving, dtype=np.float64)


def _stackreg_run(prepared, *, metric: str = "ssd") -> np.ndarray:
    from pystackreg import StackReg

    fixed, moving = prepared
    # StackReg.register(ref, mov) returns the 3x3 matrix that transform(mov, tmat) uses as the
    # inverse map of the warp (output pixel (x=col, y=row) -> mov pixel): fixed -> moving.
    return np.asarray(StackReg(StackReg.RIGID_BODY).register(fixed, moving), dtype=float)


ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        Adapter("regcli", "regcli (default flags)", _regcli_prepare, _regcli_run),
        Adapter("sitk", "SimpleITK (MeanSquares / MattesMI)", _sitk_prepare, _sitk_run),
        Adapter("ecc", "OpenCV findTransformECC", _ecc_prepare, _ecc_run),
        Adapter("stackreg", "pystackreg RIGID_BODY", _stackreg_prepare, _stackreg_run),
    )
}
#: Methods run on some cases only (the Fourier-shift cases of bench/precision.py).
EXTRA_ADAPTERS: dict[str, Adapter] = {
    "regcli_t": Adapter(
        "regcli_t", "regcli --transform translation", _regcli_prepare, _regcli_translation_run
    ),
}
