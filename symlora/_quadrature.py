"""Numeric Gaussian expectations: the fallback where no closed form exists.

Vectorised tensor-product composite Gauss–Legendre quadrature (nodes from
:func:`numpy.polynomial.legendre.leggauss`) in decorrelated coordinates.  Arguments broadcast: the
covariance entries may be arrays, the quadrature axis is kept in front so
that numpy broadcasting aligns the caller's arrays on the trailing axes.

This module is deliberately free of SymPy so that generated code and exported
modules can use it.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["quadrature_expectation", "DEFAULT_NODES"]

#: Gauss–Legendre nodes on each half-line, per dimension, by dimension (error
#: about 1e-10 or below for tanh-like integrands at unit variance).
DEFAULT_NODES = {1: 96, 2: 28, 3: 14}


#: Half-width (in standard deviations) of the one-dimensional rule; the
#: Gaussian mass beyond it is below 1e-32.
_HALF_WIDTH = 12.0


@functools.lru_cache(maxsize=32)
def _rule(dim: int, nodes: int):
    # Composite Gauss–Legendre on [-12, 0] and [0, 12] standard deviations in
    # each (decorrelated) coordinate.  It converges exponentially for
    # integrands analytic near the real axis (tanh, sigmoid: poles at
    # ±iπ/2), where Gauss–Hermite converges only like exp(-c sqrt(n)), and in
    # one dimension it is also exact about kinks at the origin.
    t, w = np.polynomial.legendre.leggauss(nodes)
    z = np.concatenate([(t - 1) * _HALF_WIDTH / 2, (t + 1) * _HALF_WIDTH / 2])
    w = np.concatenate([w, w]) * _HALF_WIDTH / 2 * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    keep = w > 1e-40 * w.max()  # nodes far in the tail contribute nothing
    z, w = z[keep], w[keep]
    grids = np.meshgrid(*([z] * dim), indexing="ij")
    weights = np.ones_like(grids[0])
    for g in np.meshgrid(*([w] * dim), indexing="ij"):
        weights = weights * g
    return [g.ravel() for g in grids], weights.ravel()


#: Largest dimension and number of quadrature points of one expectation.
MAX_DIMENSION = 6
MAX_POINTS = 10**7


def _numeric_array(value, name):
    """A float array from numbers (non-finite values pass: the caller reports them)."""
    array = np.asarray(value)
    if array.dtype.kind in "USVO" and not all(
        isinstance(v, (int, float, np.number)) or (hasattr(v, "is_number") and v.is_number) for v in array.ravel()
    ):
        raise TypeError(f"{name} must be a number or an array of numbers, not {array.dtype}")
    return np.asarray(array, dtype=float)


def quadrature_expectation(func, cov, nodes: int | None = None, args=()):
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
        Gauss–Legendre nodes on each half-line ``[-12, 0]``, ``[0, 12]``
        (standard deviations of the decorrelated coordinates), per dimension;
        default :data:`DEFAULT_NODES`.

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
    >>> value = quadrature_expectation(lambda a, b: a * a * b * b, [[1, 0.5], [0.5, 1]])
    >>> round(float(value), 12)  # Isserlis: 1 + 2 * 0.5**2
    1.5
    """
    if isinstance(cov, (str, bytes)) or not hasattr(cov, "__len__"):
        raise TypeError(f"cov must be a k x k nested sequence, got {type(cov).__name__}")
    k = len(cov)
    if not 1 <= k <= MAX_DIMENSION or any(isinstance(row, (str, bytes)) or len(row) != k for row in cov):
        raise ValueError(f"cov must be a square k x k nested sequence with 1 <= k <= {MAX_DIMENSION}")
    if nodes is None:
        nodes = DEFAULT_NODES.get(k, 16)
    if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)):
        raise TypeError(f"nodes must be an integer, got {type(nodes).__name__}")
    if nodes < 2 or (2 * nodes) ** k > MAX_POINTS:
        raise ValueError(f"nodes must be >= 2 with (2 nodes)^k <= {MAX_POINTS:g} points, got nodes = {nodes}, k = {k}")
    # entries are numbers or arrays of numbers, never text (np.asarray would parse '1.5')
    extras = [_numeric_array(a, "args entry") for a in args]
    entries = np.broadcast_arrays(*[_numeric_array(c, "cov entry") for row in cov for c in row], *extras)
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
