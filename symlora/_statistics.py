r"""The summary statistics of LoRA fine-tuning, their geometry and their per-step increments.

docs/theory.md §3.1: the learner ``w = w0 + Σ_a u_a v_a`` (``a = 1..r``, every
``v_a`` a unit vector renormalised after each step) is summarised by a few
scalars: ``m_a = v_a·w*``, ``u_a``, ``q_ab = v_a·v_b`` (``a < b``) and, for
general pre-training ``w0 = μ w* + μ⊥ w⊥``, ``s_a = v_a·w⊥``.  Rank 1 keeps
the short names ``m, u`` (``m, s, u``); rank ``r >= 2`` numbers them
(``m1 .. mr``, ``s1 .. sr``, ``u1 .. ur``, ``q12, q13, ...``).  Every rank is
handled by the same code: nothing below distinguishes ``r = 1`` from
``r = 2`` or ``r = 7`` except the number of symbols.

The module is pure geometry, it knows nothing about activations:

* the *directions* ``w*``, ``w⊥`` and ``v_a`` and their Gram matrix (unit
  norms, ``w*·w⊥ = 0``, the overlaps above);
* ``Q = |w|²``, ``R = w·w*``, ``P = Q - R²`` and the covariances of the
  Gaussian fields ``λ = w·x``, ``ν = w*·x``, ``ξ = w⊥·x``, ``ζ_a = v_a·x``;
* the increment of every statistic in one SGD step (:func:`increments`),
  from which :mod:`symlora._ode_derivation` builds the drift and
  :mod:`symlora._diffusion` the noise.

Examples
--------
>>> from symlora._statistics import overlaps, state_symbols
>>> state_symbols("aligned", 1)
(m, u)
>>> state_symbols("aligned", 3)
(m1, m2, m3, u1, u2, u3, q12, q13, q23)
>>> overlaps("aligned", 1)
{Q: 2*m*mu*u + mu**2 + u**2, R: m*u + mu}
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import sympy as sp

from . import _symbols as S

__all__ = ["MAX_RANK", "check_rank", "state_symbols", "free_parameters", "overlaps", "orthogonal_norm2",
           "Geometry", "geometry", "increments"]

#: Largest LoRA rank: the ODE has ``2r + r(r-1)/2`` statistics (``3r + ...``
#: for general pre-training) and its derivation, generated code and diffusion
#: grow accordingly.
MAX_RANK = 8

#: The fixed unit directions of the problem (keys of :attr:`Geometry.weights`).
STAR, PERP = "w*", "w_perp"


def check_rank(rank) -> int:
    """``rank`` as an integer in ``[1, MAX_RANK]`` (TypeError / ValueError naming ``rank`` otherwise)."""
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise TypeError(f"rank must be an integer, got {rank!r}")
    if not 1 <= rank <= MAX_RANK:
        raise ValueError(f"rank must lie in [1, {MAX_RANK}] (the LoRA rank r >= 1), got {rank}")
    return rank


def _numbered(base: str, rank: int) -> tuple:
    names = [base] if rank == 1 else [f"{base}{a}" for a in range(1, rank + 1)]
    return tuple(sp.Symbol(name, real=True) for name in names)


class Geometry:
    """Statistics and Gram matrix of the directions for one pre-training kind and rank.

    Attributes
    ----------
    rank : int
    general : bool
        ``w0 = μ w* + μ⊥ w⊥`` (else ``w0 = μ w*``).
    m, s, u : tuple of sympy.Symbol
        Per adapter ``a``; ``s`` is empty for aligned pre-training.
    q : dict
        ``{(a, b): q_ab}`` for ``a < b`` (0-based).
    directions : tuple
        ``(w*, [w⊥,] 0, 1, ..., r-1)``: ``w*``, ``w⊥`` by name, ``v_a`` by index.
    weights : dict
        ``w = Σ weights[k] k`` over the directions: ``μ``, ``μ⊥``, ``u_a``.
    """

    def __init__(self, pretraining: str, rank: int):
        self.rank = rank
        self.general = pretraining == "general"
        self.m = _numbered("m", rank)
        self.s = _numbered("s", rank) if self.general else ()
        self.u = _numbered("u", rank)
        self.q = {(a, b): sp.Symbol(f"q{a + 1}{b + 1}", real=True) for a, b in combinations(range(rank), 2)}
        fixed = (STAR, PERP) if self.general else (STAR,)
        self.directions = fixed + tuple(range(rank))
        self.weights = {STAR: S.mu, **({PERP: S.mu_perp} if self.general else {}),
                        **{a: self.u[a] for a in range(rank)}}

    @property
    def states(self) -> tuple:
        """``m``'s, ``s``'s, ``u``'s, then ``q``'s: the order of the ODE."""
        return self.m + self.s + self.u + tuple(self.q.values())

    def gram(self, i, j) -> sp.Expr:
        """Inner product of two directions (``w*``, ``w⊥`` or an adapter index)."""
        if i == j:
            return sp.S.One
        if isinstance(i, int) and isinstance(j, int):
            return self.q[min(i, j), max(i, j)]
        if isinstance(i, int):
            i, j = j, i
        if isinstance(j, str):
            return sp.S.Zero  # w*·w⊥
        return self.m[j] if i == STAR else self.s[j]

    def with_w(self, direction) -> sp.Expr:
        """``w·k`` for a direction ``k`` (``R`` for ``w*``, ``C_a`` for ``v_a``)."""
        return sp.Add(*[weight * self.gram(k, direction) for k, weight in self.weights.items()])

    def overlaps(self) -> dict:
        """``{Q: |w|², R: w·w*}``."""
        Q = sp.Add(*[wi * wj * self.gram(i, j) for i, wi in self.weights.items() for j, wj in self.weights.items()])
        return {S.Q: Q, S.R: self.with_w(STAR)}

    def orthogonal_norm2(self) -> sp.Expr:
        """``P = |w - (w·w*) w*|²`` as a sum over pairs of ``Gram - (w*-overlaps)``: no cancellation."""
        rest = [(k, weight) for k, weight in self.weights.items() if k != STAR]
        return sp.Add(*[wi * wj * (self.gram(i, j) - self.gram(i, STAR) * self.gram(j, STAR))
                        for i, wi in rest for j, wj in rest])


@lru_cache(maxsize=None)
def geometry(pretraining: str, rank: int) -> Geometry:
    """The :class:`Geometry` of a pre-training kind and rank (cached: it is immutable in use)."""
    return Geometry(pretraining, check_rank(rank))


def state_symbols(pretraining: str, rank: int) -> tuple:
    """The summary statistics, in the order the ODE lists them."""
    return geometry(pretraining, rank).states


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
    return geometry(pretraining, rank).overlaps()


def orthogonal_norm2(pretraining: str, rank: int) -> sp.Expr:
    """``P = Q - R² = |w - (w·w*) w*|²`` in the statistics (``u²(1 - m²)`` at rank 1, aligned)."""
    return geometry(pretraining, rank).orthogonal_norm2()


def increments(pretraining: str, rank: int) -> dict:
    r"""``{state: (L, K)}``: the increment of every statistic in one SGD step.

    With ``g = (σ(λ) - y) σ'(λ)`` per sample and ``lr = η/d``, a step changes
    a statistic ``X`` by ``-(η/(d B)) Σ_b (g_b L(x_b) + (η/B) K g_b²) + O(d^{-2})``
    where ``L`` is a linear form in the directions (returned as
    ``{direction: coefficient}``, the field being ``direction·x``) and ``K`` a
    polynomial in the statistics:

    * ``u_a``: ``L = v_a`` (the gradient of ``u_a``), ``K = 0``;
    * the overlap ``v_a·z`` with a fixed unit ``z`` (``m_a``: ``z = w*``;
      ``s_a``: ``z = w⊥``): ``L = u_a (z - (v_a·z) v_a)`` (the gradient of
      ``v_a``, ``-lr u_a g x``, projected off ``v_a`` by the renormalisation) and
      ``K = (v_a·z) u_a²/2`` (the renormalisation shrinks ``v_a`` by the squared
      step ``|δ_a|² = η² u_a² Σ_b g_b²/(B² d)``, of order ``1/d`` like the
      gradient term);
    * ``q_ab = v_a·v_b``: each direction moves relative to the other, so
      ``L`` is the sum of the two overlap forms
      ``u_a (v_b - q v_a) + u_b (v_a - q v_b)``, and ``K`` adds to their
      renormalisations ``q (u_a² + u_b²)/2`` the product of the two steps,
      ``δ_a·δ_b = η² u_a u_b Σ_b g_b²/(B² d)``: ``K = q (u_a² + u_b²)/2 - u_a u_b``.
    """
    geo = geometry(pretraining, rank)

    def overlap_form(a, z):
        overlap = geo.gram(a, z)
        return {z: geo.u[a], a: -geo.u[a] * overlap}, overlap * geo.u[a] ** 2 / 2

    fixed = (STAR, PERP) if geo.general else (STAR,)
    forms = {}
    for z, overlaps_with_z in zip(fixed, (geo.m, geo.s)):
        forms.update({overlaps_with_z[a]: overlap_form(a, z) for a in range(rank)})
    forms.update({geo.u[a]: ({a: sp.S.One}, sp.S.Zero) for a in range(rank)})
    for (a, b), q in geo.q.items():
        (La, Ka), (Lb, Kb) = overlap_form(a, b), overlap_form(b, a)
        L = {k: La.get(k, 0) + Lb.get(k, 0) for k in (a, b)}
        forms[q] = (L, Ka + Kb - geo.u[a] * geo.u[b])
    return {state: forms[state] for state in geo.states}
