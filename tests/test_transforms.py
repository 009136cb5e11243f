"""The transform contract, checked for every entry of TRANSFORMS, and the matrix helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regcli.errors import InputError
from regcli.transforms import (
    TRANSFORMS,
    Transform,
    check_matrix,
    compose,
    make_transform,
    mean_displacement,
    resolve_center,
    rotation_matrix,
    scaling_matrix,
    translation_matrix,
)

SHAPE = (60, 80)
NAMES = list(TRANSFORMS)


def sample_params(transform, rng) -> np.ndarray:
    """Moderate random parameters near the identity (angles < 0.5 rad, scale near 1)."""
    p = transform.identity() + rng.uniform(-0.4, 0.4, transform.n_params)
    for i, name in enumerate(transform.param_names):
        if name in ("tx", "ty"):
            p[i] = rng.uniform(-12, 12)
    return p


@pytest.fixture(params=NAMES)
def transform(request):
    return make_transform(request.param, shape=SHAPE)


def test_registry_names_match_classes():
    for name, cls in TRANSFORMS.items():
        assert cls.name == name
        assert len(cls.param_names) == cls(center=(0, 0)).n_params


def test_identity_params_give_identity_matrix(transform):
    np.testing.assert_allclose(transform.matrix(transform.identity()), np.eye(3), atol=1e-15)


def test_params_from_matrix_inverts_matrix(transform):
    rng = np.random.default_rng(3)
    for _ in range(5):
        p = sample_params(transform, rng)
        np.testing.assert_allclose(transform.params_from_matrix(transform.matrix(p)), p, atol=1e-12)


def test_matrix_derivatives_match_finite_differences(transform):
    rng = np.random.default_rng(4)
    p = sample_params(transform, rng)
    analytic = transform.matrix_derivatives(p)
    assert analytic.shape == (transform.n_params, 3, 3)
    h = 1e-6
    for k in range(transform.n_params):
        step = np.zeros(transform.n_params)
        step[k] = h
        numeric = (transform.matrix(p + step) - transform.matrix(p - step)) / (2 * h)
        np.testing.assert_allclose(analytic[k], numeric, atol=1e-7)


def test_jacobian_is_matrix_derivatives_at_points(transform):
    rng = np.random.default_rng(5)
    p = sample_params(transform, rng)
    points = rng.uniform(0, 80, size=(7, 2))
    jac = transform.jacobian(p, points)
    assert jac.shape == (7, 2, transform.n_params)
    dm = transform.matrix_derivatives(p)
    for n, (x, y) in enumerate(points):
        for k in range(transform.n_params):
            np.testing.assert_allclose(jac[n, :, k], dm[k, :2] @ [x, y, 1.0], atol=1e-12)
    # and the point map itself moves as the finite difference says
    h = 1e-6
    k = transform.n_params - 1
    step = np.zeros(transform.n_params)
    step[k] = h
    moved = (transform.matrix(p + step) - transform.matrix(p - step)) / (2 * h)
    np.testing.assert_allclose(jac[0, :, k], moved[:2] @ [*points[0], 1.0], atol=1e-7)


def test_matrix_keeps_the_center_for_pure_linear_changes(transform):
    p = transform.identity()
    if "angle" in transform.param_names:
        p[transform.param_names.index("angle")] = 0.7
    m = transform.matrix(p)
    np.testing.assert_allclose(m @ [*transform.center, 1.0], [*transform.center, 1.0], atol=1e-12)


def test_describe_names_and_units(transform):
    p = transform.identity()
    described = transform.describe(p)
    expected_center = [0.0, 0.0] if transform.default_center == "topleft" else [39.5, 29.5]
    assert described["center"] == expected_center
    for name in transform.param_names:
        key = f"{name}_deg" if name in transform.angle_params else name
        assert key in described


def test_param_scales_are_one_pixel_per_unit_for_translations(transform):
    scales = transform.param_scales(SHAPE)
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    cx, cy = transform.center
    radius = math.sqrt(np.mean((x - cx) ** 2 + (y - cy) ** 2))  # RMS distance from the centre
    for name, scale in zip(transform.param_names, scales, strict=True):
        assert scale == pytest.approx(1.0 if name in ("tx", "ty") else radius)


def test_default_centres():
    assert list(make_transform("rotation", shape=SHAPE).center) == [0.0, 0.0]
    assert list(make_transform("rigid", shape=SHAPE).center) == [39.5, 29.5]
    assert list(make_transform("rigid", center="topleft").center) == [0.0, 0.0]
    assert list(make_transform("rotation", center=(3, 4)).center) == [3.0, 4.0]


def test_make_transform_unknown_name():
    with pytest.raises(InputError, match=r"unknown transform 'shear'; choose one of translation"):
        make_transform("shear")


# --------------------------------------------------------------------------- helpers


def test_translation_and_rotation_matrices_map_points():
    np.testing.assert_allclose(translation_matrix(3, -2) @ [1, 1, 1], [4, -1, 1])
    # +90 deg about the origin: (1, 0) (right) goes to (0, 1) (down): clockwise on screen.
    np.testing.assert_allclose(rotation_matrix(math.pi / 2) @ [1, 0, 1], [0, 1, 1], atol=1e-15)
    np.testing.assert_allclose(rotation_matrix(0.4, (5, 7)) @ [5, 7, 1], [5, 7, 1], atol=1e-12)
    np.testing.assert_allclose(scaling_matrix(2.0, (1, 1)) @ [2, 3, 1], [3, 5, 1])


def test_compose_applies_first_argument_first():
    a, b = translation_matrix(1, 0), rotation_matrix(math.pi / 2)
    # translate (0, 0) -> (1, 0), then rotate -> (0, 1)
    np.testing.assert_allclose(compose(a, b) @ [0, 0, 1], [0, 1, 1], atol=1e-15)
    np.testing.assert_allclose(compose(a, b), b @ a)
    np.testing.assert_allclose(compose(), np.eye(3))


def test_compose_with_inverse_is_identity(transform):
    rng = np.random.default_rng(6)
    m = transform.matrix(sample_params(transform, rng))
    inv = np.linalg.inv(m)
    np.testing.assert_allclose(compose(m, inv), np.eye(3), atol=1e-12)
    np.testing.assert_allclose(compose(inv, m), np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.linalg.inv(inv), m, atol=1e-12)


def test_inverse_rotation_is_rotation_by_minus_angle():
    np.testing.assert_allclose(
        np.linalg.inv(rotation_matrix(0.3, (4, 9))), rotation_matrix(-0.3, (4, 9)), atol=1e-14
    )
    np.testing.assert_allclose(np.linalg.inv(translation_matrix(2, 5)), translation_matrix(-2, -5))


@pytest.mark.parametrize(("dx", "dy"), [(3.0, 4.0), (-1.5, 0.0), (0.0, 0.0)])
def test_mean_displacement_of_translation_is_its_length(dx, dy):
    assert mean_displacement(translation_matrix(dx, dy), np.eye(3), (50, 70)) == pytest.approx(
        math.hypot(dx, dy)
    )


def test_mean_displacement_of_rotation_about_centre():
    # Small rotation about the centre: mean distance ~= angle x mean radius of the grid.
    shape = (41, 41)
    angle = 0.01
    y, x = np.mgrid[0:41, 0:41] - 20.0
    expected = 2 * math.sin(angle / 2) * np.mean(np.hypot(x, y))
    got = mean_displacement(rotation_matrix(angle, (20, 20)), np.eye(3), shape)
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("topleft", (0.0, 0.0)),
        ("center", (39.5, 29.5)),
        ("Centre", (39.5, 29.5)),
        ("3,4.5", (3.0, 4.5)),
        ((7, 8), (7.0, 8.0)),
        (np.array([1.0, 2.0]), (1.0, 2.0)),
    ],
)
def test_resolve_center(spec, expected):
    assert resolve_center(spec, SHAPE) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("middle", "expected 'topleft', 'center' or 'X,Y', got 'middle'"),
        ("1,2,3", "got '1,2,3'"),
        ("nan,1", "got 'nan,1'"),
        ("a,b", "got 'a,b'"),
        ((1, 2, 3), r"a pair \(x, y\), got \(1, 2, 3\)"),
        (None, "got None"),
        ((np.inf, 0), "must be finite"),
    ],
)
def test_resolve_center_errors(spec, message):
    with pytest.raises(InputError, match=message):
        resolve_center(spec, SHAPE)


def test_resolve_center_needs_shape_for_center():
    with pytest.raises(InputError, match="needs the image shape"):
        resolve_center("center")


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.eye(2), r"got shape \(2, 2\)"),
        ([[1, 0, 0], [0, 1]], "expected a 3x3 matrix of numbers"),
        (np.diag([1.0, 0.0, 1.0]), "singular"),
        ([[1, 0, 0], [0, 1, 0], [0, 1, 1]], "last row"),
        ([[1, 0, np.nan], [0, 1, 0], [0, 0, 1]], "NaN"),
    ],
)
def test_check_matrix_errors(matrix, message):
    with pytest.raises(InputError, match=message):
        check_matrix(matrix)


def test_check_matrix_accepts_2x3():
    np.testing.assert_array_equal(check_matrix([[1, 0, 2], [0, 1, 3]]), translation_matrix(2, 3))


# --------------------------------------------------------------------------- the contract


class _Shift(Transform):
    """A complete subclass: every hook, a name and parameter names."""

    name = "shift"
    param_names = ("tx", "ty")

    def _linear(self, p):
        return np.eye(2), p[:2].copy()

    def _derivatives(self, p):
        return np.zeros((2, 2, 2)), np.eye(2)

    def _params_from_linear(self, linear, shift):
        return shift.copy()


def test_a_complete_subclass_works():
    shift = _Shift(center=(1.0, 2.0))
    np.testing.assert_allclose(shift.matrix([3.0, 4.0]), translation_matrix(3.0, 4.0))
    np.testing.assert_allclose(shift.param_scales(SHAPE), [1.0, 1.0])


def test_a_subclass_missing_a_hook_cannot_be_instantiated():
    class NoInverse(Transform):
        name = "no-inverse"
        param_names = ("tx", "ty")

        def _linear(self, p):
            return np.eye(2), p[:2].copy()

        def _derivatives(self, p):
            return np.zeros((2, 2, 2)), np.eye(2)

    with pytest.raises(TypeError, match="_params_from_linear"):
        NoInverse()


@pytest.mark.parametrize("missing", ["name", "param_names"])
def test_a_concrete_subclass_without_name_or_param_names_cannot_be_defined(missing):
    attributes = {
        "name": "nameless",
        "param_names": ("tx", "ty"),
        "_linear": _Shift._linear,
        "_derivatives": _Shift._derivatives,
        "_params_from_linear": _Shift._params_from_linear,
    }
    del attributes[missing]
    with pytest.raises(TypeError, match=missing):
        type("Incomplete", (Transform,), attributes)


def test_unknown_transform_names_the_parameter():
    with pytest.raises(InputError) as excinfo:
        make_transform("shear")
    assert excinfo.value.param == "transform"
    assert str(excinfo.value).startswith("transform: ")


def test_center_errors_name_the_parameter():
    with pytest.raises(InputError) as excinfo:
        resolve_center("middle")
    assert excinfo.value.param == "center"
    assert str(excinfo.value).startswith("center: ")
