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
_MEHLER_EDGES = (-12.0, -9.0, -7.0, -5.0, -3.5, -2.25, -1.0, 0.0, 1.0, 2.25, 3.5, 5.0, 7.0, 9.0, 12.0)

#: Gauss–Legendre nodes per panel of the rule (values) and of the coarser
#: rule whose difference estimates the rule's error.
MEHLER_NODES = 32
COARSE_NODES = 24

#: Largest number of Mehler terms.
MAX_TERMS = 160

#: Default target error (absolute, relative to max(1, |E|)).
SEPARABLE_TOLERANCE = 1e-13


@functools.lru_cache(maxsize=8)
def _mehler_rule(nodes: int):
    """Standard-normal rule ``(z, w)`` and the table ``w h_k(z)`` (``k <= MAX_TERMS``, one row per k)."""
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
    return z, w, table * w


@functools.lru_cache(maxsize=64)
def _mehler_table(nodes: int, terms: int):
    """``(N, terms + 1)`` contiguous: values ``(..., N)`` @ table = coefficients."""
    return np.ascontiguousarray(_mehler_rule(nodes)[2][: terms + 1].T)


def _part_values(func, scale, z, shape, extras):
    """``func(scale * z)`` with the node axis last, broadcast to ``shape + (N,)``."""
    point = scale[..., None] * z if shape else float(scale) * z
    value = np.asarray(func(point, *[e[..., None] for e in extras]), dtype=float)
    return value if value.shape == shape + z.shape else np.broadcast_to(value, shape + z.shape)


def _mehler_parts(left, right, a, b, rho, terms, nodes, extras, moments):
    """Per part: (value of Σ_k ρ^k f_k g_k, Parseval deficits or None, scale for rounding)."""
    z, w, _ = _mehler_rule(nodes)
    table = _mehler_table(nodes, terms)
    shape = rho.shape
    scales = [np.sqrt(np.clip(v, 0.0, None)) for v in (a, b)]
    powers = rho[..., None] ** np.arange(terms + 1) if terms else None
    cache = {}

    def values(func, side):
        key = (id(func), side)
        if key not in cache:
            cache[key] = _part_values(func, scales[side], z, shape, extras)
        return cache[key]

    results = []
    for f, g in zip(left, right):
        if f is None or g is None:
            v = values(f if g is None else g, 0 if g is None else 1)
            mean = v @ w
            results.append((mean, None, np.abs(v) @ w if moments else None))
            continue
        vf, vg = values(f, 0), values(g, 1)
        cf, cg = vf @ table, vg @ table
        value = np.sum(powers * cf * cg, axis=-1) if terms else cf[..., 0] * cg[..., 0]
        if not moments:
            results.append((value, None, None))
            continue
        mf, mg = (vf * vf) @ w, (vg * vg) @ w
        # Parseval deficits (the L² mass beyond K), floored at rounding level
        df = np.maximum(mf - np.sum(cf * cf, axis=-1), 0.0) + 1e-15 * mf
        dg = np.maximum(mg - np.sum(cg * cg, axis=-1), 0.0) + 1e-15 * mg
        results.append((value, np.sqrt(df * dg), np.sqrt(mf * mg)))
    return results


def _mehler_prepare(left, right, a, b, c, args, tol):
    if len(left) != len(right) or not left:
        raise ValueError("left and right must be non-empty sequences of the same length")
    arrays = np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in (a, b, c, *args)])
    a, b, c, extras = arrays[0], arrays[1], arrays[2], arrays[3:]
    ab = a * b
    rho = np.clip(np.where(ab > 0, c / np.sqrt(np.where(ab > 0, ab, 1.0)), 0.0), -1.0, 1.0)
    worst = float(np.max(np.abs(rho))) if rho.size else 0.0
    # terms needed for |ρ|^K to fall below the tolerance (the coefficients only help)
    if all(f is None or g is None for f, g in zip(left, right)):
        terms = 0
    elif worst >= 1:
        terms = MAX_TERMS
    else:
        terms = int(min(MAX_TERMS, max(4, np.ceil(np.log(tol / 10) / np.log(max(worst, 1e-300))))))
    return a, b, rho, extras, terms


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
    a, b, rho, extras, terms = _mehler_prepare(left, right, a, b, c, args, tol)
    values, errors = [], []
    for nodes in (COARSE_NODES, MEHLER_NODES):
        parts = _mehler_parts(left, right, a, b, rho, terms, nodes, extras, moments=True)
        values.append(sum(p[0] for p in parts))
        tail = sum(np.abs(rho) ** (terms + 1) * p[1] for p in parts if p[1] is not None)
        rounding = 16 * np.finfo(float).eps * sum(p[2] for p in parts)
        errors.append(tail + rounding)
    error = np.abs(values[1] - values[0]) + errors[1]
    return np.asarray(values[1], dtype=float), np.asarray(error, dtype=float)


def separable_expectation(left, right, a, b, c, args=(), tol=SEPARABLE_TOLERANCE, nodes=MEHLER_NODES):
    """The value of :func:`separable_with_error` (same parameters), without the error estimate.

    One rule instead of two (what generated code calls); ``nodes`` per panel.

    Examples
    --------
    >>> round(float(separable_expectation([np.tanh], [np.tanh], 1.0, 1.0, 0.5)), 12)
    0.186324413203
    """
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 2 <= nodes <= 256:
        raise ValueError(f"nodes must be an integer in [2, 256], got {nodes!r}")
    a, b, rho, extras, terms = _mehler_prepare(left, right, a, b, c, args, tol)
    parts = _mehler_parts(left, right, a, b, rho, terms, nodes, extras, moments=False)
    return sum(p[0] for p in parts)
