r"""Separable expectations near unit correlation: condition on ``Y`` instead of summing Mehler's series.

Mehler's series (:mod:`symlora._separable`) converges like ``|ρ|^k`` times the
decay of the Hermite coefficients.  Near ``|ρ| = 1`` only the decay is left,
and for a factor ``f(√a z)`` with a large variance ``a`` it is slow (the
coefficients of ``tanh(√a z)`` fall like ``exp(-π √(2k) / (2√a))``): at the
160 terms the series stops at, its bound is still 1e-8.  There the other
order is cheap.  With ``Z, ξ`` independent standard normal,
``Y = √b Z`` and ``X = √a (ρ Z + σ ξ)``, ``σ = √(1 - ρ²)``:

.. math::

    E[f(X) g(Y)] = E_Z\Big[g(\sqrt b Z)\, E_ξ\big[f(\sqrt a(ρ Z + σ ξ))\big]\Big],

the inner expectation a Gaussian average of ``f`` over the small width
``c = √a σ``: a short Gauss–Hermite rule in ``ξ`` (nodes from
:func:`numpy.polynomial.hermite_e.hermegauss`), the outer one the Mehler
rule's panels in ``Z``.  For ``f`` analytic in the strip ``|Im x| < d`` the
``n``-point rule's error falls fast once ``n`` is above about ``(d/c)²``;
the number of nodes is chosen for ``d = π/4`` (tanh(2x); tanh, sigmoid,
softplus and SiLU have ``d >= π/2``), and the route is taken only for
``c <= 0.5`` (:func:`inner_nodes`).  The
error bound (``MehlerSums.with_error``) is the difference to a rule with
fewer nodes in both directions, as for the series.

This module is free of SymPy (generated code uses it on its own).
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["inner_nodes", "coarse_nodes", "conditioned_sums", "series_error_model"]

#: ``(largest width, nodes, coarse nodes)`` of the Gauss–Hermite rules a state may be given: the
#: value and the coarser rule of its error estimate, both below 1e-16 for tanh(2x) (``d = π/4``) up
#: to that smoothing width (measured against 25-digit quadrature; the error of the n-point rule
#: falls like ``(2n-1)!! (c/d)^{2n}`` for few nodes).
_INNER_LEVELS = ((0.004, 6, 4), (0.02, 8, 6), (0.05, 12, 10), (0.1, 20, 16), (0.15, 32, 24), (0.2, 48, 32),
                 (0.3, 96, 64), (0.4, 128, 96), (0.5, 200, 160))

_WIDTHS, _FINE = (np.array(column) for column in list(zip(*_INNER_LEVELS))[:2])

#: Terms of Mehler's series (MAX_TERMS of symlora._separable) and the analyticity half-width of the error model deciding the route.
_SERIES_TERMS, _STRIP = 160, math.pi / 4


@functools.lru_cache(maxsize=16)
def _gauss_hermite(nodes: int):
    """Nodes and weights of the ``nodes``-point rule for a standard normal ``ξ`` (weights sum to 1)."""
    xi, weights = np.polynomial.hermite_e.hermegauss(nodes)
    return xi, weights / math.sqrt(2 * math.pi)


def inner_nodes(a, b, rho, tol):
    """Gauss–Hermite nodes for each state that takes this route, else 0.

    The route is taken where Mehler's series of :data:`_SERIES_TERMS` terms
    would not reach ``tol`` by the model
    ``|ρ|^{K+1} exp(-d (1/√a + 1/√b) √(2K))`` (Hermite coefficients of
    functions analytic in a strip of half-width ``d = π/4``) and the
    smoothing width ``c = √(a (1 - ρ²))`` is at most 0.5.  The model only
    chooses the route: either route's error bound is computed
    (``MehlerSums.with_error``).

    Examples
    --------
    >>> inner_nodes(np.array([12.0, 12.0, 0.25, 1.0]), 1.0, np.array([0.99993, 0.5, 0.999, 0.99]), 1e-13).tolist()
    [12, 0, 0, 32]
    """
    a, b, rho = (np.asarray(v, dtype=float) for v in (a, b, rho))
    shape = np.broadcast_shapes(a.shape, b.shape, rho.shape)
    # the model at the largest |ρ|, a and b bounds every state's: most calls stop here
    if not rho.size or not series_error_model(float(np.max(np.abs(rho))), float(np.max(a)), float(np.max(b))) > tol:
        return np.zeros(shape, dtype=int)
    with np.errstate(divide="ignore", invalid="ignore"):  # a or b = 0: rate inf, model 0
        rates = _STRIP * (np.clip(a, 0.0, None) ** -0.5 + np.clip(b, 0.0, None) ** -0.5)
        model = np.abs(rho) ** (_SERIES_TERMS + 1) * np.exp(-rates * math.sqrt(2 * _SERIES_TERMS))
    width2 = np.clip(a, 0.0, None) * np.clip(1.0 - rho * rho, 0.0, None)
    taken = (model > tol) & (width2 <= _WIDTHS[-1] ** 2)
    if not taken.any():
        return np.zeros(taken.shape, dtype=int)
    chosen = _FINE[np.minimum(np.searchsorted(_WIDTHS, np.sqrt(width2)), _FINE.size - 1)]
    return np.where(taken, chosen, 0)


def series_error_model(rho, a, b):
    """The error model of Mehler's series for one state, in plain Python (0 where a variance is 0)."""
    if a <= 0 or b <= 0 or not rho == rho:
        return 0.0
    return rho ** (_SERIES_TERMS + 1) * math.exp(-_STRIP * (a**-0.5 + b**-0.5) * math.sqrt(2 * _SERIES_TERMS))


def coarse_nodes(inner):
    """The coarser Gauss–Hermite rule paired with ``inner`` nodes (the error estimate's)."""
    return {fine: coarse for _, fine, coarse in _INNER_LEVELS}[int(inner)]


def conditioned_sums(sums, a, b, rho, args, outer_rule, inner, right_values=None):
    """``out_n = Σ_ij C_nij E[f_i(X) g_j(Y)]`` for one-dimensional arrays of states, conditioned on ``Y``.

    Parameters
    ----------
    sums : MehlerSums
        The functions (``left``, ``right``), counts ``p, q`` and ``combination``.
    a, b, rho : numpy.ndarray
        ``Var X``, ``Var Y`` and the correlation, shape ``(s,)``.
    args : sequence of numpy.ndarray
        Extra arguments of the functions, shape ``(s,)``.
    outer_rule : (numpy.ndarray, numpy.ndarray)
        Standard-normal nodes and weights in ``Z`` (``N`` each).
    inner : int
        Gauss–Hermite nodes in ``ξ``.
    right_values : numpy.ndarray, optional
        ``g_j(√b z)`` on the outer nodes, ``(q, N)``, when ``Var Y`` is fixed.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, s)``.
    """
    z, w = outer_rule
    xi, v = _gauss_hermite(int(inner))
    s, p, q = a.size, sums.p, sums.q
    sigma = np.sqrt(np.clip(1.0 - rho * rho, 0.0, None))
    scale = np.sqrt(np.clip(a, 0.0, None))
    smoothed = np.ones((p + 1, s, z.size))
    if p:
        points = scale[:, None, None] * (rho[:, None, None] * z[:, None] + sigma[:, None, None] * xi)
        values = sums.left(points, *[e[:, None, None] for e in args])
        smoothed[:p] = np.stack([np.broadcast_to(np.asarray(f, dtype=float), points.shape) for f in values]) @ v
    plain = np.ones((q + 1, s, z.size))
    if q:
        if right_values is None:
            points = np.sqrt(np.clip(b, 0.0, None))[:, None] * z
            values = sums.right(points, *[e[:, None] for e in args])
            plain[:q] = np.stack([np.broadcast_to(np.asarray(g, dtype=float), points.shape) for g in values])
        else:
            plain[:q] = right_values[:, None, :]
    # Σ_z w_z F_i(z) G_j(z) per state, then the combination
    products = np.matmul((smoothed * w).transpose(1, 0, 2), plain.transpose(1, 2, 0))  # (s, p + 1, q + 1)
    return np.tensordot(sums.combination, products, axes=([1, 2], [1, 2]))
