r"""Two-dimensional Gaussian expectations of separable integrands, in one dimension.

Every expectation of the ODE is a sum of products ``f_i(X) g_j(Y)`` of
functions of one variable each (the activations act on single fields).  For
``(X, Y)`` centred Gaussian with variances ``a, b`` and correlation
``ρ = c/√(ab)``, Mehler's formula turns the two-dimensional integral into a
sum of products of one-dimensional ones:

.. math::

    E[f(X) g(Y)] = \sum_{k \ge 0} ρ^k\, \hat f_k \hat g_k,\qquad
    \hat f_k = E[f(\sqrt{a} Z) h_k(Z)],\quad h_k = He_k/\sqrt{k!},

with ``Z ~ N(0, 1)``.  The coefficients of all ``k <= K`` come from a single
one-dimensional rule in ``Z`` (composite Gauss–Legendre on fixed panels, the
Hermite table precomputed once).

Evaluation order
----------------
:class:`MehlerSums` evaluates many such sums at once (all expectations of an
ODE right-hand side that share a covariance): with ``w_z`` the rule's
weights, the truncated series is

.. math::

    \sum_{k \le K} ρ^k \hat f_k \hat g_k
    = \sum_z f(\sqrt{a} z)\, G_ρ(z),\qquad
    G_ρ(z) = w_z \sum_{k \le K} h_k(z)\, ρ^k \hat g_k,

the same finite sum in another order: only the right-hand functions are
expanded in Hermite coefficients, and their coefficients are computed once
when ``Var Y`` does not depend on the state (aligned pre-training: ``b = 1``).
A call then evaluates each left function once on the rule's nodes, forms
``G_ρ`` with one matrix product per batch and contracts: a handful of numpy
calls whatever the number of expectations.

Error bound
-----------
Two parts, added (:meth:`MehlerSums.with_error`):

* truncation: by Cauchy–Schwarz,
  ``|Σ_{k>K} ρ^k f_k g_k| <= |ρ|^{K+1} sqrt(T_f T_g)`` with
  ``T_f = E[f²] - Σ_{k<=K} f_k²`` (Parseval), computed with the same rule
  and floored at a few ulps of ``E[f²]``;
* the one-dimensional rule: the whole sum is computed with ``n`` and ``2n``
  nodes per panel and the difference is the (conservative) error of the
  finer rule.

The series converges geometrically in ``k`` for analytic activations
(coefficients decaying like ``exp(-d √(2k))``, ``d`` the half-width of the
strip of analyticity), so this route is used for integrands without kinks;
kinked ones keep the kink-aligned quadrature of :mod:`symlora._quadrature`.
Each state is summed to the terms its own ``|ρ|`` needs; where even
:data:`MAX_TERMS` terms fall short (``|ρ|`` near 1 with a wide ``X``), the
expectation is conditioned on ``Y`` (:mod:`symlora._near_unit_correlation`).
This module is free of SymPy (generated code uses it on its own).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._near_unit_correlation import coarse_nodes, conditioned_sums, inner_nodes, series_error_model

__all__ = ["MehlerSums", "separable_expectation", "separable_with_error"]

#: Panel edges of the one-dimensional rule in standard deviations: beyond
#: ±12 the factor sqrt(φ) that every Hermite coefficient carries is < 1e-15.
_MEHLER_EDGES = (-12.0, -9.0, -7.0, -5.0, -3.5, -2.25, -1.0, 0.0, 1.0, 2.25, 3.5, 5.0, 7.0, 9.0, 12.0)

#: Gauss–Legendre nodes per panel of the rule (values) and of the coarser
#: rule whose difference estimates the rule's error.
MEHLER_NODES = 32
COARSE_NODES = 24

#: Largest number of Mehler terms.
MAX_TERMS = 160

#: Default target error (absolute, relative to max(1, |E|)).
SEPARABLE_TOLERANCE = 1e-13

_EPS = np.finfo(float).eps


@functools.lru_cache(maxsize=8)
def _mehler_rule(nodes: int):
    """Standard-normal rule ``(z, w)`` and the table ``w h_k(z)`` (``(N, MAX_TERMS + 1)``, one column per k)."""
    t, w = np.polynomial.legendre.leggauss(nodes)
    t, w = (t + 1) / 2, w / 2
    zs, ws = [], []
    for lo, hi in zip(_MEHLER_EDGES[:-1], _MEHLER_EDGES[1:]):
        z = lo + t * (hi - lo)
        zs.append(z)
        ws.append(w * (hi - lo) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi))
    z, w = np.concatenate(zs), np.concatenate(ws)
    # normalised probabilists' Hermite polynomials by their three-term recurrence
    table = np.empty((MAX_TERMS + 1, z.size))
    table[0] = 1.0
    table[1] = z
    for k in range(1, MAX_TERMS):
        table[k + 1] = (z * table[k] - np.sqrt(k) * table[k - 1]) / np.sqrt(k + 1)
    return z, w, np.ascontiguousarray((table * w).T)


@functools.lru_cache(maxsize=512)
def _mehler_table(nodes: int, terms: int):
    """``(N, terms + 1)`` and its transpose, contiguous: values ``(..., N)`` @ table = coefficients."""
    table = np.ascontiguousarray(_mehler_rule(nodes)[2][:, : terms + 1])
    return table, np.ascontiguousarray(table.T)


@functools.lru_cache(maxsize=512)
def _parity_table(nodes: int, terms: int, first: int):
    """Rows ``k = first, first + 2, ... <= terms`` of the transposed table, contiguous."""
    return np.ascontiguousarray(_mehler_rule(nodes)[2][:, first : terms + 1 : 2].T)


_POWERS = np.arange(MAX_TERMS + 1, dtype=float)

#: The numbers of terms a state may be given (few, so that states group and tables are shared).
_LEVEL_LIST = [4, 8, 12, 16, 20, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, MAX_TERMS]
_LEVELS = np.array(_LEVEL_LIST)

def _terms_for(worst, tol):
    """The least level of :data:`_LEVELS` with ``worst^K <= tol/10`` (all :data:`MAX_TERMS` at ``|ρ| = 1``).

    Plain Python: numpy's overhead on one number costs more than the sums it selects.
    """
    if not worst < 1:
        return MAX_TERMS
    needed = math.log(tol / 10) / math.log(max(worst, 1e-300))
    return next((level for level in _LEVEL_LIST if level >= needed), MAX_TERMS)


#: States per block of a batch (the arrays of a block stay in the processor's cache).
_BLOCK = 16


def _stack(values, shape):
    """The functions' values as one array ``(count,) + shape`` (broadcast where a function returned less)."""
    try:
        array = np.array(values, dtype=float)
        if array.shape[1:] == shape:
            return array
    except ValueError:
        pass
    return np.stack([np.broadcast_to(np.asarray(v, dtype=float), shape) for v in values])


def _check_nodes(nodes):
    if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or not 2 <= nodes <= 256:
        raise ValueError(f"nodes must be an integer in [2, 256], got {nodes!r}")


class MehlerSums:
    """``out_n = Σ_{i,j} C[n, i, j] E[f_i(X) g_j(Y)]`` for several outputs ``n`` at once.

    Parameters
    ----------
    left, right : callable or None
        ``left(x, *args)`` returns the sequence of the ``p`` functions
        ``f_i(x, *args)`` (vectorised), ``right`` the ``q`` functions
        ``g_j``; None when there are none.
    combination : array_like, shape ``(n, p + 1, q + 1)``
        Coefficients ``C``; index ``p`` (``q``) stands for the constant 1.
    right_variance : float, optional
        ``Var Y`` when it is the same for every call and the ``g_j`` take no
        ``args``: their Hermite coefficients are then computed once.
    right_parity : sequence of {1, -1, 0}, optional
        With ``right_variance``: ``g_j`` even (1), odd (-1) or neither (0).
        The coefficients that vanish by symmetry are set to zero and skipped.

    Examples
    --------
    >>> sums = MehlerSums(lambda x: [np.tanh(x)], lambda y: [np.tanh(y)], [[[1.0, 0.0], [0.0, 0.0]]], 1.0)
    >>> round(float(sums(1.0, 1.0, 0.5)[0]), 12)  # E[tanh X tanh Y], Var 1, Cov 1/2
    0.186324413203
    """

    def __init__(self, left, right, combination, right_variance=None, right_parity=None):
        combination = np.asarray(combination, dtype=float)
        if combination.ndim != 3 or combination.shape[0] < 1:
            raise ValueError(f"combination must have shape (outputs, p + 1, q + 1), got {combination.shape}")
        self.left, self.right = left, right
        self.p, self.q = combination.shape[1] - 1, combination.shape[2] - 1
        self.combination = combination
        self.right_variance = None if right_variance is None else float(right_variance)
        self.pairs = bool(np.any(combination[:, : self.p, : self.q]))
        # (n, p * (q + 1)): what multiplies the sums with a left function; and the left constant's rows
        self._main = np.ascontiguousarray(combination[:, : self.p, :].reshape(combination.shape[0], -1))
        self._pairs = np.ascontiguousarray(combination[:, : self.p, : self.q].reshape(combination.shape[0], -1))
        self._ones = np.ascontiguousarray(combination[:, : self.p, self.q])
        self._fixed = {}
        # right functions by parity (even ones have only even-k coefficients, odd ones only odd):
        # [(rows, first k or None), ...]; used with fixed coefficients only
        parity = [0] * self.q if right_parity is None or self.right_variance is None else list(right_parity)
        if len(parity) != self.q:
            raise ValueError(f"right_parity needs one entry per right function ({self.q}), got {len(parity)}")
        self._classes = [(np.flatnonzero([p == kind for p in parity]), first)
                         for kind, first in ((1, 0), (-1, 1), (0, None)) if kind in parity]

    # --- the pieces ---------------------------------------------------------------

    def _values(self, func, count, variance, args, shape, z):
        """``(count,) + shape + (N,)`` values of a side's functions at ``sqrt(variance) z``."""
        point = np.sqrt(np.clip(variance, 0.0, None))[..., None] * z
        if point.shape != shape + z.shape:
            point = np.broadcast_to(point, shape + z.shape)
        return _stack(func(point, *[e[..., None] for e in args]), shape + z.shape)

    def _right_coefficients(self, nodes, b, args, shape, terms):
        """Hermite coefficients ``(q + 1, ..., terms + 1)`` of the right functions, the constant last (e_0)."""
        if self.right_variance is not None:
            if nodes not in self._fixed:
                z, _, table = _mehler_rule(nodes)
                fixed = np.zeros((self.q + 1, MAX_TERMS + 1))
                if self.q:
                    fixed[: self.q] = self._values(self.right, self.q, np.float64(self.right_variance), (), (), z) @ table
                for rows, first in self._classes:
                    if first is not None:
                        fixed[rows[:, None], np.arange(1 - first, MAX_TERMS + 1, 2)] = 0.0  # zero by symmetry
                fixed[self.q, 0] = 1.0
                self._fixed[nodes] = fixed
            return self._fixed[nodes][:, : terms + 1]
        table, _ = _mehler_table(nodes, terms)
        coefficients = np.zeros((self.q + 1,) + shape + (terms + 1,))
        if self.q:
            z = _mehler_rule(nodes)[0]
            coefficients[: self.q] = self._values(self.right, self.q, b, args, shape, z) @ table
        coefficients[self.q, ..., 0] = 1.0
        return coefficients

    def _prepare(self, a, b, c, args, tol):
        arrays = np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in (a, b, c, *args)])
        a, b, c, args = arrays[0], arrays[1], arrays[2], arrays[3:]
        ab = a * b
        positive = ab > 0
        rho = np.clip(np.where(positive, c / np.sqrt(np.where(positive, ab, 1.0)), 0.0), -1.0, 1.0)
        return a, b, rho, args, a.shape

    def _state_terms(self, rho, tol):
        """Mehler terms for each state: ``|ρ|^K <= tol/10``, rounded up to a level of :data:`_LEVELS`.

        A state given more terms than its own (the largest of a block of a
        batch) is only more accurate: the truncation bound of
        :meth:`with_error` at ``K`` holds for every larger number of terms
        (the Parseval deficits decrease).
        """
        rho = np.abs(np.asarray(rho, dtype=float))
        if not self.pairs:
            return np.zeros(rho.shape, dtype=int)
        return np.vectorize(_terms_for, otypes=[int])(rho, tol)

    # --- evaluation --------------------------------------------------------------

    def __call__(self, a, b, c, args=(), tol=SEPARABLE_TOLERANCE, nodes=MEHLER_NODES):
        """Values ``(n,) + broadcast shape`` with the rule of ``nodes`` nodes per panel (no error estimate)."""
        if not args and self.right_variance is not None and all(isinstance(v, (float, int)) for v in (a, b, c)):
            return self._single(float(a), float(b), float(c), tol, nodes)
        a, b, rho, args, shape = self._prepare(a, b, c, args, tol)
        a, b, rho, *args = [v.reshape(-1) for v in (a, b, rho, *args)]
        out = np.empty((self.combination.shape[0], a.size))
        inner = self._routes(a, b, rho, tol)
        for level in np.unique(inner[inner > 0]) if inner.any() else ():
            chosen = inner == level
            out[:, chosen] = self._conditioned(a[chosen], b[chosen], rho[chosen], [e[chosen] for e in args],
                                               nodes, int(level))
        # Mehler's series in blocks of states small enough that the (functions x states x nodes) arrays
        # stay in cache, in order of |ρ| so that a block's states need about the same number of terms
        series = np.flatnonzero(inner == 0)
        if series.size > _BLOCK:
            series = series[np.argsort(np.abs(rho[series]), kind="stable")]
        z = _mehler_rule(nodes)[0]
        whole = series.size == a.size <= _BLOCK  # one block of every state: no copies
        for start in range(0, series.size, _BLOCK):
            block = slice(None) if whole else series[start : start + _BLOCK]
            a_, b_, rho_, args_ = a[block], b[block], rho[block], [e[block] for e in args]
            left = self._values(self.left, self.p, a_, args_, a_.shape, z) if self.p else None  # (p, s, N)
            # the block's largest |ρ| sets its terms (the levels grow with |ρ|)
            terms = _terms_for(float(np.max(np.abs(rho_))), tol) if self.pairs else 0
            out[:, block] = self._series(a_, b_, rho_, args_, left, terms, nodes)
        return out.reshape(out.shape[:1] + shape)

    def _routes(self, a, b, rho, tol):
        """Gauss–Hermite nodes of the states conditioned on ``Y``, 0 for Mehler's series."""
        return inner_nodes(a, b, rho, tol) if self.pairs else np.zeros(rho.shape, dtype=int)

    def _conditioned(self, a, b, rho, args, nodes, inner):
        """:func:`~symlora._near_unit_correlation.conditioned_sums` on the rule of ``nodes`` per panel."""
        z, w, _ = _mehler_rule(nodes)
        right_values = None
        if self.right_variance is not None and self.q:
            key = ("right values", nodes)
            if key not in self._fixed:
                self._fixed[key] = self._values(self.right, self.q, np.float64(self.right_variance), (), (), z)
            right_values = self._fixed[key]
        return conditioned_sums(self, a, b, rho, args, (z, w), inner, right_values)

    def _series(self, a, b, rho, args, left, terms, nodes):
        """Mehler's series to ``terms`` terms, ``(n, s)``; ``left`` the left values on the rule (or None)."""
        q = self.q
        z, w, _ = _mehler_rule(nodes)
        right = self._right_coefficients(nodes, b, args, a.shape, terms)  # (q + 1, [s,] K + 1)
        # the left constant times E[g_j] (the k = 0 coefficients)
        out = np.tensordot(self.combination[:, self.p, :], right[..., 0], axes=(1, 0))
        out = out[:, None] if out.ndim == 1 else out
        if left is None:
            return np.broadcast_to(out, (out.shape[0], a.size))
        if right.ndim == 2:
            right = right[:, None, :]
        # G_ρ on the nodes: w_z Σ_k h_k(z) ρ^k g_jk for each right function, then w_z for the constant
        powers = rho[:, None] ** _POWERS[: terms + 1]
        constant = np.broadcast_to(w, (1,) + a.shape + z.shape)
        kernel = np.concatenate([self._kernel(right, powers, terms, nodes), constant]) if q else constant
        # per state (p, N) @ (N, q + 1), then the combination
        sums = np.matmul(left.transpose(1, 0, 2), kernel.transpose(1, 2, 0))  # (s, p, q + 1)
        return (sums.reshape(a.size, -1) @ self._main.T).T + out

    def _single(self, a, b, c, tol, nodes):
        """:meth:`__call__` at one state with the right coefficients fixed: the same sums, fewest numpy calls."""
        rho = c / math.sqrt(a * b) if a * b > 0 else 0.0
        rho = min(1.0, max(-1.0, rho))
        z, w, _ = _mehler_rule(nodes)
        if not self.p:
            return self._constant_out(nodes, self._right_coefficients(nodes, b, (), (), 0)).copy()
        # the route's model, in plain Python: only near unit correlation is inner_nodes worth calling
        if self.pairs and series_error_model(abs(rho), a, b) > tol:
            inner = int(self._routes(np.array([a]), np.array([b]), np.array([rho]), tol)[0])
            if inner:
                return self._conditioned(np.array([a]), np.array([b]), np.array([rho]), [], nodes, inner)[:, 0]
        left = _stack(self.left(math.sqrt(max(a, 0.0)) * z), (z.size,))
        terms = _terms_for(abs(rho), tol) if self.pairs else 0
        right = self._right_coefficients(nodes, b, (), (), terms)
        out = self._constant_out(nodes, right)
        means = left @ w
        if not self.q:
            return self._ones @ means + out
        # one product over all terms (the coefficients zero by symmetry add nothing): at one state
        # a second product costs more call overhead than the half of the terms it saves
        kernel = (right[: self.q] * (rho ** _POWERS[: terms + 1])) @ _mehler_table(nodes, terms)[1]
        return self._pairs @ (left @ kernel.T).reshape(-1) + self._ones @ means + out

    def _kernel(self, right, powers, terms, nodes):
        """``w_z Σ_k h_k(z) ρ^k g_jk`` of the right functions on the nodes, ``(q,) + states + (N,)``.

        For functions of one parity only the non-zero half of the terms is summed.
        """
        q = self.q
        if len(self._classes) <= 1 and (not self._classes or self._classes[0][1] is None):
            return (right[:q] * powers) @ _mehler_table(nodes, terms)[1]
        kernel = np.empty((q,) + powers.shape[:-1] + (_mehler_rule(nodes)[0].size,))
        for rows, first in self._classes:
            if first is None:
                kernel[rows] = (right[rows] * powers) @ _mehler_table(nodes, terms)[1]
            else:
                kernel[rows] = (right[rows][..., first::2] * powers[..., first::2]) @ _parity_table(nodes, terms, first)
        return kernel

    def _constant_out(self, nodes, right):
        # Σ_j C[n, p, j] E[g_j]: fixed per rule
        key = ("out", nodes)
        if key not in self._fixed:
            self._fixed[key] = self.combination[:, self.p, :] @ right[:, 0]
        return self._fixed[key]

    def with_error(self, a, b, c, args=(), tol=SEPARABLE_TOLERANCE):
        """Values and error bounds (truncation + rule difference + rounding), each ``(n,) + broadcast shape``.

        Each state is summed to its own number of terms (:meth:`_state_terms`,
        what a single call uses; a batch may give a state more, which only
        lowers the truncation error the bound covers).
        """
        a, b, rho, args, shape = self._prepare(a, b, c, args, tol)
        C = self.combination
        values = {}
        for nodes in (MEHLER_NODES, COARSE_NODES):  # the finer rule first: it sets the terms
            z, w, _ = _mehler_rule(nodes)
            square = np.ones((self.p + 1,) + shape)
            if self.p:
                f = self._values(self.left, self.p, a, args, shape, z)
                square[: self.p] = (f * f) @ w
            if nodes == MEHLER_NODES:
                state_terms = self._state_terms(rho, tol)
                terms = int(state_terms.max()) if state_terms.size else 0
                kept = _POWERS[: terms + 1] <= state_terms[..., None]  # the terms each state sums
                powers = np.where(kept, rho[..., None] ** _POWERS[: terms + 1], 0.0)
            table, _ = _mehler_table(nodes, terms)
            right = self._right_coefficients(nodes, b, args, shape, terms)
            if right.ndim == 2:  # coefficients fixed once per rule: the same for every state
                right = right.reshape((self.q + 1,) + (1,) * len(shape) + (terms + 1,))
            right = np.broadcast_to(right, (self.q + 1,) + shape + (terms + 1,))
            left = np.zeros((self.p + 1,) + shape + (terms + 1,))
            if self.p:
                left[: self.p] = f @ table
            left[self.p, ..., 0] = 1.0
            sums = np.einsum("i...k,j...k->ij...", left * powers, right)  # (p + 1, q + 1) + shape
            values[nodes] = np.tensordot(C, sums, axes=([1, 2], [0, 1]))
            if nodes == MEHLER_NODES:
                fine_left, fine_right, left_square = left, right, square
        # the finer rule's Parseval deficits (over the terms each state sums) and second moments
        z, w, _ = _mehler_rule(MEHLER_NODES)
        right_square = np.ones((self.q + 1,) + shape)
        if self.q:
            g = (self._values(self.right, self.q, np.float64(self.right_variance), (), shape, z)
                 if self.right_variance is not None else self._values(self.right, self.q, b, args, shape, z))
            right_square[: self.q] = (g * g) @ w
        deficit_left = np.maximum(left_square - np.sum(fine_left**2 * kept, axis=-1), 0.0) + 1e-15 * left_square
        deficit_right = np.maximum(right_square - np.sum(fine_right**2 * kept, axis=-1), 0.0) + 1e-15 * right_square
        deficit_left[self.p], deficit_right[self.q] = 0.0, 0.0  # the constant 1 has no tail
        weights = np.abs(C)
        tail = np.abs(rho) ** (state_terms + 1.0) * np.tensordot(
            weights, np.sqrt(deficit_left[:, None] * deficit_right[None, :]), axes=([1, 2], [0, 1]))
        rounding = 16 * _EPS * np.tensordot(
            weights, np.sqrt(left_square[:, None] * right_square[None, :]), axes=([1, 2], [0, 1]))
        error = np.abs(values[MEHLER_NODES] - values[COARSE_NODES]) + tail + rounding
        values = values[MEHLER_NODES]
        inner = self._routes(a, b, rho, tol)
        if inner.any():
            # the states conditioned on Y: the same value as __call__, bounded by the difference to
            # the coarser rule in both directions (plus rounding)
            values, error = np.array(values), np.array(error)
            for level in np.unique(inner[inner > 0]):
                chosen = inner == level
                states = (a[chosen], b[chosen], rho[chosen], [e[chosen] for e in args])
                fine = self._conditioned(*states, MEHLER_NODES, int(level))
                coarse = self._conditioned(*states, COARSE_NODES, coarse_nodes(level))
                values[:, chosen] = fine
                error[:, chosen] = np.abs(fine - coarse) + rounding[:, chosen]
        return np.asarray(values, dtype=float), np.asarray(error, dtype=float)


def _from_callables(left, right):
    """A :class:`MehlerSums` with one output, ``Σ_j left[j] · right[j]`` (None: the constant 1)."""
    if len(left) != len(right) or not left:
        raise ValueError("left and right must be non-empty sequences of the same length")
    lefts = list(dict.fromkeys(f for f in left if f is not None))
    rights = list(dict.fromkeys(g for g in right if g is not None))
    combination = np.zeros((1, len(lefts) + 1, len(rights) + 1))
    for f, g in zip(left, right):
        combination[0, len(lefts) if f is None else lefts.index(f),
                    len(rights) if g is None else rights.index(g)] += 1.0

    def side(functions):
        return (lambda x, *args: [func(x, *args) for func in functions]) if functions else None

    return MehlerSums(side(lefts), side(rights), combination)


def separable_with_error(left, right, a, b, c, args=(), tol=SEPARABLE_TOLERANCE):
    """``Σ_j E[left_j(X) right_j(Y)]`` and an error bound.

    Parameters
    ----------
    left, right : sequences of callables or None
        ``left[j](x, *args)`` and ``right[j](y, *args)`` (vectorised;
        ``None`` stands for the constant 1).
    a, b, c : array_like
        ``Var X``, ``Var Y``, ``Cov(X, Y)`` (broadcast together with ``args``:
        one expectation per element).
    args : sequence of array_like
        Extra arguments of the functions.
    tol : float
        Target error, relative to ``max(1, |value|)``: decides the number of
        Mehler terms.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Value and error bound (truncation + rule difference + rounding).

    Examples
    --------
    >>> value, error = separable_with_error([np.tanh], [np.tanh], 1.0, 1.0, 0.5)
    >>> round(float(value), 12), bool(error < 1e-13)
    (0.186324413203, True)
    """
    value, error = _from_callables(left, right).with_error(a, b, c, args, tol)
    return value[0], error[0]


def separable_expectation(left, right, a, b, c, args=(), tol=SEPARABLE_TOLERANCE, nodes=MEHLER_NODES):
    """The value of :func:`separable_with_error` (same parameters), without the error estimate.

    One rule instead of two (what generated code calls); ``nodes`` per panel.

    Examples
    --------
    >>> round(float(separable_expectation([np.tanh], [np.tanh], 1.0, 1.0, 0.5)), 12)
    0.186324413203
    """
    _check_nodes(nodes)
    sums = _from_callables(left, right)
    return sums(a, b, c, args, tol, nodes)[0]
