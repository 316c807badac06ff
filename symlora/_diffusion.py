r"""Diffusion of the summary statistics: the order-``1/d`` noise of one-pass SGD.

One SGD step changes every statistic ``X_i`` (``m``, ``s``, ``u``; rank ``r``:
``m_a``, ``s_a``, ``u_a``, ``q_ab``) by

.. math::

    ΔX_i = -\frac{η}{d B} \sum_{b=1}^{B} h_i(x_b) + O(d^{-2}),\qquad
    h_i = g\,L_i + \frac{η}{B}\, K_i\, g^2,

with ``g = (σ(λ) - σ^*(ν) - \sqrt{Δ} ξ) σ'(λ)`` the per-sample derivative of
the loss, ``L_i`` a linear form in the Gaussian fields and ``K_i`` a
polynomial in the states, both from
:func:`symlora._statistics.increments` (the same forms the drift is built
from): ``L = ζ_a``, ``K = 0`` for ``u_a``; ``L = u_a (z·x - (v_a·z) ζ_a)``,
``K = (v_a·z) u_a^2/2`` for an overlap ``v_a·z`` with a fixed unit ``z``
(``m_a``: ``w*``, ``s_a``: ``w⊥``; the renormalisation term is of the same
order ``1/d`` per step as the gradient term, so its fluctuation is part of
the noise); for ``q_ab`` the sum of the two overlap forms and
``K = q (u_a^2 + u_b^2)/2 - u_a u_b``.

The mean of ``-η h_i`` is the drift of :meth:`LoRAModel.ode` (checked in the
tests); its covariance gives the diffusion matrix

.. math::

    D_{ij} = \frac{η^2}{B}\,\mathrm{Cov}[h_i, h_j],\qquad
    \mathrm{Cov}(X(t + δt) - X(t)) = \frac{D}{d}\,δt + o(δt),

i.e. ``d`` steps (one unit of time) add a covariance ``D/d``.  Every entry is
a Gaussian expectation over ``(λ, ν, ζ, ...)`` computed by
:func:`symlora.gaussian_expectation` (the label noise ``ξ`` is integrated out
by its moments), so ``D`` is exact wherever the drift is.

Where such an expectation has no closed form (``tanh``, sigmoid, ...), the
fields other than ``λ`` and ``ν`` (which enter polynomially) are first
removed exactly by Gaussian integration by parts, as the drift does
(:mod:`symlora._ode_derivation`):
``E[ζ^k F] = (k-1) Var(ζ) E[ζ^{k-2} F] + Σ_j Cov(ζ, X_j) E[ζ^{k-1} ∂_j F]``.
What is left are two-dimensional expectations over ``(λ, ν)`` with the
drift's covariance, evaluated by the same fast routes as the drift (Mehler's
series for smooth pairs) instead of a three-dimensional quadrature rule.
"""

from __future__ import annotations

import sympy as sp

from . import _symbols as S
from ._expectation import gaussian_expectation, is_exact
from ._node import GaussianExpectation
from ._statistics import PERP, STAR, geometry, increments

__all__ = ["derive_diffusion", "diffusion_at_fixed_point", "diffusion_pieces", "increment_mean", "compile_diffusion"]

_RP = sp.Symbol("R_perp", real=True)
_XI = sp.Symbol("xi_label", real=True)


def field_values(model) -> dict:
    """``{Q, R, C, ...: expression in the states}`` for :func:`derive_diffusion` with ``in_terms_of_QR``."""
    return _fields(model)[2]


def _field_of(geo, direction):
    """The Gaussian field ``direction·x`` and the symbol of its covariance with ``λ``."""
    if direction == STAR:
        return S.nu, S.R
    if direction == PERP:
        return S.xi_perp, _RP
    suffix = "" if geo.rank == 1 else str(direction + 1)
    return sp.Symbol(f"zeta{suffix}", real=True), sp.Symbol(f"C{suffix}", real=True)


def _fields(model):
    """Gaussian fields, their covariance (with symbols ``Q``, ``R``, ``C``...) and the values of those symbols.

    Fields: ``λ``, ``ν`` (``w*``), ``ξ⊥`` (``w⊥``, general pre-training) and
    ``ζ_a`` (``v_a``); covariances from the Gram matrix of the directions,
    those with ``λ`` kept as symbols (``R``, ``R_perp``, ``C_a``).
    """
    geo = geometry(model.pretraining, model.rank)
    pairs = [_field_of(geo, k) for k in geo.directions]
    fields = [S.lam] + [field for field, _ in pairs]
    cov = [[S.Q] + [symbol for _, symbol in pairs]]
    cov += [[symbol] + [geo.gram(i, j) for j in geo.directions] for i, (_, symbol) in zip(geo.directions, pairs)]
    values = {symbol: geo.with_w(k) for k, (_, symbol) in zip(geo.directions, pairs) if symbol != S.R}
    values.update(model.overlaps())
    return fields, cov, values


def _forms(model):
    """``{state: (L as {field: coefficient}, K)}`` of the module notes."""
    geo = geometry(model.pretraining, model.rank)
    return {state: ({_field_of(geo, k)[0]: c for k, c in L.items()}, K)
            for state, (L, K) in increments(model.pretraining, model.rank).items()}


def _label_average(expr):
    """Integrate the label noise ``ξ ~ N(0, 1)`` out of a polynomial in ``ξ``: ``E[ξ^k] = (k-1)!!``."""
    poly = sp.Poly(sp.expand(expr), _XI)
    return sum((coeff * sp.factorial2(k - 1) for (k,), coeff in poly.terms() if k % 2 == 0), sp.S.Zero)


def diffusion_pieces(model) -> dict:
    """The Gaussian expectations the diffusion is built from, in ``Q, R, C, ...``.

    Returns
    -------
    dict
        ``{"g2": E[g²], "g4": E[g⁴], "g_f": {f: E[g f]}, "g3_f": {f: E[g³ f]},
        "g2_ff": {(f, f'): E[g² f f']}}`` over the Gaussian fields ``f`` that
        enter the linear forms ``L_i`` (label noise integrated out).
    """

    def build():
        fields, cov, _ = _fields(model)
        sigma, teacher = model.student, model.teacher
        lam, nu = S.lam, S.nu
        g = (sigma(lam) - teacher(nu) - sp.sqrt(model.noise) * _XI) * sigma.derivative_at(lam)
        used = sorted({f for L, _ in _forms(model).values() for f in L}, key=fields.index)

        # a kinked student (softsign, elu, ...) would need δ and δ' of λ: integration by parts is not tried there
        # (it fails only after a long derivation); a kinked teacher gives δ(ν), which the engine conditions on
        smooth_student = not any(f.has(sp.Heaviside, sp.DiracDelta, sp.Abs, sp.sign, sp.Max, sp.Min, sp.Piecewise)
                                 for f in (sigma(lam), sigma.derivative_at(lam)))

        def E(expr):
            expr = _label_average(expr)
            direct = gaussian_expectation(expr, fields, cov)
            if not smooth_student or all(set(node.variables) <= {S.lam, S.nu}
                                         for node in direct.atoms(GaussianExpectation)):
                return direct
            try:
                return _integrated_by_parts(expr, fields, cov)
            except (NotImplementedError, ValueError):
                # an integrand the engine cannot take after differentiation: keep the direct
                # expectation, integrated numerically in every field
                return direct

        pieces = {"g2": E(g**2), "g_f": {f: E(g * f) for f in used}, "g2_ff": {}, "g3_f": {}, "g4": sp.S.Zero}
        for i, f in enumerate(used):
            for f2 in used[i:]:
                pieces["g2_ff"][(f, f2)] = E(g**2 * f * f2)
        if any(K != 0 for _, K in _forms(model).values()):
            pieces["g3_f"] = {f: E(g**3 * f) for f in used}
            pieces["g4"] = E(g**4)
        return pieces

    return model._cached("diffusion_pieces", build)


def _integrated_by_parts(expr, fields, cov):
    """``E[expr]`` with every field but ``λ``, ``ν`` removed by Gaussian integration by parts.

    ``expr`` must be polynomial in the removed fields.  The result is a sum of
    covariance monomials times expectations over ``(λ, ν)`` alone, one per
    distinct function, so that entries share their quadrature nodes.

    Examples
    --------
    >>> lam, nu, z = S.lam, S.nu, sp.Symbol("zeta", real=True)
    >>> C, m = sp.symbols("C m", real=True)
    >>> _integrated_by_parts(z**2 * lam**2, [lam, nu, z], sp.Matrix([[S.Q, S.R, C], [S.R, 1, m], [C, m, 1]]))
    2*C**2 + Q
    """
    cov = sp.Matrix(cov)
    index = {field: i for i, field in enumerate(fields)}
    integrand = sp.expand(expr)
    for z in fields:
        if z in (S.lam, S.nu):
            continue
        row = [(cov[index[z], index[x]], x) for x in fields if x != z]
        variance = cov[index[z], index[z]]

        def by_parts(k, F, row=row, variance=variance):
            # E[z^k F] for F free of z, as an integrand free of z
            if k == 0:
                return F
            shifted = sp.expand(sp.Add(*[c * sp.diff(F, x) for c, x in row if c != 0]))
            lower = by_parts(k - 2, F) * (k - 1) * variance if k >= 2 else sp.S.Zero
            return lower + by_parts(k - 1, shifted)

        reduced = sp.S.Zero
        for power, F in sp.collect(integrand, z, evaluate=False).items():
            k = sp.degree(power, z) if power != 1 else 0
            if F.has(z) or (power != 1 and power != z**k):
                raise ValueError(f"{expr} is not polynomial in {z}")
            reduced += by_parts(int(k), F)
        integrand = sp.expand(reduced)
    # the covariances of the removed fields are constants of the remaining expectation
    constants = sorted(set().union(*(cov[index[z], j].free_symbols for z in fields if z not in (S.lam, S.nu)
                                     for j in range(len(fields)))) - {S.Q, S.R}, key=sp.default_sort_key)
    block = [[cov[index[a], index[b]] for b in (S.lam, S.nu)] for a in (S.lam, S.nu)]
    if not constants:
        return gaussian_expectation(integrand, [S.lam, S.nu], block)
    return sp.Add(*[sp.Mul(*[c**e for c, e in zip(constants, monomial)])
                    * gaussian_expectation(F, [S.lam, S.nu], block)
                    for monomial, F in sp.Poly(integrand, *constants).terms()])


def _second_moment(pieces, f, f2):
    key = (f, f2) if (f, f2) in pieces["g2_ff"] else (f2, f)
    return pieces["g2_ff"][key]


def increment_mean(model) -> dict:
    """``{state: E[h_i]}`` in ``Q, R, C, ...``: ``-η E[h_i]`` is the drift of the ODE.

    The diffusion is the covariance of the same ``h_i``; that their mean
    reproduces :meth:`LoRAModel.ode` is the consistency check of the forms
    ``L_i``, ``K_i`` (see the tests).
    """
    pieces = diffusion_pieces(model)
    eta, B = model.lr, model.batch
    out = {}
    for st, (L, K) in _forms(model).items():
        out[st] = sum(c * pieces["g_f"][f] for f, c in L.items()) + eta / B * K * pieces["g2"]
    return out


def derive_diffusion(model, in_terms_of_QR: bool = False) -> sp.Matrix:
    r"""Diffusion matrix ``D`` of the statistics (order ``1/d``), symmetric.

    Parameters
    ----------
    model : LoRAModel
    in_terms_of_QR : bool
        Keep ``Q``, ``R`` and the cross-covariances ``C = Cov(λ, ζ)`` (rank ``r``:
        ``C1 .. Cr``; general: also ``R_perp = Cov(λ, w⊥·x)``) as symbols.

    Returns
    -------
    sympy.Matrix
        ``D[i, j]`` in the order of ``model.states``; over a time ``δt`` the
        statistics gain a covariance ``D δt / d`` around the drift.
    """

    def build():
        from ._ode_derivation import stable_form as _stable_form

        pieces = diffusion_pieces(model)
        forms = _forms(model)
        eta, B = model.lr, model.batch
        states = model.states
        mean = increment_mean(model)
        n = len(states)
        D = sp.zeros(n, n)
        for i, si in enumerate(states):
            Li, Ki = forms[si]
            for j in range(i, n):
                sj = states[j]
                Lj, Kj = forms[sj]
                second = sum(ci * cj * _second_moment(pieces, fi, fj) for fi, ci in Li.items() for fj, cj in Lj.items())
                if Ki != 0:
                    second += eta / B * Ki * sum(c * pieces["g3_f"][f] for f, c in Lj.items())
                if Kj != 0:
                    second += eta / B * Kj * sum(c * pieces["g3_f"][f] for f, c in Li.items())
                if Ki != 0 and Kj != 0:
                    second += (eta / B) ** 2 * Ki * Kj * pieces["g4"]
                D[i, j] = D[j, i] = eta**2 / B * (second - mean[si] * mean[sj])
        if in_terms_of_QR:
            return D
        _, _, values = _fields(model)
        cross = {k: v for k, v in values.items() if k not in (S.Q, S.R)}
        overlaps = {S.P: model.orthogonal_norm2(), S.R: model.overlaps()[S.R]}
        # the same numerically stable form as the drift: Q = P + R², asin -> atan2
        D = D.applyfunc(lambda e: _stable_form(e).xreplace(cross).xreplace(overlaps))
        symbols = tuple(model.states) + tuple(model.parameters)
        # polynomial pairs: the expanded-then-factored form is the readable one
        # (small entries only: factoring degree-20 polynomials costs far more than it shows)
        return D.applyfunc(
            lambda e: sp.factor(sp.expand(e))
            if sp.count_ops(e) < 400 and is_exact(e) and e.is_polynomial(*symbols) else e
        )

    return model._cached(("diffusion", in_terms_of_QR), build)


def diffusion_at_fixed_point(model) -> sp.Matrix:
    """``D`` at ``m = u = 0`` (aligned rank 1) as a function of ``mu``, simplified.

    Only the ``(u, u)`` entry survives: ``D_uu = (η²/B) V`` with
    ``V = E[e0(ν)² σ'(μν)²] + Δ E[σ'(μν)²]``, a one-dimensional integral.
    """

    def build():
        from ._asymptotics import _simplify

        nu, mu = S.nu, S.mu
        sigma, teacher = model.student, model.teacher
        slope = sigma.derivative_at(mu * nu)
        # at m = u = 0, λ = μν and ζ is independent of (λ, ν): E[g² ζ²] = E[g²], E[g ζ] = 0
        V = gaussian_expectation((sigma(mu * nu) - teacher(nu)) ** 2 * slope**2 + model.noise * slope**2, [nu], [[1]])
        D = sp.zeros(len(model.states), len(model.states))
        iu = model.states.index(S.u)
        D[iu, iu] = model.lr**2 / model.batch * _simplify(V)
        return D

    if model.rank != 1 or model.pretraining != "aligned":
        raise ValueError("diffusion_at_fixed_point is derived for aligned pre-training, rank 1")
    return model._cached("diffusion_at_fixed_point", build)


def compile_diffusion(model):
    """Generated code for :func:`derive_diffusion`: ``f(*states, *parameters) -> (n, n, ...)`` array."""
    import numpy as np

    from ._codegen import compile_expressions

    states = model.states
    n = len(states)
    entries = tuple(model.diffusion())
    flat = compile_expressions(states + model.parameters, entries, name="diffusion",
                               doc=f"diffusion matrix D of {model.name} (row-major)")
    scales = [states.index(u) for u in geometry(model.pretraining, model.rank).u]
    # closed forms such as ReLU's divide by sqrt(P), P -> 0 with every u_a (a removable 0/0 at u = 0)
    singular = not all(e.is_polynomial(*states) for e in entries if is_exact(e))

    def diffusion(*values):
        if singular:
            # evaluate at |u_a| >= 1e-7 instead (error O(1e-7), far below the rounding error closer to 0)
            values = list(values)
            for index in scales:
                u = np.asarray(values[index], dtype=float)
                values[index] = np.where(np.abs(u) < 1e-7, np.where(u < 0, -1e-7, 1e-7), u)
        out = flat(*values)
        return out.reshape((n, n) + out.shape[1:])

    diffusion.__doc__ = flat.__doc__
    return diffusion
