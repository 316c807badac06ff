r"""Semi-analytic expectations: a piecewise-polynomial factor integrated exactly.

For ``E[f(X) g(Y)]`` with ``g`` piecewise polynomial (ReLU, leaky ReLU,
``|·|``, sign, Heaviside, polynomials: what the ReLU family of the engine
leaves next to a factor without closed form), condition on ``X``:
``Y | X = x ~ N(βx, s²)`` with ``β = c/a``, ``s² = b - c²/a``, and

.. math::

    E[g(Y) \mid X = x] = \sum_j p_j\, E[Y^{k_j} 1(±(Y - t_j) > 0) \mid X = x]

is a closed form in truncated-normal moments
(``M_0(α) = Φ(-α)``, ``M_1(α) = φ(α)``,
``M_j(α) = α^{j-1} φ(α) + (j - 1) M_{j-2}(α)`` for
``M_j(α) = E[ξ^j 1(ξ > α)]``).  What is left is a one-dimensional integral
over ``X`` of a function that is smooth except at the kinks of ``f`` and
where ``βx = t_j`` (a kink when ``s = 0``): the kink-aligned composite
Gauss–Legendre rule of :mod:`symlora._quadrature` puts breakpoints at both,
its order chosen from its error estimate.

This module is free of SymPy (generated code uses it on its own).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from ._quadrature import DEFAULT_TOLERANCE, quadrature_with_error

__all__ = ["conditional_expectation", "conditional_with_error", "conditional_sums"]

#: |α| beyond which the Gaussian tail is 0 in double precision.
_ALPHA_MAX = 40.0


def _truncated_moments(alpha, order):
    """``[E[ξ^j 1(ξ > α)] for j <= order]`` for ``ξ ~ N(0, 1)`` (α clipped to ±40)."""
    alpha = np.clip(alpha, -_ALPHA_MAX, _ALPHA_MAX)
    density = np.exp(-alpha * alpha / 2) / math.sqrt(2 * math.pi)
    moments = [ndtr(-alpha), density]
    for j in range(2, order + 1):
        moments.append(alpha ** (j - 1) * density + (j - 1) * moments[j - 2])
    return moments[: order + 1]


def _gaussian_moment(j):
    return 0.0 if j % 2 else float(math.prod(range(j - 1, 0, -2)))


def _indicator_moments(orders, mean, spread):
    """``{(t, direction): [E[ξ^j 1(direction ξ > direction α)] for j <= order]}``, ``α = (t - mean)/spread``.

    One table per threshold and direction, shared by every piece that uses it
    (``orders`` maps each ``(t, direction)`` to the highest power needed).
    """
    safe = np.where(spread > 0, spread, 1.0)
    tables = {}
    for (t, direction), order in orders.items():
        alpha = np.where(spread > 0, (t - mean) / safe, np.sign(t - mean) * _ALPHA_MAX)
        tables[t, direction] = _truncated_moments(direction * alpha, order)
    return tables


def conditional_mean(pieces, mean, spread, moments=None):
    """``E[g(mean + spread ξ)]`` for ``g(y) = Σ p y^k 1(direction (y - t) > 0)``.

    ``pieces`` is a sequence of ``(p, k, t, direction)`` with direction
    ``+1`` (``y > t``), ``-1`` (``y < t``) or ``0`` (no indicator); at
    ``spread = 0`` the indicator of ``y = t`` is 1/2 (``H(0) = 1/2``).
    ``moments``: the tables of :func:`_indicator_moments` when several sums
    share them (computed here otherwise).

    Examples
    --------
    >>> round(float(conditional_mean([(1.0, 1, 0.0, 1)], 0.0, 1.0)), 12)  # E[relu(ξ)] = 1/√(2π)
    0.398942280401
    """
    if moments is None:
        moments = _indicator_moments(_orders([pieces]), mean, spread)
    total = 0.0
    for p, k, t, direction in pieces:
        binomial = [math.comb(k, j) for j in range(k + 1)]
        if direction == 0:
            term = sum(binomial[j] * mean ** (k - j) * spread**j * _gaussian_moment(j) for j in range(k + 1))
        else:
            table = moments[t, direction]
            # E[ξ^j 1(direction ξ > direction α)] = direction^j M_j(direction α)
            term = sum(binomial[j] * mean ** (k - j) * (direction * spread) ** j * table[j] for j in range(k + 1))
        total = total + p * term
    return total


def _orders(laws):
    """The highest power of each ``(t, direction)`` over the pieces of ``laws``."""
    orders = {}
    for pieces in laws:
        for _, k, t, direction in pieces:
            if direction:
                orders[t, direction] = max(orders.get((t, direction), 0), k)
    return orders


#: Offsets, in widths of the smoothed kink, of the breakpoints graded around it.
_GRADING = (1.0, 2.0, 4.0, 8.0)


def _graded_breakpoints(thresholds, a, beta, spread):
    """Breakpoints ``x_t ± w·(1, 2, 4, 8)`` around each threshold ``x_t = t/β`` of a nearly kinked integrand.

    Given ``X = x`` the indicator ``1(Y > t)`` averages to ``Φ((βx - t)/s)``:
    a kink smoothed over ``w = s/|β|``.  Where ``w`` is small against
    ``sqrt(a)`` (correlation near ±1) a fixed panel resolves that step only
    with many nodes, and an order chosen from the differences of a few rules
    can stop too early; graded panels make every piece smooth on its own
    scale (``Φ`` is below 1e-15 beyond ``8 w``).  None where no element needs them.
    """
    safe_beta = np.where(beta != 0, beta, 1.0)
    width = spread / np.abs(safe_beta)
    steep = (beta != 0) & (width < np.sqrt(a))
    if not thresholds or not np.any(steep):
        return []
    out = []
    for t in thresholds:
        centre = t / safe_beta
        for offset in _GRADING:
            for sign in (-1.0, 1.0):
                out.append((0, np.where(steep, centre + sign * offset * width, 1e300)))
    return out


def _parts_integrals(outputs, a, b, c, args, tol, certify=True):
    """Values and errors ``(len(outputs),) + shape``: each output a list of parts (f, f_kinks, pieces)
    integrated over X with g conditioned, all on one rule (each distinct f and g evaluated once per node)."""
    arrays = np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in (a, b, c, *args)])
    a, b, c, extras = arrays[0], arrays[1], arrays[2], arrays[3:]
    safe_a = np.where(a > 0, a, 1.0)
    beta = np.where(a > 0, c / safe_a, 0.0)
    spread = np.sqrt(np.clip(b - beta * c, 0.0, None))
    safe_beta = np.where(beta != 0, beta, 1.0)
    parts = [part for output in outputs for part in output]
    # one rule for all parts: breakpoints at the kinks of every f and where
    # βx = t, the conditional law straddling a kink of g (out of range when β = 0)
    points = sorted({k for _, f_kinks, _ in parts for k in f_kinks})
    thresholds = sorted({t for _, _, pieces in parts for _, _, t, direction in pieces if direction})
    kinks = [(0, k) for k in points] + [(0, np.where(beta != 0, t / safe_beta, 1e300)) for t in thresholds]
    kinks += _graded_breakpoints(thresholds, a, beta, spread)
    functions = list({id(f): f for f, _, _ in parts if f is not None}.values())
    laws = list({tuple(map(tuple, pieces)): pieces for _, _, pieces in parts}.items())
    orders = _orders([pieces for _, pieces in laws])

    def integrand(x, beta_, spread_, *rest):
        values = {id(f): f(x, *rest) for f in functions}
        mean = beta_ * x
        moments = _indicator_moments(orders, mean, spread_)
        means = {key: conditional_mean(pieces, mean, spread_, moments) for key, pieces in laws}
        totals = []
        for output in outputs:
            total = 0.0
            for f, _, pieces in output:
                mean = means[tuple(map(tuple, pieces))]
                total = total + (mean if f is None else values[id(f)] * mean)
            totals.append(np.broadcast_to(total, x.shape))
        return np.stack(totals)

    return quadrature_with_error(integrand, [[a]], (beta, spread, *extras), kinks, tol, certify=certify,
                                 independent=True)


def conditional_sums(outputs, a, b, c, args=(), tol=DEFAULT_TOLERANCE, certify=True):
    """:func:`conditional_with_error` of several sums of parts at once, on one rule.

    ``outputs`` is a sequence of ``parts`` (as in :func:`conditional_with_error`);
    returns values and error bounds of shape ``(len(outputs),) + broadcast shape``.
    The rule's order is chosen for all of them together, so the bound of each
    is the difference of two rules as for a single sum (``certify``: see
    :func:`~symlora._quadrature.quadrature_with_error`; without it the values
    are the same and the bounds looser).

    Examples
    --------
    >>> relu = [(1.0, 1, 0.0, 1)]
    >>> values, errors = conditional_sums([[(np.tanh, (), relu)], [(None, (), relu)]], 1.0, 1.0, 0.5)
    >>> values.round(12).tolist(), bool(errors.max() < 1e-12)  # E[tanh(X) relu(Y)], E[relu(Y)] = 1/√(2π)
    ([0.151426377401, 0.398942280401], True)
    """
    if not outputs or not all(outputs):
        raise ValueError("outputs must be a non-empty sequence of non-empty parts")
    return _parts_integrals(outputs, a, b, c, args, tol, certify)


def conditional_with_error(parts, a, b, c, args=(), tol=DEFAULT_TOLERANCE):
    """``Σ_j E[f_j(X) g_j(Y)]`` with each ``g_j`` integrated exactly given ``X``; value and error bound.

    Parameters
    ----------
    parts : sequence of (callable or None, sequence of float, sequence of tuples)
        ``(f, f_kinks, pieces)``: ``f(x, *args)`` (``None`` for 1), the
        points where ``f`` is not smooth, and ``g`` as pieces
        ``(p, k, t, direction)`` (see :func:`conditional_mean`).
    a, b, c : array_like
        ``Var X``, ``Var Y``, ``Cov(X, Y)``, broadcast together with ``args``.
    args : sequence of array_like
        Extra arguments of the ``f``.
    tol : float
        Target error of the one-dimensional rule (relative to ``max(1, |E|)``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)

    Examples
    --------
    >>> value, error = conditional_with_error([(np.tanh, (), [(1.0, 1, 0.0, 1)])], 1.0, 1.0, 0.5)
    >>> round(float(value), 12), bool(error < 1e-12)  # E[tanh(X) relu(Y)]
    (0.151426377401, True)
    """
    if not parts:
        raise ValueError("parts must not be empty")
    value, error = _parts_integrals([parts], a, b, c, args, tol)
    return value[0], error[0]


def conditional_expectation(parts, a, b, c, args=()):
    """The value of :func:`conditional_with_error` (same parameters)."""
    return _parts_integrals([parts], a, b, c, args, DEFAULT_TOLERANCE, certify=False)[0][0]
