"""Every raise of symlora._validate and symlora._integrability, and what they accept."""

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

from symlora import NotIntegrableError
from symlora._integrability import MAX_DEPTH, check_activation_expr
from symlora._validate import (
    as_exact_number,
    as_float,
    as_float_array,
    check_budget,
    check_magnitude,
    check_mu,
    check_text,
    covariance_matrix,
    scalar_or_array,
)

x = sp.Symbol("x", real=True)
Q = sp.Symbol("Q", positive=True)


# ------------------------------------------------------------ numbers


@pytest.mark.parametrize("value, expected", [
    (3, sp.Integer(3)), (0.1, sp.Rational(1, 10)), (Fraction(1, 3), sp.Rational(1, 3)),
    (np.float32(0.5), sp.Rational(1, 2)), (np.int64(7), sp.Integer(7)), (np.array(0.25), sp.Rational(1, 4)),
    (sp.sqrt(2), sp.sqrt(2)), (sp.Float(0.5), sp.Rational(1, 2)), (1e-5, sp.Rational(1, 100000)),
])
def test_exact_numbers(value, expected):
    assert as_exact_number(value, "v") == expected


def test_floats_can_stay_floats():
    assert isinstance(as_exact_number(0.5, "v", rationalize=False), sp.Float)
    assert as_exact_number(Q, "v", symbolic=True) == Q


@pytest.mark.parametrize("value, error, message", [
    ("1", TypeError, "not a string"),
    (b"1", TypeError, "not a string"),
    (True, TypeError, "not a bool"),
    (np.array([1.0, 2.0]), TypeError, "single number"),
    (np.array("1"), TypeError, "not str"),
    (sp.Matrix([1]), TypeError, "must be a number"),
    (sp.Eq(x, 1), TypeError, "SymPy expression or a number"),
    (float("inf"), ValueError, "finite"),
    (float("nan"), ValueError, "finite"),
    (1j, ValueError, "real"),
    ([1], TypeError, "must be a number"),
    (Q, ValueError, "expression"),
    (sp.zoo, ValueError, "finite"),
    (sp.I, ValueError, "real"),
    (sp.Integer(-1) ** sp.Rational(1, 3), ValueError, "real"),
])
def test_exact_number_refusals(value, error, message):
    with pytest.raises(error, match=message):
        as_exact_number(value, "v")


def test_number_constraints():
    with pytest.raises(ValueError, match="positive"):
        as_exact_number(0, "v", positive=True)
    with pytest.raises(ValueError, match="non-negative"):
        as_exact_number(-1, "v", nonnegative=True)
    with pytest.raises(ValueError, match="whole number"):
        as_exact_number(1.5, "v", integer=True)
    with pytest.raises(ValueError, match="double precision"):
        as_float(sp.Integer(10) ** 400, "v")
    with pytest.raises(ValueError, match=">= 1"):
        as_float(0.5, "v", low=1)
    with pytest.raises(ValueError, match="<= 1"):
        as_float(2, "v", high=1)
    assert as_float(sp.Rational(1, 4), "v") == 0.25


# ------------------------------------------------------------- arrays


@pytest.mark.parametrize("value, error, message", [
    ("0.5", TypeError, "not a string"),
    (True, TypeError, "bool"),
    ({"a": 1}, TypeError, "dict"),
    ([[1, 2], [3]], TypeError, "array of numbers"),
    (["1", "2"], TypeError, "not strings"),
    ([True, False], TypeError, "not bools"),
    ([1 + 1j], ValueError, "real"),
    ([0.5, "x"], TypeError, "not strings"),
    (np.array([0.5, "x"], dtype=object), TypeError, "not a string"),
    ([0.5, np.nan], ValueError, "finite"),
])
def test_array_refusals(value, error, message):
    with pytest.raises(error, match=message):
        as_float_array(value, "v")


def test_array_constraints_and_shapes():
    with pytest.raises(ValueError, match="at most 3"):
        as_float_array(np.zeros(4), "v", max_size=3)
    with pytest.raises(ValueError, match="positive"):
        as_float_array([0.0], "v", positive=True)
    with pytest.raises(ValueError, match=">= 0"):
        as_float_array([-1.0], "v", nonnegative=True)
    with pytest.raises(ValueError, match="nan"):
        as_float_array([np.nan], "v", allow_inf=True)
    assert as_float_array([1.0, np.inf], "v", allow_inf=True)[0][1] == np.inf
    assert as_float_array([sp.Rational(1, 2), 1], "v")[0].tolist() == [0.5, 1.0]
    assert as_float_array(np.array([1 + 0j]), "v")[0].tolist() == [1.0]
    values, scalar = check_mu(0.5)
    assert scalar and values.shape == ()
    with pytest.raises(ValueError, match="<= 1e"):
        check_mu([0.5, 1e7])
    assert type(scalar_or_array(np.array([2.0]), True)) is float
    assert scalar_or_array(np.array([2.0]), False).shape == (1,)


# --------------------------------------------------------- text, sizes


def test_text_and_magnitude_and_budget():
    with pytest.raises(TypeError, match="must be a string"):
        check_text(3, "name", 10)
    with pytest.raises(ValueError, match="too long"):
        check_text("x" * 11, "name", 10)
    with pytest.raises(ValueError, match="outside"):
        check_magnitude(sp.Integer(10) ** 40, "c")
    with pytest.raises(ValueError, match="outside"):
        check_magnitude(sp.Rational(1, 10**40), "c")
    check_magnitude(sp.Integer(0), "c")
    check_magnitude(Q, "c")
    with pytest.raises(ValueError, match="GiB of memory"):
        check_budget(1e12, 0, "run", "smaller")
    with pytest.raises(ValueError, match="CPU hours"):
        check_budget(0, 1e15, "run", "smaller")


# ---------------------------------------------------------- covariances


@pytest.mark.parametrize("cov, error, message", [
    ("1", TypeError, "not a string"),
    (np.zeros(3), ValueError, "2-d"),
    (5, TypeError, "square matrix"),
    (["11"], TypeError, "not strings"),
    ([[1, 0]], ValueError, "shape"),
    ([[1, 0.5], [0.4, 1]], ValueError, "symmetric"),
    ([[-Q]], ValueError, "diagonal"),
    ([[sp.Integer(10) ** 400]], ValueError, "too large"),
    ([[1, 2], [2, 1]], ValueError, "semi-definite"),
])
def test_covariance_refusals(cov, error, message):
    with pytest.raises(error, match=message):
        covariance_matrix(cov, 1 if not (isinstance(cov, list) and len(cov) == 2) else 2)


def test_covariances_accepted():
    assert covariance_matrix([[Q, 0], [0, 1]], 2)[0, 0] == Q
    # singular PSD, decided exactly where rounding is borderline
    third = sp.Rational(1, 3)
    assert covariance_matrix([[third, third], [third, third]], 2)[0, 1] == third
    assert np.array_equal(np.array(covariance_matrix(np.eye(2), 2), dtype=float), np.eye(2))


# ------------------------------------------------------- integrability


@pytest.mark.parametrize("expr, message", [
    (1 / sp.tanh(x), "may have a pole"),
    (1 / (x - 1), "has a pole at x ≈ 1"),
    (1 / x**2, "has a pole"),
    (sp.sqrt(x**2 - 1), "not real-valued"),
    (sp.sqrt(-x**2 - 1), "not real-valued"),
    (sp.sqrt(sp.tanh(x)), "may not be real-valued"),
    (x**x, "exponent depending on x"),
    (x**sp.zoo, "non-finite constant"),
    (sp.exp(x**2), "exp(c x^2)"),
    (sp.exp(x**3 / 10**12), "exp(c |x|^3)"),
    (sp.exp(sp.exp(x)), "faster than exp"),
    (sp.exp(x**2 * sp.tanh(x)), "exp(c x^2)"),
    (sp.log(x**2), "logarithm"),
    (sp.log(sp.tanh(x) + 1), "logarithm"),
    (sp.log(x + 2, 3), "logarithm"),
    (sp.DiracDelta(x), "not a function"),
    (sp.besselj(0, x), "cannot verify"),
    (x + sp.Symbol("y"), "second variable"),
    (sp.I * x + sp.tanh(x), "not real-valued"),
    (sp.tanh(x) / (sp.Integer(0) * sp.pi + sp.Float(0)), "constant"),
])
def test_integrability_refusals(expr, message):
    with pytest.raises(NotIntegrableError, match=__import__("re").escape(message)):
        check_activation_expr(expr, x, "f")


@pytest.mark.parametrize("expr", [
    sp.tanh(x), sp.Max(0, x), sp.log(1 + sp.exp(x)), 1 / (1 + sp.exp(-x)), sp.exp(-x**2) * x**5,
    sp.sqrt(x**2 + 1), sp.Abs(x) ** 3, sp.exp(sp.tanh(x)), sp.exp(-sp.exp(x)), sp.exp(x * sp.tanh(x)),
    1 / (2 + sp.tanh(x)), sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)), sp.cosh(x) / 10,
    sp.atan(x) * sp.sign(x), sp.erfc(x) * sp.Heaviside(x), x**3 - 3 * x, sp.Min(x, 0) + sp.sin(x),
    1 / (x**2 + 1) ** 3, sp.sqrt((x - 1) ** 2), sp.log(x**2 + 1),
])
def test_integrable_functions_pass(expr):
    check_activation_expr(expr, x, "f")


def test_size_limits():
    deep = x
    for _ in range(MAX_DEPTH + 1):
        deep = sp.tanh(deep + 1)
    with pytest.raises(ValueError, match="nested too deeply"):
        check_activation_expr(deep, x, "f")
    wide = sp.Add(*[sp.tanh(k * x) for k in range(1, 1600)])
    with pytest.raises(ValueError, match="too large"):
        check_activation_expr(wide, x, "f")
    with pytest.raises(TypeError, match="SymPy expression"):
        check_activation_expr("x", x, "f")


def test_model_parameter_helpers():
    # the checks LoRAModel delegates to _validate: every raise, and what passes
    from symlora._validate import check_model_parameter, exact_mu, exact_mu_perp, mu_interval

    assert check_model_parameter(0.5, "lr", positive=True) == sp.Rational(1, 2)
    with pytest.raises(TypeError, match="lr"):
        check_model_parameter("0.5", "lr", positive=True)
    assert exact_mu(sp.Rational(1, 4)) == sp.Rational(1, 4) and float(exact_mu(0.25)) == 0.25
    with pytest.raises(ValueError, match="mu_perp must be <="):
        exact_mu(1e7, "mu_perp")
    assert exact_mu_perp(None, "aligned") == 0 and float(exact_mu_perp(0.5, "general")) == 0.5
    with pytest.raises(ValueError, match="pretraining='general'"):
        exact_mu_perp(0.5, "aligned")
    assert mu_interval((0, 1)) == (0, 1)
    with pytest.raises(TypeError, match="interval"):
        mu_interval("0,1")
    with pytest.raises(ValueError, match="lo < hi"):
        mu_interval((1, 0))
    with pytest.raises(ValueError, match="interval hi"):
        mu_interval((0, 1e7))
