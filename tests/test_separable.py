"""Mehler's series for separable integrands (symlora._separable) against
independent mpmath quadrature, and the splitting of integrands into parts.

The references condition on ``Y`` and integrate ``X | Y`` with ``mpmath.quad``
(two nested one-dimensional integrals), never Mehler's formula.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp

from symlora._node import GaussianExpectation, separable_parts
from symlora._separable import MehlerSums, separable_expectation, separable_with_error


_EDGES = tuple(np.arange(-10.0, 10.1, 1.0))
_LEGENDRE = [(mpmath.mpf(t), mpmath.mpf(w)) for t, w in zip(*np.polynomial.legendre.leggauss(20))]


def _mp_normal_rule(breaks=()):
    """Composite Gauss–Legendre (20 nodes on each panel of at most 1 of ``[-10, 10]``,
    split at ``breaks``) with standard normal weights (the mass beyond ±10 is 1.5e-23)."""
    edges = sorted({*map(mpmath.mpf, _EDGES), *[mpmath.mpf(b) for b in breaks if abs(b) < 10]})
    nodes, weights = [], []
    root = 1 / mpmath.sqrt(2 * mpmath.pi)
    for lo, hi in zip(edges[:-1], edges[1:]):
        half = (hi - lo) / 2
        for ti, wi in _LEGENDRE:
            z = lo + half * (1 + ti)
            nodes.append(z)
            weights.append(half * wi * root * mpmath.exp(-z * z / 2))
    return nodes, weights


def mp_product(f, g, a, b, c, dps=20, f_kinks=(), g_kinks=()):
    """E[f(X) g(Y)] for (X, Y) ~ N(0, [[a, c], [c, b]]) by nested quadrature in mpmath arithmetic.

    Conditioning on ``Y``: ``X | Y = y ~ N(c y / b, a - c²/b)``; both
    integrals by composite Gauss–Legendre in standard deviations, with
    breakpoints where ``f`` or ``g`` has a kink (``f_kinks``, ``g_kinks``).
    """
    with mpmath.workdps(dps):
        a, b, c = (mpmath.mpf(v) for v in (a, b, c))
        slope, spread, sd = c / b, mpmath.sqrt(a - c * c / b), mpmath.sqrt(b)
        smooth = _mp_normal_rule()
        total = mpmath.mpf(0)
        for z, w in zip(*_mp_normal_rule([k / sd for k in g_kinks])):
            y = sd * z
            centre = slope * y
            nodes, weights = _mp_normal_rule([(k - centre) / spread for k in f_kinks]) if f_kinks else smooth
            inner = mpmath.fsum(wi * f(centre + spread * t) for t, wi in zip(nodes, weights))
            total += w * g(y) * inner
        return total


def _mp_sigmoid(t):
    return 1 / (1 + mpmath.exp(-t))


CASES = [
    # (numpy f, numpy g, mpmath f, mpmath g)
    (np.tanh, np.tanh, mpmath.tanh, mpmath.tanh),
    (lambda t: 1 / (1 + np.exp(-t)) ** 2, lambda t: np.log1p(np.exp(t)), lambda t: _mp_sigmoid(t) ** 2,
     lambda t: mpmath.log(1 + mpmath.exp(t))),
    (lambda t: (1 - np.tanh(t) ** 2) * np.tanh(t), lambda t: t * np.tanh(t), lambda t: (1 - mpmath.tanh(t) ** 2) * mpmath.tanh(t),
     lambda t: t * mpmath.tanh(t)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("a, b, c", [(1.0, 1.0, 0.5), (14.7, 1.0, 3.6), (2.0, 0.5, -0.99)])
def test_value_and_bound_against_mpmath(case, a, b, c):
    f, g, mf, mg = CASES[case]
    value, bound = separable_with_error([f], [g], a, b, c)
    reference = float(mp_product(mf, mg, a, b, c))
    assert abs(float(value) - reference) <= bound
    assert bound < 1e-11
    assert float(separable_expectation([f], [g], a, b, c)) == pytest.approx(float(value), abs=float(bound))


def test_batch_equals_elementwise():
    a = np.array([0.3, 1.0, 9.0])
    c = np.array([0.1, -0.8, 2.9])
    batch = separable_expectation([np.tanh, np.cosh], [np.tanh, None], a, 1.0, c)
    single = [float(separable_expectation([np.tanh, np.cosh], [np.tanh, None], ai, 1.0, ci)) for ai, ci in zip(a, c)]
    # the number of Mehler terms follows the largest |ρ| of the batch: equal to rounding
    assert np.allclose(batch, single, rtol=1e-13, atol=1e-15)


def test_degenerate_variance_is_a_point_mass():
    # X = 0 almost surely: E[cosh(X) tanh(Y)] = E[tanh(Y)] = 0, E[cosh X] = 1
    assert float(separable_expectation([np.cosh], [None], 0.0, 1.0, 0.0)) == pytest.approx(1.0, abs=1e-15)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="same length"):
        separable_with_error([np.tanh], [], 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="nodes"):
        separable_expectation([np.tanh], [None], 1.0, 1.0, 0.0, nodes=1)


X, Y = sp.symbols("X Y", real=True)


def test_parts_reassemble_the_integrand():
    expr = (1 / (1 + sp.exp(-X)) - sp.tanh(Y)) ** 2 * sp.exp(-X - 2 * Y) + sp.tanh(X)
    parts = separable_parts(expr, (X, Y))
    rebuilt = sp.Add(*[(f if f is not None else 1) * (g if g is not None else 1) for f, g in parts])
    assert sp.simplify(rebuilt - expr) == 0
    assert all(f is None or not f.has(Y) for f, _ in parts)
    assert all(g is None or not g.has(X) for _, g in parts)


def test_kinked_or_coupled_integrands_are_not_split():
    assert separable_parts(sp.Max(0, X) * sp.tanh(Y), (X, Y)) is None
    assert separable_parts(sp.tanh(X + Y), (X, Y)) is None


def test_node_uses_the_separable_route_with_a_bound():
    node = GaussianExpectation(sp.Lambda((X, Y), sp.tanh(X) * sp.tanh(Y)), sp.ImmutableMatrix([[1, sp.Rational(1, 2)], [sp.Rational(1, 2), 1]]))
    value, bound = node.numeric()
    reference = float(mp_product(mpmath.tanh, mpmath.tanh, 1, 1, 0.5))
    assert abs(value - reference) <= bound < 1e-12


def test_grouped_nodes_match_each_node_alone():
    # generated code evaluates nodes that share a covariance together (symlora._node_groups): both
    # variances varying, only Var Y fixed, only Var X fixed (sides swapped), a parameter inside the
    # integrand, a one-dimensional node; each against the node's own route and bound
    s, k = sp.symbols("s k", positive=True)
    sigmoid = 1 / (1 + sp.exp(-X))
    covariances = [
        sp.ImmutableMatrix([[1 + s, s / 2], [s / 2, 2 - s / 2]]),
        sp.ImmutableMatrix([[1 + s, s / 3], [s / 3, 1]]),
        sp.ImmutableMatrix([[1, s / 3], [s / 3, 1 + s]]),
    ]
    # functions of Y even, odd (their vanishing Hermite coefficients are skipped) and neither
    integrands = [sp.tanh(X) * sp.tanh(Y) ** 2 - 1, (sigmoid - sp.tanh(Y)) ** 2, sp.tanh(k * X) * sp.tanh(Y),
                  sp.tanh(X) * sp.tanh(Y + sp.Rational(1, 2))]
    nodes = [GaussianExpectation(sp.Lambda((X, Y), f), cov) for cov in covariances for f in integrands]
    nodes.append(GaussianExpectation(sp.Lambda((X,), sp.tanh(X) ** 2), sp.ImmutableMatrix([[s]])))
    from symlora._codegen import compile_expressions

    compiled = compile_expressions([s, k], nodes + [2 * nodes[0] - nodes[5]], with_error=True)
    plain = compile_expressions([s, k], nodes)
    for s_value, k_value in [(0.3, 1.5), (1.1, 0.7)]:
        values, bounds = compiled(s_value, k_value)
        assert np.allclose(plain(s_value, k_value), values[:-1], rtol=0, atol=1e-14)
        own = [node.subs({s: s_value, k: k_value}).numeric() for node in nodes]
        for value, bound, (reference, reference_bound) in zip(values, bounds, own):
            assert abs(value - reference) <= bound + reference_bound
            assert bound < 1e-11
        assert values[-1] == pytest.approx(2 * values[0] - values[5], abs=1e-15)
    # a batch equals its elements to rounding (the number of Mehler terms follows the batch's largest |ρ|)
    batch = plain(np.linspace(0.3, 1.1, 40), np.linspace(1.5, 0.7, 40))  # more states than one block
    assert np.allclose(batch[:, 0], plain(0.3, 1.5), rtol=1e-13, atol=1e-15)
    assert np.allclose(batch[:, -1], plain(1.1, 0.7), rtol=1e-13, atol=1e-15)
    assert plain(np.zeros(0), np.zeros(0)).shape == (len(nodes), 0)


def test_error_bound_of_a_batch_of_states():
    """The compiled RHS bound on a (states, 2, 3) batch (fixed teacher coefficients) equals the per-state bounds'
    shape and bounds the per-state difference to a tighter rule (it raised a broadcasting error before)."""
    from symlora import LoRAModel
    from symlora._codegen import compile_ode

    compiled = compile_ode(LoRAModel("tanh", lr=sp.Rational(1, 2)).ode_system())
    states = np.random.default_rng(4).uniform(-0.8, 0.8, (2, 2, 3))
    bound = compiled.rhs_error_bound(states, 0.4)
    assert bound.shape == (2, 2, 3)
    error = compiled.rhs_error(states, 0.4)
    assert np.all(bound >= error)
    for i in range(2):
        for j in range(3):
            single = compiled.rhs_error_bound(states[:, i, j], 0.4)
            np.testing.assert_allclose(bound[:, i, j], single, rtol=0.5)


def test_near_unit_correlation_conditions_on_y():
    """Near ρ = 1 with a wide X, Mehler's series stops at 160 terms with errors of 4e-11 (sech² x sech² at
    Var X = 5); conditioned on Y the value agrees with 20-digit quadrature within a bound below 1e-14, and a
    batch mixing both routes equals the single calls."""
    sums = MehlerSums(lambda x: [1 - np.tanh(x) ** 2], lambda y: [np.tanh(y) ** 2 - 1], [[[1.0, 0.0], [0.0, 0.0]]],
                      right_variance=1.0, right_parity=[1])
    a, rho = 5.0, np.array([0.5, 0.99, 0.9995, 1.0])
    values, bounds = sums.with_error(a, 1.0, rho * np.sqrt(a))
    batch = sums(a, 1.0, rho * np.sqrt(a))[0]
    for i, r in enumerate(rho):
        assert abs(sums(a, 1.0, float(r * np.sqrt(a)))[0] - batch[i]) <= 1e-14
        assert abs(values[0, i] - batch[i]) <= 1e-14
    for i in (1, 2):
        reference = mp_product(lambda x: 1 - mpmath.tanh(x) ** 2, lambda y: mpmath.tanh(y) ** 2 - 1, a, 1.0,
                               rho[i] * np.sqrt(a))
        assert abs(batch[i] - float(reference)) <= bounds[0, i] <= 1e-14
    # a narrow X at exactly ρ = 1 stays on the series, with every term (not the few of ρ = 0)
    value, bound = sums.with_error(0.25, 1.0, 0.5)
    reference = mp_product(lambda x: 1 - mpmath.tanh(x) ** 2, lambda y: mpmath.tanh(y) ** 2 - 1, 0.25, 1.0, 0.5)
    assert abs(sums(0.25, 1.0, 0.5)[0] - float(reference)) <= bound[0] <= 1e-14
    assert abs(sums(np.array([0.25]), 1.0, 0.5)[0, 0] - float(reference)) <= 1e-14
