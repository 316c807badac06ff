r"""Small-overlap asymptotics for general pre-training ``w0 = μ w* + μ⊥ w⊥`` (docs/theory.md §4).

States ``(m, s, u)`` with ``m = v·w*``, ``s = v·w⊥``.  At ``u = 0`` the
student is ``λ0 = μν + μ⊥ξ`` whatever ``v`` is, so ``Q`` and ``R`` do not
depend on ``(m, s)`` and, with Stein's lemma,

.. math::

    \dot m = \dot s = 0,\qquad \dot u = η(α m + β s)\qquad (u = 0),

    α = -E[e_0 σ'(λ_0) ν] = -(μ A_λ + A_ν),\quad
    β = -E[e_0 σ'(λ_0) ξ] = -μ_⊥ A_λ,\quad b = A_λ,

with ``A_λ = E[σ'(λ0)² + e0 σ''(λ0)]``, ``A_ν = -E[σ*'(ν) σ'(λ0)]`` and
``e0 = σ(λ0) - σ*(ν)``.  Hence:

* **Fixed points.** Every point of the line ``{u = 0, α m + β s = 0}`` is a
  fixed point (the whole plane ``u = 0`` when ``α = β = 0``).  The origin is
  the only one with ``m = s = 0``; a point with ``m = 0`` and ``s ≠ 0`` lies
  on it only when ``β = 0``, i.e. ``μ⊥ = 0`` or ``b = 0``.  Along the line
  the Jacobian keeps ``α`` and ``β`` and only ``b`` changes, at second order
  in ``(m, s)``: the random start ``m, s ~ d^{-1/2}`` sees the origin's
  linearisation.
* **Linearisation** at the origin: ``η [[0, 0, α], [0, 0, β], [α, β, -b]]``,
  eigenvalues ``0`` (eigenvector ``(β, -α, 0)``, the line of fixed points) and
  those of the aligned formula with ``a = sqrt(α² + β²)``; the unstable
  eigenvector is ``(α, β, λ+)``: the escape moves ``v`` towards
  ``α w* + β w⊥``, so the overlap it gives ``m`` is the fraction ``α/a``.
* **Critical set** (``τ = ∞``): ``a = 0`` needs ``α = β = 0``.  On the axis
  ``μ⊥ = 0`` that is the aligned condition ``a(μ) = 0``; off the axis it
  needs ``b = 0`` *and* ``A_ν = 0``, two conditions: isolated points, not
  curves.  If ``σ`` and ``σ*`` are non-decreasing and not a.e. constant,
  ``A_ν < 0`` everywhere, so there is no critical point off the axis at all.
  The curves of the plane are ``α = 0`` (the instability carries no overlap
  with ``w*``) and ``b = 0`` (the damping changes sign; ``τ`` stays finite).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import _symbols as S
from ._expectation import is_exact
from ._linearization import _high_precision, _simplify, tau_from

__all__ = ["general_coefficients", "fixed_point_line", "critical_mu_general", "critical_set", "CriticalSet",
           "CriticalPoint", "coupling_function", "aligned_model", "escape_law_general", "critical_curve"]


def _require_general(model):
    from ._model import LoRAModel

    if not isinstance(model, LoRAModel):
        raise TypeError(f"model must be a LoRAModel, not {type(model).__name__}")
    if model.pretraining != "general":
        raise ValueError(f"this needs pretraining='general', got {model.pretraining!r}")


def general_coefficients(model) -> dict:
    r"""``α``, ``β``, ``b``, ``A_ν``, ``a``, ``τ`` of general pre-training, exact where the pair allows.

    Read off the Jacobian of :func:`~symlora._linearization.linearize` (one
    derivation through the expectation engine); functions of ``mu`` and
    ``mu_perp``, in units of ``η``.

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> c = general_coefficients(LoRAModel("x", pretraining="general"))
    >>> c["alpha"], c["beta"], c["b"]
    (1 - mu, -mu_perp, 1)
    """
    _require_general(model)
    lin = model.linearization()
    alpha = _simplify(lin.jacobian[0, 2] / model.lr)
    beta = _simplify(lin.jacobian[1, 2] / model.lr)
    return {"alpha": alpha, "beta": beta, "b": lin.b, "A_nu": _simplify(-(alpha + S.mu * lin.b)),
            "a": lin.a, "tau": lin.tau}


def fixed_point_line(model) -> dict:
    """The fixed points with ``u = 0``: the line ``α m + β s = 0`` (see the module docstring).

    Returns
    -------
    dict
        ``{"equation": sympy.Eq, "statement": str}``.

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> fixed_point_line(LoRAModel("x", pretraining="general"))["equation"]
    Eq(m*(1 - mu) - mu_perp*s, 0)
    """
    c = general_coefficients(model)
    equation = sp.Eq(c["alpha"] * S.m + c["beta"] * S.s, 0)
    statement = (
        "At u = 0 the drifts of m and s vanish and du/dt = η (α m + β s), so every point of the line "
        "{u = 0, α m + β s = 0} is a fixed point (the whole plane u = 0 where α = β = 0). The origin is the only "
        "fixed point with m = s = 0; one with m = 0 and s ≠ 0 exists only where β = -μ⊥ b = 0. Along the line "
        "α and β are unchanged and b changes at second order in (m, s), so the random start m, s ~ d^(-1/2) "
        "escapes by the linearisation at the origin."
    )
    return {"equation": equation, "statement": statement}


def coupling_function(model):
    """Generated code ``(mu, mu_perp) -> (α, β, b)`` (numpy, broadcasting; cached on the model)."""
    from ._codegen import compile_expressions

    _require_general(model)
    key = "general_coupling_function"
    if key not in model._cache:
        c = general_coefficients(model)
        model._cache[key] = compile_expressions((S.mu, S.mu_perp), (c["alpha"], c["beta"], c["b"]),
                                                name="coupling", doc=f"alpha, beta, b of {model.name}")
    return model._cache[key]


def aligned_model(model):
    """The aligned-pre-training model of the same pair and rates: the general one at ``μ⊥ = 0``.

    At ``μ⊥ = 0`` the ``(m, u)`` equations of general pre-training are those
    of aligned pre-training exactly and ``s`` is passive (``ṡ ∝ s``), so
    results at ``μ⊥ = 0`` are taken from this model.
    """
    from ._model import LoRAModel

    return LoRAModel(model.student, model.teacher, rank=model.rank, lr=model.lr, batch=model.batch, noise=model.noise)


# ---------------------------------------------------------------------------
# critical mu at fixed mu_perp


def _numerator(expr):
    """Numerator of an exact expression when it is a polynomial in ``μ``, ``μ⊥`` (else ``None``)."""
    if not is_exact(expr):
        return None
    num = sp.numer(sp.together(expr))
    return sp.expand(num) if num.is_polynomial(S.mu, S.mu_perp) else None


def critical_mu_general(model, lo, hi, mu_perp):
    r"""Zeros of ``a(μ, μ⊥) = sqrt(α² + β²)`` in ``μ ∈ [lo, hi]`` at one fixed ``μ⊥``.

    ``μ⊥ = 0``: the critical ``μ`` of :func:`aligned_model` (``α(μ, 0)`` is
    the aligned ``a(μ)``).  ``μ⊥ > 0``: common zeros of ``b`` and ``α``.  When both are
    polynomial (after clearing denominators) the common zeros are those of
    their gcd, exact; for non-decreasing ``σ`` and ``σ*`` there are none
    (``A_ν < 0``); otherwise the certified zeros of ``b``
    (:func:`symlora._roots.find_zeros`) at which ``α`` vanishes within its
    evaluation error, reported uncertified (two conditions at once cannot be
    certified by signs).

    Returns
    -------
    CriticalMuRoots
    """
    from ._roots import CriticalMu, CriticalMuRoots, find_zeros

    if mu_perp == 0:
        return aligned_model(model).critical_mu((lo, hi))
    if _monotone(model.student) and _monotone(model.teacher):
        return CriticalMuRoots([])  # A_ν < 0 everywhere: α = -μ b - A_ν and b cannot vanish together
    c = general_coefficients(model)
    at = {S.mu_perp: mu_perp}
    alpha = c["alpha"].subs(at)
    b = c["b"].subs(at)
    num_a, num_b = _numerator(alpha), _numerator(b)
    if num_a is not None and num_b is not None:
        common = sp.gcd(sp.Poly(num_a, S.mu), sp.Poly(num_b, S.mu))
        if common.degree() <= 0:
            return CriticalMuRoots([])
        # a zero of both numerators is a zero of a unless a denominator vanishes there too: evaluate
        roots = find_zeros(common.as_expr(), S.mu, lo, hi)
        return CriticalMuRoots([d for d in roots.details
                                if abs(_high_precision(c["a"].subs({**at, S.mu: d.value}), 30)[0]) < 1e-20])
    out = []
    for zero in find_zeros(b, S.mu, lo, hi).details:
        value, error = _high_precision(alpha.subs(S.mu, sp.Float(zero.value, 30)), 30)
        if abs(value) <= max(error, 1e-12):
            out.append(CriticalMu(zero.value, False, zero.error, zero.bracket, False, zero.kind,
                                  f"zero of b ({zero.method}) where |α| = {abs(value):.1g} <= its evaluation error; "
                                  "a common zero of two functions cannot be certified numerically"))
    return CriticalMuRoots(out)


# ---------------------------------------------------------------------------
# the critical set in the (mu, mu_perp) plane


@dataclass(frozen=True)
class CriticalPoint:
    """A point of the ``(μ, μ⊥)`` plane where ``a = 0``.

    Attributes
    ----------
    mu, mu_perp : sympy.Expr
        Exact, or ``Float`` with ``error`` bounding the distance to the zero.
    exact, certified : bool
    b : float
        The damping there: ``τ = ∞`` when ``b >= 0``; ``b < 0`` keeps ``τ = 1/|b|`` finite.
    method : str
    """

    mu: sp.Expr
    mu_perp: sp.Expr
    exact: bool
    certified: bool
    error: float
    b: float
    method: str

    def __repr__(self):
        tag = "exact" if self.exact else f"±{self.error:.1g}" + ("" if self.certified else ", uncertified")
        return f"CriticalPoint(mu={sp.sstr(self.mu)}, mu_perp={sp.sstr(self.mu_perp)}, {tag})"


@dataclass(frozen=True)
class CriticalSet:
    """Where general pre-training is critical, and the two curves that organise the plane.

    Attributes
    ----------
    points : tuple of CriticalPoint
        ``a = 0``: on the axis ``μ⊥ = 0`` (the aligned critical ``μ``) and
        off it (``b = A_ν = 0``).
    alpha_curve, b_curve : sympy.Eq or None
        Exact implicit equations ``numerator(α) = 0``, ``numerator(b) = 0``
        when they are polynomials; ``None`` otherwise (the curves are then
        drawn from generated code, see :func:`coupling_function`).
    statement : str
        What holds, in words, including why there are no critical curves.
    """

    points: tuple
    alpha_curve: object
    b_curve: object
    statement: str

    def __repr__(self):
        def curve(eq):
            return "not closed-form" if eq is None else f"{sp.sstr(eq.lhs)[:60]} = 0"

        return (f"CriticalSet(points={list(self.points)!r}; α = 0: {curve(self.alpha_curve)}; "
                f"b = 0: {curve(self.b_curve)})")


def _monotone(act) -> bool:
    """σ' >= 0 everywhere, not identically 0 (exactly decided by SymPy, else False)."""
    x = sp.Symbol("x", real=True)
    derivative = act.derivative_at(x)
    if derivative == 0:
        return False
    try:
        return bool(sp.ask(sp.Q.nonnegative(derivative))) or bool(
            sp.solveset(derivative < 0, x, sp.S.Reals) == sp.S.EmptySet)
    except (TypeError, ValueError, NotImplementedError):
        return False


def critical_set(model, mu_max=2, mu_perp_max=2) -> CriticalSet:
    """Points ``a = 0`` in ``[0, mu_max] × [0, mu_perp_max]`` and the curves ``α = 0``, ``b = 0``.

    Routes: the axis ``μ⊥ = 0`` by :func:`critical_mu_general`; the edge
    ``μ = 0`` and the interior exactly when ``α`` and ``b`` are polynomial
    after clearing denominators (real solutions of the polynomial system);
    for monotone ``σ`` and ``σ*`` the interior is empty by ``A_ν < 0``;
    otherwise the edge ``μ = 0`` when ``α(0, μ⊥) ≡ 0`` (certified zeros of
    ``b(0, μ⊥)``), and interior points are not searched (said in ``statement``).

    Parameters
    ----------
    model : LoRAModel
        With ``pretraining="general"``.
    mu_max, mu_perp_max : positive numbers
        The window ``[0, mu_max] × [0, mu_perp_max]``.

    Returns
    -------
    CriticalSet

    Raises
    ------
    TypeError
        ``model`` is not a LoRAModel, or a bound is not a number.
    ValueError
        Aligned pre-training, or a bound outside ``(0, 1e6]``.

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> critical_set(LoRAModel("He2", pretraining="general"), 1, 1)
    CriticalSet(points=[CriticalPoint(mu=0, mu_perp=0, exact), CriticalPoint(mu=1, mu_perp=0, exact), CriticalPoint(mu=0, mu_perp=sqrt(3)/3, exact)]; α = 0: -6*mu*(mu**2 + mu_perp**2 - 1) = 0; b = 0: 2*(3*mu**2 + 3*mu_perp**2 - 1) = 0)
    """
    from ._roots import find_zeros
    from ._validate import MU_MAX, as_exact_number

    c = general_coefficients(model)
    for value, name in ((mu_max, "mu_max"), (mu_perp_max, "mu_perp_max")):
        if not 0 < as_exact_number(value, name, positive=True) <= MU_MAX:
            raise ValueError(f"{name} must lie in (0, {MU_MAX:g}], got {value}")
    alpha, b = c["alpha"], c["b"]
    points = []
    for d in critical_mu_general(model, 0, mu_max, 0).details:
        b_value = _high_precision(b.subs({S.mu_perp: 0, S.mu: d.value}), 30)[0]
        points.append(CriticalPoint(d.value, sp.S.Zero, d.exact, d.certified, d.error, b_value,
                                    "on the axis μ⊥ = 0: " + d.method))
    num_a, num_b = _numerator(alpha), _numerator(b)
    notes = []
    monotone = _monotone(model.student) and _monotone(model.teacher)
    if num_a is not None and num_b is not None:
        # real (not positive) unknowns: the edge μ = 0 is part of the plane
        x, y = sp.symbols("x y", real=True)
        solutions = sp.solve([num_a.subs({S.mu: x, S.mu_perp: y}), num_b.subs({S.mu: x, S.mu_perp: y})], [x, y],
                             dict=True)
        for sol in solutions:
            if len(sol) < 2 or any(v.free_symbols for v in sol.values()):
                curve = {("μ" if k == x else "μ⊥"): sp.sstr(v.subs({x: S.mu, y: S.mu_perp})) for k, v in sol.items()}
                notes.append(f"a curve of critical points: {curve} (α and b share a factor)")
                continue
            mu_v, mp_v = sp.simplify(sol[x]), sp.simplify(sol[y])
            if not (mu_v.is_real and mp_v.is_real) or mp_v <= 0 or mu_v < 0 or mu_v > mu_max or mp_v > mu_perp_max:
                continue
            points.append(CriticalPoint(mu_v, mp_v, True, True, 0.0, 0.0,
                                        "exact real solution of numerator(α) = numerator(b) = 0 (sympy.solve)"))
        interior = "searched exactly (polynomial system)"
    elif monotone:
        interior = "empty: σ and σ* are non-decreasing, so A_ν = -E[σ*'(ν) σ'(λ0)] < 0 and α = β = 0 is impossible"
    else:
        edge_alpha = alpha.subs(S.mu, 0)
        if is_exact(edge_alpha) and sp.simplify(edge_alpha) == 0:
            for d in find_zeros(b.subs(S.mu, 0), S.mu_perp, 1e-6, mu_perp_max).details:
                points.append(CriticalPoint(sp.S.Zero, d.value, d.exact, d.certified, d.error, 0.0,
                                            "on the edge μ = 0, where α ≡ 0: zero of b(0, μ⊥); " + d.method))
        interior = "not searched (neither polynomial nor monotone): only the axes are covered"
    statement = (
        "a = sqrt(α² + β²) = 0 needs α = 0 and β = -μ⊥ b = 0: on μ⊥ = 0 the aligned critical μ; off the axis "
        "b = 0 and A_ν = 0 at once, so critical points are isolated, not curves. Interior: " + interior + ". "
        "The curves α = 0 (the escape direction carries no overlap with w*) and b = 0 (damping changes sign, τ "
        "finite) organise the plane." + (" " + "; ".join(notes) if notes else "")
    )
    plain = {S.mu: sp.Symbol("mu"), S.mu_perp: sp.Symbol("mu_perp")}  # no sign assumptions: Eq(-mu, 0) stays

    def eq(num):  # None: no closed form, or the curve is empty (a non-zero constant numerator)
        return sp.Eq(sp.factor(num.xreplace(plain)), 0) if num is not None and num.free_symbols else None

    return CriticalSet(tuple(points), eq(num_a), eq(num_b), statement)


def critical_curve(model, which, mu_perp_values, mu_max=2):
    """Points of the curve ``α = 0`` or ``b = 0``: its zeros in ``μ ∈ [0, mu_max]`` at each given ``μ⊥``.

    At each ``μ⊥`` the zeros of ``α(·, μ⊥)`` (or ``b``) by
    :func:`symlora._roots.find_zeros`: exact when the numerator is a
    polynomial in ``μ`` (then checked to be a zero of the expression itself,
    not of a denominator too), certified brackets otherwise, located on a
    grid from generated code.

    Returns
    -------
    list of (sympy.Expr, CriticalMuRoots)
        ``(μ⊥, zeros)`` per value.

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> model = LoRAModel("He2", pretraining="general")
    >>> [(mp, tuple(z)) for mp, z in critical_curve(model, "b", [0, 0.5])]
    [(0, (sqrt(3)/3,)), (1/2, (sqrt(3)/6,))]
    """
    from ._roots import CriticalMuRoots, find_zeros
    from ._validate import as_exact_number

    if which not in ("alpha", "b"):
        raise ValueError(f"which must be 'alpha' or 'b', got {which!r}")
    c = general_coefficients(model)
    mu_max = as_exact_number(mu_max, "mu_max", positive=True)
    index = 0 if which == "alpha" else 2
    grid = np.linspace(0.0, float(mu_max), 401)
    out = []
    for value in mu_perp_values:
        mu_perp = as_exact_number(value, "mu_perp", nonnegative=True)
        expr = c[which].subs(S.mu_perp, mu_perp)
        numerator = _numerator(expr)
        if numerator is not None:
            roots = find_zeros(numerator, S.mu, 0, mu_max)
            # a zero of the numerator only: keep it where the expression itself is 0 (not 0/0)
            keep = [d for d in roots.details
                    if abs(_high_precision(expr.subs(S.mu, d.value), 30)[0]) < 1e-20]
            out.append((mu_perp, CriticalMuRoots(keep)))
            continue
        with np.errstate(all="ignore"):
            values = coupling_function(model)(np.maximum(grid, 1e-12), float(mu_perp))[index]
        out.append((mu_perp, find_zeros(expr, S.mu, 0, mu_max, np.broadcast_to(values, grid.shape))))
    return out


def tau_on_grid(model, mu, mu_perp):
    """``τ``, ``α``, ``b`` on a grid from generated code: arrays of the broadcast shape."""
    alpha, beta, b = coupling_function(model)(np.asarray(mu, float), np.asarray(mu_perp, float))
    with np.errstate(all="ignore"):
        tau = tau_from(np.hypot(alpha, beta), b)
    return {"tau": np.asarray(tau), "alpha": np.asarray(alpha), "b": np.asarray(b)}


# ---------------------------------------------------------------------------
# escape law


def escape_law_general(model, mu, mu_perp):
    r"""Leading escape-time law of general pre-training at ``(μ, μ⊥)``.

    Notes
    -----
    * ``μ⊥ = 0``: the law of aligned pre-training (:func:`aligned_model`),
      exactly.
    * ``a = sqrt(α² + β²) ≠ 0`` and ``α ≠ 0``: linear escape,
      ``t_esc ≈ (τ/(2η)) log d`` (asymptotic in ``d``, from the linearisation
      at the origin).  The escape direction ``(α, β, λ+)`` gives ``m`` the
      fraction ``α/a`` of the escaped amplitude; whether and when ``|m|``
      then crosses a given threshold is decided by the nonlinear dynamics
      (where ``α/a`` is small ``m`` can peak and turn back while ``v`` turns
      towards ``±w⊥``).  Checked against SGD in
      ``benchmarks/verify_general_log_d.py``.
    * ``α = 0``, ``β ≠ 0``: the linear instability moves ``v`` towards
      ``w⊥`` only (the adapter removes ``μ⊥ w⊥``) and ``m`` is not driven at
      linear order: the escape of ``m`` is not derived.
    * ``a = 0`` off the axis (``α = b = A_ν = 0``): not derived.
    """
    from dataclasses import replace

    from ._escape_law import EscapeLaw
    from ._validate import as_exact_number

    _require_general(model)
    mu = as_exact_number(mu, "mu", nonnegative=True)
    mu_perp = as_exact_number(mu_perp, "mu_perp", nonnegative=True)
    if mu_perp == 0:
        law = aligned_model(model).escape_law(mu)
        return replace(law, derivation="μ⊥ = 0: the (m, u) equations are those of aligned pre-training exactly "
                       "and s = v·w⊥ is passive, so the aligned law holds. " + law.derivation)
    c = general_coefficients(model)
    at = {S.mu: mu, S.mu_perp: mu_perp}
    (alpha, alpha_err), (beta, beta_err), (b, b_err) = (_high_precision(c[k].subs(at), 30)
                                                        for k in ("alpha", "beta", "b"))
    a = float(np.hypot(alpha, beta))
    tolerance = max(alpha_err + beta_err, 1e-12)
    where = f"(μ, μ⊥) = ({sp.N(mu, 12)}, {sp.N(mu_perp, 12)})"
    if a <= tolerance:
        return EscapeLaw(
            "not derived", None, None, None,
            f"At {where} α = β = 0 (|a| <= {tolerance:.1g}), hence b = -β/μ⊥ = 0 and A_ν = 0: the linearisation at the "
            "origin vanishes except for the line of fixed points. The escape law (centre manifold in (m, s, u), "
            "fluctuation-driven at finite d) is not derived for general pre-training.",
            statement="not derived (a = 0 off the axis μ⊥ = 0)")
    tau_exact = c["tau"].subs(at)
    symbolic = is_exact(tau_exact) and sp.count_ops(tau_exact) < 200
    tau = sp.simplify(tau_exact) if symbolic else sp.Float(tau_from(a, b), 15)
    eta = model.lr
    if abs(alpha) <= max(alpha_err, 1e-12):
        return EscapeLaw(
            "not derived", None, None, None,
            f"At {where} α = 0: the unstable eigenvector (0, β, λ+) of the linearisation has no component along "
            f"w*. From the random start v escapes towards w⊥ in t ≈ (τ/(2η)) log d with τ = {sp.N(tau, 12)} "
            "(the adapter removes the μ⊥ w⊥ part of w0), while m is not driven at linear order; the escape of m "
            "that follows is not derived.",
            statement=f"m: not derived (α = 0: the linear escape, τ = {float(sp.N(tau)):.6g}, is along w⊥ only)")
    prefactor = sp.simplify(tau / (2 * eta)) if symbolic else tau / (2 * eta)
    return EscapeLaw(
        "log", prefactor, None, 1,
        f"At {where} a = sqrt(α² + β²) = {a:.12g} ≠ 0 (α = {alpha:.12g}, β = {beta:.12g}, b = {b:.12g}): the "
        "unstable eigenvector (α, β, λ+) of the linearisation at the origin grows from the random start "
        f"m, s ~ d^(-1/2) at the rate λ+ = 1/τ, τ = {sp.N(tau, 12)}, so the state leaves the fixed point after "
        "t ≈ (τ/η) log(1/m0) = (τ/(2η)) log d (asymptotic in d). The escape direction gives m the fraction "
        f"α/a = {alpha / a:.6g} of the escaped amplitude (s: β/a = {beta / a:.6g}). Whether and when |m| then "
        "crosses a given threshold is decided by the nonlinear dynamics, not by this law: where α/a is small m "
        "can peak and turn back while v turns towards ±w⊥ (erf at (1.2, 0.7): m peaks at 0.21).",
    )
