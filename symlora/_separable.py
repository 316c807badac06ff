r"""Two-dimensional Gaussian expectations of separable integrands, in one dimension.

Every expectation of the ODE is a sum of products ``f_j(X) g_j(Y)`` of
functions of one variable each (the activations act on single fields).  For
``(X, Y)`` centred Gaussian with variances ``a, b`` and correlation
``ρ = c/√(ab)``, Mehler's formula turns the two-dimensional integral into a
sum of products of one-dimensional ones:

.. math::

    E[f(X) g(Y)] = \sum_{k \ge 0} ρ^k\, \hat f_k \hat g_k,\qquad
    \hat f_k = E[f(\sqrt{a} Z) h_k(Z)],\quad h_k = He_k/\sqrt{k!},

with ``Z ~ N(0, 1)``.  The coefficients of all ``k <= K`` come from a single
one-dimensional rule in ``Z`` (composite Gauss–Legendre on fixed panels, the
Hermite table precomputed once), so ``f`` and ``g`` are each evaluated at a few
hundred points instead of a two-dimensional grid, and a batch of states costs
one matrix product.

Error bound
-----------
Two parts, added:

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
This module is free of SymPy (generated code uses it on its own).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["separable_expectation", "separable_with_error"]

#: Panel edges of the one-dimensional rule in standard deviations: beyond
#: ±12 the factor sqrt(φ) that every Hermite coefficient carries is < 1e-15.
_EDGES = (-12.0, -9.0, -7.0, -5.0, -3.5, -2.25, -1.0, 0.0, 1.0, 2.25, 3.5, 5.0, 7.0, 9.0, 12.0)

#: Gauss–Legendre nodes per panel of the coarse rule (the fine one has twice as many).
NODES = 16

#: Largest number of Mehler terms.
MAX_TERMS = 160

#: Default target error (absolute, relative to max(1, |E|)).
DEFAULT_TOLERANCE = 1e-13


@functools.lru_cache(maxsize=8)
def _rule(nodes: int):
    """Standard-normal rule ``(z, w)`` and the table ``h_k(z)`` for ``k <= MAX_TERMS``."""
    t, w = np.polynomial.legendre.leggauss(nodes)
    t, w = (t + 1) / 2, w / 2
    zs, ws = [], []
    for lo, hi in zip(_EDGES[:-1], _EDGES[1:]):
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
    return z, w, table * w


def _values(func, scale, z, shape, extras):
    """``func(scale * z)`` with the node axis last, broadcast to ``shape + (N,)``."""
    point = scale[..., None] * z
    value = np.asarray(func(point, *[e[..., None] for e in extras]), dtype=float)
    return np.broadcast_to(value, shape + z.shape)


def _coefficients(funcs, variance, nodes, terms, shape, extras):
    """Hermite coefficients (``(..., K+1)``) and second moments of each function."""
    z, w, weighted = _rule(nodes)
    scale = np.sqrt(np.clip(variance, 0.0, None))
    out = []
    for func in funcs:
        if func is None:  # the constant 1
            out.append(None)
            continue
        values = _values(func, scale, z, shape, extras)
        out.append((values @ weighted[: terms + 1].T, (values * values) @ w, np.abs(values) @ w))
    return out


def _sum(left, right, rho, terms):
    powers = rho[..., None] ** np.arange(terms + 1)
    value = 0.0
    tail = 0.0
    rounding = 0.0
    for lc, rc in zip(left, right):
        if rc is None:
            value = value + lc[0][..., 0]
            rounding = rounding + lc[2]
            continue
        if lc is None:
            value = value + rc[0][..., 0]
            rounding = rounding + rc[2]
            continue
        (fl, ml, al), (fr, mr, ar) = lc, rc
        value = value + np.sum(powers * fl * fr, axis=-1)
        # Parseval deficits (the L² mass beyond K), floored at rounding level
        dl = np.maximum(ml - np.sum(fl * fl, axis=-1), 0.0) + 1e-15 * ml
        dr = np.maximum(mr - np.sum(fr * fr, axis=-1), 0.0) + 1e-15 * mr
        tail = tail + np.abs(rho) ** (terms + 1) * np.sqrt(dl * dr)
        rounding = rounding + np.sqrt(ml * mr)
    return value, tail, 16 * np.finfo(float).eps * rounding


def separable_with_error(left, right, a, b, c, args=(), tol=DEFAULT_TOLERANCE):
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
    (0.147452271309, True)
    """
    if len(left) != len(right) or not left:
        raise ValueError("left and right must be non-empty sequences of the same length")
    arrays = np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in (a, b, c, *args)])
    a, b, c, extras = arrays[0], arrays[1], arrays[2], arrays[3:]
    shape = a.shape
    ab = a * b
    rho = np.clip(np.where(ab > 0, c / np.sqrt(np.where(ab > 0, ab, 1.0)), 0.0), -1.0, 1.0)
    worst = float(np.max(np.abs(rho))) if rho.size else 0.0
    # terms needed for |ρ|^K to fall below the tolerance (the coefficients only help)
    terms = MAX_TERMS if worst >= 1 else int(min(MAX_TERMS, max(4, np.ceil(np.log(tol / 10) / np.log(max(worst, 1e-300))))))
    if all(r is None for r in right) or all(f is None for f in left):
        terms = 0
    fine, coarse = 2 * NODES, NODES
    values, tails, roundings = [], [], []
    for nodes in (coarse, fine):
        lc = _coefficients(left, a, nodes, terms, shape, extras)
        rc = _coefficients(right, b, nodes, terms, shape, extras)
        value, tail, rounding = _sum(lc, rc, rho, terms)
        values.append(value)
        tails.append(tail)
        roundings.append(rounding)
    error = np.abs(values[1] - values[0]) + tails[1] + roundings[1]
    return np.asarray(values[1], dtype=float), np.asarray(error, dtype=float)


def separable_expectation(left, right, a, b, c, args=()):
    """The value of :func:`separable_with_error` (same parameters)."""
    return separable_with_error(left, right, a, b, c, args)[0]
