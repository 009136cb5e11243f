"""Masked, overlap-normalised cross-correlation (regcli.xcorr) and image domains
(regcli.domain), against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from regcli.domain import Domain, overlap
from regcli.transforms import make_transform
from regcli.xcorr import MaskedCorrelator, fisher_z, masked_ncc


def brute_force(fixed, fixed_mask, moving, moving_mask, sy, sx):
    """Pearson r and overlap of fixed(y, x) against moving(y + sy, x + sx), both masked."""
    values = []
    for y in range(fixed.shape[0]):
        for x in range(fixed.shape[1]):
            v, u = y + sy, x + sx
            if 0 <= v < moving.shape[0] and 0 <= u < moving.shape[1]:
                if fixed_mask[y, x] and moving_mask[v, u]:
                    values.append((fixed[y, x], moving[v, u]))
    if len(values) < 3:
        return None, len(values)
    a, b = np.array(values).T
    return float(np.corrcoef(a, b)[0, 1]), len(values)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("max_shift", [None, 6])
@pytest.mark.parametrize(
    "shapes",
    [((14, 17), (12, 15)), ((64, 5), (2, 5)), ((5, 64), (5, 2))],
    ids=["similar", "thin-rows", "thin-columns"],  # (the transform outgrows a thin image)
)
def test_every_shift_matches_brute_force(masked, max_shift, shapes):
    rng = np.random.default_rng(4)
    fixed, moving = rng.random(shapes[0]), rng.random(shapes[1])
    fixed_mask = rng.random(fixed.shape) > 0.2 if masked else np.ones(fixed.shape, bool)
    moving_mask = rng.random(moving.shape) > 0.3 if masked else np.ones(moving.shape, bool)
    correlator = MaskedCorrelator(
        fixed, fixed_mask if masked else None, moving.shape, dtype=np.float64, max_shift=max_shift
    )
    surface = correlator(moving, moving_mask if masked else None, min_overlap=10)
    checked = set()
    for i, sy in enumerate(surface.shift_y):
        for j, sx in enumerate(surface.shift_x):
            if surface.n[i, j] < 10:
                continue
            r, n = brute_force(fixed, fixed_mask, moving, moving_mask, int(sy), int(sx))
            assert n == surface.n[i, j]
            assert surface.r[i, j] == pytest.approx(r, abs=1e-9)
            checked.add((int(sy), int(sx)))
    # Every shift with enough overlap is there (within the shift range asked for).
    limit = max_shift if max_shift is not None else 100
    for sy in range(1 - fixed.shape[0], moving.shape[0]):
        for sx in range(1 - fixed.shape[1], moving.shape[1]):
            if abs(sy) <= limit and abs(sx) <= limit:
                _, n = brute_force(fixed, fixed_mask, moving, moving_mask, sy, sx)
                assert (n >= 10) == ((sy, sx) in checked), (sy, sx)


def test_a_small_overlap_of_fine_texture_is_found():
    """A copy moved so that 5 columns overlap: the peak is there, exact (r = 1)."""
    rng = np.random.default_rng(0)
    fixed = rng.random((40, 40))
    moving = np.zeros((40, 40))
    moving[:, 35:] = fixed[:, :5]
    surface = masked_ncc(fixed, None, moving, None, min_overlap=100)
    z = np.where(surface.n >= 100, fisher_z(surface.r, surface.n), -np.inf)
    index = np.unravel_index(np.argmax(z), z.shape)
    assert surface.shift_of(index).tolist() == [35.0, 0.0]
    assert surface.r[index] == pytest.approx(1.0)


def test_fisher_z_weighs_the_overlap():
    assert fisher_z(0.8, 4000) > fisher_z(0.95, 40)
    assert fisher_z(0.5, 3) == 0.0


def test_domain_overlap_is_the_moving_rectangle_seen_from_the_fixed_grid():
    fixed, moving = Domain((20, 30)), Domain((20, 30))
    shift = make_transform("translation", shape=(20, 30)).matrix([10.0, -5.0])
    mask = overlap(fixed, moving, shift)
    assert mask.sum() == (30 - 10) * (20 - 5)
    assert mask[5:, :20].all() and not mask[:5].any() and not mask[:, 20:].any()


def test_domain_masks_and_with_the_rectangle_and_survive_a_pyramid():
    data = np.ones((32, 32), bool)
    data[:, :8] = False  # no data in the first 8 columns
    domain = Domain.of(np.zeros((32, 32)), data)
    assert not domain.full and domain.count() == 32 * 24
    assert Domain.of(np.zeros((32, 32))).full
    coarse = domain.level(1)
    assert coarse.shape == (16, 16) and not coarse.valid()[:, :3].any()
    assert coarse.valid()[:, 5:].all()
    inside = domain.inside(np.eye(3), (32, 32))
    assert np.array_equal(inside, data)
