r"""Linearisation at the uninformative fixed point (docs/theory.md §4).

At ``m = u = 0`` the linearised dynamics, in units of ``η``, is
``d/dt (m, u) = [[0, a], [a, -b]] (m, u)`` with the one-dimensional integrals

.. math::

    a(μ) = -E[e_0(ν) σ'(μν) ν],\qquad
    b(μ) = E[σ'(μν)^2] + E[e_0(ν) σ''(μν)],\qquad e_0(ν) = σ(μν) - σ^*(ν),

computed by the expectation engine directly (exact for polynomial, erf and
ReLU-type pairs; no Hermite series, so nothing is ill-conditioned at small
``μ`` and nothing is lost for activations of non-zero mean).  The unstable
rate is ``λ_+ = (-b + sqrt(b² + 4a²))/2`` and ``τ = 1/λ_+``.

General pre-training (``w0 = μ w* + μ⊥ w⊥``) and rank ``r`` use the same
integrals at the fixed-point covariance; see :func:`linearize`.  This module
also holds the local expansion of the ODE around the fixed point
(:func:`ode_series`) and the high-precision evaluation of ``a`` and ``b``
that the escape laws and critical ``μ`` build on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy as sp

from . import _symbols as S
from ._expectation import evaluate_with_error, gaussian_expectation, is_exact

__all__ = [
    "Linearization",
    "linearize",
    "ode_series",
    "unstable_rate",
    "fastest_unstable_rate",
    "tau_from",
    "ode_jacobian_at_fixed_point",
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
        (the random start).  ``None`` where the spectrum of the Gram matrix
        has no closed form in real radicals (rank ``>= 3``).
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


#: Eigenvalue variable of the Gram matrix of the LoRA directions.
_KAPPA = sp.Symbol("kappa")


def _rank_r_jacobian(model, alpha, beta, b):
    """Jacobian ``η [[0, 0, αI], [0, 0, βI], [αI, βI, -bK]]`` at the fixed point, the fixed point and ``K``.

    ``beta`` is ``None`` for aligned pre-training (no ``s`` statistics).
    """
    from ._statistics import geometry

    geo = geometry(model.pretraining, model.rank)
    states = geo.states
    index = {state: i for i, state in enumerate(states)}
    r = geo.rank
    gram = sp.Matrix(r, r, lambda i, j: geo.gram(int(i), int(j)))
    jac = sp.zeros(len(states), len(states))
    for a in range(r):
        u_row = index[geo.u[a]]
        for overlaps, coupling in ((geo.m, alpha), (geo.s, beta)):
            if overlaps:
                jac[index[overlaps[a]], u_row] = jac[u_row, index[overlaps[a]]] = coupling
        for c in range(r):
            jac[u_row, index[geo.u[c]]] = -b * gram[a, c]
    fixed = {state: 0 for state in geo.m + geo.s + geo.u}
    return model.lr * jac, fixed, gram


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

    *Rank r* (either pre-training): the fixed point is ``m_a = s_a = u_a = 0``
    for any overlaps ``q_ab`` of the directions.  With ``K`` the Gram matrix
    (``K_aa = 1``, ``K_ab = q_ab``) the Jacobian is, in the order ``(m, s, u)``,
    ``η [[0, 0, αI], [0, 0, βI], [αI, βI, -bK]]`` (aligned: ``α = a``, no
    ``s`` block), zero in the ``q`` rows.  It splits along the eigenvectors
    of ``K`` into the rank-1 blocks with ``b`` replaced by ``b k`` (``k`` an
    eigenvalue of ``K``).  ``tau`` is the rank-1 value, the rate of every mode
    at the random start ``K = I`` (the directions start orthogonal up to
    ``O(d^{-1/2})``); ``tau_q`` is ``τ`` of the fastest mode as a function of
    the ``q_ab`` where the spectrum of ``K`` has a closed form in real radicals
    (rank 2: ``1 ± q12``; ``None`` otherwise: evaluate ``unstable_rate`` at the
    eigenvalues of a numeric ``K``) and ``tau_fastest`` its minimum over every reachable
    ``K`` (``1/|a|`` when ``b >= 0``): see :func:`fastest_unstable_rate`.
    The Jacobian keeps the ``q_ab`` symbolic.
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
    else:
        a, b = _direct_ab(model.student, model.teacher, mu)
        alpha, beta = a, None
    jac, fixed, gram = _rank_r_jacobian(model, alpha, beta, b)
    disc = sp.sqrt(b**2 + 4 * a**2)
    tau = (b + disc) / (2 * a**2)
    # simplify short closed forms only: for erf-type pairs simplify() spends a
    # second on tau and does not shorten it (a and b stay exact either way)
    if is_exact(a) and is_exact(b) and sp.count_ops(tau) <= 40:
        tau = _simplify(tau)
    tau_q = tau_fastest = None
    if gram.rows >= 2:
        # the spectrum of K in real radicals (r = 2: 1 ± q12); from r = 3 on SymPy writes the roots of
        # the characteristic polynomial with complex radicals (casus irreducibilis) or not at all
        spectrum = sp.roots(gram.charpoly(_KAPPA).as_expr(), _KAPPA, multiple=True)
        if len(spectrum) == gram.rows and not any(k.has(sp.I) or k.has(sp.Piecewise) for k in spectrum):
            tau_q = 1 / fastest_unstable_rate(a, b, spectrum)
        tau_fastest = 1 / fastest_unstable_rate(a, b, [0, gram.rows])
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


def ode_jacobian_at_fixed_point(model, mu_value, dps: int = 40, offset: float = 1e-18, mu_perp=0):
    """Jacobian of ``model.ode()`` at the fixed point, numerically, at one ``mu`` (and ``mu_perp``).

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
    from ._validate import as_exact_number

    if S.mu_perp in system.parameters:
        point[S.mu_perp] = as_exact_number(mu_perp, "mu_perp", nonnegative=True)
    point.update({q: 0 for q in _overlaps_of_directions(model)})
    point[S.mu] = as_exact_number(mu_value, "mu", nonnegative=True)
    out = np.empty(jac.shape)
    for i in range(jac.shape[0]):
        for j in range(jac.shape[1]):
            entry = jac[i, j].subs(point)
            out[i, j] = evaluate_with_error(entry)[0] if not is_exact(entry) else float(sp.N(entry, dps))
    return out


def _overlaps_of_directions(model) -> tuple:
    """The ``q_ab`` statistics of ``model`` (none at rank 1)."""
    from ._statistics import geometry

    return tuple(geometry(model.pretraining, model.rank).q.values())


def ode_series(model, order: int) -> dict:
    """Expansion of the ODE around the fixed point to total ``order`` in the states.

    Every state is scaled by ``ε > 0`` and the right-hand sides expanded in
    ``ε``; no sign of ``u`` is assumed.  For smooth pairs the coefficients
    are polynomials; for ReLU-type pairs, whose ODE contains
    ``sqrt(Q - R²) = |u| sqrt(1 - m²)``, they are homogeneous but not
    polynomial (``u |u|``, or ``sqrt`` of a quadratic form at rank ``r >= 2``), and
    the expansion holds for both signs of ``u``.

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> LoRAModel("relu").series(2)[S.u]
    -m*mu/2 + m/2 - u/2 + u*Abs(u)/(2*pi*mu**2)
    """
    eps = sp.Symbol("epsilon", positive=True)
    states = model.states
    # the overlaps q_ab of the directions are not small at the fixed point
    scaled = {st: st if st in _overlaps_of_directions(model) else eps * st for st in states}
    out = {}
    # the Q, R form expands cleanly (the stable atan2 form is for numerics)
    overlaps = model.overlaps()
    for st, rhs in model.ode(in_terms_of_QR=True).items():
        expr = rhs.subs(overlaps).subs(scaled)
        expansion = sp.series(expr, eps, 0, order + 1).removeO()
        # sqrt(mu*X) -> sqrt(mu)*sqrt(X) (mu > 0) lets equal terms cancel
        out[st] = sp.expand(sp.expand_power_base(sp.expand(expansion.subs(eps, 1))))
    return out
