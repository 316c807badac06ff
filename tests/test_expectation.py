"""The Gaussian-expectation engine: exact identities and independent quadrature."""

import itertools
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symlora import GaussianExpectation, NotIntegrableError, evaluate_with_error, gaussian_expectation, is_exact
from symlora._expectation import _cached_expectation

from conftest import mp_expect_1d, mp_expect_2d

X, Y, Z = sp.symbols("X Y Z", real=True)
Q, T = sp.symbols("Q T", positive=True)
R = sp.Symbol("R", real=True)
COV = [[Q, R], [R, T]]


def _exact(expr, variables, cov):
    result = gaussian_expectation(expr, variables, cov)
    assert is_exact(result)
    assert not result.has(sp.Integral, sp.Sum)
    return result


# -- exact identities --------------------------------------------------------------


@pytest.mark.parametrize("j, k", list(itertools.product(range(6), repeat=2)))
def test_hermite_orthogonality_mehler(j, k):
    # X, Y standard with correlation R: E[He_j(X) He_k(Y)] = delta_jk k! R^k
    value = _exact(sp.hermite_prob(j, X) * sp.hermite_prob(k, Y), [X, Y], [[1, R], [R, 1]])
    expected = sp.factorial(k) * R**k if j == k else 0
    assert sp.expand(value - expected) == 0


def _isserlis(powers, cov):
    """Brute-force sum over pairings (independent of the engine's recursion)."""
    labels = [i for i, p in enumerate(powers) for _ in range(p)]
    if len(labels) % 2:
        return 0

    def pairings(items):
        if not items:
            yield []
            return
        first, rest = items[0], items[1:]
        for i in range(len(rest)):
            for tail in pairings(rest[:i] + rest[i + 1 :]):
                yield [(first, rest[i])] + tail

    total = 0
    for pairing in pairings(list(range(len(labels)))):
        term = 1
        for a, b in pairing:
            term *= cov[labels[a]][labels[b]]
        total += term
    return sp.expand(total)


@pytest.mark.parametrize("powers", [(2, 2, 0), (3, 1, 2), (1, 1, 2), (4, 0, 2), (2, 3, 1)])
def test_polynomial_moments_isserlis(powers):
    C, m = sp.symbols("C m", real=True)
    cov = [[Q, R, C], [R, 1, m], [C, m, 1]]
    expr = X ** powers[0] * Y ** powers[1] * Z ** powers[2]
    assert sp.expand(_exact(expr, [X, Y, Z], cov) - _isserlis(powers, cov)) == 0


def test_known_closed_forms():
    assert sp.simplify(_exact(sp.erf(X) * sp.erf(Y), [X, Y], COV)
                       - 2 / sp.pi * sp.asin(2 * R / sp.sqrt((1 + 2 * Q) * (1 + 2 * T)))) == 0
    relu2 = _exact(sp.Max(0, X) * sp.Max(0, Y), [X, Y], COV)
    arccos = (sp.sqrt(Q * T - R**2) + R * (sp.pi - sp.acos(R / sp.sqrt(Q * T)))) / (2 * sp.pi)
    point = {Q: sp.Rational(3, 2), T: sp.Rational(2, 3), R: sp.Rational(1, 3)}
    assert sp.N((relu2 - arccos).subs(point), 30) == pytest.approx(0, abs=1e-25)
    assert _exact(sp.Max(0, X) ** 2, [X], [[Q]]) == Q / 2
    assert sp.simplify(_exact(sp.Heaviside(X) * sp.Heaviside(Y), [X, Y], COV)
                       - (sp.Rational(1, 4) + sp.asin(R / sp.sqrt(Q * T)) / (2 * sp.pi))) == 0


# -- closed forms against independent quadrature -----------------------------------

_cov2 = st.tuples(st.floats(0.3, 2.5), st.floats(0.3, 2.5), st.floats(-0.9, 0.9)).map(
    lambda t: (t[0], t[1], t[2] * np.sqrt(t[0] * t[1]))
)

_sig = {
    "erf": (sp.erf, math.erf),
    "relu": (lambda a: sp.Max(0, a), lambda a: max(a, 0.0)),
    "H": (sp.Heaviside, lambda a: 1.0 if a > 0 else 0.0),
    "sign": (sp.sign, lambda a: float(np.sign(a))),
    "gauss": (lambda a: sp.exp(-a**2), lambda a: math.exp(-a * a)),
    "He3": (lambda a: a**3 - 3 * a, lambda a: a**3 - 3 * a),
}

_PRODUCTS = [
    ("erf", "erf"), ("relu", "relu"), ("relu", "H"), ("erf", "H"), ("He3", "relu"), ("sign", "erf"),
    ("erf", "gauss"), ("relu", "He3"),
]


@pytest.mark.slow
@pytest.mark.parametrize("f, g", _PRODUCTS)
@settings(max_examples=3, deadline=None, derandomize=True)
@given(cov=_cov2)
def test_products_against_mpmath(f, g, cov):
    q, t, r = cov
    (fs, fm), (gs, gm) = _sig[f], _sig[g]
    # products of factors, with a polynomial and a Gaussian factor thrown in
    expr = fs(X) * gs(Y) * (1 + X * Y) * sp.exp(-X**2 / 3)
    value = _exact(expr, [X, Y], [[sp.nsimplify(q), sp.nsimplify(r)], [sp.nsimplify(r), sp.nsimplify(t)]])
    ref = mp_expect_2d(lambda a, b: fm(a) * gm(b) * (1 + a * b) * math.exp(-a * a / 3), sp.nsimplify(q),
                       sp.nsimplify(r), sp.nsimplify(t))
    assert float(sp.N(value, 25)) == pytest.approx(float(ref), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("expr, ref", [
    (sp.Max(0, X) ** 2 * sp.Heaviside(X) * (X**2 + 1), lambda a: max(a, 0) ** 2 * (a * a + 1)),
    (sp.erf(X) * sp.exp(-X**2) * X, lambda a: mpmath.erf(a) * mpmath.exp(-a * a) * a),
    (sp.erf(X / sp.sqrt(2)) ** 2, lambda a: mpmath.erf(a / mpmath.sqrt(2)) ** 2),
    (sp.sign(X) * X**3, lambda a: mpmath.sign(a) * a**3),
])
def test_one_dimensional_against_mpmath(expr, ref):
    value = _exact(expr, [X], [[sp.Rational(7, 5)]])
    assert float(sp.N(value, 25)) == pytest.approx(float(mp_expect_1d(ref, mpmath.mpf(7) / 5)), rel=1e-12)


def test_three_variables_singular_covariance():
    # the ODE shape: lambda = mu nu + u zeta, covariance built from (mu, u, m): PSD and singular
    lam, nu, zeta = sp.symbols("lambda nu zeta", real=True)
    mu, u, m = sp.Rational(1, 2), sp.Rational(2, 5), sp.Rational(3, 10)
    Qv, Rv, Cv = mu**2 + u**2 + 2 * mu * u * m, mu + u * m, mu * m + u
    cov = [[Qv, Rv, Cv], [Rv, 1, m], [Cv, m, 1]]
    checks = [
        (zeta * sp.erf(lam) * 2 / sp.sqrt(sp.pi) * sp.exp(-lam**2),
         lambda l, n, z: z * math.erf(l) * 2 / math.sqrt(math.pi) * math.exp(-l * l)),
        (sp.erf(lam) ** 2 * sp.exp(-2 * lam**2), lambda l, n, z: math.erf(l) ** 2 * math.exp(-2 * l * l)),
        (sp.Max(0, lam) * sp.Heaviside(lam) * sp.Max(0, nu), lambda l, n, z: max(l, 0) * max(n, 0)),
        (zeta * sp.Max(0, lam) * sp.Heaviside(lam), lambda l, n, z: z * max(l, 0)),
    ]
    # reference in kink-aligned coordinates (lambda, nu); zeta enters through its
    # conditional mean E[zeta | lambda, nu] = alpha lambda + beta nu (Gaussian regression)
    alpha, beta = np.linalg.solve(np.array([[float(Qv), float(Rv)], [float(Rv), 1.0]]), [float(Cv), float(m)])
    for expr, func in checks:
        value = _exact(expr, [lam, nu, zeta], cov)
        if expr.has(zeta):
            ref = mp_expect_2d(lambda l, n: func(l, n, alpha * l + beta * n), Qv, Rv, 1)
        else:
            ref = mp_expect_2d(lambda l, n: func(l, n, 0.0), Qv, Rv, 1)
        assert float(sp.N(value, 25)) == pytest.approx(float(ref), rel=1e-10, abs=1e-12)


def test_dirac_delta_conditioning():
    value = _exact(Y**2 * sp.DiracDelta(X), [X, Y], COV)
    assert sp.simplify(value - (Q * T - R**2) / (Q * sp.sqrt(2 * sp.pi * Q))) == 0


# -- approximate paths ----------------------------------------------------------------


@pytest.mark.parametrize("expr, ref", [
    (sp.tanh(X) * sp.tanh(Y), lambda a, b: math.tanh(a) * math.tanh(b)),
    (1 / (1 + sp.exp(-X)) * Y, lambda a, b: b / (1 + math.exp(-a))),
    (sp.log(1 + sp.exp(X)) ** 2, lambda a, b: math.log(1 + math.exp(a)) ** 2),
    (sp.erf(X) ** 2 * sp.erf(Y) ** 2, lambda a, b: math.erf(a) ** 2 * math.erf(b) ** 2),
])
def test_approximate_within_error_estimate(expr, ref):
    cov = [[sp.Rational(6, 5), sp.Rational(1, 2)], [sp.Rational(1, 2), 1]]
    result = gaussian_expectation(expr, [X, Y], cov)
    assert not is_exact(result) and result.has(GaussianExpectation)
    value, error = evaluate_with_error(result)
    reference = float(mp_expect_2d(ref, sp.Rational(6, 5), sp.Rational(1, 2), 1))
    # the estimate compares two rule sizes; allow it plus double rounding
    assert abs(value - reference) <= error + 1e-12
    assert error < 1e-5


def test_cache_returns_same_object():
    expr = sp.erf(X) * sp.Max(0, Y) * X
    before = _cached_expectation.cache_info().hits
    first = gaussian_expectation(expr, [X, Y], COV)
    second = gaussian_expectation(expr, [X, Y], COV)
    assert first is second
    assert _cached_expectation.cache_info().hits > before


# -- bad input -------------------------------------------------------------------------


def test_bad_input():
    with pytest.raises(TypeError, match="variables"):
        gaussian_expectation(X, ["X"], [[1]])
    with pytest.raises(TypeError, match="variables"):
        gaussian_expectation(X, [], [[1]])
    with pytest.raises(ValueError, match="distinct"):
        gaussian_expectation(X, [X, X], [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="shape"):
        gaussian_expectation(X, [X, Y], [[1]])
    with pytest.raises(ValueError, match="symmetric"):
        gaussian_expectation(X, [X, Y], [[1, 0.5], [0.2, 1]])
    with pytest.raises(TypeError, match="square matrix"):
        gaussian_expectation(X, [X], "cov")
    with pytest.raises(ValueError, match="depend on the Gaussian"):
        gaussian_expectation(X, [X], [[X]])
    with pytest.raises(ValueError, match="sign assumptions"):
        gaussian_expectation(sp.Symbol("P", positive=True), [sp.Symbol("P", positive=True)], [[1]])
    with pytest.raises(TypeError, match="SymPy expression"):
        gaussian_expectation(sp.Eq(X, 1), [X], [[1]])
    with pytest.raises(NotIntegrableError, match="Dirac"):
        gaussian_expectation(sp.DiracDelta(X) ** 2, [X], [[1]])
    with pytest.raises(NotIntegrableError, match="zero variance"):
        gaussian_expectation(sp.DiracDelta(X) * sp.DiracDelta(2 * X), [X], [[1]])
    with pytest.raises(NotImplementedError, match="derivatives of the Dirac"):
        gaussian_expectation(sp.DiracDelta(X, 1), [X], [[1]])
    with pytest.raises(NotImplementedError, match="derivatives of the Dirac"):
        gaussian_expectation(sp.DiracDelta(X, 1) * sp.tanh(X), [X], [[1]])
    with pytest.raises(NotIntegrableError, match="only single deltas"):
        gaussian_expectation(sp.DiracDelta(X**2) * sp.tanh(X), [X], [[1]])
    with pytest.raises(ValueError, match="free symbols"):
        evaluate_with_error(sp.tanh(X) + Q)
