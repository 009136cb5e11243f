"""Metrics: textbook values, the registry contract, and cost gradients vs finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import smooth_blobs

from regcli.errors import InputError
from regcli.histogram import entropy, joint_histogram
from regcli.metrics import (
    MAX_COST_BINS,
    METRICS,
    MIN_COST_BINS,
    correlation,
    get_metric,
    gradient_similarity,
    mutual_information,
    normalized_mutual_information,
    pluim,
    ssd,
)
from regcli.resample import translate

GRADIENT_METRICS = [name for name, metric in METRICS.items() if metric.cost_gradient]


@pytest.fixture(scope="module")
def image():
    return smooth_blobs((40, 48), seed=2)


def quantised(image, levels=256):
    return np.round(image * (levels - 1)).astype(np.uint8)


# --------------------------------------------------------------------------- registry


def test_registry_names_are_the_documented_ones():
    assert list(METRICS) == ["ssd", "correlation", "mi", "nmi", "gradient", "pluim"]
    assert METRICS["ssd"].higher_is_better is False
    assert all(METRICS[name].higher_is_better for name in list(METRICS)[1:])
    assert set(GRADIENT_METRICS) == {"ssd", "correlation", "mi", "nmi"}
    assert METRICS["mi"].options == ("bins", "moving_range")
    assert METRICS["pluim"].options == ("bins", "sigma", "moving_range")
    assert METRICS["gradient"].cost_label == "-gradient"


def test_get_metric_unknown_lists_choices():
    with pytest.raises(InputError, match=r"unknown metric 'foo'.*ssd, correlation") as excinfo:
        get_metric("foo")
    assert excinfo.value.param == "metric"
    assert str(excinfo.value).startswith("metric: ")


def test_capabilities_replace_names():
    """SSD is the least-squares metric; pluim's search ranking is NMI's; no other has either."""
    assert [n for n, m in METRICS.items() if m.least_squares] == ["ssd"]
    assert {n: m.search_metric for n, m in METRICS.items() if m.search_metric} == {"pluim": "nmi"}
    assert all(m.search_metric in METRICS for m in METRICS.values() if m.search_metric)


@pytest.mark.parametrize("name", list(METRICS))
def test_prepare_options_keeps_what_the_metric_takes_and_sets_the_moving_range(name):
    metric = METRICS[name]
    given = {"bins": 16, "sigma": 2.0, "moving_range": (5.0, 6.0)}
    prepared = metric.prepare_options(given, moving_range=(0.0, 1.0))
    expected = {k: v for k, v in given.items() if k in metric.options}
    if "moving_range" in metric.options:
        expected["moving_range"] = (0.0, 1.0)
    assert prepared == expected
    assert given["moving_range"] == (5.0, 6.0)  # not modified


@pytest.mark.parametrize(
    ("name", "kwargs", "param"),
    [
        ("mi", {"bins": MIN_COST_BINS - 1}, "bins"),
        ("nmi", {"bins": MAX_COST_BINS + 1}, "bins"),
        ("mi", {"bins": 8.5}, "bins"),
        ("ssd", {"bins": 32}, "bins"),
        ("correlation", {"sigma": 1.0}, "sigma"),
        ("gradient", {"sigma": 0.0}, "sigma"),
        ("pluim", {"sigma": "wide"}, "sigma"),
    ],
)
def test_check_options_refuses_with_the_parameter_named(name, kwargs, param):
    with pytest.raises(InputError) as excinfo:
        METRICS[name].check_options(**kwargs)
    assert excinfo.value.param == param
    assert str(excinfo.value).startswith(f"{param}: ")


def test_check_options_accepts_the_bin_limits():
    assert METRICS["mi"].check_options(bins=MIN_COST_BINS) == {"bins": MIN_COST_BINS}
    assert METRICS["pluim"].check_options(bins=MAX_COST_BINS, sigma=2) == {
        "bins": MAX_COST_BINS,
        "sigma": 2.0,
    }
    assert METRICS["ssd"].check_options() == {}


@pytest.mark.parametrize("bins", [MIN_COST_BINS - 1, MAX_COST_BINS + 1, (16, 2)])
def test_the_cost_refuses_the_same_bins(image, bins):
    with pytest.raises(InputError, match="bins") as excinfo:
        METRICS["mi"].cost(image, image, bins=bins)
    assert excinfo.value.param == "bins"


def function_options(metric):
    return {"sigma": 1.0} if "sigma" in metric.options else {}


@pytest.mark.parametrize("name", list(METRICS))
def test_identical_images_score_best(name, image):
    metric = METRICS[name]
    shifted = translate(image, 3.0, -2.0)
    rng = np.random.default_rng(0)
    noisy = image + 0.2 * rng.normal(size=image.shape)
    same = metric(image, image, **function_options(metric))
    for other in (shifted, noisy):
        value = metric(image, other, **function_options(metric))
        assert (same > value) if metric.higher_is_better else (same < value)
        assert metric.cost(image, image) < metric.cost(image, other)


@pytest.mark.parametrize("name", list(METRICS))
def test_shapes_differing_name_both_shapes(name):
    metric = METRICS[name]
    with pytest.raises(InputError, match=r"\(6, 7\) and \(7, 6\)"):
        metric(np.ones((6, 7)), np.ones((7, 6)))


@pytest.mark.parametrize("name", list(METRICS))
def test_cost_is_finite_float_and_empty_mask_is_inf(name, image):
    metric = METRICS[name]
    cost = metric.cost(image, translate(image, 1.0, 0.0))
    assert isinstance(cost, float) and np.isfinite(cost)
    assert metric.cost(image, image, np.zeros(image.shape, bool)) == np.inf


@pytest.mark.parametrize("name", list(METRICS))
def test_cost_does_not_scale_with_image_size(name):
    small = smooth_blobs((40, 40), seed=5)
    large = np.kron(small, np.ones((2, 2)))  # same picture, four times the pixels
    metric = METRICS[name]
    rng = np.random.default_rng(1)
    cost_small = metric.cost(small, small + 0.05 * rng.normal(size=small.shape))
    cost_large = metric.cost(large, large + 0.05 * rng.normal(size=large.shape))
    assert abs(cost_large) < 3 * abs(cost_small) + 1e-9


# --------------------------------------------------------------------------- SSD


def test_ssd_textbook_values():
    image = smooth_blobs((10, 12))
    assert ssd(image, image) == 0.0
    assert ssd(np.zeros((2, 2)), np.full((2, 2), 3.0)) == 36.0


def test_ssd_has_no_uint8_wrap_around():
    black = np.zeros((4, 5), np.uint8)
    white = np.full((4, 5), 255, np.uint8)
    assert ssd(black, white) == 255.0**2 * 20
    assert ssd(white, black) == 255.0**2 * 20


# --------------------------------------------------------------------------- correlation


def test_correlation_textbook_values(image):
    assert correlation(image, image) == pytest.approx(1.0)
    assert correlation(image, -image) == pytest.approx(-1.0)
    assert correlation(image, 3 * image + 7) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 50, 50))
    assert correlation(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_correlation_of_uint8_images_has_no_overflow():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64)).astype(np.uint8)
    assert correlation(a, a) == pytest.approx(1.0)
    assert correlation(a, 255 - a) == pytest.approx(-1.0)


@pytest.mark.parametrize("which", ["image1", "image2"])
def test_correlation_of_constant_image_is_input_error(which, image):
    constant = np.full(image.shape, 4.0)
    pair = (constant, image) if which == "image1" else (image, constant)
    with pytest.raises(InputError, match=rf"{which} is constant .*correlation is undefined"):
        correlation(*pair)


# --------------------------------------------------------------------------- MI, NMI


def test_mutual_information_of_image_with_itself_is_its_entropy(image):
    levels = quantised(image)
    counts = np.bincount(levels.ravel())
    assert mutual_information(levels, levels) == pytest.approx(entropy(counts))
    hist, _, _ = joint_histogram(image, image, bins=20)
    assert mutual_information(image, image, bins=20) == pytest.approx(entropy(hist.sum(axis=1)))


def test_mutual_information_is_symmetric(image):
    other = translate(image, 2.5, 1.0)
    assert mutual_information(image, other) == pytest.approx(mutual_information(other, image))
    assert normalized_mutual_information(image, other, bins=16) == pytest.approx(
        normalized_mutual_information(other, image, bins=16)
    )


def test_mutual_information_of_independent_noise_is_near_zero():
    rng = np.random.default_rng(42)
    a = rng.integers(0, 8, (200, 200))
    b = rng.integers(0, 8, (200, 200))
    assert 0 <= mutual_information(a, b) < 0.005
    assert normalized_mutual_information(a, b) == pytest.approx(1.0, abs=0.002)


def test_nmi_is_between_one_and_two_and_two_for_identical(image):
    rng = np.random.default_rng(0)
    for other in (image, translate(image, 4, 4), rng.uniform(size=image.shape), -image):
        value = normalized_mutual_information(image, other, bins=32)
        assert 1.0 <= value <= 2.0
    assert normalized_mutual_information(image, image) == pytest.approx(2.0)
    assert normalized_mutual_information(image, 1 - image, bins=32) == pytest.approx(2.0)
    assert normalized_mutual_information(np.ones((3, 3)), np.ones((3, 3))) == 2.0


def test_mi_is_invariant_to_an_intensity_remapping(image):
    levels = quantised(image, 64)
    remapped = (63 - levels) * 2  # one-to-one map of grey levels: same information
    assert mutual_information(levels, remapped) == pytest.approx(mutual_information(levels, levels))


# --------------------------------------------------------------------------- gradient, pluim


def test_gradient_similarity_prefers_aligned_images(image):
    same = gradient_similarity(image, image)
    shifted = gradient_similarity(image, translate(image, 3.0, 0.0))
    assert same > shifted > 0
    # Contrast reversed (as between modalities): cos 2a maps the angle pi to weight 1.
    assert gradient_similarity(image, -image) == pytest.approx(same)


def test_gradient_similarity_textbook_value_on_ramps():
    y, x = np.mgrid[0:20, 0:20].astype(float)
    # Perpendicular gradients: weight (cos(pi) + 1) / 2 = 0 everywhere.
    assert gradient_similarity(x, y, sigma=0) == pytest.approx(0.0, abs=1e-9)
    # Parallel gradients of slopes 1 and 3: weight 1 times the smaller magnitude 1, per pixel.
    assert gradient_similarity(x, 3 * x, sigma=0) == pytest.approx(400.0)
    # At 45 degrees the weight is (cos 90 + 1) / 2 = 1/2; min magnitude is 1 for x, sqrt2 for x+y.
    assert gradient_similarity(x, x + y, sigma=0) == pytest.approx(0.5 * 400.0)
    # A constant image has no edges at all.
    assert gradient_similarity(x, np.ones_like(x)) == 0.0


def test_gradient_similarity_rejects_negative_sigma(image):
    with pytest.raises(InputError, match=r"sigma.*-1"):
        gradient_similarity(image, image, sigma=-1)


def test_pluim_is_nmi_times_gradient_term(image):
    other = translate(image, 1.5, 0.5)
    expected = normalized_mutual_information(image, other, bins=24) * gradient_similarity(
        image, other, sigma=1.0
    )
    assert pluim(image, other, bins=24, sigma=1.0) == pytest.approx(expected)
    plain = mutual_information(image, other, bins=24) * gradient_similarity(image, other)
    assert pluim(image, other, bins=24, normalized=False) == pytest.approx(plain)


# --------------------------------------------------------------------------- cost gradients


def finite_difference_check(metric, fixed, warped, mask, options, seed):
    cost, gradient = metric.cost_gradient(fixed, warped, mask, **options)
    assert cost == pytest.approx(metric.cost(fixed, warped, mask, **options), rel=1e-12)
    assert gradient.shape == warped.shape
    if mask is not None:
        assert np.all(gradient[~mask] == 0)
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(mask) if mask is not None else np.arange(warped.size)
    pixels = rng.choice(candidates, 12, replace=False)
    step = 1e-5 * float(np.ptp(warped))
    numeric = []
    for pixel in pixels:
        plus, minus = warped.copy(), warped.copy()
        plus.flat[pixel] += step
        minus.flat[pixel] -= step
        numeric.append(
            (metric.cost(fixed, plus, mask, **options) - metric.cost(fixed, minus, mask, **options))
            / (2 * step)
        )
    numeric = np.array(numeric)
    analytic = gradient.flat[pixels]
    assert np.max(np.abs(analytic - numeric)) <= 1e-5 * np.max(np.abs(numeric)) + 1e-12


@pytest.mark.parametrize("use_mask", [False, True], ids=["no-mask", "mask"])
@pytest.mark.parametrize("name", GRADIENT_METRICS)
def test_cost_gradient_matches_finite_differences(name, use_mask):
    metric = METRICS[name]
    rng = np.random.default_rng(7)
    fixed = smooth_blobs((24, 28), seed=3)
    warped = translate(fixed, 1.3, -0.7, order=1) + 0.02 * rng.normal(size=fixed.shape)
    mask = rng.random(fixed.shape) > 0.3 if use_mask else None
    options = {}
    if "moving_range" in metric.options:
        # Fixed bins during an optimisation, as the engine does (range from the moving image).
        options = {"moving_range": (warped.min() - 0.05, warped.max() + 0.05), "bins": 16}
    finite_difference_check(metric, fixed, warped, mask, options, seed=1)


@pytest.mark.parametrize("name", ["mi", "nmi"])
def test_parzen_cost_gradient_with_default_range_away_from_extremes(name):
    metric = METRICS[name]
    rng = np.random.default_rng(3)
    fixed = smooth_blobs((24, 28), seed=4)
    warped = fixed**2 + 0.05 * rng.normal(size=fixed.shape)
    # Range from ``warped`` itself: the two extreme pixels move the range, so skip them.
    mask = (warped > warped.min()) & (warped < warped.max())
    cost, gradient = metric.cost_gradient(fixed, warped, None)
    pixels = np.random.default_rng(5).choice(np.flatnonzero(mask), 10, replace=False)
    step = 1e-6
    for pixel in pixels:
        plus, minus = warped.copy(), warped.copy()
        plus.flat[pixel] += step
        minus.flat[pixel] -= step
        numeric = (metric.cost(fixed, plus) - metric.cost(fixed, minus)) / (2 * step)
        assert gradient.flat[pixel] == pytest.approx(numeric, rel=1e-4, abs=1e-9)
    assert cost == metric.cost(fixed, warped)


@pytest.mark.parametrize("name", ["mi", "nmi"])
def test_parzen_cost_of_identical_images_beats_shifted_and_bins_validated(name, image):
    metric = METRICS[name]
    assert metric.cost(image, image) < metric.cost(image, translate(image, 1.0, 0.0))
    with pytest.raises(InputError, match="bins"):
        metric.cost(image, image, bins=2)
    with pytest.raises(InputError, match="moving_range"):
        metric.cost(image, image, moving_range=(1.0, 0.0))


def test_parzen_mi_recovers_a_known_shift_along_a_line(image):
    moving = translate(image, 2.0, 0.0)
    shifts = np.linspace(-4, 4, 17)
    costs = [METRICS["mi"].cost(image, translate(moving, -s, 0.0)) for s in shifts]
    assert shifts[int(np.argmin(costs))] == pytest.approx(2.0)


def test_correlation_cost_is_minus_r_and_constant_overlap_is_inf(image):
    other = translate(image, 1.0, 1.0)
    assert METRICS["correlation"].cost(image, other) == pytest.approx(-correlation(image, other))
    cost, gradient = METRICS["correlation"].cost_gradient(image, np.ones_like(image))
    assert cost == np.inf and not gradient.any()


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
@pytest.mark.parametrize("name", list(METRICS))
def test_every_metric_accepts_every_dtype(name, dtype):
    base = smooth_blobs((32, 32), seed=6)
    scale = {"uint8": 255, "uint16": 65535}.get(dtype, 1.0)
    image = (base * scale).astype(dtype)
    shifted = np.roll(image, 2, axis=1)
    metric = METRICS[name]
    same, other = metric(image, image), metric(image, shifted)
    assert np.isfinite(same) and np.isfinite(other)
    assert (same > other) if metric.higher_is_better else (same < other)
    warped = shifted.astype(np.float32)  # what the engine passes
    assert metric.cost(image, image.astype(np.float32)) < metric.cost(image, warped)
