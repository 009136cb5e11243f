"""The benchmark adapters return regcli's matrix convention (fixed pixel -> moving pixel).

Each method registers a small pair built with a known matrix; a convention slip (inverse,
swapped x/y, rotation about the wrong point) gives errors of pixels, not hundredths.
Skipped when the bench extra (SimpleITK, OpenCV, pystackreg) is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_blobs

from regcli.resample import warp
from regcli.transforms import mean_displacement, rotation_matrix, translation_matrix

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODULES = {"sitk": "SimpleITK", "ecc": "cv2", "stackreg": "pystackreg"}

SHAPE = (120, 136)
CENTER = ((SHAPE[1] - 1) / 2.0, (SHAPE[0] - 1) / 2.0)
TRUTHS = {
    "translation": translation_matrix(4.5, -2.25),
    # rotation about the image centre (clockwise on screen), then a shift
    "rotation": translation_matrix(2.0, 1.5) @ rotation_matrix(np.radians(8.0), CENTER),
    # rotation about the top-left pixel: catches adapters that assume a centre
    "rotation_topleft": rotation_matrix(np.radians(-3.0)),
}


def _pair(truth):
    fixed = smooth_blobs(SHAPE, seed=3)
    moving = warp(fixed, np.linalg.inv(truth), order=3)
    return fixed.astype(np.float32), moving.astype(np.float32)


@pytest.mark.parametrize("case", sorted(TRUTHS))
@pytest.mark.parametrize("method", sorted(MODULES))
def test_anchor_adapter_recovers_known_matrix(method, case):
    pytest.importorskip(MODULES[method])
    from bench.adapters import ADAPTERS

    truth = TRUTHS[case]
    fixed, moving = _pair(truth)
    found = ADAPTERS[method](fixed, moving, metric="ssd")
    assert found.shape == (3, 3)
    assert mean_displacement(found, truth, SHAPE) < 0.1
    # and the matrix warps the moving image back onto the fixed one
    aligned = warp(moving, found, order=3)
    inner = (slice(25, -25), slice(25, -25))
    assert np.abs(aligned - fixed)[inner].max() < 0.02


def test_sitk_matrix_matches_transform_point():
    sitk = pytest.importorskip("SimpleITK")
    from bench.adapters import sitk_matrix

    transform = sitk.Euler2DTransform((40.0, 25.0), 0.3, (3.0, -7.5))
    matrix = sitk_matrix(transform)
    for point in [(0.0, 0.0), (12.0, 70.0), (99.5, 3.25)]:
        expected = transform.TransformPoint(point)
        assert np.allclose(matrix @ [*point, 1.0], [*expected, 1.0])


def test_sitk_resample_agrees_with_regcli_warp():
    """sitk.Resample(moving, T) samples moving at T(x) for every fixed x: regcli's warp."""
    sitk = pytest.importorskip("SimpleITK")
    from bench.adapters import sitk_matrix

    image = smooth_blobs(SHAPE, seed=5)
    transform = sitk.Euler2DTransform((60.0, 50.0), -0.2, (4.0, 2.5))
    resampled = sitk.GetArrayFromImage(
        sitk.Resample(sitk.GetImageFromArray(image), transform, sitk.sitkLinear, 0.0)
    )
    warped = warp(image, sitk_matrix(transform), order=1)
    inner = (slice(20, -20), slice(20, -20))
    assert np.allclose(resampled[inner], warped[inner], atol=1e-6)


def test_regcli_adapter_recovers_known_matrix():
    pytest.importorskip("regcli.registration")
    from bench.adapters import ADAPTERS

    truth = TRUTHS["rotation"]
    fixed, moving = _pair(truth)
    found = ADAPTERS["regcli"](fixed, moving, metric="ssd")
    assert mean_displacement(found, truth, SHAPE) < 0.1


def test_bench_cases_hold_their_truth():
    """Each case's moving image warped by its truth gives back the fixed image (up to noise)."""
    from bench.cases import NOISE, build_cases

    cases = build_cases((256,), quick=True)
    assert {c.kind for c in cases} == {"translation", "rigid", "multimodal"}
    inner = (slice(40, -40), slice(40, -40))
    for case in cases:
        if case.kind == "multimodal":
            continue
        aligned = warp(case.moving, case.truth, order=3)
        residual = np.std((aligned - case.fixed)[inner])
        # two independent noises of NOISE each, plus a little interpolation error
        assert residual < 2.0 * NOISE, case.name
        wrong = warp(case.moving, np.linalg.inv(case.truth), order=3)
        assert np.std((wrong - case.fixed)[inner]) > 3.0 * residual, case.name


def test_failing_method_is_a_result_not_a_crash(monkeypatch):
    from bench import run
    from bench.adapters import ADAPTERS, Adapter
    from bench.cases import build_cases

    def explode(prepared, *, metric="ssd"):
        raise RuntimeError("did not converge\nat all")

    monkeypatch.setitem(ADAPTERS, "broken", Adapter("broken", "broken", lambda f, m: None, explode))
    case = build_cases((256,), quick=True, kinds={"translation"})[0]
    row = run.run_one("broken", case)
    assert row["solved"] is False
    assert row["error_px"] == float("inf")
    assert row["note"] == "RuntimeError: at all"
