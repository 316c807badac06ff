r"""Critical ``μ`` and the leading escape-time law (docs/theory.md §4-5).

Where ``a(μ) ≠ 0`` the escape from ``m0 ~ d^{-1/2}`` is driven by the linear
instability of :mod:`symlora._linearization`: ``t_esc ≈ (τ/(2η)) log d``.  At
a zero of ``a`` (a critical ``μ``, located by :mod:`symlora._roots`) the line
``u = 0`` is invariant for the ``d → ∞`` ODE and the escape is driven by the
finite-``d`` fluctuations; :func:`escape_law` says which law holds and how it
was obtained (exact, asymptotic or heuristic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import _symbols as S
from ._expectation import is_exact
from ._linearization import _high_precision, fastest_unstable_rate, tau_from

__all__ = ["EscapeLaw", "critical_mu", "escape_law"]


def critical_mu(model, lo, hi, mu_perp=0):
    """Zeros of ``a(μ)`` in ``[lo, hi]``, exact where SymPy can isolate them.

    Polynomial ``a`` with rational or algebraic coefficients: exact real
    roots.  Polynomial ``a`` with other exact coefficients (``sqrt(2/π)``):
    closed-form roots.  Otherwise (closed forms in ``asin``/``sqrt``,
    quadrature nodes): sign changes of ``a`` evaluated with mpmath, refined
    to certified brackets of half-width ``1e-13``; tangential zeros are
    reported uncertified.  See :mod:`symlora._roots`.

    General pre-training: zeros of ``a(μ, μ⊥)`` at the given ``mu_perp``
    (see :func:`symlora._general_pretraining.critical_mu_general`).

    Returns
    -------
    CriticalMuRoots
        A tuple of SymPy numbers in increasing order; ``.details`` gives a
        :class:`~symlora._roots.CriticalMu` per zero (exact or numeric, error
        bound, bracket, certification).
    """
    from ._roots import find_zeros

    if model.pretraining == "general":
        from ._general_pretraining import critical_mu_general

        return critical_mu_general(model, lo, hi, mu_perp)
    if mu_perp != 0:
        raise ValueError("mu_perp is only used with pretraining='general'")
    a = model.linearization().a
    grid_values = None
    if not (is_exact(a) and a.is_polynomial(S.mu)):
        grid = np.linspace(float(lo), float(hi), 401)
        try:
            # generated code locates candidate brackets fast; mpmath then certifies each one
            grid_values = np.asarray(model.coefficients(np.clip(grid, 0, None))["a"], dtype=float)
        except (ValueError, TypeError):
            grid_values = None
    return find_zeros(a, S.mu, lo, hi, grid_values)


_LAW_KINDS = ("log", "power", "none", "not derived")


@dataclass(frozen=True)
class EscapeLaw:
    """The leading law of the escape time from ``m0 ~ d^{-1/2}``.

    Attributes
    ----------
    kind : {"log", "power", "none", "not derived"}
        ``"log"``: ``t_esc ≈ prefactor · log d``; ``"power"``:
        ``t_esc ≈ prefactor · d^{exponent}``; ``"none"``: no escape (a
        reason is given, e.g. no drift and no noise at the fixed point);
        ``"not derived"``: the law is beyond what symlora derives for this
        case (never to be read as "no escape").
    prefactor : sympy.Expr or None
    exponent : sympy.Rational or None
        Power of ``d`` (``kind == "power"``).
    order : int or None
        Order ``p`` of the reduced dynamics ``dm/dt ≈ c m^p`` (power laws).
    derivation : str
        How the law follows, in words and formulas.
    log_factor : bool
        ``t_esc ≈ prefactor · d^exponent · log d`` (fluctuation-driven laws).
    statement : str
        One-line statement for tables (``str(law)``) when the kind alone
        would mislead, e.g. a heuristic "no escape".
    """

    kind: str
    prefactor: object
    exponent: object
    order: object
    derivation: str
    log_factor: bool = False
    statement: str = ""

    def __post_init__(self):
        # a public constructor: text in prefactor/exponent would be sympified
        # (evaluated) when the law is printed
        if self.kind not in _LAW_KINDS:
            raise ValueError(f"kind must be one of {_LAW_KINDS}, got {self.kind!r}"[:200])
        for name in ("prefactor", "exponent", "order"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (sp.Basic, int, float)):
                raise TypeError(f"{name} must be a SymPy expression, a number or None, not {type(value).__name__}")
        if not isinstance(self.derivation, str):
            raise TypeError(f"derivation must be a string, not {type(self.derivation).__name__}")

    def summary(self) -> str:
        """One line: the law, its prefactor exact when short and always rounded to 6 digits."""
        if self.statement:
            return self.statement
        if self.kind == "none":
            return "no escape"
        if self.kind == "not derived":
            return "not derived (see the derivation)"
        value = f"{float(sp.N(self.prefactor)):.6g}"
        shape = " · log d" if self.kind == "log" else f" · d^({self.exponent})" + (" · log d" if self.log_factor else "")
        exact = sp.sstr(self.prefactor)
        # closed forms of erf pairs run to hundreds of characters: those are shown by value only
        if self.prefactor.atoms(sp.Float) or len(exact) > 40 or exact == value:
            return f"t_esc ≈ {value}{shape}"
        exact = f"({exact})" if self.prefactor.is_Add else exact
        return f"t_esc ≈ {exact}{shape} ≈ {value}{shape}"

    __str__ = summary

    def __repr__(self):
        return f"EscapeLaw({self.kind!r}: {self.summary()})"

    def _repr_latex_(self):
        if self.kind in ("none", "not derived"):
            return rf"$\text{{{self.summary()}}}$"
        if self.prefactor.atoms(sp.Float) or len(sp.sstr(self.prefactor)) > 40:
            pre = f"{float(sp.N(self.prefactor)):.6g}"
        else:
            pre = sp.latex(self.prefactor)
            pre = rf"\left({pre}\right)" if self.prefactor.is_Add else pre
        if self.kind == "log":
            return rf"$t_{{\mathrm{{esc}}}} \approx {pre}\,\log d$"
        log = r"\,\log d" if self.log_factor else ""
        return rf"$t_{{\mathrm{{esc}}}} \approx {pre}\, d^{{{sp.latex(self.exponent)}}}{log}$"


def escape_law(model, mu, mu_perp=0) -> EscapeLaw:
    r"""Leading escape-time law at ``mu`` (and ``mu_perp`` for general pre-training).

    Notes
    -----
    If ``a(μ) ≠ 0`` the escape is linear: ``t_esc ≈ (τ/(2η)) log d``.  At
    rank ``r`` the directions start nearly orthogonal (``q_ab ~ d^{-1/2}``), so
    every mode has the rank-1 ``τ`` (the value at ``q = 0``) and the slope in
    ``log d`` does not depend on ``r``; the escape statistic ``max_a |m_a|``
    starts at the largest of ``r`` overlaps of order ``d^{-1/2}``, which
    lowers only the ``O(1)`` constant (by ``(τ/η) E[log max_a |Z_a| - log |Z_1|]``
    for standard normal ``Z_a`` in the linear theory; the non-linear coupling
    of the directions is not part of this law).  The derivation also states
    the fastest ``τ`` over every reachable Gram matrix
    (``Linearization.tau_fastest``).  At ``a = 0`` the rank-``r`` law
    (``r >= 2``) is not derived.

    If ``a(μ) = 0``: at ``u = 0`` Stein's lemma gives exactly
    ``E[G ζ] = m (μ A_λ + A_ν) = -a m``, so ``du/dt = η a m = 0`` on the line
    ``u = 0``, which is therefore invariant; the centre manifold is ``u = 0``
    and the reduced dynamics of ``m`` vanishes at every order of the series.
    The d → ∞ ODE started from ``u0 = 0`` never escapes.  The law reported
    is then the finite-``d``, fluctuation-driven estimate of
    :func:`_fluctuation_law` (``d log d``), or "none" when nothing drives
    the escape (e.g. the pre-trained student already fits the teacher).

    General pre-training: see
    :func:`symlora._general_pretraining.escape_law_general`.
    """
    if model.pretraining == "general":
        from ._general_pretraining import escape_law_general

        return escape_law_general(model, mu, mu_perp)
    if mu_perp != 0:
        raise ValueError("mu_perp is only used with pretraining='general'")
    lin = model.linearization()
    mu = sp.sympify(mu)
    if isinstance(mu, sp.Float):
        # a short decimal (0.5 from Python) is meant exactly; a 20-digit root keeps its precision
        rational = sp.nsimplify(mu, rational=True)
        if rational.q <= 10**6 and sp.Float(rational, precision=mu._prec) == mu:
            mu = rational
    a_exact_expr = lin.a.subs(S.mu, mu)
    if not mu.is_Rational and not mu.is_Float:
        # algebraic or transcendental roots (CRootOf, sqrt(2/pi)): 50 digits keep the reduction fast
        mu = sp.Float(sp.N(mu, 50), 50)
    a = lin.a.subs(S.mu, mu)
    b = lin.b.subs(S.mu, mu)
    eta = model.lr
    a_value, a_error = _high_precision(a, 30)
    b_value, _ = _high_precision(b, 30)
    # critical when a = 0 exactly, or within 1e-12 (or the quadrature error) of 0: there the
    # linear law's tau ~ 1/a^2 exceeds 1e24 and is irrelevant at any practical d
    tolerance = max(a_error, 1e-12)
    a_zero = (is_exact(a_exact_expr) and a_exact_expr.count_ops() < 200 and sp.simplify(a_exact_expr) == 0) or abs(
        a_value
    ) <= tolerance
    if not a_zero:
        tau = lin.tau.subs(S.mu, mu)
        symbolic = is_exact(tau) and not tau.has(sp.Float) and sp.count_ops(tau) < 200
        tau = sp.simplify(tau) if symbolic else sp.Float(tau_from(a_value, b_value), 15)
        prefactor = sp.simplify(tau / (2 * eta)) if symbolic else tau / (2 * eta)
        return EscapeLaw(
            "log",
            prefactor,
            None,
            1,
            f"a({sp.N(mu, 12)}) = {a_value:.12g} ≠ 0: the linear instability λ+ = 1/τ grows m from m0 ~ d^(-1/2) "
            f"to O(1) in t ≈ (τ/η) log(1/m0) = (τ/(2η)) log d, with τ = {sp.N(tau, 12)}."
            + _rank_note(lin, model.rank, a_value, b_value),
        )
    if model.rank != 1:
        return EscapeLaw(
            "not derived", None, None, None,
            f"a({sp.N(mu, 15)}) ≈ 0 at rank {model.rank}: the centre-manifold and fluctuation laws are derived "
            "for rank 1 only.",
        )
    if not (is_exact(lin.a) and is_exact(lin.b) and model.exact):
        return EscapeLaw(
            "not derived", None, None, None,
            f"a({sp.N(mu, 15)}) ≈ 0 (|a| <= {tolerance:.1g}); the ODE of this pair has no closed form, so the "
            "centre-manifold expansion is not derived. At a = 0 the line u = 0 is invariant for the d → ∞ ODE "
            "(Stein: E[G ζ] = m (μ A_λ + A_ν) at u = 0), so the ODE started from u0 = 0 does not escape.",
        )
    if b_value <= 0:
        return EscapeLaw(
            "not derived", None, None, None,
            f"a({sp.N(mu, 15)}) = 0 and b = {b_value:.6g} <= 0: u is not slaved; the centre-manifold law is not derived here.",
        )
    # No centre-manifold expansion is needed: at u = 0 the drift of u is exactly
    # -η a m (Stein), so with a = 0 the line u = 0 is invariant, the centre
    # manifold is u = h(m) = 0 and the reduced dynamics of m vanishes at every
    # order.  What drives the escape is beyond the ODE (finite-d fluctuations).
    return _fluctuation_law(model, mu, b, eta)


def _rank_note(lin, rank, a_value, b_value) -> str:
    """Rank >= 2: where the rate at the random start q = 0 stands against the fastest reachable one."""
    if lin.tau_fastest is None:
        return ""
    fastest = float(sp.N(1 / fastest_unstable_rate(sp.Float(a_value, 30), sp.Float(b_value, 30),
                                                    [0, rank])))
    return (f" Rank {rank}: τ is the rate of every mode at q_ab = 0 (directions start orthogonal to "
            f"O(d^(-1/2))), so the slope in log d is the rank-1 one; over every reachable Gram matrix of the "
            f"directions the fastest mode has τ = {fastest:.12g} (linearly dependent directions), a Gram matrix "
            "random starts do not reach.")


def _fluctuation_law(model, mu, b, eta) -> EscapeLaw:
    r"""Escape at a critical ``μ`` driven by the finite-``d`` fluctuations of ``u``.

    With ``a = 0`` the ODE has the invariant line ``u = 0`` on which ``m`` is
    frozen (``E[G ζ] = m (μ A_λ + A_ν)`` exactly at ``u = 0``).  At finite
    ``d`` the SGD noise keeps ``u`` in an Ornstein–Uhlenbeck state with
    ``⟨u⟩ = 0`` and ``⟨u²⟩ = η V / (2 b B d)``, ``V = E[G²] + Δ E[σ'²]`` at the
    fixed point.  Writing ``F(Q, R) = μ A_λ + A_ν`` (``F = -a = 0`` at the
    fixed point), the drift of ``m`` averaged over ``u`` is
    ``-η ⟨u²⟩ (2μ ∂_Q F + ∂_R F + η V/(2B)) m =: η ⟨u²⟩ κ m``, so for ``κ > 0``
    ``m`` grows at the rate ``η² V κ / (2 b B d)`` and
    ``t_esc ≈ (b B / (η² V κ)) d log d``.  This is a heuristic beyond the
    ODE (it averages over stationary fluctuations and neglects their
    correlation with ``m``); it is reported as such.
    """
    exps = model.expectations()
    Q, R = S.Q, S.R
    at_fixed = {Q: mu**2, R: mu}
    preamble = (
        f"a({sp.N(mu, 12)}) = 0 and the reduced dynamics on the centre manifold vanishes at every order: "
        "at u = 0 the drift of u is exactly -η a m (Stein: E[G ζ] = m (μ A_λ + A_ν)), so with a = 0 the "
        "line u = 0 is invariant and m is frozen; the d → ∞ ODE from u0 = 0 never escapes. "
    )
    V = exps["G2"] + model.noise * exps["S2"]
    F = mu * exps["A_lambda"] + exps["A_nu"]
    try:
        V0 = sp.N(V.subs(at_fixed), 30)
        kappa = -(2 * mu * sp.diff(F, Q) + sp.diff(F, R)).subs(at_fixed) - eta * V0 / (2 * model.batch)
        kappa = sp.N(kappa, 30)
        finite = V0.is_finite and kappa.is_finite and V0.is_real and kappa.is_real
    except (TypeError, ValueError, ZeroDivisionError):
        finite = False
    if not finite or not is_exact(V):
        return EscapeLaw("not derived", None, None, None,
                         preamble + "The finite-d fluctuation law is not derived for this pair.")
    if abs(V0) < 1e-25:
        return EscapeLaw(
            "none", None, None, None,
            preamble + "At the fixed point G = 0 (the pre-trained student fits the teacher): there is no gradient "
            "noise either, so there is no escape.",
            statement="no escape (G = 0 at the fixed point: no drift and no noise)",
        )
    if kappa <= 0:
        return EscapeLaw(
            "none", None, None, None,
            preamble + f"Averaged over the O(d^(-1/2)) fluctuations of u the overlap decays (κ = {sp.N(kappa, 8)} <= 0): "
            "no escape predicted (a finite-d heuristic, not verified by simulation here).",
            statement=f"no escape (heuristic: fluctuation-averaged drift of m decays, κ = {sp.N(kappa, 4)})",
        )
    prefactor = sp.N(b * model.batch / (eta**2 * V0 * kappa), 15)
    return EscapeLaw(
        "power",
        prefactor,
        sp.S.One,
        None,
        preamble + "At finite d the SGD noise keeps u in an Ornstein–Uhlenbeck state with <u²> = η V/(2 b B d), "
        f"V = {sp.N(V0, 10)}; averaged over it, dm/dt = η <u²> κ m with κ = -(2μ ∂_Q F + ∂_R F) - η V/(2B) = "
        f"{sp.N(kappa, 10)} > 0 (F = μ A_λ + A_ν). From m0 ~ d^(-1/2): t_esc ≈ (b B/(η² V κ)) d log d "
        "(a finite-d heuristic beyond the ODE, not a consequence of it).",
        log_factor=True,
    )
