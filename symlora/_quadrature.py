"""Numeric Gaussian expectations: the fallback where no closed form exists.

Vectorised tensor-product Gauss–Hermite quadrature (nodes from
:func:`numpy.polynomial.hermite_e.hermegauss`).  Arguments broadcast: the
covariance entries may be arrays, the quadrature axis is kept in front so
that numpy broadcasting aligns the caller's arrays on the trailing axes.

This module is deliberately free of SymPy so that generated code and exported
modules can use it.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["gauss_hermite_expectation", "DEFAULT_NODES"]

#: Nodes per dimension used by default, by dimension (error well below 1e-10
#: for activations analytic in a strip, e.g. tanh(4x) in one dimension).
DEFAULT_NODES = {1: 96, 2: 64, 3: 32}


#: Half-width (in standard deviations) of the one-dimensional rule; the
#: Gaussian mass beyond it is below 1e-32.
_HALF_WIDTH = 12.0


@functools.lru_cache(maxsize=32)
def _rule(dim: int, nodes: int):
    if dim == 1:
        # Activations of a linear form have their kinks at 0: a composite
        # Gauss–Legendre rule split there converges exponentially for
        # piecewise-analytic integrands, where Gauss–Hermite would not.
        t, w = np.polynomial.legendre.leggauss(nodes)
        z = np.concatenate([(t - 1) * _HALF_WIDTH / 2, (t + 1) * _HALF_WIDTH / 2])
        w = np.concatenate([w, w]) * _HALF_WIDTH / 2 * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
        return [z], w
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / np.sqrt(2 * np.pi)
    grids = np.meshgrid(*([z] * dim), indexing="ij")
    weights = np.ones_like(grids[0])
    for g in np.meshgrid(*([w] * dim), indexing="ij"):
        weights = weights * g
    return [g.ravel() for g in grids], weights.ravel()


def gauss_hermite_expectation(func, cov, nodes: int | None = None, args=()):
    """``E[func(X_1, ..., X_k)]`` for a centred Gaussian vector with covariance ``cov``.

    Parameters
    ----------
    func : callable
        Takes ``k`` arrays (the quadrature axis first, then the broadcast shape
        of ``cov``) and returns an array of the same shape.
    cov : sequence of sequences of array_like
        The ``k x k`` covariance; entries may be arrays of a common broadcast
        shape (one expectation per element).  Positive semi-definite.
    nodes : int, optional
        Nodes per dimension (default :data:`DEFAULT_NODES`).  In one dimension a composite Gauss–Legendre
        rule on ``[-12, 0]`` and ``[0, 12]`` standard deviations (``nodes``
        on each half: exact at kinks at the origin); in more dimensions a
        tensor Gauss–Hermite rule (``numpy.polynomial.hermite_e.hermegauss``).

    args : sequence of array_like
        Extra arguments passed to ``func`` after the Gaussian variables
        (e.g. a parameter array); they broadcast with the covariance entries.

    Returns
    -------
    numpy.ndarray
        The expectation, with the broadcast shape of the covariance entries
        and ``args``.

    Examples
    --------
    >>> value = gauss_hermite_expectation(lambda a, b: a * a * b * b, [[1, 0.5], [0.5, 1]])
    >>> round(float(value), 12)  # Isserlis: 1 + 2 * 0.5**2
    1.5
    """
    k = len(cov)
    if nodes is None:
        nodes = DEFAULT_NODES.get(k, 16)
    extras = [np.asarray(a, dtype=float) for a in args]
    entries = np.broadcast_arrays(*[np.asarray(c, dtype=float) for row in cov for c in row], *extras)
    extras = entries[k * k :]
    entries = entries[: k * k]
    shape = entries[0].shape
    matrix = np.stack(entries, axis=-1).reshape(shape + (k, k))
    # Symmetric square root through eigh: works for singular covariances too.
    evals, evecs = np.linalg.eigh(matrix)
    root = evecs * np.sqrt(np.clip(evals, 0.0, None))[..., None, :]
    zs, weights = _rule(k, nodes)
    expand = (slice(None),) + (None,) * len(shape)
    variables = []
    for i in range(k):
        xi = 0.0
        for j in range(k):
            xi = xi + root[..., i, j][None, ...] * zs[j][expand]
        variables.append(xi)
    extras = [e[None, ...] for e in extras]
    values = np.asarray(func(*variables, *extras), dtype=float)
    values = np.broadcast_to(values, (len(weights),) + shape)
    return np.tensordot(weights, values, axes=(0, 0))
