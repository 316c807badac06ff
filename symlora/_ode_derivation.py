r"""The ODE of the summary statistics: expectations, assembly, stable form.

docs/theory.md §3.  Every expectation the ODE needs is a two-dimensional
Gaussian expectation over ``(λ, ν)`` with covariance ``[[Q, R], [R, 1]]``;
the other Gaussian fields (``ζ = v·x``, ``w⊥·x``) enter only linearly and
are removed by Stein's lemma,
``E[ζ F(λ, ν)] = Cov(ζ, λ) E[∂_λ F] + Cov(ζ, ν) E[∂_ν F]``.  With
``G = (σ(λ) - σ*(ν)) σ'(λ)`` four expectations carry the whole system:

.. math::

    A_λ = E[∂_λ G],\quad A_ν = E[∂_ν G],\quad
    E[G^2],\quad E[σ'(λ)^2].

The work is in three steps, one function each:

* :func:`drift_expectations` asks the expectation engine for the four
  expectations (functions of ``Q`` and ``R``; the only step that depends on
  the activations);
* :func:`ode_structure` writes the right-hand sides in the symbols
  ``A_lambda``, ``A_nu`` and ``G2`` (the Stein-reduced drift and the
  renormalisation drag; depends only on the pre-training kind, the rank,
  ``η`` and ``B``);
* :func:`assemble_ode` fills the expectations in, either in ``Q, R`` for
  display or in the statistics through a numerically stable form.
"""

from __future__ import annotations

import sympy as sp

from . import _symbols as S
from ._expectation import gaussian_expectation
from ._node import GaussianExpectation
from ._ode_system import ExpectationForm
from ._statistics import STAR, geometry, increments, orthogonal_norm2, overlaps

__all__ = ["EXPECTATION_SYMBOLS", "FIELD_COVARIANCE", "drift_integrands", "drift_expectations", "expectation_form", "ode_structure", "assemble_ode", "stable_form"]

#: The symbols standing for ``A_λ``, ``A_ν`` and ``E[G²] + Δ E[σ'(λ)²]`` in :func:`ode_structure`.
EXPECTATION_SYMBOLS = (sp.Symbol("A_lambda"), sp.Symbol("A_nu"), sp.Symbol("G2"))


def drift_integrands(student, teacher) -> dict:
    """The integrands of the four expectations of the ODE, functions of ``(λ, ν)``.

    Returns
    -------
    dict
        ``{"A_lambda": ∂_λ G, "A_nu": ∂_ν G, "G2": G², "S2": σ'(λ)²}``.
    """
    lam, nu = S.lam, S.nu
    G = (student(lam) - teacher(nu)) * student.derivative_at(lam)
    return {
        "A_lambda": student.derivative_at(lam) ** 2 + (student(lam) - teacher(nu)) * student.derivative_at(lam, 2),
        "A_nu": -teacher.derivative_at(nu) * student.derivative_at(lam),
        "G2": G**2,
        "S2": student.derivative_at(lam) ** 2,
    }


#: The covariance of ``(λ, ν)`` in the symbols ``Q``, ``R``.
FIELD_COVARIANCE = sp.ImmutableMatrix([[S.Q, S.R], [S.R, 1]])


def drift_expectations(student, teacher) -> dict:
    """The four expectations of the ODE as functions of ``Q`` and ``R``.

    Returns
    -------
    dict
        ``{"A_lambda": E[∂_λ G], "A_nu": E[∂_ν G], "G2": E[G²],
        "S2": E[σ'(λ)²]}``, exact closed forms or containing quadrature nodes.
    """
    return {name: gaussian_expectation(integrand, [S.lam, S.nu], FIELD_COVARIANCE)
            for name, integrand in drift_integrands(student, teacher).items()}


def expectation_form(student, teacher, structure: dict, noise, pretraining: str, rank: int) -> ExpectationForm:
    """:func:`ode_structure` with its expectations unevaluated, for the Jacobian (see :class:`ExpectationForm`)."""
    integrands = drift_integrands(student, teacher)

    def unevaluated(name):
        return GaussianExpectation(sp.Lambda((S.lam, S.nu), integrands[name]), FIELD_COVARIANCE)

    Al, An, G2 = EXPECTATION_SYMBOLS
    return ExpectationForm(
        structure=tuple(structure[state] for state in geometry(pretraining, rank).states),
        expectations=((Al, unevaluated("A_lambda")), (An, unevaluated("A_nu")),
                      (G2, unevaluated("G2") + noise * unevaluated("S2"))),
        overlaps=((S.P, orthogonal_norm2(pretraining, rank)), (S.R, overlaps(pretraining, rank)[S.R])),
    )


def ode_structure(pretraining: str, rank: int, lr, batch) -> dict:
    r"""Right-hand sides ``{state: d state/dt}`` in the symbols ``A_lambda``, ``A_nu``, ``G2``.

    One formula for every pre-training kind and rank: the mean of the
    increments of :func:`symlora._statistics.increments`,

    .. math::

        \dot X = -η \sum_k c_k \left((w·k) A_λ + (w^*·k) A_ν\right) - \frac{η^2}{B} K\, G_2,

    where ``L = Σ_k c_k k`` and Stein's lemma gives
    ``E[G k·x] = Cov(k·x, λ) A_λ + Cov(k·x, ν) A_ν``.  The coefficients of
    ``A_λ`` and ``A_ν`` are polynomials in the statistics, expanded (so that
    ``u_a m_a - m_a u_a`` cancels) and written with common factors pulled out.

    Notes
    -----
    Aligned, rank 1 (``C = Cov(λ, ζ) = μm + u``):

    .. math::

        \dot u = -η (C A_λ + m A_ν),\qquad
        \dot m = -η u (1 - m^2)(μ A_λ + A_ν) - \frac{η^2}{2B} u^2 m\, G_2 .

    Rank ``r``: ``C_a = w·v_a = μ m_a + μ⊥ s_a + u_a + Σ_{b≠a} u_b q_ab``,
    ``\dot u_a = -η (C_a A_λ + m_a A_ν)``;
    ``\dot m_a = -η u_a [w·(w^* - m_a v_a) A_λ + (1 - m_a^2) A_ν] - \frac{η^2}{2B} u_a^2 m_a G_2``
    (``s_a`` likewise with ``w⊥``); ``\dot q_{ab}`` is the sum of the two
    overlap rates plus ``(η^2/B) u_a u_b G_2`` from the product of the two steps.
    """
    Al, An, G2 = EXPECTATION_SYMBOLS
    geo = geometry(pretraining, rank)
    rhs = {}
    for state, (L, K) in increments(pretraining, rank).items():
        with_lambda = sp.factor_terms(sp.expand(sp.Add(*[c * geo.with_w(k) for k, c in L.items()])))
        with_nu = sp.factor_terms(sp.expand(sp.Add(*[c * geo.gram(STAR, k) for k, c in L.items()])))
        # renormalising v after a step of norm ~ d lr^2 (theory §3.2)
        rhs[state] = -lr * (with_lambda * Al + with_nu * An) - lr**2 / batch * K * G2
    return rhs


def assemble_ode(structure: dict, expectations: dict, noise, pretraining: str, rank: int,
                 in_terms_of_QR: bool = False) -> dict:
    """Fill the expectations into :func:`ode_structure`.

    With ``in_terms_of_QR`` the result keeps ``Q`` and ``R`` as symbols (the
    compact form for display); otherwise it is a function of the statistics,
    written through :func:`stable_form` so that generated code never loses
    the domain of ``sqrt`` or ``asin`` to rounding.
    """
    Al, An, G2 = EXPECTATION_SYMBOLS
    forms = expectations if in_terms_of_QR else {name: stable_form(value) for name, value in expectations.items()}
    fill = {Al: forms["A_lambda"], An: forms["A_nu"], G2: forms["G2"] + noise * forms["S2"]}
    rhs = {state: value.xreplace(fill) for state, value in structure.items()}
    if in_terms_of_QR:
        return rhs
    values = {S.P: orthogonal_norm2(pretraining, rank), S.R: overlaps(pretraining, rank)[S.R]}
    return {state: value.xreplace(values) for state, value in rhs.items()}


def stable_form(expr: sp.Expr) -> sp.Expr:
    """Rewrite an expression in ``Q, R`` in terms of ``P = Q - R²`` and ``R``.

    ``sqrt(Q - R²)`` becomes ``sqrt(P)`` (no cancellation when ``w`` is nearly
    parallel to ``w*``) and ``asin(x)`` becomes ``atan2(x, sqrt(1 - x²))``
    with ``1 - x²`` simplified symbolically, so that rounding can never push
    the argument of ``asin`` or ``sqrt`` out of its domain.

    Examples
    --------
    >>> import sympy as sp
    >>> from symlora import _symbols as S
    >>> stable_form(sp.sqrt(S.Q - S.R**2))
    sqrt(P)
    """
    expr = expr.subs(S.Q, S.P + S.R**2)

    def atan2_form(arg):
        complement = sp.factor(sp.cancel(sp.together(1 - arg**2)))
        return sp.atan2(arg, sp.sqrt(complement))

    return expr.replace(sp.asin, atan2_form)
