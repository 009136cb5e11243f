"""The scipy chapter's experiment (scripts/chapter.py): the astronaut turned by 40 degrees."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
from conftest import ROOT

from regcli.resample import warp


@pytest.fixture(scope="module")
def chapter():
    spec = importlib.util.spec_from_file_location("chapter", ROOT / "scripts" / "chapter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_true_matrix_matches_skimage_rotate(chapter):
    """skimage's rotate(+40) (counter-clockwise) is regcli's -40 degrees about the centre."""
    from skimage import transform

    fixed, _ = chapter.chapter_images()
    turned = transform.rotate(fixed, chapter.ANGLE_DEG)
    ours = warp(fixed, np.linalg.inv(chapter.true_matrix(fixed.shape)), order=1)
    y, x = np.mgrid[0 : fixed.shape[0], 0 : fixed.shape[1]]
    middle = (x - 76.5) ** 2 + (y - 76.5) ** 2 < 70**2
    assert np.abs(turned - ours)[middle].max() < 1e-9
    # ... and the opposite sign is clearly wrong: the comparison can fail.
    wrong = warp(fixed, chapter.true_matrix(fixed.shape), order=1)
    assert np.abs(turned - wrong)[middle].mean() > 0.05


def test_chapter_experiment(chapter, tmp_path):
    """Acceptance: within 0.1 deg with pluim + powell, and with the default flags (~3 s)."""
    assert chapter.main(["--out", str(tmp_path), "--quick"]) == 0
    summary = json.loads((tmp_path / "chapter.json").read_text())
    assert summary["true_angle_deg"] == -40.0
    for name in ("pluim+powell", "default flags"):
        case = summary["cases"][name]
        assert case["angle_deg"] == pytest.approx(-40.0, abs=0.1), name
        assert case["mean_displacement_px"] < 0.1, name
    assert summary["cases"]["pluim+powell"]["optimizer"] == "powell"
    assert summary["cases"]["pluim+powell"]["metric"] == "pluim"
    # The cost profile around the found angle has its minimum at the truth.
    assert summary["profiles"]["angle"]["minimum"] == pytest.approx(-40.0, abs=0.5)
    assert not math.isnan(summary["profiles"]["angle"]["minimum"])
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["chapter.json", "chapter_images.png", "chapter_profile_angle.png"]
