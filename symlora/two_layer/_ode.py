r"""The ODE of the two-layer statistics (docs/theory.md §9.3).

Per sample, the error is ``e = c Σ_k σ(λ_k) - y`` and the loss ``e²/2``.
The gradient with respect to ``U_ka`` is ``c e σ'(λ_k) ζ_a``; with respect to
``v_a`` it is ``g_a x`` with ``g_a = c e Σ_k U_ka σ'(λ_k)``.  One step of
``lr = η/d`` followed by ``v_a ← v_a/|v_a|`` gives, in ``t = steps/d`` and as
``d → ∞`` (the squared step of ``v_a`` has norm ``≈ (η²/(dB)) E[g_a²]``
because ``|x|² ≈ d``; for two directions the cross term is
``(η²/(dB)) E[g_a g_b]``),

.. math::

    \dot U_{ka} &= -η c\, E[F_k ζ_a],\\
    \dot M_{aj} &= -η E[g_a ν_j] + η M_{aj} E[g_a ζ_a]
                   - \tfrac{η^2}{2B} M_{aj} E[g_a^2],\\
    \dot q_{ab} &= -η (E[g_a ζ_b] + E[g_b ζ_a]) + η q_{ab}(E[g_a ζ_a] + E[g_b ζ_b])
                   + \tfrac{η^2}{B} E[g_a g_b] - \tfrac{η^2}{2B} q_{ab} (E[g_a^2] + E[g_b^2]),

with ``F_k = e0 σ'(λ_k)``.  Stein's lemma removes the linear fields ``ζ_a``
and ``ν_j``: ``E[F_k ζ_a] = Σ_l C_la A_kl + Σ_j M_aj B_kj`` and
``E[F_k ν_j] = Σ_l R_lj A_kl + B_kj``; ``E[g_a g_b] = c² Σ_kl U_ka U_lb H_kl``
(``A``, ``B``, ``H`` of :mod:`symlora.two_layer._expectations`).  For
``K = K* = 1`` and ``c = c* = 1`` this is exactly the single-index ODE of
:mod:`symlora._ode_derivation`.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["expectation_placeholders", "ode_structure"]


def expectation_placeholders(hidden: int, teacher_hidden: int) -> tuple:
    """Matrices of symbols ``A_kl``, ``B_kj``, ``H_kl`` standing for the expectations."""
    def sym(prefix, k, l, symmetric):
        if symmetric:
            k, l = min(k, l), max(k, l)
        return sp.Symbol(f"{prefix}_{k + 1}{l + 1}" if max(k, l) < 9 else f"{prefix}_{k + 1}_{l + 1}", real=True)

    A = sp.Matrix(hidden, hidden, lambda k, l: sym("A", k, l, True))
    B = sp.Matrix(hidden, teacher_hidden, lambda k, j: sym("B", k, j, False))
    H = sp.Matrix(hidden, hidden, lambda k, l: sym("H", k, l, True))
    return A, B, H


def ode_structure(geometry, D, R, C, A, B, H, readout, lr, batch) -> dict:
    """``{state: d state/dt}`` in the expectation matrices ``A``, ``B``, ``H``.

    ``R`` and ``C`` are the covariances ``Cov(λ, ν)`` and ``Cov(λ, ζ)`` (in
    the statistics or as symbols), ``D`` the pre-training matrix.
    """
    M, U, q = geometry.M, geometry.U, geometry.q
    r, Kt = M.shape
    c, eta = readout, lr
    drag = eta**2 / (2 * batch)
    # E[F_k ζ_a] (K × r) and E[F_k ν_j] (K × K*)
    F_zeta = A * C + B * M.T
    F_nu = A * R + B
    # E[g_a ζ_b] (r × r), E[g_a ν_j] (r × K*), E[g_a g_b] (r × r)
    g_zeta = c * U.T * F_zeta
    g_nu = c * U.T * F_nu
    g_g = c**2 * U.T * H * U
    rhs = {}
    for a in range(r):
        for j in range(Kt):
            rhs[M[a, j]] = -eta * g_nu[a, j] + eta * M[a, j] * g_zeta[a, a] - drag * M[a, j] * g_g[a, a]
    for k in range(U.rows):
        for a in range(r):
            rhs[U[k, a]] = -eta * c * F_zeta[k, a]
    for a in range(r):
        for b in range(a + 1, r):
            rhs[q[a, b]] = (
                -eta * (g_zeta[a, b] + g_zeta[b, a])
                + eta * q[a, b] * (g_zeta[a, a] + g_zeta[b, b])
                + 2 * drag * g_g[a, b]
                - drag * q[a, b] * (g_g[a, a] + g_g[b, b])
            )
    return rhs
