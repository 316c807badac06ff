r"""Summary statistics of a two-layer student with a LoRA adapter, and the covariances they fix.

docs/theory.md §9.2 (§3.1 extended to ``K`` hidden units).  The student's first
layer is ``W = W0 + U V`` with ``W0 = D W*`` (``D`` a ``K × K*`` matrix of
pre-training overlaps, ``W*`` the ``K*`` orthonormal teacher rows), ``U`` a
``K × r`` matrix of scales and ``V`` the ``r`` unit LoRA directions ``v_a``.
With ``ν_j = w*_j·x``, ``ζ_a = v_a·x`` and ``λ_k = w_k·x``, every Gaussian
expectation of the ODE depends on the state only through

.. math::

    M_{aj} = v_a·w^*_j,\quad q_{ab} = v_a·v_b\ (a < b),\quad U_{ka},

via the covariances

.. math::

    Q = D D^T + D M^T U^T + U M D^T + U q U^T,\quad R = D + U M,\quad
    C = \mathrm{Cov}(λ, ζ) = D M^T + U q,

(``q`` with unit diagonal) and ``Cov(ζ_a, ν_j) = M_{aj}``,
``Cov(ν_i, ν_j) = δ_{ij}``.  This module is pure geometry: it knows nothing
about activations.

Examples
--------
>>> g = Geometry(hidden=1, teacher_hidden=1, rank=1)
>>> g.states
(M11, U11)
>>> g.covariances(sp.Matrix([[sp.Symbol("mu")]]))[0]
Matrix([[2*M11*U11*mu + U11**2 + mu**2]])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

__all__ = ["Geometry", "field_symbols", "covariance_symbols"]


def _name(prefix: str, i: int, j: int) -> str:
    # one-based indices, run together while they stay single digits (M11, U21, q12)
    return f"{prefix}{i + 1}{j + 1}" if max(i, j) < 9 else f"{prefix}{i + 1}_{j + 1}"


@dataclass(frozen=True)
class Geometry:
    """Sizes of the problem and the symbols of its statistics.

    Attributes
    ----------
    hidden, teacher_hidden, rank : int
        ``K``, ``K*`` and the LoRA rank ``r``.
    """

    hidden: int
    teacher_hidden: int
    rank: int

    @cached_property
    def M(self) -> sp.Matrix:
        """``M_{aj} = v_a·w*_j``, shape ``r × K*``."""
        return sp.Matrix(self.rank, self.teacher_hidden,
                         lambda a, j: sp.Symbol(_name("M", a, j), real=True))

    @cached_property
    def U(self) -> sp.Matrix:
        """``U_{ka}``, shape ``K × r``."""
        return sp.Matrix(self.hidden, self.rank, lambda k, a: sp.Symbol(_name("U", k, a), real=True))

    @cached_property
    def q(self) -> sp.Matrix:
        """The Gram matrix ``v_a·v_b`` (unit diagonal, symbols ``q_ab`` above it)."""
        def entry(a, b):
            if a == b:
                return sp.S.One
            lo, hi = min(a, b), max(a, b)
            return sp.Symbol(_name("q", lo, hi), real=True)

        return sp.Matrix(self.rank, self.rank, entry)

    @property
    def overlap_symbols(self) -> tuple:
        """``q_ab``, ``a < b``, row by row."""
        return tuple(self.q[a, b] for a in range(self.rank) for b in range(a + 1, self.rank))

    @property
    def states(self) -> tuple:
        """All statistics in ODE order: ``M`` row by row, then ``U`` row by row, then ``q_ab``."""
        return tuple(self.M) + tuple(self.U) + self.overlap_symbols

    def covariances(self, D: sp.Matrix) -> tuple:
        """``(Q, R, C)`` of the module docstring for pre-training matrix ``D``."""
        M, U, q = self.M, self.U, self.q
        Q = D * D.T + D * M.T * U.T + U * M * D.T + U * q * U.T
        R = D + U * M
        C = D * M.T + U * q
        return Q.applyfunc(sp.expand), R.applyfunc(sp.expand), C.applyfunc(sp.expand)

    def fixed_point(self) -> dict:
        """The uninformative point ``M = 0``, ``U = 0`` (``W = W0``), with orthogonal directions ``q = 0``."""
        return {s: sp.S.Zero for s in self.states}


def field_symbols(hidden: int, teacher_hidden: int) -> tuple:
    """The local fields ``(λ_1..λ_K)`` and ``(ν_1..ν_K*)`` as real symbols."""
    lam = tuple(sp.Symbol(f"lambda{k + 1}", real=True) for k in range(hidden))
    nu = tuple(sp.Symbol(f"nu{j + 1}", real=True) for j in range(teacher_hidden))
    return lam, nu


def covariance_symbols(hidden: int, teacher_hidden: int) -> tuple:
    """Symbols for ``Q_kl = Cov(λ_k, λ_l)`` (symmetric) and ``R_kj = Cov(λ_k, ν_j)``.

    The ODE is first written in these (the compact form for display), then
    they are replaced by :meth:`Geometry.covariances`.
    """
    Q = sp.Matrix(hidden, hidden, lambda k, l: sp.Symbol(_name("Q", min(k, l), max(k, l)), real=True))
    R = sp.Matrix(hidden, teacher_hidden, lambda k, j: sp.Symbol(_name("R", k, j), real=True))
    return Q, R
