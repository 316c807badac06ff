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

A :class:`~symlora.LoRAModel` system keeps its expectations unevaluated
(:class:`~symlora._ode_system.ExpectationForm`); each is differentiated in one
piece, before the engine splits it into closed forms and a quadrature node
whose derivatives are singular at ``u = 0`` one by one (docs/theory.md §3.5).
Other systems have each node of the right-hand side differentiated.

Why Price and not a first-order (Stein) form: ``∂E/∂Σ = ½ E[∇f Xᵀ] Σ^{-1}``
moves only one derivative onto ``f``, but it divides by the conditional
variance ``P = Q - R² = u²(1 - m²)``, which vanishes at the fixed point
``u = 0`` where linearisations and implicit integrators start; the second
derivative along that one direction is what keeps the Jacobian finite there.
"""

from __future__ import annotations

import functools

import sympy as sp

from . import _symbols as S
from ._expectation import gaussian_expectation
from ._kinked_derivatives import differentiate_terms, expectation_of_terms, merge_nodes, one_sided_terms
from ._node import GaussianExpectation
from ._ode_derivation import stable_form
from ._ode_system import ExpectationForm, ODESystem

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

    Closed-form systems get the plain symbolic Jacobian.  A system with
    quadrature nodes and an :class:`~symlora._ode_system.ExpectationForm`
    (every :class:`~symlora.LoRAModel` system) is differentiated through its
    unevaluated expectations (finite where the covariance degenerates, at
    ``u = 0`` and ``|m| = 1``).  Otherwise the right-hand side is written in
    placeholder symbols for its quadrature nodes, differentiated
    symbolically, and each node's gradient (:func:`node_gradient`) is filled
    in by the chain rule.

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
        elif system.expectation_form is not None:
            system._cache[key] = _through_expectations(system.expectation_form, system.states)
        else:
            system._cache[key] = _chain_rule(system.inlined_rhs, system.states)
    return system._cache[key]


def _through_expectations(form: ExpectationForm, states) -> sp.Matrix:
    r"""The Jacobian of ``form.structure``, each expectation differentiated in one piece.

    ``∂E[F]/∂s = ½ E[∂_λ² F] ∂Q/∂s + E[∂_λ ∂_ν F] ∂R/∂s`` on the whole
    integrand ``F`` (Price): the engine's split of ``E[F]`` into closed forms
    and a quadrature node would give each piece a term of order
    ``P^{-1/2}`` (``E[δ(λ) δ(ν)]``, the slope of an orthant probability) that
    cancel only in the sum, so that at ``P = 0`` (``u = 0``) the sum reads
    ``∞ - ∞``; whole, a ``C¹`` student's jump terms cancel symbolically
    (:mod:`symlora._kinked_derivatives`) before anything is evaluated.
    Values and gradients are brought to the numerically stable form in ``P``
    and ``R`` (:func:`~symlora._ode_derivation.stable_form`) before the
    states are substituted.
    """
    values_in_states = dict(form.overlaps)
    q_in_states = values_in_states[S.P] + values_in_states[S.R] ** 2
    slopes_of_overlaps = [(sp.diff(q_in_states, s), sp.diff(values_in_states[S.R], s)) for s in states]

    def in_p_and_r(expr):
        return _vanishing_where_degenerate(stable_form(expr))

    values, slopes = {}, {}
    for symbol, expectation in form.expectations:
        nodes = sorted(expectation.atoms(GaussianExpectation), key=sp.default_sort_key)
        evaluated = {node: gaussian_expectation(node.integrand.expr, node.variables, node.covariance)
                     for node in nodes}
        values[symbol] = in_p_and_r(expectation.xreplace(evaluated)).xreplace(values_in_states)
        gradient_q, gradient_r = sp.S.Zero, sp.S.Zero
        for node in nodes:
            coefficient = expectation.coeff(node)
            by_q, by_r = node_gradient(node, (S.Q, S.R))
            gradient_q += coefficient * by_q
            gradient_r += coefficient * by_r
        # (regular, coefficient of P^{-1/2}) of each, in P and R
        by_q, by_r = _split_singular(in_p_and_r(merge_nodes(gradient_q))), _split_singular(in_p_and_r(merge_nodes(gradient_r)))
        slopes[symbol] = [tuple(q * dq + r * dr for q, r in zip(by_q, by_r)) for dq, dr in slopes_of_overlaps]
    jac = sp.zeros(len(states), len(states))
    for i, rhs in enumerate(form.structure):
        for j, s in enumerate(states):
            entry, singular = sp.diff(rhs, s), sp.S.Zero
            for symbol, slope in slopes.items():
                if rhs.has(symbol):
                    weight = sp.diff(rhs, symbol)
                    entry += weight * slope[j][0].xreplace(values_in_states)
                    singular += weight * slope[j][1]
            jac[i, j] = (entry + _over_root_of_p(singular.xreplace(values_in_states), values_in_states[S.P])
                         ).xreplace(values)
    return jac


def _split_singular(expr):
    """``(a, b)`` with ``expr = a + b P^{-1/2}``: ``b`` collects the terms with a factor ``P^{-1/2}``."""
    regular, singular = [], []
    root = sp.Pow(S.P, sp.Rational(-1, 2))
    for term in sp.Add.make_args(expr):
        if root in sp.Mul.make_args(term):
            singular.append(term / root)
        else:
            regular.append(term)
    return sp.Add(*regular), sp.Add(*singular)


def _over_root_of_p(numerator, p):
    r"""``numerator / sqrt(p)``, as ``(numerator / p) sqrt(p)`` where ``p`` divides ``numerator`` exactly.

    Two kinks that meet where the fields collapse (``δ(λ) δ(ν)``, both
    activations non-``C¹`` at 0) give each of ``∂A_λ`` and ``∂A_ν`` a term
    ``∝ P^{-1/2}``; in the drift their coefficients combine into a multiple
    of ``P = u²(1 - m²)`` (for the aligned case ``μ² u² (1 - m²)² / Q²`` and
    the like), so the sum is ``O(|u|)`` and continuous, but written as a
    quotient it reads ``0/0`` at ``u = 0``.  Cancelling ``p`` symbolically
    leaves ``sqrt(p)``, finite everywhere.  Where ``p`` does not divide the
    numerator the quotient stays (a true singularity).
    """
    if numerator == 0:
        return sp.S.Zero
    ratio = sp.cancel(sp.together(numerator / p))
    if sp.gcd(sp.denom(ratio), sp.expand(p)).free_symbols:
        return numerator / sp.sqrt(p)
    return ratio * sp.sqrt(p)


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


def _vanishing_where_degenerate(expr):
    r"""``exp(-c/P) P^{-k/2} -> 0`` at ``P = 0`` (``c > 0`` there), written so that ``P = 0`` is never divided by.

    Two deltas on kinks that do not meet on the line the fields collapse to
    at ``P = 0`` (``δ(λ - b) δ(ν)``, ``λ = Rν`` there) give the density of a
    variance-``P`` Gaussian away from its mean, ``∝ exp(-c/P) P^{-1/2}``: its
    limit is exactly 0, but ``P = 0`` evaluates to ``0 · ∞``.  The factor
    becomes ``Piecewise((0, P = 0), (factor(P'), True))`` with
    ``P' = P + [P = 0]``: generated code evaluates every branch, and the
    unused one then never divides by zero; the same numbers for ``P > 0``,
    the limit at ``P = 0``.

    Examples
    --------
    >>> f = _vanishing_where_degenerate(sp.exp(-1 / (8 * S.P)) / sp.sqrt(S.P))
    >>> f.subs(S.P, 0), f.subs(S.P, 2) == sp.exp(-sp.Rational(1, 16)) / sp.sqrt(2)
    (0, True)
    """
    P = S.P

    def is_decaying(factor):
        # exp(-c/P) with c non-negative and not identically zero at P = 0 (c ∝ R² vanishes only where
        # Q = P + R² = 0 too: the student's field is then identically zero)
        if not (isinstance(factor, sp.exp) and factor.args[0].has(P)):
            return False
        rate = sp.cancel(sp.cancel(-factor.args[0] * P).subs(P, 0))
        return bool(rate.is_nonnegative) and rate.is_zero is not True and not rate.has(P)

    def rewrite(term):
        decaying = [f for f in term.args if is_decaying(f)]
        if not decaying:
            return term
        singular = [f for f in term.args if f.is_Pow and f.base == P and f.exp.is_negative]
        factor = sp.Mul(*decaying, *singular)
        rest = sp.Mul(*[f for f in term.args if f not in decaying and f not in singular])
        degenerate = sp.Eq(P, 0)
        # P + [P = 0]: a sum, so that SymPy does not distribute the branches into the factor
        safe = factor.xreplace({P: P + sp.Piecewise((sp.S.One, degenerate), (sp.S.Zero, True))})
        return rest * sp.Piecewise((sp.S.Zero, degenerate), (safe, True))

    if not expr.has(sp.exp):
        return expr
    return expr.replace(lambda e: e.is_Mul and any(is_decaying(f) for f in e.args), rewrite)
