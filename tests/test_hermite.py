"""Variance-adapted Hermite coefficients ``f_k^[Q] = E[f(X) He_k^[Q](X)]``, ``X ~ N(0, Q)``.

Identities checked:

* ``He_k^[Q](x) = Q^{k/2} He_k(x/√Q)`` and their orthogonality
  ``E[He_j^[Q] He_k^[Q]] = δ_jk k! Q^k`` under numpy's Gauss–Hermite-E weights;
* Stein: ``f_k^[Q] = Q^k E[f^{(k)}(X)]`` (distributional derivatives), and
  tables from distribution theory for ReLU and sign, whose higher
  derivatives are derivatives of a Dirac delta:
  ``E[δ^{(j)}(X)] = Q^{-j/2} He_j(0) / sqrt(2πQ)``;
* Parseval: ``Σ_k f_k²/(k! Q^k) → E[f²]`` (the reported ``tail`` is the rest,
  non-negative, non-increasing in ``kmax``, zero for polynomials);
* Mehler: ``E[f(X) g(Y)] = Σ_k f_k^[Q] g_k^[T] R^k/(k! Q^k T^k)``, exactly for
  polynomials, and within the Cauchy–Schwarz tail bound otherwise;
* numeric families (tanh, sigmoid, softplus) against ``mpmath.quad``.
"""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp

from symlora import activation, gaussian_expectation, hermite_coefficients
from symlora._hermite import HermiteExpansion, scaled_hermite

from conftest import assert_close, mp_expect_1d, mp_relu, mpf, numeric

Q = sp.Symbol("Q", positive=True)
T = sp.Symbol("T", positive=True)
R = sp.Symbol("R", real=True)
t = sp.Symbol("t", real=True)
X, Y = sp.symbols("X Y", real=True)
x = sp.Symbol("x", real=True)  # symlora's activation variable


# -- the polynomials -------------------------------------------------------------------


@pytest.mark.parametrize("k", range(9))
def test_scaled_hermite_definition(k):
    expected = Q ** sp.Rational(k, 2) * sp.hermite_prob(k, t / sp.sqrt(Q))
    assert sp.expand(scaled_hermite(k, t, Q) - expected) == 0
    assert sp.expand(scaled_hermite(k, t, 1) - sp.hermite_prob(k, t)) == 0
    # a polynomial in (t, Q): no square roots left
    assert sp.Poly(scaled_hermite(k, t, Q), t, Q).degree(t) == k


def test_scaled_hermite_orthogonality_numpy_weights():
    # E[He_j^[Q](X) He_k^[Q](X)] = δ_jk k! Q^k for X ~ N(0, Q), with numpy's
    # Gauss–Hermite-E rule (exact for degree < 60)
    z, w = np.polynomial.hermite_e.hermegauss(30)
    w = w / math.sqrt(2 * math.pi)
    for q in (0.3, 1.0, 1.7):
        values = np.array([sp.lambdify(t, scaled_hermite(k, t, q))(math.sqrt(q) * z) * np.ones_like(z)
                           for k in range(8)])
        gram = (values * w) @ values.T
        norms = np.array([math.factorial(k) * q**k for k in range(8)])
        # normalised Gram matrix = identity (entries span 1 .. 7! q^7: compare relative to the norms)
        np.testing.assert_allclose(gram / np.sqrt(np.outer(norms, norms)), np.eye(8), atol=1e-13)


# -- exact families ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["x**3", "He4", "relu", "erf", "sign", "erf(x/sqrt(2))", "relu(x)**2",
                                  "He2(x)**2", "x**3 - 3*x"])
def test_exact_families_match_stein_identity(spec):
    act = activation(spec)
    coeffs = hermite_coefficients(spec, 5, Q)
    assert coeffs.exact and len(coeffs) == 6 and coeffs.variance == Q
    checked = 0
    for k, c in enumerate(coeffs):
        derivative = act.derivative(k)
        if any(len(delta.args) > 1 for delta in derivative.atoms(sp.DiracDelta)):
            continue  # derivatives of the delta: see the ReLU/sign tables below
        # f_k^[Q] = Q^k E[f^(k)(X)]
        stein = Q**k * gaussian_expectation(derivative.subs(x, t), [t], [[Q]])
        assert sp.simplify(c - stein) == 0, (k, c, stein)
        checked += 1
    assert checked >= 2


def _delta_moment(j, q):
    """E[δ^{(j)}(X)] for X ~ N(0, q): (-1)^j p^{(j)}(0) = q^{-j/2} He_j(0) / sqrt(2π q)."""
    return q ** sp.Rational(-j, 2) * sp.hermite_prob(j, 0) / sp.sqrt(2 * sp.pi * q)


def test_relu_and_sign_tables():
    relu = hermite_coefficients("relu", 9, Q)
    sign = hermite_coefficients("sign", 9, Q)
    assert sp.simplify(relu[0] - sp.sqrt(Q / (2 * sp.pi))) == 0
    assert sp.simplify(relu[1] - Q / 2) == 0
    assert sign[0] == 0 and sp.simplify(sign[1] - 2 * Q / sp.sqrt(2 * sp.pi * Q)) == 0
    for k in range(2, 10):
        # relu^(k) = δ^(k-2), sign^(k) = 2 δ^(k-1)
        assert sp.simplify(relu[k] - Q**k * _delta_moment(k - 2, Q)) == 0, k
        assert sp.simplify(sign[k] - 2 * Q**k * _delta_moment(k - 1, Q)) == 0, k
    # parity: relu - x/2 = |x|/2 is even, sign is odd
    assert all(relu[k] == 0 for k in range(3, 10, 2))
    assert all(sign[k] == 0 for k in range(0, 10, 2))


@pytest.mark.parametrize("spec, ref, q", [
    ("relu", mp_relu, sp.Rational(3, 2)),
    ("erf", mpmath.erf, sp.Rational(2, 7)),
    ("sign", mpmath.sign, sp.Rational(3, 2)),
    ("erf(x/sqrt(2))", lambda y: mpmath.erf(y / mpmath.sqrt(2)), sp.Rational(3, 2)),
    ("relu(x)**2", lambda y: mp_relu(y) ** 2, sp.Rational(2, 7)),
    ("He3", lambda y: y**3 - 3 * y, sp.Rational(2, 7)),
])
def test_exact_coefficients_against_mpmath(spec, ref, q):
    coeffs = hermite_coefficients(spec, 6, q)
    assert coeffs.exact
    for k, c in enumerate(coeffs):
        he = sp.lambdify(t, scaled_hermite(k, t, q), "mpmath")
        assert_close(c, mp_expect_1d(lambda y: ref(y) * he(y), q), digits=20)
    # symbolic Q, then substituted: the same numbers
    symbolic = hermite_coefficients(spec, 6, Q)
    for c_num, c_sym in zip(coeffs, symbolic):
        assert abs(numeric(c_num - c_sym.subs(Q, q))) < 1e-25


# -- Parseval ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["He3", "He2(x)**2", "x**3 + x", "He10"])
def test_polynomial_tail_vanishes(spec):
    degree = activation(spec).degree
    assert sp.simplify(hermite_coefficients(spec, degree, Q).tail) == 0
    assert sp.simplify(hermite_coefficients(spec, degree + 2, Q).tail) == 0
    # one order short, the tail is exactly the top coefficient's share
    short = hermite_coefficients(spec, degree - 1, Q)
    top = hermite_coefficients(spec, degree, Q)[degree]
    assert sp.simplify(short.tail - top**2 / (sp.factorial(degree) * Q**degree)) == 0


@pytest.mark.parametrize("spec, ref", [
    ("relu", lambda y: mp_relu(y) ** 2),
    ("erf", lambda y: mpmath.erf(y) ** 2),
    ("sign", lambda y: mpmath.mpf(1)),
])
def test_parseval(spec, ref):
    # Σ_k f_k² / (k! Q^k) + tail = E[f²] for every kmax; tails decrease towards 0
    q = sp.Rational(4, 3)
    second = mp_expect_1d(ref, q)
    tails = []
    for kmax in (1, 3, 7, 13):
        coeffs = hermite_coefficients(spec, kmax, q)
        with mpmath.workdps(30):
            captured = sum(numeric(c) ** 2 / (math.factorial(k) * mpf(q) ** k) for k, c in enumerate(coeffs))
            tail = numeric(coeffs.tail)
            assert_close(captured + tail, second, digits=20)
        assert tail >= 0
        tails.append(tail)
    assert all(a >= b for a, b in zip(tails, tails[1:]))
    assert tails[-1] < tails[0] / 2  # sign decays slowest: tail ~ kmax^(-1/2)


# -- Mehler -----------------------------------------------------------------------------------


@pytest.mark.parametrize("f, g", [("x**3 + x", "x**2 - x"), ("He4", "He4"), ("He3", "x**3"), ("He2(x)**2", "He4")])
def test_mehler_exact_for_polynomials(f, g):
    # E[f(X) g(Y)] = Σ_k f_k^[Q] g_k^[T] R^k / (k! Q^k T^k), exactly, with symbolic Q, T, R
    K = 4
    fc, gc = hermite_coefficients(f, K, Q), hermite_coefficients(g, K, T)
    mehler = sum(fc[k] * gc[k] * R**k / (sp.factorial(k) * Q**k * T**k) for k in range(K + 1))
    direct = gaussian_expectation(activation(f)(X) * activation(g)(Y), [X, Y], [[Q, R], [R, T]])
    assert sp.simplify(mehler - direct) == 0
    # the series reproduces a polynomial exactly
    assert sp.expand(fc.series(t) - activation(f)(t)) == 0


@pytest.mark.parametrize("f, g", [("relu", "relu"), ("erf", "relu"), ("sign", "erf"), ("relu", "He3")])
def test_mehler_truncation_within_tail_bound(f, g):
    # |E[f g] - Σ_{k<=K}| <= sqrt(tail_f tail_g) |ρ|^{K+1} (Cauchy–Schwarz, as documented)
    q, tt, r = sp.Rational(3, 2), sp.Rational(4, 5), sp.Rational(7, 10)
    direct = numeric(gaussian_expectation(activation(f)(X) * activation(g)(Y), [X, Y], [[q, r], [r, tt]]))
    for K in (2, 6, 12):
        fc, gc = hermite_coefficients(f, K, q), hermite_coefficients(g, K, tt)
        with mpmath.workdps(30):
            rho = abs(mpf(r)) / mpmath.sqrt(mpf(q) * mpf(tt))
            partial = sum(numeric(fc[k] * gc[k] * r**k / (sp.factorial(k) * q**k * tt**k)) for k in range(K + 1))
            bound = mpmath.sqrt(numeric(fc.tail) * numeric(gc.tail)) * rho ** (K + 1)
            assert abs(direct - partial) <= bound * (1 + mpf(10) ** -20) + mpf(10) ** -25


# -- numeric families ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec, ref, q", [
    ("tanh", mpmath.tanh, 1),
    ("sigmoid", lambda y: 1 / (1 + mpmath.exp(-y)), sp.Rational(5, 2)),
    ("softplus", lambda y: mpmath.log(1 + mpmath.exp(y)), sp.Rational(1, 2)),
    ("0.5*tanh(x) + x", lambda y: mpmath.tanh(y) / 2 + y, 2),
])
def test_numeric_family_against_mpmath(spec, ref, q):
    coeffs = hermite_coefficients(spec, 5, q)
    assert not coeffs.exact and coeffs.variance == q
    for k, c in enumerate(coeffs):
        he = sp.lambdify(t, scaled_hermite(k, t, q), "mpmath")
        assert_close(c, mp_expect_1d(lambda y: ref(y) * he(y), q), digits=20)
    # Parseval: the tail is what the truncation leaves of E[f²]
    second = mp_expect_1d(lambda y: ref(y) ** 2, q)
    with mpmath.workdps(30):
        captured = sum(c**2 / (math.factorial(k) * mpf(q) ** k) for k, c in enumerate(coeffs))
        assert_close(coeffs.tail, second - captured, digits=20)
    assert coeffs.tail >= 0


def test_numeric_family_symmetries_and_mehler():
    tanh = hermite_coefficients("tanh", 9, 1)
    assert all(abs(tanh[k]) < 1e-25 for k in range(0, 10, 2))  # odd function
    assert float(tanh.tail) < 1e-2
    # sigmoid - 1/2 is odd
    sig = hermite_coefficients("sigmoid", 6, 1)
    assert abs(sig[0] - mpmath.mpf(1) / 2) < 1e-25 and all(abs(sig[k]) < 1e-25 for k in (2, 4, 6))
    # Mehler with the tail bound against an independent 2-D mpmath value
    from conftest import mp_expect_2d

    r = mpf("0.6")
    direct = mp_expect_2d(lambda a, b: mpmath.tanh(a) * mpmath.tanh(b), 1, r, 1)
    with mpmath.workdps(30):
        partial = sum(c**2 * r**k / math.factorial(k) for k, c in enumerate(tanh))
        assert abs(direct - partial) <= tanh.tail * r**10 + mpf(10) ** -15


def test_series_and_container():
    coeffs = hermite_coefficients("relu", 3, Q)
    assert isinstance(coeffs, HermiteExpansion)
    assert list(coeffs) == list(coeffs.coefficients) and coeffs[1] == coeffs.coefficients[1]
    # relu has f_3 = 0: the truncated series is a quadratic
    assert coeffs[3] == 0 and sp.Poly(sp.expand(coeffs.series(t)), t).degree() == 2
    assert sp.simplify(sp.expand(coeffs.series(t)).coeff(t, 1) - sp.Rational(1, 2)) == 0
    with pytest.raises(AttributeError):
        coeffs.tail = 0  # frozen
    # the activation may be given as an Activation, text, SymPy expression or callable
    a = hermite_coefficients(activation("erf"), 3, 1)
    b = hermite_coefficients(sp.erf(sp.Symbol("s")), 3, 1)
    c = hermite_coefficients(sp.erf, 3, 1)
    assert a.coefficients == b.coefficients == c.coefficients


# -- every raise of _hermite.py ---------------------------------------------------------


def test_bad_input():
    with pytest.raises(ValueError, match="kmax"):
        hermite_coefficients("x", -1)
    with pytest.raises(TypeError, match="kmax"):
        hermite_coefficients("x", 1.5)
    with pytest.raises(TypeError, match="kmax"):
        hermite_coefficients("x", True)
    with pytest.raises(ValueError, match="kmax"):
        hermite_coefficients("x", 10**9)
    with pytest.raises(ValueError, match="positive"):
        hermite_coefficients("x", 2, -1)
    with pytest.raises(ValueError, match="positive"):
        hermite_coefficients("x", 2, 0)
    with pytest.raises(ValueError, match="numeric variance"):
        hermite_coefficients("tanh", 2, Q)
    with pytest.raises(ValueError, match="unknown name"):
        hermite_coefficients("cosh", 2)
