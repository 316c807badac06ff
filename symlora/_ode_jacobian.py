r"""The Jacobian ``∂ rhs / ∂ state`` of an ODE system whose right-hand side holds quadrature nodes.

Closed-form systems are differentiated symbolically.  Otherwise each
:class:`~symlora.GaussianExpectation` node ``E[f(X)]``, ``X ~ N(0, Σ(state))``,
is differentiated through its covariance by Price's theorem,

.. math::

    \frac{∂}{∂θ} E[f] = E[∂_θ f] + \sum_{i \le j} \frac{∂Σ_{ij}}{∂θ}\, c_{ij}\, E[∂_i ∂_j f],
    \qquad c_{ii} = \tfrac12,\ c_{i<j} = 1,

with the derivatives of ``f`` taken as distributions on one smooth piece per
side of each kink (:mod:`symlora._kinked_derivatives`), so that softsign's
``|λ|`` gives ``σ''' = 6(1+|λ|)^{-4} - 4δ(λ)`` rather than products of steps and
deltas.  The three second-derivative expectations of a two-dimensional node
do not depend on the state: they are derived once per node and shared by
every entry of the Jacobian.  What remains without closed form stays a
quadrature node with its own error bound.

Why Price and not a first-order (Stein) form: ``∂E/∂Σ = ½ E[∇f Xᵀ] Σ^{-1}``
moves only one derivative onto ``f``, but it divides by the conditional
variance ``P = Q - R² = u²(1 - m²)``, which vanishes at the fixed point
``u = 0`` where linearisations and implicit integrators start; the second
derivative along that one direction is what keeps the Jacobian finite there.
"""

from __future__ import annotations

import functools

import sympy as sp

from ._kinked_derivatives import differentiate_terms, expectation_of_terms, one_sided_terms
from ._node import GaussianExpectation
from ._ode_system import ODESystem

__all__ = ["jacobian_expressions", "node_gradient"]


@functools.lru_cache(maxsize=1024)
def _second_moment_of_derivatives(node, i, j):
    """``E[∂_i ∂_j f]`` of ``node`` (a SymPy expression, exact where the engine can)."""
    variables = node.variables
    terms = one_sided_terms(node.integrand.expr, variables)
    once = differentiate_terms(terms, variables[i], variables)
    twice = differentiate_terms(once, variables[j], variables)
    return expectation_of_terms(twice, variables, node.covariance)


def node_gradient(node: GaussianExpectation, symbols) -> tuple:
    """``(∂E/∂s for s in symbols)`` of one quadrature node, by Price's theorem on its kinked integrand.

    Examples
    --------
    >>> lam = sp.Symbol("lambda", real=True)
    >>> q = sp.Symbol("q", positive=True)
    >>> node = GaussianExpectation(sp.Lambda(lam, sp.Abs(lam)), sp.ImmutableMatrix([[q]]))
    >>> node_gradient(node, [q])  # ½ E[2 δ(λ)] = d/dq sqrt(2q/π)
    (sqrt(2)/(2*sqrt(pi)*sqrt(q)),)
    """
    if not isinstance(node, GaussianExpectation):
        raise TypeError(f"node must be a GaussianExpectation, got {type(node).__name__}")
    variables, cov, f = node.variables, node.covariance, node.integrand.expr
    k = len(variables)
    out = []
    for s in symbols:
        total = sp.S.Zero
        if f.has(s):
            terms = differentiate_terms(one_sided_terms(f, variables), s, variables)
            total += expectation_of_terms(terms, variables, cov)
        for i in range(k):
            for j in range(i, k):
                dcov = sp.diff(cov[i, j], s)
                if dcov != 0:
                    weight = sp.Rational(1, 2) if i == j else sp.S.One
                    total += weight * dcov * _second_moment_of_derivatives(node, i, j)
        out.append(total)
    return tuple(out)


def jacobian_expressions(system: ODESystem) -> sp.Matrix:
    """The Jacobian of ``system``, free of Dirac deltas (cached on the system).

    The right-hand side is written in placeholder symbols for its quadrature
    nodes, differentiated symbolically, and each node's gradient
    (:func:`node_gradient`) is filled in by the chain rule.  Closed-form
    systems get the plain symbolic Jacobian.

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> system = LoRAModel("softsign", "relu").ode_system()
    >>> jacobian_expressions(system).shape
    (2, 2)
    """
    if not isinstance(system, ODESystem):
        raise TypeError(f"system must be an ODESystem, got {type(system).__name__}")
    key = "jacobian_conditioned"
    if key not in system._cache:
        if system.exact:
            system._cache[key] = system.jacobian()
        else:
            system._cache[key] = _chain_rule(system.inlined_rhs, system.states)
    return system._cache[key]


def _chain_rule(rhs, states) -> sp.Matrix:
    nodes = sorted(set().union(*(r.atoms(GaussianExpectation) for r in rhs)), key=sp.default_sort_key)
    placeholders = {node: sp.Dummy(f"E{k}") for k, node in enumerate(nodes)}
    back = {p: node for node, p in placeholders.items()}
    plain = [r.xreplace(placeholders) for r in rhs]
    gradients = {placeholders[node]: node_gradient(node, states) for node in nodes}
    jac = sp.zeros(len(rhs), len(states))
    for i, r in enumerate(plain):
        for j, s in enumerate(states):
            entry = sp.diff(r, s)
            for p, gradient in gradients.items():
                if r.has(p) and gradient[j] != 0:
                    entry += sp.diff(r, p) * gradient[j]
            jac[i, j] = entry.xreplace(back)
    return jac
