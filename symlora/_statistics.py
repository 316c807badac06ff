r"""The summary statistics of LoRA fine-tuning and the overlaps they determine.

docs/theory.md §3.1: the state of the learner is a handful of scalars (``m``,
``u`` in the aligned rank-1 case), and every Gaussian expectation of the ODE
depends on them only through ``Q = |w|²`` and ``R = w·w*`` (and, for a stable
numerical form, ``P = Q - R²``).  This module says, for each kind of problem
(pre-training kind and rank), which statistics there are and how ``Q``, ``R``
and ``P`` are written in them.  It knows nothing about activations: it is
pure geometry of ``w = w0 + Σ u_a v_a``.

Examples
--------
>>> from symlora._statistics import overlaps, state_symbols
>>> state_symbols("aligned", 1)
(m, u)
>>> overlaps("aligned", 1)
{Q: 2*m*mu*u + mu**2 + u**2, R: m*u + mu}
"""

from __future__ import annotations

import sympy as sp

from . import _symbols as S

__all__ = ["MAX_RANK", "state_symbols", "free_parameters", "overlaps", "orthogonal_norm2"]

#: Largest LoRA rank: the ODE has r(r+1)/2 + 2r (+ r) statistics and its
#: derivation and code grow accordingly.
MAX_RANK = 8


def state_symbols(pretraining: str, rank: int) -> tuple:
    """The summary statistics, in the order the ODE lists them."""
    if rank == 2:
        return (S.m1, S.m2, S.u1, S.u2, S.q12)
    if pretraining == "general":
        return (S.m, S.s, S.u)
    return (S.m, S.u)


def free_parameters(pretraining: str, lr, batch, noise) -> tuple:
    """Symbols left free in the ODE: ``mu`` (and ``mu_perp``), then those of ``η``, ``B``, ``Δ``."""
    params = [S.mu]
    if pretraining == "general":
        params.append(S.mu_perp)
    for symbol, value in ((S.eta, lr), (S.B, batch), (S.Delta, noise)):
        params.extend(sorted(value.free_symbols, key=str) if value != symbol else [symbol])
    return tuple(dict.fromkeys(params))


def overlaps(pretraining: str, rank: int) -> dict:
    """``{Q: |w|², R: w·w*}`` in terms of the statistics and ``mu`` (``mu_perp``)."""
    mu, mp = S.mu, S.mu_perp
    if rank == 2:
        u1, u2, m1, m2, q = S.u1, S.u2, S.m1, S.m2, S.q12
        Q = mu**2 + u1**2 + u2**2 + 2 * mu * (u1 * m1 + u2 * m2) + 2 * u1 * u2 * q
        R = mu + u1 * m1 + u2 * m2
    elif pretraining == "general":
        m, s, u = S.m, S.s, S.u
        Q = mu**2 + mp**2 + u**2 + 2 * u * (mu * m + mp * s)
        R = mu + u * m
    else:
        m, u = S.m, S.u
        Q = mu**2 + u**2 + 2 * mu * u * m
        R = mu + u * m
    return {S.Q: Q, S.R: R}


def orthogonal_norm2(pretraining: str, rank: int) -> sp.Expr:
    """``P = Q - R² = |w - (w·w*) w*|²`` as a manifest sum of squares of the statistics."""
    mu_perp = S.mu_perp
    if rank == 2:
        u1, u2, m1, m2, q = S.u1, S.u2, S.m1, S.m2, S.q12
        return u1**2 * (1 - m1**2) + u2**2 * (1 - m2**2) + 2 * u1 * u2 * (q - m1 * m2)
    if pretraining == "general":
        return mu_perp**2 + 2 * S.u * mu_perp * S.s + S.u**2 * (1 - S.m**2)
    return S.u**2 * (1 - S.m**2)
