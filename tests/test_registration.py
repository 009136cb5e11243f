"""register(): known-truth recovery on the sample images, swap inverse, analytic gradients
against finite differences, bad input, divergence, determinism."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from conftest import smooth_blobs

import regcli
from regcli.errors import InputError
from regcli.io import read_image
from regcli.metrics import METRICS
from regcli.optimizers import OPTIMIZERS
from regcli.registration import LevelObjective, RegistrationResult, check_options, register
from regcli.resample import warp
from regcli.transforms import TRANSFORMS, make_transform, mean_displacement

STEP_RULES = ["gd", "momentum", "nag", "adagrad", "rmsprop", "adam"]
CASES = ["BrainMRI_2.png", "BrainMRI_3.png", "BrainMRI_4.png"]  # translation, rotation, rigid
GRADIENT_METRICS = [name for name, m in METRICS.items() if m.cost_gradient is not None]


@pytest.fixture(scope="module")
def pairs(samples, truth):
    """name -> (fixed, moving, truth entry) for the course's three moving images."""
    out = {}
    for name in CASES:
        entry = truth["pairs"][name]
        out[name] = (
            read_image(samples / entry["fixed"]),
            read_image(samples / name),
            entry,
        )
    return out


# --------------------------------------------------------------------------- acceptance


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("optimizer", [*STEP_RULES, None])
def test_default_settings_recover_the_sample_truth(pairs, case, optimizer):
    """Every step rule with its default rate and iterations, and the fast default (None),
    from the identity (no global initialisation), to <= 0.1 px."""
    fixed, moving, entry = pairs[case]
    result = register(
        fixed,
        moving,
        transform=entry["transform"],
        metric="ssd",
        optimizer=optimizer,
        init="none",
    )
    error = mean_displacement(result.matrix, np.array(entry["matrix"]), fixed.shape)
    assert result.converged, result.message
    assert error <= 0.1, f"{optimizer}: {error:.3f} px, {result.message}"
    limit = OPTIMIZERS[result.optimizer].default_iterations
    per_level = np.diff([*result.level_starts, result.iterations])
    assert all(n <= limit for n in per_level)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("optimizer", STEP_RULES)
def test_finer_levels_start_without_a_cost_spike(pairs, case, optimizer):
    """Each finer pyramid level starts near the answer of the coarser one: at its default
    rate no step rule may push the cost above 1.5x the level's starting cost (adagrad
    overshot tenfold there, its rate 10x a Newton step while its sum restarted at zero)."""
    fixed, moving, entry = pairs[case]
    result = register(fixed, moving, transform=entry["transform"], optimizer=optimizer, init="none")
    bounds = [*result.level_starts, result.iterations]
    for start, end in itertools.pairwise(bounds[1:]):
        level = np.asarray(result.cost_history[start:end])
        assert level.max() <= 1.5 * level[0], (optimizer, start, level[:8])


@pytest.mark.parametrize("metric", GRADIENT_METRICS)
def test_fast_default_works_for_every_metric_with_a_gradient(pairs, metric):
    """From the identity, where MI-like costs have an interpolation spike."""
    fixed, moving, entry = pairs["BrainMRI_3.png"]
    result = register(fixed, moving, transform="rotation", metric=metric, init="none")
    assert result.optimizer == "lm"
    assert result.converged, result.message
    assert mean_displacement(result.matrix, np.array(entry["matrix"]), fixed.shape) <= 0.1


def test_fast_default_registers_the_multimodal_pair_with_mutual_information(samples, truth):
    entry = truth["pairs"]["BrainT2_1.png"]
    fixed = read_image(samples / entry["fixed"])
    moving = read_image(samples / "BrainT2_1.png")
    result = register(fixed, moving, transform="rigid", metric="mi", init="none")
    assert mean_displacement(result.matrix, np.array(entry["matrix"]), fixed.shape) <= 0.1


def test_defaults_recover_a_half_turn(pairs):
    """register() with no options: global initial search, then the fast default."""
    fixed = pairs["BrainMRI_4.png"][0]
    truth = make_transform("rigid", shape=fixed.shape).matrix([math.radians(150.0), 9.0, -6.0])
    moving = warp(fixed, np.linalg.inv(truth), order=3)
    result = register(fixed, moving)
    assert result.converged, result.message
    assert mean_displacement(result.matrix, truth, fixed.shape) <= 0.1


def test_recovered_parameters_are_the_truth_by_name(pairs):
    fixed, moving, entry = pairs["BrainMRI_4.png"]
    result = register(fixed, moving, transform="rigid", init="none")
    assert result.optimizer == "lm"
    assert result.learning_rate is None
    assert set(result.params) == set(entry["params"])
    for key in ("angle_deg", "tx", "ty"):
        assert result.params[key] == pytest.approx(entry["params"][key], abs=0.05)
    assert result.params["center"] == pytest.approx(entry["params"]["center"])


def test_rotation_keeps_the_top_left_centre(pairs):
    fixed, moving, entry = pairs["BrainMRI_3.png"]
    result = register(fixed, moving, transform="rotation", init="none")
    assert result.params["center"] == [0.0, 0.0]
    assert result.params["angle_deg"] == pytest.approx(entry["params"]["angle_deg"], abs=0.02)


def test_swapping_the_images_gives_the_inverse(pairs):
    fixed, moving, _ = pairs["BrainMRI_4.png"]
    forward = register(fixed, moving, transform="rigid", init="none")
    backward = register(moving, fixed, transform="rigid", init="none")
    assert mean_displacement(np.linalg.inv(backward.matrix), forward.matrix, fixed.shape) <= 0.1


def test_result_fields_and_json(pairs):
    fixed, moving, _ = pairs["BrainMRI_2.png"]
    result = register(fixed, moving, transform="translation", optimizer="gd", init="none")
    assert isinstance(result, RegistrationResult)
    assert result.learning_rate == OPTIMIZERS["gd"].default_learning_rate
    assert result.iterations == len(result.cost_history) > 0
    assert result.level_starts[0] == 0 and result.level_starts == sorted(result.level_starts)
    assert result.level_shapes[-1] == fixed.shape
    assert [s[0] for s in result.level_shapes] == sorted(s[0] for s in result.level_shapes)
    # Costs compare within a level: the coarsest level did the work, the finest refined it.
    (first, last), *_ = result.level_costs
    assert last < first / 2
    assert result.initial_cost == result.level_costs[-1][0]
    assert result.final_cost <= result.initial_cost * 1.05
    assert result.cost_label == METRICS["ssd"].cost_label
    assert result.warped.shape == fixed.shape
    # The aligned image matches the fixed one far better than the moving one did.
    before = np.mean((moving.astype(float) - fixed) ** 2)
    after = np.mean((result.warped[20:-20, 20:-20] - fixed[20:-20, 20:-20]) ** 2)
    assert after < before / 20
    data = json.loads(json.dumps(result.to_dict()))
    assert "warped" not in data
    assert np.allclose(data["matrix"], result.matrix)
    assert data["converged"] is True and data["iterations"] == result.iterations


def test_to_dict_is_complete_and_strict_json(small_pair):
    """One serialisation: every field but ``warped``, plus the costs, strict JSON."""
    import dataclasses

    result = register(*small_pair, transform="rigid", init="none")
    data = result.to_dict()
    fields = {f.name for f in dataclasses.fields(RegistrationResult)} - {"warped"}
    assert set(data) == fields | {"initial_cost", "final_cost", "level_costs", "units"}
    assert data["fixed_spacing"] is None and data["units"]["matrix"].startswith("pixels")
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["level_shapes"][-1] == list(small_pair[0].shape)
    assert data["params"]["center"] == [31.5, 31.5]
    assert data["final_cost"] == result.final_cost
    assert data["level_costs"][-1] == [data["initial_cost"], data["final_cost"]]
    assert data["quality"]["verdict"] == result.quality.verdict
    empty = dataclasses.replace(result, cost_history=np.array([]), iterations=0)
    assert empty.to_dict()["initial_cost"] is None and empty.to_dict()["cost_history"] == []


def test_result_and_objective_stay_importable_from_registration():
    from regcli.objective import LevelObjective as objective_class
    from regcli.result import RegistrationResult as result_class

    assert RegistrationResult is result_class and LevelObjective is objective_class


def test_public_api_exports_register():
    assert regcli.register is register
    assert regcli.OPTIMIZERS is OPTIMIZERS


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, "huge"])
def test_dtypes_give_the_same_answer(dtype):
    fixed = smooth_blobs((80, 96), seed=3)
    truth = make_transform("rigid", shape=fixed.shape).matrix([math.radians(4.0), 2.5, -1.5])
    moving = warp(fixed, np.linalg.inv(truth), order=3)
    peak = {np.uint8: 200, np.uint16: 60000, "huge": 1e300}.get(dtype, 7.0)

    def to(image):
        if dtype == "huge":  # beyond float32's range, and negative
            return image * peak - peak / 2
        return (image * peak).astype(dtype)

    result = register(to(fixed), to(moving), transform="rigid", init="none")
    assert mean_displacement(result.matrix, truth, fixed.shape) < 0.1


# --------------------------------------------------------------------------- gradients


def central_disc(shape):
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols]
    return np.hypot(x - (cols - 1) / 2, y - (rows - 1) / 2) < 0.35 * min(shape)


@pytest.mark.parametrize("metric", GRADIENT_METRICS)
@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("max_samples", [None, 2000])
def test_gradient_matches_finite_differences(transform, metric, seed, max_samples):
    """Also on a subsampled grid (stride 2 for the metrics other than SSD)."""
    fixed = smooth_blobs((72, 88), seed=seed).astype(np.float32)
    shape = fixed.shape
    tf = make_transform(transform, shape=shape, center=(30.0, 40.0))
    rng = np.random.default_rng(seed)
    truth = tf.identity() + rng.uniform(-1.0, 1.0, tf.n_params) / tf.param_scales(shape)
    moving = warp(fixed, np.linalg.inv(tf.matrix(truth)), order=3).astype(np.float32)
    options = {"moving_range": (0.0, 1.0)} if "moving_range" in METRICS[metric].options else {}
    objective = LevelObjective(fixed, moving, tf, METRICS[metric], options, max_samples=max_samples)
    if max_samples is not None and metric != "ssd":
        assert objective.stride == 2
    # The overlap mask makes the cost jump when a pixel enters or leaves it; a fixed central
    # disc (inside the moving image for these small motions) isolates the chain rule.
    disc = central_disc(shape)[objective.grid.ys.astype(int)][:, objective.grid.xs.astype(int)]
    objective._mask = lambda matrix: disc
    # Evaluate away from the optimum, where the gradient is large (x is about pixels).
    x = tf.identity() * objective.scales + rng.uniform(-3.0, 3.0, tf.n_params)
    cost, gradient = objective.cost_gradient(x)
    assert cost == pytest.approx(objective.cost(x), rel=1e-5)
    h = 1e-2
    numeric = np.array(
        [
            (objective.cost(x + h * e) - objective.cost(x - h * e)) / (2 * h)
            for e in np.eye(tf.n_params)
        ]
    )
    cosine = gradient @ numeric / (np.linalg.norm(gradient) * np.linalg.norm(numeric))
    assert cosine >= 0.99, (gradient, numeric)
    assert np.linalg.norm(gradient - numeric) <= 0.05 * np.linalg.norm(numeric)


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_gauss_newton_agrees_with_cost_gradient(transform):
    fixed = smooth_blobs((64, 80), seed=2).astype(np.float32)
    tf = make_transform(transform, shape=fixed.shape)
    moving = warp(fixed, np.linalg.inv(tf.matrix(tf.identity())) @ np.eye(3), order=1)
    objective = LevelObjective(fixed, moving.astype(np.float32), tf, METRICS["ssd"])
    x = tf.identity() * objective.scales + np.linspace(-1.0, 1.0, tf.n_params)
    cost, gradient, hessian = objective.gauss_newton(x)
    cost2, gradient2 = objective.cost_gradient(x)
    assert cost == pytest.approx(cost2, rel=1e-6)
    np.testing.assert_allclose(gradient, gradient2, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-9, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(hessian) > 0)


@pytest.mark.parametrize("shape", [(37, 53), (256, 300)])
def test_sample_grid_moments_match_double_sums(shape):
    """The moments accumulate rows and columns in float32: equal to float64 sums to 1e-5."""
    from regcli.objective import SampleGrid

    rng = np.random.default_rng(0)
    a = rng.normal(size=shape).astype(np.float32)
    b = rng.normal(size=shape).astype(np.float32)
    grid = SampleGrid.for_level(shape)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    product = a.astype(np.float64) * b
    monomials = (x, y, np.ones_like(x))
    first = np.array([np.sum(product * u) for u in monomials])
    second = np.array([[np.sum(product * u * v) for v in monomials] for u in monomials])
    scale = np.sum(np.abs(product)) * shape[1] ** 2
    np.testing.assert_allclose(grid.first_moments(a, b), first, atol=1e-5 * scale)
    gram = grid.gradient_gram(a, b)
    np.testing.assert_allclose(gram[:3, 3:], second, atol=1e-5 * scale)
    np.testing.assert_allclose(gram[3:, :3], second, atol=1e-5 * scale)
    squares = (a.astype(np.float64) ** 2, b.astype(np.float64) ** 2)
    for block, square in zip((gram[:3, :3], gram[3:, 3:]), squares, strict=True):
        expected = np.array([[np.sum(square * u * v) for v in monomials] for u in monomials])
        np.testing.assert_allclose(block, expected, atol=1e-5 * np.sum(square) * shape[1] ** 2)


@pytest.mark.parametrize("transform", ["rigid", "affine"])
def test_gauss_newton_hessian_is_jacobian_product(transform):
    """For SSD the Hessian is ``2/n J^T J``, ``J`` the residual's derivatives (here by
    finite differences on a fixed mask)."""
    fixed = smooth_blobs((64, 80), seed=3).astype(np.float32)
    tf = make_transform(transform, shape=fixed.shape)
    moving = warp(fixed, np.linalg.inv(tf.matrix(tf.identity())), order=3).astype(np.float32)
    objective = LevelObjective(fixed, moving, tf, METRICS["ssd"])
    disc = central_disc(fixed.shape)
    objective._mask = lambda matrix: disc
    x = tf.identity() * objective.scales + np.linspace(-0.7, 0.7, tf.n_params)

    def residual(x):
        warped, _, _ = objective._warp(objective.matrix(x))
        return ((warped - fixed) * disc).astype(np.float64).ravel()

    h = 1e-3
    jacobian = np.column_stack(
        [(residual(x + h * e) - residual(x - h * e)) / (2 * h) for e in np.eye(tf.n_params)]
    )
    expected = 2.0 / np.count_nonzero(disc) * jacobian.T @ jacobian
    _, _, hessian = objective.gauss_newton(x)
    # (central differences of the warped image vs the bilinear image's own derivative)
    np.testing.assert_allclose(hessian, expected, rtol=0.1, atol=0.02 * np.abs(expected).max())


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def small_pair():
    fixed = smooth_blobs((64, 64), seed=4)
    moving = warp(
        fixed, np.linalg.inv(make_transform("translation", shape=fixed.shape).matrix([2.0, 1.0]))
    )
    return fixed, moving


@pytest.mark.parametrize(
    ("kwargs", "param", "match"),
    [
        ({"iterations": 0}, "iterations", "iterations"),
        ({"iterations": -3}, "iterations", "iterations"),
        ({"metric": "nope"}, "metric", "unknown metric 'nope'"),
        ({"optimizer": "nope"}, "optimizer", "unknown optimizer 'nope'"),
        ({"transform": "nope"}, "transform", "unknown transform 'nope'"),
        ({"learning_rate": 0.0}, "learning_rate", "learning_rate"),
        ({"learning_rate": math.inf}, "learning_rate", "learning_rate"),
        ({"optimizer": "lm", "learning_rate": 0.5}, "learning_rate", "'lm' has no learning rate"),
        ({"levels": 0}, "levels", "levels"),
        ({"optimizer": "gd", "beta": 0.9}, "beta", "beta"),
        ({"optimizer": "momentum", "gamma": 1.0}, "gamma", "gamma"),
        ({"center": "middle"}, "center", "center"),
        ({"tolerance": -1.0}, "tolerance", "tolerance"),
        ({"metric": "ssd", "bins": 32}, "bins", "bins"),
        ({"metric": "mi", "bins": 3}, "bins", "bins"),
        ({"metric": "nmi", "bins": 2000}, "bins", "bins"),
        ({"metric": "ssd", "sigma": 1.0}, "sigma", "sigma"),
        ({"metric": "pluim", "sigma": -1.0}, "sigma", "sigma"),
        ({"metric": "gradient", "optimizer": "gd"}, "optimizer", "needs the gradient"),
        ({"init": "none", "initial_matrix": np.ones((3, 3))}, "initial_matrix", "initial_matrix"),
        ({"init": "search", "initial_matrix": np.eye(3)}, "init", "not both"),
        ({"initial_matrix": [[1, 0, 1e300], [0, 1, 0]]}, "initial_matrix", "beyond 1e\\+06"),
        ({"initial_matrix": [[1, 0, 0], [0, 1, -2e6]]}, "initial_matrix", "ty=-2e\\+06"),
        ({"init": "guess"}, "init", "init.*'guess'"),
        ({"callback": 5}, "callback", "callable|function"),
    ],
)
def test_bad_options_raise_input_error(small_pair, kwargs, param, match):
    """Each names its Python parameter (``param``, and the message's start), and no flag."""
    with pytest.raises(InputError, match=match) as excinfo:
        register(*small_pair, **kwargs)
    assert excinfo.value.param == param
    assert str(excinfo.value).startswith(f"{param}: ")
    assert "--" not in str(excinfo.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"callback": 5},
        {"metric": "mi", "bins": 3},
        {"init": "guess"},
        {"optimizer": "lm", "learning_rate": 0.5},
        {"transform": "similarity", "levels": 1.5},
    ],
)
def test_bad_options_are_refused_before_any_work(small_pair, monkeypatch, kwargs):
    """No image is scaled, no pyramid built, no search run before every argument is checked
    (a non-callable callback used to fail only after the global search)."""

    def work(*args, **kw):
        raise AssertionError("work started before the arguments were checked")

    import regcli.registration as registration

    monkeypatch.setattr(registration, "normalize_pair", work)
    monkeypatch.setattr(registration._pyramid, "gaussian_pyramid", work)
    with pytest.raises(InputError):
        register(*small_pair, **kwargs)


def test_images_of_different_shapes_register_onto_the_fixed_grid(small_pair):
    fixed, moving = small_pair
    result = register(fixed, moving[:, 4:], transform="translation")  # 4 columns cut off
    truth = register(fixed, moving, transform="translation").matrix
    # The cut moves the moving image's pixel grid 4 columns: x_cut = x - 4.
    assert np.allclose(result.matrix[:2, 2], truth[:2, 2] - [4.0, 0.0], atol=0.05)
    assert result.warped.shape == fixed.shape


@pytest.mark.parametrize("which", ["fixed", "moving"])
def test_constant_image_is_refused(small_pair, which):
    images = dict(zip(("fixed", "moving"), small_pair, strict=True))
    images[which] = np.full((64, 64), 7.0)
    with pytest.raises(InputError, match=f"{which}: the image is constant"):
        register(images["fixed"], images["moving"])


def test_non_2d_image_is_refused():
    with pytest.raises(InputError, match=r"moving.*2-D"):
        register(np.ones((8, 8)), np.ones((8, 8, 5)))


@pytest.mark.parametrize("optimizer", STEP_RULES)
def test_huge_learning_rate_reports_divergence(small_pair, optimizer):
    result = register(
        *small_pair, transform="rigid", optimizer=optimizer, learning_rate=1e5, init="none"
    )
    assert result.converged is False
    assert "smaller learning rate" in result.message and "100000" in result.message
    assert np.all(np.isfinite(result.matrix))
    assert result.warped.shape == small_pair[0].shape


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("optimizer", ["lm", "nag"])
def test_deterministic_and_one_callback_per_cost(small_pair, optimizer):
    runs, calls = [], []
    for _ in range(2):
        calls.clear()
        runs.append(
            register(
                *small_pair,
                transform="rigid",
                optimizer=optimizer,
                init="none",
                callback=lambda i, c, p: calls.append((i, c, p)),
            )
        )
        assert [c[0] for c in calls] == list(range(runs[-1].iterations))
        np.testing.assert_array_equal([c[1] for c in calls], runs[-1].cost_history)
    np.testing.assert_array_equal(runs[0].matrix, runs[1].matrix)
    np.testing.assert_array_equal(runs[0].cost_history, runs[1].cost_history)
    # The callback's parameters are the named full-resolution ones, degrees: the last
    # equals the result's.
    last = calls[-1][2]
    assert set(last) == set(runs[1].params) == {"angle_deg", "tx", "ty", "center"}
    for name in ("angle_deg", "tx", "ty"):
        assert last[name] == pytest.approx(runs[1].params[name], abs=0.05)


def test_initial_matrix_is_the_start(small_pair):
    fixed, moving = small_pair
    truth = make_transform("translation", shape=fixed.shape).matrix([2.0, 1.0])
    result = register(fixed, moving, transform="translation", initial_matrix=truth)
    assert mean_displacement(result.matrix, truth, fixed.shape) < 0.05
    assert result.initial_cost < 1e-3


def test_metrics_without_a_gradient_default_to_a_derivative_free_optimizer(small_pair):
    names = [name for name, m in METRICS.items() if m.cost_gradient is None]
    if not names:
        pytest.skip("every metric has a gradient")
    result = register(*small_pair, transform="translation", metric=names[0], init="none")
    assert not OPTIMIZERS[result.optimizer].needs_gradient
    with pytest.raises(InputError, match=f"needs the gradient.*{names[0]}"):
        register(*small_pair, metric=names[0], optimizer="gd")


def test_warped_is_made_on_first_access_and_the_result_pickles(small_pair):
    """``warped`` is resampled lazily (cubic, float64) and survives pickling before or after."""
    import pickle

    fixed, moving = small_pair
    result = register(fixed, moving, transform="rigid", init="none")
    assert callable(result.__dict__["_warped"])  # not made yet
    restored = pickle.loads(pickle.dumps(result))
    expected = warp(np.asarray(moving, dtype=np.float64), result.matrix, order=3)
    np.testing.assert_allclose(result.warped, expected, atol=1e-12)
    assert result.warped is result.warped  # made once
    np.testing.assert_allclose(restored.warped, expected, atol=1e-12)
    assert "warped" not in result.to_dict()


# --------------------------------------------------------------------------- the pipeline


def test_a_large_float_offset_changes_nothing(samples):
    """Intensities are scaled to [0, 1] in float64 before anything is rounded to float32, so
    BrainMRI_1/4 + 1e10 register exactly as the plain float64 pair (and as the 8-bit one)."""
    fixed_8bit = read_image(samples / "BrainMRI_1.png")
    moving_8bit = read_image(samples / "BrainMRI_4.png")
    fixed, moving = fixed_8bit.astype(np.float64), moving_8bit.astype(np.float64)
    plain = register(fixed, moving)
    shifted = register(fixed + 1e10, moving + 1e10)
    assert shifted.converged, shifted.message
    np.testing.assert_array_equal(shifted.matrix, plain.matrix)
    np.testing.assert_array_equal(shifted.cost_history, plain.cost_history)
    as_read = register(fixed_8bit, moving_8bit)
    assert mean_displacement(as_read.matrix, plain.matrix, fixed.shape) < 0.01


def test_coarse_to_fine_hands_each_level_the_previous_answer():
    """The driver knows no metric: each level starts from the answer of the coarser one,
    moved to the level's pixels (pyramid.to_level) and back (pyramid.from_level)."""
    from regcli.pyramid import from_level, gaussian_pyramid, to_level
    from regcli.registration import _coarse_to_fine, _LevelOutcome
    from regcli.transforms import translation_matrix

    images = gaussian_pyramid(smooth_blobs((64, 80)), 3)
    calls = []

    def solve_level(level, fixed, moving, start, first_iteration):
        calls.append((level, fixed.shape, moving.shape, start, first_iteration))
        found = start @ translation_matrix(1.0, 0.0)  # one pixel of this level further
        return _LevelOutcome(found, [float(level)] * (level + 1), True, False, f"{level} done")

    start = translation_matrix(8.0, -4.0)
    run = _coarse_to_fine(images, images, start, solve_level)
    assert [c[0] for c in calls] == [2, 1, 0]
    assert [c[1] for c in calls] == [c[2] for c in calls] == [p.shape for p in images[::-1]]
    expected = start
    for level, _, _, level_start, _ in calls:
        np.testing.assert_array_equal(level_start, to_level(expected, level))
        expected = from_level(level_start @ translation_matrix(1.0, 0.0), level)
    np.testing.assert_array_equal(run.matrix, expected)
    # One pixel at levels 2, 1 and 0 is 4 + 2 + 1 full-resolution pixels.
    np.testing.assert_allclose(run.matrix, translation_matrix(15.0, -4.0), atol=1e-12)
    assert [c[4] for c in calls] == run.level_starts == [0, 3, 5]
    assert run.costs == [2.0, 2.0, 2.0, 1.0, 1.0, 0.0]
    assert run.level_shapes == [p.shape for p in images[::-1]]
    assert run.converged and run.message == "0 done"


def test_coarse_to_fine_stops_at_a_diverged_level():
    from regcli.pyramid import from_level, gaussian_pyramid
    from regcli.registration import _coarse_to_fine, _LevelOutcome

    images = gaussian_pyramid(smooth_blobs((64, 80)), 3)
    levels = []

    def solve_level(level, fixed, moving, start, first_iteration):
        levels.append(level)
        return _LevelOutcome(start * 1.0, [1.0], True, level == 1, "blew up")

    run = _coarse_to_fine(images, images, np.eye(3), solve_level)
    assert levels == [2, 1]
    assert run.converged is False
    assert run.message == "level 1 (32x40): blew up"
    np.testing.assert_allclose(run.matrix, from_level(np.eye(3), 1))


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        ({"metric": "ssd", "bins": 8}, "bins", "metric 'ssd' does not use histogram bins"),
        ({"metric": "mi", "sigma": 2.0}, "sigma", "metrics that take one: gradient, pluim"),
        ({"metric": "pluim", "optimizer": "gd"}, "optimizer", "'gd' needs the gradient"),
        (
            {"metric": "ssd", "learning_rate": 0.5},
            "learning_rate",
            "optimizer 'lm' has no learning rate",
        ),
        ({"metric": "ssd", "optimizer": "lm", "learning_rate": 0.5}, "learning_rate", "'lm'"),
        ({"metric": "ssd", "optimizer": "gd", "gamma": 0.5}, "gamma", "momentum, nag"),
        ({"metric": "ssd", "optimizer": "nag", "beta": 0.5}, "beta", "rmsprop"),
    ],
)
def test_check_options_raises_with_param(kwargs, param, message):
    with pytest.raises(InputError, match=message) as info:
        check_options(**kwargs)
    assert info.value.param == param
    assert str(info.value).startswith(f"{param}: ")


def test_check_options_accepts_what_applies():
    check_options(metric="mi", bins=16)
    check_options(metric="pluim", optimizer="powell", bins=16, sigma=2.0)
    check_options(metric="ssd", optimizer="adam", learning_rate=0.1, gamma=0.9)


def test_check_options_names_an_unknown_option():
    with pytest.raises(InputError, match="learningrate: not an option of register") as info:
        check_options(learningrate=0.1)
    assert info.value.param == "learningrate"
