"""Variance-adapted Hermite coefficients."""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp

from symlora import gaussian_expectation, hermite_coefficients
from symlora._hermite import scaled_hermite

from conftest import mp_expect_1d

Q = sp.Symbol("Q", positive=True)
t = sp.Symbol("t", real=True)


def test_scaled_hermite_orthogonality_numpy_weights():
    # He_k^[Q] are orthogonal under N(0, Q): check with numpy's Gauss–Hermite-E rule
    z, w = np.polynomial.hermite_e.hermegauss(30)
    w = w / math.sqrt(2 * math.pi)
    q = 1.7
    for j in range(6):
        for k in range(6):
            fj = sp.lambdify(t, scaled_hermite(j, t, q))(math.sqrt(q) * z)
            fk = sp.lambdify(t, scaled_hermite(k, t, q))(math.sqrt(q) * z)
            value = np.sum(w * fj * fk)
            expected = math.factorial(k) * q ** (2 * k) / q**k if j == k else 0.0
            assert value == pytest.approx(expected, abs=1e-9 * max(1, abs(expected)))


@pytest.mark.parametrize("spec", ["x**3", "He4", "relu", "erf", "sign", "erf(x/sqrt(2))"])
def test_exact_families_match_stein_identity(spec):
    from symlora import activation

    act = activation(spec)
    coeffs = hermite_coefficients(spec, 4, Q)
    assert coeffs.exact
    for k, c in enumerate(coeffs):
        if any(len(delta.args) > 1 for delta in act.derivative(k).atoms(sp.DiracDelta)):
            continue  # derivatives of the delta: the engine does not take them
        # f_k^[Q] = Q^k E[f^(k)(X)]
        stein = Q**k * gaussian_expectation(act.derivative(k).subs(sp.Symbol("x", real=True), t), [t], [[Q]])
        assert sp.simplify(c - stein) == 0


@pytest.mark.parametrize("spec, ref", [
    ("relu", lambda y: max(y, 0)), ("erf", mpmath.erf), ("sign", mpmath.sign),
])
def test_exact_coefficients_against_mpmath(spec, ref):
    q = sp.Rational(3, 2)
    coeffs = hermite_coefficients(spec, 5, q)
    for k, c in enumerate(coeffs):
        he = sp.lambdify(t, scaled_hermite(k, t, q), "mpmath")
        value = mp_expect_1d(lambda y: ref(y) * he(y), mpmath.mpf(3) / 2)
        assert float(sp.N(c, 25)) == pytest.approx(float(value), abs=1e-12)


def test_polynomial_tail_and_mehler():
    coeffs = hermite_coefficients("He3", 5, Q)
    assert sp.simplify(coeffs.tail) == 0
    # Mehler: E[f(X) g(Y)] = sum_k f_k g_k R^k / (k! Q^k T^k) exactly for polynomials
    X, Y = sp.symbols("X Y", real=True)
    R = sp.Symbol("R", real=True)
    f = hermite_coefficients("x**3 + x", 3, Q)
    g = hermite_coefficients("x**2 - x", 3, 1)
    mehler = sum(f[k] * g[k] * R**k / (sp.factorial(k) * Q**k) for k in range(4))
    direct = gaussian_expectation((X**3 + X) * (Y**2 - Y), [X, Y], [[Q, R], [R, 1]])
    assert sp.expand(mehler - direct) == 0
    assert sp.expand(f.series(t) - (t**3 + t)) == 0


def test_numeric_family_with_tail():
    coeffs = hermite_coefficients("tanh", 7, 1)
    assert not coeffs.exact
    he1 = float(mp_expect_1d(lambda y: mpmath.tanh(y) * y))
    assert float(coeffs[1]) == pytest.approx(he1, rel=1e-12)
    assert float(coeffs[0]) == pytest.approx(0, abs=1e-20)
    # Parseval: the tail is what the truncation leaves of E[tanh^2]
    second = float(mp_expect_1d(lambda y: mpmath.tanh(y) ** 2))
    captured = sum(float(c) ** 2 / math.factorial(k) for k, c in enumerate(coeffs))
    assert float(coeffs.tail) == pytest.approx(second - captured, abs=1e-15)
    assert 0 < float(coeffs.tail) < 1e-2


def test_bad_input():
    with pytest.raises(ValueError, match="kmax"):
        hermite_coefficients("x", -1)
    with pytest.raises(ValueError, match="kmax"):
        hermite_coefficients("x", 1.5)
    with pytest.raises(ValueError, match="positive"):
        hermite_coefficients("x", 2, -1)
    with pytest.raises(ValueError, match="numeric variance"):
        hermite_coefficients("tanh", 2, Q)
