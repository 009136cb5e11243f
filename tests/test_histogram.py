"""joint_histogram: counts sum to rows x cols, equal numpy.histogram2d, default bins; entropies;
the Parzen-window joint histogram of the MI costs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regcli.errors import InputError
from regcli.histogram import (
    default_edges,
    entropy,
    joint_entropy,
    joint_histogram,
    marginal_entropies,
    parzen_joint_histogram,
)

DTYPES = ["uint8", "uint16", "float32", "float64"]


def random_image(rng, shape, dtype):
    if dtype == "uint8":
        return rng.integers(0, 256, shape).astype(np.uint8)
    if dtype == "uint16":
        return rng.integers(0, 65536, shape).astype(np.uint16)
    return rng.normal(0.0, 10.0, shape).astype(dtype)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    dtype1=st.sampled_from(DTYPES),
    dtype2=st.sampled_from(DTYPES),
    bins=st.one_of(
        st.none(),
        st.integers(1, 70),
        st.tuples(st.integers(1, 70), st.integers(1, 70)),
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_joint_histogram_sums_to_pixel_count_and_matches_numpy(
    rows, cols, dtype1, dtype2, bins, seed
):
    rng = np.random.default_rng(seed)
    image1 = random_image(rng, (rows, cols), dtype1)
    image2 = random_image(rng, (rows, cols), dtype2)
    hist, edges1, edges2 = joint_histogram(image1, image2, bins=bins)
    assert hist.sum() == rows * cols
    assert hist.shape == (edges1.size - 1, edges2.size - 1)
    expected, _, _ = np.histogram2d(
        image1.ravel().astype(np.float64), image2.ravel().astype(np.float64), bins=[edges1, edges2]
    )
    np.testing.assert_array_equal(hist, expected)
    if bins is not None:
        reference, reference1, reference2 = np.histogram2d(
            image1.ravel().astype(np.float64), image2.ravel().astype(np.float64), bins=bins
        )
        np.testing.assert_array_equal(hist, reference)
        np.testing.assert_allclose(edges1, reference1)
        np.testing.assert_allclose(edges2, reference2)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(2, 30))
def test_explicit_edges_and_range_match_numpy(seed, size):
    rng = np.random.default_rng(seed)
    image1 = rng.uniform(0, 1, (size, 7))
    image2 = rng.uniform(-1, 1, (size, 7))
    edges1 = np.sort(rng.uniform(-0.1, 1.1, 6))
    edges2 = np.linspace(-0.5, 0.5, 5)
    hist, e1, _ = joint_histogram(image1, image2, bins=(edges1, edges2))
    expected, _, _ = np.histogram2d(image1.ravel(), image2.ravel(), bins=[edges1, edges2])
    np.testing.assert_array_equal(hist, expected)
    np.testing.assert_array_equal(e1, edges1)
    ranged, _, _ = joint_histogram(image1, image2, bins=4, range=((0.2, 0.8), (-0.5, 0.5)))
    expected, _, _ = np.histogram2d(
        image1.ravel(), image2.ravel(), bins=4, range=((0.2, 0.8), (-0.5, 0.5))
    )
    np.testing.assert_array_equal(ranged, expected)


def test_small_example_and_right_edge_inclusive():
    image = np.array([[0, 1], [1, 1]], dtype=np.int32)
    hist, edges1, _ = joint_histogram(image, image)
    np.testing.assert_array_equal(hist, [[1, 0], [0, 3]])
    np.testing.assert_array_equal(edges1, [-0.5, 0.5, 1.5])
    floats = np.array([[0.0, 0.5, 1.0]])
    hist, _, _ = joint_histogram(floats, floats, bins=2)
    # 1.0 is the right-most edge: counted in the last bin, not dropped.
    np.testing.assert_array_equal(hist, [[1, 0], [0, 2]])


def test_default_bins_one_per_grey_level_for_8_bit():
    image = np.array([[3, 7], [200, 3]], dtype=np.uint8)
    edges = default_edges(image)
    np.testing.assert_array_equal(edges, np.arange(257) - 0.5)
    hist, _, _ = joint_histogram(image, image)
    assert hist.shape == (256, 256)
    assert hist[3, 3] == 2 and hist[200, 200] == 1
    small_range = np.array([[10, 12], [11, 10]], dtype=np.uint16)
    np.testing.assert_array_equal(default_edges(small_range), [9.5, 10.5, 11.5, 12.5])


def test_default_bins_for_float_and_16_bit_are_capped():
    rng = np.random.default_rng(3)
    image = rng.uniform(size=(256, 256))
    assert default_edges(image).size - 1 == 81  # Rice rule: round(2 * 65536 ** (1/3))
    wide = rng.integers(0, 65536, (300, 300)).astype(np.uint16)
    assert 16 <= default_edges(wide).size - 1 <= 256
    assert default_edges(np.zeros((2, 2))).size - 1 == 16


def test_constant_images_get_one_bin_of_width_one():
    hist, edges1, _ = joint_histogram(np.full((3, 3), 5.0), np.full((3, 3), 5.0), bins=1)
    np.testing.assert_array_equal(edges1, [4.5, 5.5])
    assert hist.sum() == 9


def test_normed_sums_to_one():
    rng = np.random.default_rng(0)
    image1, image2 = rng.uniform(size=(2, 20, 30))
    hist, _, _ = joint_histogram(image1, image2, bins=10, normed=True)
    assert hist.sum() == pytest.approx(1.0)


def test_shapes_differ_names_both_shapes():
    with pytest.raises(InputError, match=r"\(4, 5\) and \(5, 4\)"):
        joint_histogram(np.zeros((4, 5)), np.zeros((5, 4)))


@pytest.mark.parametrize(
    ("bins", "match"),
    [(0, "whole number from 1 to"), (2.5, "whole number"), (np.array([1.0, 0.0]), "increasing")],
)
def test_bad_bins_are_input_errors(bins, match):
    with pytest.raises(InputError, match=match):
        joint_histogram(np.zeros((3, 3)), np.ones((3, 3)), bins=bins)


def test_bad_range_is_input_error():
    with pytest.raises(InputError, match="range"):
        joint_histogram(np.zeros((3, 3)), np.ones((3, 3)), bins=3, range=((1, 0), (0, 1)))


def test_entropy_values():
    assert entropy([1, 1, 1, 1]) == pytest.approx(np.log(4))
    assert entropy([5, 0, 0]) == 0.0
    assert entropy(np.zeros(3)) == 0.0
    with pytest.raises(InputError, match="non-negative"):
        entropy([-1, 2])


def test_marginal_and_joint_entropies_of_independent_uniform_bins():
    hist = np.ones((4, 8))
    h1, h2 = marginal_entropies(hist)
    assert h1 == pytest.approx(np.log(4))
    assert h2 == pytest.approx(np.log(8))
    assert joint_entropy(hist) == pytest.approx(np.log(32))


def test_joint_histogram_is_vectorised_fast_enough_for_large_images():
    rng = np.random.default_rng(0)
    image1 = rng.integers(0, 256, (512, 512)).astype(np.uint8)
    image2 = rng.integers(0, 256, (512, 512)).astype(np.uint8)
    hist, _, _ = joint_histogram(image1, image2)
    assert hist.shape == (256, 256)
    assert hist.sum() == 512 * 512


# --------------------------------------------------------------------------- Parzen window


def test_parzen_histogram_is_a_probability_with_the_hard_fixed_marginal():
    rng = np.random.default_rng(4)
    fixed = rng.uniform(0.0, 1.0, 500)
    moving = np.clip(fixed + 0.1 * rng.normal(size=fixed.size), 0.0, 1.0)
    joint, base, slopes = parzen_joint_histogram(fixed, moving, (8, 12), (0.0, 1.0), (0.0, 1.0))
    assert joint.shape == (8, 12)
    assert joint.sum() == pytest.approx(1.0)
    assert np.all(joint >= 0)
    hard, _ = np.histogram(fixed, bins=8, range=(0.0, 1.0))
    np.testing.assert_allclose(joint.sum(axis=1), hard / fixed.size, atol=1e-12)
    assert base.shape == fixed.shape and len(slopes) == 4
    # The four weights' slopes sum to zero (the weights always sum to one).
    np.testing.assert_allclose(sum(slopes), 0.0, atol=1e-9)
    assert parzen_joint_histogram(fixed, moving, (8, 12), (0, 1), (0, 1), slopes=False)[2] is None
