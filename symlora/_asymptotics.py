r"""Small-overlap asymptotics (docs/theory.md §4).

At the uninformative fixed point ``m = u = 0`` the linearised dynamics, in
units of ``η``, is ``d/dt (m, u) = [[0, a], [a, -b]] (m, u)`` with the
one-dimensional integrals

.. math::

    a(μ) = -E[e_0(ν) σ'(μν) ν],\qquad
    b(μ) = E[σ'(μν)^2] + E[e_0(ν) σ''(μν)],\qquad e_0(ν) = σ(μν) - σ^*(ν),

computed by the expectation engine directly (exact for polynomial, erf and
ReLU-type pairs; no Hermite series, so nothing is ill-conditioned at small
``μ`` and nothing is lost for activations of non-zero mean).  The unstable
rate is ``λ_+ = (-b + sqrt(b² + 4a²))/2`` and ``τ = 1/λ_+``.

General pre-training (``w0 = μ w* + μ⊥ w⊥``) and rank 2 use the same
integrals at the fixed-point covariance; see :func:`linearize`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy as sp

from . import _symbols as S
from ._expectation import evaluate_with_error, gaussian_expectation, is_exact

__all__ = [
    "Linearization",
    "EscapeLaw",
    "linearize",
    "critical_mu",
    "escape_law",
    "tau_limits",
    "ode_series",
    "unstable_rate",
    "fastest_unstable_rate",
]


def _simplify(expr):
    """Purposeful simplification: polynomials factored, closed forms lightly tidied."""
    if not is_exact(expr):
        return expr
    if expr.is_polynomial(S.mu, S.mu_perp):
        expanded = sp.expand(expr)
        # low degree reads best expanded (1/2 - mu/2), higher degree factored (roots visible)
        return expanded if sp.Poly(expanded, S.mu, S.mu_perp).total_degree() <= 1 else sp.factor(expanded)
    simplified = sp.simplify(expr) if sp.count_ops(expr) < 150 else expr
    return simplified if sp.count_ops(simplified) <= sp.count_ops(expr) else expr


@dataclass(frozen=True)
class Linearization:
    r"""The linearised dynamics at the fixed point.

    Attributes
    ----------
    a, b : sympy.Expr
        Coupling and damping of docs/theory.md §4, functions of ``mu``
        (and ``mu_perp``), in units of ``η``.  For general pre-training ``a``
        is the effective coupling ``sqrt(α² + β²)`` of the ``m`` and ``s``
        directions (see Notes of :func:`linearize`).
    tau : sympy.Expr
        ``τ = (b + sqrt(b² + 4a²)) / (2a²)``: characteristic time in units of ``1/η``.
    lambda_plus, lambda_minus : sympy.Expr
        Eigenvalues ``(-b ± sqrt(b² + 4a²))/2`` (units of ``η``).
    jacobian : sympy.Matrix
        Jacobian of the ODE at the fixed point, in the order of
        ``model.states`` (includes the factor ``η``).
    fixed_point : dict
        ``{state: value}``.
    exact : bool
        False when ``a`` or ``b`` contain quadrature nodes.
    tau_q : sympy.Expr or None
        Rank ``r >= 2``: ``τ`` of the fastest mode as a function of the
        overlaps of the LoRA directions (rank 2: of ``q12``), see
        :func:`fastest_unstable_rate`; ``tau`` is its value at ``q = 0``
        (the random start).
    tau_fastest : sympy.Expr or None
        Rank ``r >= 2``: the smallest ``τ`` over every reachable ``q``
        (``|q12| <= 1``; in general every Gram matrix of unit vectors).
    """

    a: sp.Expr
    b: sp.Expr
    tau: sp.Expr
    lambda_plus: sp.Expr
    lambda_minus: sp.Expr
    jacobian: sp.Matrix
    fixed_point: dict
    exact: bool
    model_name: str = ""
    tau_q: sp.Expr = None
    tau_fastest: sp.Expr = None
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __repr__(self):
        def short(expr, width=60):
            # closed forms of erf pairs or quadrature nodes run to hundreds of characters
            text = sp.sstr(expr)
            return text if len(text) <= width else f"{text[:width - 1]}… ({len(text)} characters)"

        return f"Linearization({self.model_name}: a = {short(self.a)}, b = {short(self.b)})"

    def to_latex(self) -> str:
        """``align*`` body with ``a``, ``b`` and ``τ``."""
        return (
            "\\begin{align*}\n"
            f"a(\\mu) &= {sp.latex(self.a)} \\\\\n"
            f"b(\\mu) &= {sp.latex(self.b)} \\\\\n"
            f"\\tau(\\mu) &= \\frac{{b + \\sqrt{{b^2 + 4a^2}}}}{{2a^2}}\n"
            "\\end{align*}"
        )

    def _repr_latex_(self):
        return f"$a(\\mu) = {sp.latex(self.a)},\\quad b(\\mu) = {sp.latex(self.b)}$"

    def values(self, mu, dps: int = 30) -> dict:
        """High-precision ``a``, ``b``, ``τ`` at one numeric ``mu`` (with error estimates).

        Exact expressions are evaluated with ``dps`` digits; quadrature nodes
        with adaptive mpmath quadrature split at the kink ``ν = 0``.

        Returns
        -------
        dict
            ``{"a", "b", "tau", "a_error", "b_error"}`` as floats.

        Raises
        ------
        TypeError
            ``mu`` is not a number (strings are refused), ``dps`` not an integer.
        ValueError
            ``mu`` outside ``[0, 1e6]``, ``dps`` outside ``[15, 1000]``, or
            values beyond double precision.
        """
        from ._validate import MU_MAX, as_exact_number

        mu = as_exact_number(mu, "mu", nonnegative=True)
        if mu > MU_MAX:
            raise ValueError(f"mu must be <= {MU_MAX:g}, got {sp.N(mu, 6)}")
        if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)):
            raise TypeError(f"dps must be an integer, got {dps!r}")
        if not 15 <= dps <= 1000:
            raise ValueError(f"dps must lie in [15, 1000], got {dps}")
        out = {}
        for name in ("a", "b"):
            expr = getattr(self, name)
            value, error = _high_precision(expr.subs(S.mu, mu), dps)
            out[name], out[name + "_error"] = value, error
        a, b = out["a"], out["b"]
        if not (np.isfinite(a) and np.isfinite(b)):
            raise ValueError(f"a({mu}) or b({mu}) is beyond double precision (a = {a}, b = {b})")
        out["tau"] = tau_from(a, b)
        return out


def unstable_rate(a, b, k=1):
    r"""Unstable eigenvalue ``(-b k + sqrt(b² k² + 4a²))/2`` of ``[[0, a], [a, -b k]]`` (units of ``η``).

    For rank ``r`` the linearisation at the fixed point is
    ``[[0, a I], [a I, -b K]]`` with ``K`` the Gram matrix ``(v_a·v_b)`` of the
    LoRA directions; it splits along the eigenvectors of ``K`` into 2×2
    blocks with ``k`` the eigenvalue of ``K``.  Works on SymPy expressions
    and on numbers.

    Examples
    --------
    >>> unstable_rate(sp.Rational(1, 2), 1)
    -1/2 + sqrt(2)/2
    """
    return (-b * k + sp.sqrt(b**2 * k**2 + 4 * a**2)) / 2


def fastest_unstable_rate(a, b, gram_eigenvalues):
    r"""Fastest unstable rate over the modes of a Gram matrix ``K`` with the given eigenvalues.

    ``λ+(k)`` decreases in ``k`` when ``b > 0`` and increases when ``b < 0``,
    so the fastest mode is that of the smallest (``b >= 0``) or the largest
    (``b < 0``) eigenvalue of ``K``; written as a ``Max`` over the
    eigenvalues, it holds for either sign of ``b``.  For ``r`` unit vectors
    the eigenvalues of ``K`` lie in ``[0, r]`` (``0``: linearly dependent
    directions, ``r``: all equal), so over every reachable ``K`` the fastest
    rate is ``max(λ+(0), λ+(r)) = max(|a|, λ+(r))``.

    Examples
    --------
    >>> q = sp.Symbol("q12", real=True)
    >>> fastest_unstable_rate(sp.Rational(1, 2), 1, [1 - q, 1 + q]).subs(q, 0)
    -1/2 + sqrt(2)/2
    """
    return sp.Max(*[unstable_rate(a, b, k) for k in gram_eigenvalues])


def tau_from(a, b):
    """``τ = (b + sqrt(b² + 4a²)) / (2a²)``, vectorised, stable for ``b < 0``.

    Written as ``2 / (sqrt(b² + 4a²) - b)`` when ``b < 0`` to avoid cancellation;
    ``inf`` where ``a = 0`` and ``b >= 0``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(all="ignore"):
        # scaled by max(|a|, |b|) so that b² + 4a² cannot overflow (|a| ~ 1e300)
        scale = np.maximum(np.abs(a), np.abs(b))
        scale = np.where(scale > 0, scale, 1.0)
        a_s, b_s = a / scale, b / scale
        disc = np.sqrt(b_s * b_s + 4 * a_s * a_s)
        direct = (b_s + disc) / (2 * a_s * a_s) / scale
        stable = 2.0 / (disc - b_s) / scale
        result = np.where(b > 0, direct, stable)
    result = np.where((a == 0) & (b >= 0), np.inf, result)
    return result if result.ndim else float(result)


def _high_precision(expr, dps):
    """Evaluate an expression that may contain 1-D quadrature nodes, precisely."""
    from ._node import GaussianExpectation, kink_locations

    nodes = sorted(expr.atoms(GaussianExpectation), key=sp.default_sort_key)
    if not nodes:
        if expr.free_symbols:
            raise ValueError("free symbols left: " + ", ".join(sorted(map(str, expr.free_symbols))))
        return float(sp.N(expr, dps)), 0.0
    replacements, total_error = {}, 0.0
    with mpmath.workdps(dps):
        for node in nodes:
            if len(node.variables) != 1:
                value, error = node.numeric()
            else:
                (var,) = node.variables
                variance = mpmath.mpf(sp.N(node.covariance[0, 0], dps + 5))
                func = sp.lambdify(var, node.integrand.expr, modules=["mpmath"])
                sd = mpmath.sqrt(variance)
                # split at every kink of the integrand (relu(x - b): not only at 0)
                cuts = {mpmath.mpf(0)}
                if sd > 0:
                    cuts |= {mpmath.mpf(sp.N(c, dps + 5)) / sd for _, c in kink_locations(node.integrand.expr, node.variables)}
                value, error = mpmath.quad(
                    lambda z: func(sd * z) * mpmath.npdf(z), [-mpmath.inf, *sorted(cuts), mpmath.inf], error=True
                )
                value, error = float(value), float(error)
            replacements[node] = sp.Float(value, dps)
            total_error += abs(error)
    return float(sp.N(expr.xreplace(replacements), dps)), total_error


def _direct_ab(student, teacher, mu_expr, extra=None):
    """a and b from the one-dimensional integrals (aligned case)."""
    nu = S.nu
    e0 = student(mu_expr * nu) - teacher(nu)
    d1 = student.derivative_at(mu_expr * nu)
    d2 = student.derivative_at(mu_expr * nu, 2)
    a = gaussian_expectation(-e0 * d1 * nu, [nu], [[1]])
    b = gaussian_expectation(d1**2 + e0 * d2, [nu], [[1]])
    return _simplify(a), _simplify(b)


def linearize(model) -> Linearization:
    r"""Linearise ``model``'s ODE at the uninformative fixed point.

    Notes
    -----
    *Aligned, rank 1*: states ``(m, u)``, Jacobian ``η [[0, a], [a, -b]]``.

    *General pre-training*: states ``(m, s, u)``, with ``λ0 = μν + μ⊥ξ``,
    ``A_λ = E[σ'(λ0)² + e0 σ''(λ0)]``, ``A_ν = -E[σ*'(ν) σ'(λ0)]``,
    ``α = -(μ A_λ + A_ν)``, ``β = -μ⊥ A_λ``: the Jacobian is
    ``η [[0, 0, α], [0, 0, β], [α, β, -A_λ]]``, whose unstable eigenvalue is
    that of the rank-1 formula with ``b = A_λ`` and ``a = sqrt(α² + β²)``.

    *Rank 2* (aligned): the fixed point is ``m_a = u_a = 0`` for any
    ``q12 = q``; the ``(m1, m2, u1, u2)`` block is ``η [[0, aI], [aI, -bK]]``
    with ``K = [[1, q], [q, 1]]`` (eigenvalues ``1 ± q``).  ``tau`` is the
    rank-1 value, the fastest mode at the random start ``q = 0``;
    ``tau_q`` is ``τ`` of the fastest mode at overlap ``q`` and
    ``tau_fastest`` its minimum over ``|q| <= 1`` (``1/|a|`` when
    ``b >= 0``): see :func:`fastest_unstable_rate`.  The Jacobian keeps
    ``q12`` symbolic.
    """
    eta = model.lr
    mu = S.mu
    if model.pretraining == "general":
        lam, nu = S.lam, S.nu
        sigma, teacher = model.student, model.teacher
        Q0 = mu**2 + S.mu_perp**2
        cov = [[Q0, mu], [mu, 1]]
        e0 = sigma(lam) - teacher(nu)
        A_lam = _simplify(
            gaussian_expectation(sigma.derivative_at(lam) ** 2 + e0 * sigma.derivative_at(lam, 2), [lam, nu], cov)
        )
        A_nu = _simplify(gaussian_expectation(-teacher.derivative_at(nu) * sigma.derivative_at(lam), [lam, nu], cov))
        alpha = _simplify(-(mu * A_lam + A_nu))
        beta = _simplify(-S.mu_perp * A_lam)
        b = A_lam
        a = sp.sqrt(alpha**2 + beta**2)
        jac = eta * sp.Matrix([[0, 0, alpha], [0, 0, beta], [alpha, beta, -b]])
        fixed = {S.m: 0, S.s: 0, S.u: 0}
    else:
        a, b = _direct_ab(model.student, model.teacher, mu)
        if model.rank == 2:
            q = S.q12
            jac = eta * sp.Matrix(
                [
                    [0, 0, a, 0, 0],
                    [0, 0, 0, a, 0],
                    [a, 0, -b, -b * q, 0],
                    [0, a, -b * q, -b, 0],
                    [0, 0, 0, 0, 0],
                ]
            )
            fixed = {S.m1: 0, S.m2: 0, S.u1: 0, S.u2: 0}
        else:
            jac = eta * sp.Matrix([[0, a], [a, -b]])
            fixed = {S.m: 0, S.u: 0}
    disc = sp.sqrt(b**2 + 4 * a**2)
    tau = (b + disc) / (2 * a**2)
    # simplify short closed forms only: for erf-type pairs simplify() spends a
    # second on tau and does not shorten it (a and b stay exact either way)
    if is_exact(a) and is_exact(b) and sp.count_ops(tau) <= 40:
        tau = _simplify(tau)
    tau_q = tau_fastest = None
    if model.rank >= 2:
        r = model.rank
        tau_q = 1 / fastest_unstable_rate(a, b, [1 - S.q12, 1 + S.q12])
        tau_fastest = 1 / fastest_unstable_rate(a, b, [0, r])
    return Linearization(
        a=a,
        b=b,
        tau=tau,
        lambda_plus=(-b + disc) / 2,
        lambda_minus=(-b - disc) / 2,
        jacobian=jac,
        fixed_point=fixed,
        exact=is_exact(a) and is_exact(b),
        model_name=model.name,
        tau_q=tau_q,
        tau_fastest=tau_fastest,
    )


def ode_jacobian_at_fixed_point(model, mu_value, dps: int = 40, offset: float = 1e-18):
    """Jacobian of ``model.ode()`` at the fixed point, numerically, at one ``mu``.

    The symbolic derivative is evaluated at a point ``offset`` away from the
    fixed point (states set to ``offset`` times distinct weights) with ``dps``
    digits: closed forms such as ``sqrt(Q - R²) = |u| sqrt(1 - m²)`` (ReLU)
    are C² but not analytic in ``u`` at ``u = 0``, so a plain substitution
    would give ``0/0``; their derivative is continuous, so the error is
    ``O(offset)``.  Quadrature nodes are evaluated numerically.

    Returns
    -------
    numpy.ndarray
    """
    from ._codegen import jacobian_expressions

    system = model.ode_system()
    jac = jacobian_expressions(system)
    point = {st: sp.Float(offset * (k + 1), dps) for k, st in enumerate(system.states)}
    point.update({p: 0 for p in (S.mu_perp,) if p in system.parameters})
    if S.q12 in point:
        point[S.q12] = 0
    from ._validate import as_exact_number

    point[S.mu] = as_exact_number(mu_value, "mu", nonnegative=True)
    out = np.empty(jac.shape)
    for i in range(jac.shape[0]):
        for j in range(jac.shape[1]):
            entry = jac[i, j].subs(point)
            out[i, j] = evaluate_with_error(entry)[0] if not is_exact(entry) else float(sp.N(entry, dps))
    return out


# ---------------------------------------------------------------------------
# Series, critical mu, escape laws


def ode_series(model, order: int) -> dict:
    """Expansion of the ODE around the fixed point to total ``order`` in the states.

    Every state is scaled by ``ε > 0`` and the right-hand sides expanded in
    ``ε``; no sign of ``u`` is assumed.  For smooth pairs the coefficients
    are polynomials; for ReLU-type pairs, whose ODE contains
    ``sqrt(Q - R²) = |u| sqrt(1 - m²)``, they are homogeneous but not
    polynomial (``u |u|``, or ``sqrt`` of a quadratic form at rank 2), and
    the expansion holds for both signs of ``u``.

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> LoRAModel("relu").series(2)[S.u]
    -m*mu/2 + m/2 - u/2 + u*Abs(u)/(2*pi*mu**2)
    """
    eps = sp.Symbol("epsilon", positive=True)
    states = model.states
    scaled = {st: eps * st for st in states}
    if S.q12 in states:
        scaled[S.q12] = S.q12  # q12 is not small at the fixed point
    out = {}
    # the Q, R form expands cleanly (the stable atan2 form is for numerics)
    overlaps = model.overlaps()
    for st, rhs in model.ode(in_terms_of_QR=True).items():
        expr = rhs.subs(overlaps).subs(scaled)
        expansion = sp.series(expr, eps, 0, order + 1).removeO()
        # sqrt(mu*X) -> sqrt(mu)*sqrt(X) (mu > 0) lets equal terms cancel
        out[st] = sp.expand(sp.expand_power_base(sp.expand(expansion.subs(eps, 1))))
    return out


def critical_mu(model, lo, hi):
    """Zeros of ``a(μ)`` in ``[lo, hi]``, exact where SymPy can isolate them.

    Polynomial ``a`` with rational or algebraic coefficients: exact real
    roots.  Polynomial ``a`` with other exact coefficients (``sqrt(2/π)``):
    closed-form roots.  Otherwise (closed forms in ``asin``/``sqrt``,
    quadrature nodes): sign changes of ``a`` evaluated with mpmath, refined
    to certified brackets of half-width ``1e-13``; tangential zeros are
    reported uncertified.  See :mod:`symlora._roots`.

    Returns
    -------
    CriticalMuRoots
        A tuple of SymPy numbers in increasing order; ``.details`` gives a
        :class:`~symlora._roots.CriticalMu` per zero (exact or numeric, error
        bound, bracket, certification).
    """
    from ._roots import find_zeros

    if model.pretraining == "general":
        raise ValueError("critical_mu is defined for aligned pre-training (a depends on mu_perp otherwise)")
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


def escape_law(model, mu) -> EscapeLaw:
    r"""Leading escape-time law at ``mu`` (aligned pre-training).

    Notes
    -----
    If ``a(μ) ≠ 0`` the escape is linear: ``t_esc ≈ (τ/(2η)) log d``.  At
    rank 2 the directions start nearly orthogonal (``q12 ~ d^{-1/2}``), so
    ``τ`` is the value at ``q12 = 0``; the derivation also states the fastest
    ``τ`` over every reachable ``q12`` (``Linearization.tau_fastest``).  At
    ``a = 0`` the rank-2 law is not derived.

    If ``a(μ) = 0``: at ``u = 0`` Stein's lemma gives exactly
    ``E[G ζ] = m (μ A_λ + A_ν) = -a m``, so ``du/dt = η a m = 0`` on the line
    ``u = 0``, which is therefore invariant; the centre manifold is ``u = 0``
    and the reduced dynamics of ``m`` vanishes at every order of the series.
    The d → ∞ ODE started from ``u0 = 0`` never escapes.  The law reported
    is then the finite-``d``, fluctuation-driven estimate of
    :func:`_fluctuation_law` (``d log d``), or "none" when nothing drives
    the escape (e.g. the pre-trained student already fits the teacher).
    """
    if model.pretraining != "aligned":
        raise ValueError("escape_law is derived for aligned pre-training (a depends on mu_perp otherwise)")
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
    return (f" Rank ≥ 2: τ is the rate of the fastest mode at q12 = 0 (directions start orthogonal to "
            f"O(d^(-1/2))); over every reachable q12 the fastest mode has τ = {fastest:.12g} (τ(q12) in "
            "Linearization.tau_q).")


def tau_limits(model) -> dict:
    """Leading behaviour of ``τ(μ)`` as ``μ → 0+`` and ``μ → 1``.

    Returns
    -------
    dict
        ``{"mu->0": law, "mu->1": law}``, each ``{"coefficient", "exponent",
        "point", "law"}`` meaning ``τ ≈ coefficient · |μ - point|^exponent``
        (``exponent = 0``: ``τ`` tends to the finite ``coefficient``).  For
        activations without closed forms the coefficient is a limit by
        Richardson extrapolation and carries its error estimate ``"error"``.
    """
    lin = model.linearization()
    out = {}
    for label, point in (("mu->0", sp.S.Zero), ("mu->1", sp.S.One)):
        out[label] = _tau_limit(lin, point)
    return out


def _tau_limit(lin, point):
    mu = S.mu
    a, b = lin.a, lin.b
    if is_exact(a) and is_exact(b):
        direction = "+" if point == 0 else "+-"
        a0 = sp.limit(a, mu, point, "+") if direction == "+" else sp.simplify(a.subs(mu, point))
        b0 = sp.limit(b, mu, point, "+") if direction == "+" else sp.simplify(b.subs(mu, point))
        if a0 != 0:
            value = sp.simplify((b0 + sp.sqrt(b0**2 + 4 * a0**2)) / (2 * a0**2))
            return {"point": point, "coefficient": value, "exponent": 0, "law": f"tau -> {value}"}
        # a vanishes at the point: find its order k, tau ~ b0 / (a_k^2 |mu - point|^(2k))
        series = sp.series(a, mu, point, 6, dir="+").removeO()
        poly_terms = sp.Poly(sp.expand(series.subs(mu, mu + point)), mu) if point != 0 else sp.Poly(sp.expand(series), mu)
        k, ak = min(((mon[0], c) for mon, c in poly_terms.terms() if c != 0), default=(None, None))
        if k is None:
            return {"point": point, "coefficient": sp.oo, "exponent": None, "law": "a vanishes to order 6: tau = inf"}
        if b0 > 0:
            coeff = sp.simplify(b0 / ak**2)
            return {"point": point, "coefficient": coeff, "exponent": -2 * k,
                    "law": f"tau ~ {coeff} |mu - {point}|^({-2 * k})"}
        coeff = sp.simplify(1 / sp.Abs(ak))
        return {"point": point, "coefficient": coeff, "exponent": -k,
                "law": f"tau ~ {coeff} |mu - {point}|^({-k}) (b <= 0)"}
    # numeric families: the local power law from two offsets, then the
    # coefficient as a limit by Richardson extrapolation of
    # f(h) = τ(point ± h) h^(-exponent) = C + c_1 h + c_2 h^2 + ... (a, b
    # analytic in μ), with the spread of the last extrapolants as its error
    def tau_at(h):
        x = float(point) + (h if point == 0 else -h)
        return lin.values(x)["tau"]

    offsets = [1e-2, 1e-3]
    taus = [tau_at(h) for h in offsets]
    slope = (math.log(taus[1]) - math.log(taus[0])) / (math.log(offsets[1]) - math.log(offsets[0]))
    exponent = int(round(slope))
    if abs(slope - exponent) > 0.05:
        exponent = 0
    coeff, error = _richardson(lambda h: tau_at(h) * h ** (-exponent), h0=0.04, levels=5)
    if exponent == 0:
        return {"point": point, "coefficient": sp.Float(coeff, 12), "exponent": 0, "error": error,
                "law": f"tau -> {coeff:.10g} ± {error:.1g} (Richardson extrapolation)"}
    return {"point": point, "coefficient": sp.Float(coeff, 12), "exponent": exponent, "error": error,
            "law": f"tau ~ {coeff:.10g} |mu - {point}|^({exponent}) ± {error:.1g} (Richardson extrapolation)"}


def _richardson(func, h0, levels):
    """``lim_{h→0} func(h)`` by Neville extrapolation on ``h0 / 2^k``, and an error estimate.

    ``func(h) = C + c_1 h + c_2 h^2 + ...``; the estimate is the larger
    change of the diagonal in its last two steps.

    Examples
    --------
    >>> value, error = _richardson(lambda h: 2 + 3 * h - h**2, 0.1, 5)
    >>> round(value, 12), error < 1e-9
    (2.0, True)
    """
    hs = [h0 / 2**k for k in range(levels)]
    table = [[func(h)] for h in hs]
    for k in range(1, levels):
        for j in range(1, k + 1):
            ratio = hs[k - j] / hs[k]
            table[k].append(table[k][j - 1] + (table[k][j - 1] - table[k - 1][j - 1]) / (ratio - 1))
    diagonal = [table[k][k] for k in range(levels)]
    error = max(abs(diagonal[-1] - diagonal[-2]), abs(diagonal[-2] - diagonal[-3]) if levels > 2 else 0.0)
    return diagonal[-1], error


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
