"""Distributional derivatives of kinked integrands (symlora._kinked_derivatives) and the node
gradient built on them (symlora._ode_jacobian): exact identities and closed forms as the check."""

from __future__ import annotations

import pytest
import sympy as sp

from symlora import GaussianExpectation, gaussian_expectation
from symlora._expectation import NotIntegrableError
from symlora._kinked_derivatives import differentiate_terms, expectation_of_terms, one_sided_terms
from symlora._ode_jacobian import jacobian_expressions, node_gradient

lam, nu = sp.symbols("lambda nu", real=True)
q = sp.Symbol("q", positive=True)
r = sp.Symbol("r", real=True)


def _derivatives(expr, order):
    terms = one_sided_terms(expr, [lam])
    for _ in range(order):
        terms = differentiate_terms(terms, lam, [lam])
    return terms


def test_softsign_derivatives_have_one_delta_exactly_where_the_second_derivative_jumps():
    softsign = lam / (1 + sp.Abs(lam))
    # C^1 with a continuous second derivative's absolute value: no delta in the first two derivatives
    for order in (1, 2):
        assert all(not deltas for _, _, deltas in _derivatives(softsign, order))
    third = {(steps, deltas): c for c, steps, deltas in _derivatives(softsign, 3)}
    assert sp.simplify(third[(((lam, 1),), ())] - 6 / (1 + lam) ** 4) == 0
    assert sp.simplify(third[(((lam, -1),), ())] - 6 / (1 - lam) ** 4) == 0
    assert third[((), ((lam, 0),))] == -4  # softsign'' jumps from +2 to -2 at 0


def test_relu_derivatives_are_a_step_then_a_delta():
    first = _derivatives(sp.Max(0, lam), 1)
    assert first == [(1, ((lam, 1),), ())]
    second = _derivatives(sp.Max(0, lam), 2)
    assert second == [(1, (), ((lam, 0),))]


def test_delta_derivatives_are_lowered_by_parts():
    # the third and fourth derivatives of relu are δ' and δ''; E[g δ^(k)(λ)] = (-1)^k (g φ_q)^(k)(0)
    cov = sp.ImmutableMatrix([[q]])
    phi0 = 1 / sp.sqrt(2 * sp.pi * q)
    for order, g, expected in [(3, sp.sin(lam), -phi0), (4, sp.cos(lam), (-1 - 1 / q) * phi0)]:
        terms = [(c * g, steps, deltas) for c, steps, deltas in _derivatives(sp.Max(0, lam), order)]
        assert sp.simplify(expectation_of_terms(terms, [lam], cov) - expected) == 0


def test_node_gradient_equals_the_derivative_of_the_closed_form():
    # E[relu(λ) relu(ν)] has a closed form; its gradient in the covariance, by Price on one-sided
    # pieces, must be the derivative of that closed form
    cov = sp.ImmutableMatrix([[q, r], [r, 1]])
    integrand = sp.Max(0, lam) * sp.Max(0, nu) + sp.Max(0, lam) ** 2 * sp.Heaviside(-nu)
    node = GaussianExpectation(sp.Lambda((lam, nu), integrand), cov)
    closed = gaussian_expectation(integrand, [lam, nu], cov)
    point = {q: sp.Rational(3, 2), r: sp.Rational(2, 5)}
    for symbol, gradient in zip((q, r), node_gradient(node, (q, r))):
        assert abs(sp.N((gradient - sp.diff(closed, symbol)).subs(point), 30)) < 1e-25


def test_refusals():
    with pytest.raises(TypeError, match="node must be a GaussianExpectation"):
        node_gradient(sp.Symbol("x"), [q])
    with pytest.raises(TypeError, match="system must be an ODESystem"):
        jacobian_expressions("m' = u")
    with pytest.raises(NotIntegrableError, match="power of a Dirac delta"):
        one_sided_terms(sp.DiracDelta(lam) ** 2, [lam])
