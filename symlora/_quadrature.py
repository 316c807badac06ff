"""Numeric Gaussian expectations: the fallback where no closed form exists.

``E[f(X)]`` for a centred Gaussian vector ``X`` is computed as an iterated
integral over independent standard normal coordinates ``z`` with
``X = G z``, ``G`` the lower-triangular (Cholesky) factor of the covariance
in an order that puts the *kinked* variables first.  A kink of the integrand
at ``X_i = c`` (from ``relu``, ``Heaviside``, ``|·|``, ``sign`` ...) is then
the hyperplane ``z_j = (c - Σ_{l<j} G_il z_l) / G_ii`` in the coordinate
``j`` of ``X_i``, and that coordinate's rule puts a breakpoint exactly
there, for every value of the outer coordinates: on each panel the integrand
is smooth and composite Gauss–Legendre (nodes from
:func:`numpy.polynomial.legendre.leggauss`) converges exponentially.

The order is chosen from an error estimate: the rules with ``n/2``, ``n``
and ``2n`` nodes per panel are compared and ``n`` doubles until the error
of ``I(2n)`` predicted from the rate of convergence is below the tolerance.
The bound returned with ``I(2n)`` is the difference ``|I(2n) - I(n)|``
(plus rounding), or, where that is above the tolerance although the
predicted error is not, ``2 |I(4n) - I(2n)|`` from one more rule.  Where
the rule has not yet converged geometrically (algebraic convergence, e.g. a
kink off the breakpoints) it is twice the larger of the last two
differences.  The bounds are checked against 30-digit quadrature on a corpus
(``tests/test_error_bound_corpus.py``, ``benchmarks/verify_exact_accuracy.py``).

Arguments broadcast: covariance entries, kink locations and extra arguments
may be arrays; the quadrature axis is kept in front so that numpy
broadcasting aligns the caller's arrays on the trailing axes.

This module is deliberately free of SymPy (generated code and exported
modules use it on its own).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["quadrature_expectation", "quadrature_with_error", "DEFAULT_NODES"]

#: Starting number of Gauss–Legendre nodes per panel, by dimension.
DEFAULT_NODES = {1: 8, 2: 4, 3: 3}

#: Largest number of nodes per panel the order selection goes to, by dimension.
MAX_NODES = {1: 256, 2: 32, 3: 12}

#: Default tolerance (absolute, relative to max(1, |E[f]|)) of the order selection.
DEFAULT_TOLERANCE = 1e-12

#: Half-width (in standard deviations) of each coordinate's range; the
#: Gaussian mass beyond it is 2e-19 (times the integrand's growth there).
_HALF_WIDTH = 9.0

#: Fixed panel edges (standard deviations).  Short panels near the centre keep
#: the convergence rate of Gauss–Legendre, set by the distance of the
#: integrand's complex singularities relative to the panel length (poles of
#: tanh at ±iπ/2 are at ±iπ/(2√Q) in standard deviations), high where the
#: Gaussian weight is large.
_EDGES = (-9.0, -6.0, -3.5, -1.5, 0.0, 1.5, 3.5, 6.0, 9.0)


@functools.lru_cache(maxsize=64)
def _legendre(nodes: int):
    t, w = np.polynomial.legendre.leggauss(nodes)
    return (t + 1) / 2, w / 2  # on [0, 1]


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


@functools.lru_cache(maxsize=64)
def _fixed_axis_rule(nodes):
    """The rule of :func:`_axis_rule` without breakpoints (the same for every element)."""
    t, w = _legendre(nodes)
    zs, ws = [], []
    for lo, hi in zip(_EDGES[:-1], _EDGES[1:]):
        z = lo + t * (hi - lo)
        zs.append(z)
        ws.append(w * (hi - lo) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi))
    return np.concatenate(zs), np.concatenate(ws)


@functools.lru_cache(maxsize=256)
def _scalar_axis_rule(nodes, breakpoints):
    """:func:`_axis_rule` for one element (cached; the arrays are read-only)."""
    z, w = _axis_rule(nodes, [np.asarray(b) for b in breakpoints], (1,))
    z, w = z[:, 0], w[:, 0]
    z.flags.writeable = w.flags.writeable = False
    return z, w


def _axis_rule(nodes, breakpoints, shape):
    """Composite Gauss–Legendre on ``[-H, b_1], [b_1, b_2], ..., [b_m, H]`` with normal weights.

    ``breakpoints`` is a list of arrays broadcasting to ``shape``; returns
    ``z`` and ``w`` of shape ``(panels * nodes,) + shape``.
    """
    if not breakpoints:
        z, w = _fixed_axis_rule(nodes)
        expand = (slice(None),) + (None,) * len(shape)
        return z[expand], w[expand]
    if not shape and all(np.ndim(b) == 0 for b in breakpoints):
        # one element (a single state): the same few rules come back call after call
        return _scalar_axis_rule(nodes, tuple(sorted(float(b) for b in breakpoints)))
    t, w = _legendre(nodes)
    inner = np.clip(np.stack([np.broadcast_to(b, shape) for b in breakpoints]), -_HALF_WIDTH, _HALF_WIDTH)
    fixed = np.reshape(_EDGES, (-1,) + (1,) * len(shape))
    edges = np.sort(np.concatenate([np.broadcast_to(fixed[1:-1], (len(_EDGES) - 2,) + shape), inner]), axis=0)
    edges = np.concatenate([np.broadcast_to(fixed[:1], (1,) + shape), edges, np.broadcast_to(fixed[-1:], (1,) + shape)])
    # all panels at once: (panels, nodes) + shape, panel-major like the rule without breakpoints
    lo, width = edges[:-1, None], np.diff(edges, axis=0)[:, None]
    expand = (None, slice(None)) + (None,) * len(shape)
    z = lo + t[expand] * width
    weights = w[expand] * width * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    count = (edges.shape[0] - 1) * nodes
    return z.reshape((count,) + shape), weights.reshape((count,) + shape)


def _cholesky(matrix, order):
    """Lower-triangular ``G`` with ``G Gᵀ = matrix`` in the variable order ``order``.

    Written out (k <= 3 in practice) because numpy's Cholesky refuses the
    singular covariances that occur here (e.g. ``u = 0`` makes ``λ`` and
    ``ν`` proportional); a zero pivot gives a zero column.
    """
    k = len(order)
    g = np.zeros(matrix.shape)
    scale = max(float(np.max(np.abs(matrix))), 1e-300) if matrix.size else 1.0
    for a in range(k):
        i = order[a]
        for b in range(a + 1):
            j = order[b]
            s = matrix[..., i, j] - sum(g[..., i, order[c]] * g[..., j, order[c]] for c in range(b))
            if a == b:
                g[..., i, i] = np.sqrt(np.clip(s, 0.0, None))
            else:
                pivot = g[..., j, j]
                ok = pivot > 1e-14 * np.sqrt(scale)
                g[..., i, j] = np.where(ok, s / np.where(ok, pivot, 1.0), 0.0)
    return g


#: Offsets (in widths of the smoothed kink) of the outer breakpoints around it.
_GRADING = (-4.0, -1.0, 0.0, 1.0, 4.0)


def _crossing_breakpoints(g, order, kinks):
    """Outer breakpoints where the inner coordinate's kink crosses the bulk of its Gaussian.

    With ``X_j = G_j0 z_0 + G_j1 z_1`` (``j`` second in ``order``) and a kink
    at ``X_j = c``, the inner integral over ``z_1`` is an analytic function
    of ``z_0`` that turns, over a width ``w = G_j1/|G_j0|`` around
    ``z_0 = c/G_j0``, from one side's formula to the other's: a kink smoothed
    at scale ``w``.  For strongly correlated pairs (``w`` small) a fixed panel
    resolves it only with many nodes, so panels are graded there.
    """
    j, i = order[1], order[0]
    out = []
    for var, location in kinks:
        if var != j:
            continue
        slope, width = g[..., j, i], g[..., j, j]
        steep = np.abs(slope) > width  # w < 1: the fixed panels are too wide
        safe = np.where(steep, slope, 1.0)
        centre = np.asarray(location, dtype=float) / safe
        w = width / np.abs(safe)
        for offset in _GRADING:
            out.append(np.where(steep, centre + offset * w, 2 * _HALF_WIDTH))
    return out


def _rule(nodes, matrix, kinks, shape):
    """Quadrature points ``X`` (list of k arrays) and weights, flattened node axis first."""
    k = matrix.shape[-1]
    if k == 1:
        # one coordinate: X = sqrt(Var X) z, breakpoints at the kinks over the standard deviation
        scale = np.sqrt(np.clip(matrix[..., 0, 0], 0.0, None))
        safe = np.where(scale > 0, scale, 1.0)
        breakpoints = [np.where(scale > 0, np.asarray(location, dtype=float) / safe, 0.0) for _, location in kinks]
        z, w = _axis_rule(nodes, breakpoints, shape)
        points = scale * z
        return [points], np.broadcast_to(w, points.shape)
    kinked = sorted({i for i, _ in kinks})
    order = kinked + [i for i in range(k) if i not in kinked]
    g = _cholesky(matrix, order)
    # iterated rule: coordinate a's nodes depend on the outer coordinates' nodes
    z_values = []  # each of shape (N_1, ..., N_a, ...) + shape after broadcasting
    weight = np.ones(shape)
    lead = 0  # number of node axes so far
    for a in range(k):
        i = order[a]
        pivot = g[..., i, i]
        safe = np.where(pivot > 0, pivot, 1.0)
        breakpoints = []
        for var, location in kinks:
            if var != i:
                continue
            # z_a = (c - Σ_{b<a} G_{i,order[b]} z_b) / G_ii  (0 where the pivot vanishes)
            rest = np.asarray(location, dtype=float).reshape((1,) * lead + np.shape(location))
            rest = rest - sum(g[..., i, order[b]][(None,) * lead] * z_values[b] for b in range(a))
            breakpoints.append(np.where(pivot > 0, rest / safe, 0.0))
        if a == 0 and k == 2:
            breakpoints += _crossing_breakpoints(g, order, kinks)
        node_shape = np.broadcast_shapes(*(np.shape(b) for b in breakpoints)) if breakpoints else weight.shape
        z, w = _axis_rule(nodes, breakpoints, node_shape)
        # new node axis goes after the existing ones
        z = np.moveaxis(z, 0, lead)
        w = np.moveaxis(w, 0, lead)
        z_values = [zv[(slice(None),) * lead + (None,)] for zv in z_values]
        z_values.append(z)
        weight = weight[(slice(None),) * lead + (None,)] * w
        lead += 1
    full = np.broadcast_shapes(weight.shape, *(zv.shape for zv in z_values))
    n_nodes = int(np.prod(full[:lead]))
    points = []
    for i in range(k):
        xi = 0.0
        for b in range(k):
            xi = xi + g[..., i, order[b]][(None,) * lead] * z_values[b]
        points.append(np.broadcast_to(xi, full).reshape((n_nodes,) + full[lead:]))
    weights = np.broadcast_to(weight, full).reshape((n_nodes,) + full[lead:])
    return points, weights


def _check_cov(cov):
    if isinstance(cov, (str, bytes)) or not hasattr(cov, "__len__"):
        raise TypeError(f"cov must be a k x k nested sequence, got {type(cov).__name__}")
    k = len(cov)
    if not 1 <= k <= MAX_DIMENSION or any(isinstance(row, (str, bytes)) or len(row) != k for row in cov):
        raise ValueError(f"cov must be a square k x k nested sequence with 1 <= k <= {MAX_DIMENSION}")
    return k


def _check_nodes(nodes, k):
    if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)):
        raise TypeError(f"nodes must be an integer, got {type(nodes).__name__}")
    panels = len(_EDGES) - 1
    if nodes < 2 or (panels * nodes) ** k > MAX_POINTS:
        raise ValueError(
            f"nodes must be >= 2 with ({panels} nodes)^k <= {MAX_POINTS:g} points, got nodes = {nodes}, k = {k}"
        )


def _prepare(cov, args, kinks):
    k = _check_cov(cov)
    # entries are numbers or arrays of numbers, never text (np.asarray would parse '1.5')
    extras = [_numeric_array(a, "args entry") for a in args]
    locations = [_numeric_array(c, "kink location") for _, c in kinks]
    entries = np.broadcast_arrays(
        *[_numeric_array(c, "cov entry") for row in cov for c in row], *extras, *locations
    )
    shape = entries[0].shape
    matrix = np.stack(entries[: k * k], axis=-1).reshape(shape + (k, k))
    extras = entries[k * k : k * k + len(extras)]
    kinks = [(int(i), loc) for (i, _), loc in zip(kinks, entries[k * k + len(extras) :])]
    return matrix, extras, kinks, shape


def _integrate(func, matrix, extras, kinks, shape, nodes):
    points, weights = _rule(nodes, matrix, kinks, shape)
    values = np.asarray(func(*points, *[e[None, ...] for e in extras]), dtype=float)
    # several integrands at once: their index axes come before the node axis
    lead = max(values.ndim - weights.ndim, 0)
    terms = weights * np.broadcast_to(values, values.shape[:lead] + weights.shape)
    # rounding: the sum of |terms| times a few ulps
    return np.sum(terms, axis=lead), 8 * np.finfo(float).eps * np.sum(np.abs(terms), axis=lead)


def _affordable(nodes, k):
    """True if a rule with ``nodes`` per panel in ``k`` dimensions stays within :data:`MAX_POINTS`."""
    return (len(_EDGES) + 7) ** k * nodes**k <= MAX_POINTS


def quadrature_with_error(func, cov, args=(), kinks=(), tol=DEFAULT_TOLERANCE, nodes=None, max_nodes=None,
                          certify=True, independent=False):
    """``E[func(X)]`` and an error bound, with the order chosen from the error estimate.

    Parameters
    ----------
    func : callable
        Takes ``k`` arrays (the quadrature axis first, then the broadcast shape
        of ``cov``) and the ``args``, returns an array of the same shape, or
        with leading axes in front for several integrands at once (one rule,
        the order chosen for all of them; values and errors then have those
        axes in front too).
    cov : sequence of sequences of array_like
        The ``k x k`` covariance (positive semi-definite; entries may be
        arrays of a common broadcast shape: one expectation per element).
    args : sequence of array_like
        Extra arguments passed to ``func`` after the Gaussian variables.
    kinks : sequence of (int, array_like)
        ``(i, c)``: the integrand is not smooth where ``X_i = c``; the rule
        puts a breakpoint there.
    tol : float
        Target absolute error, relative to ``max(1, |E[func]|)``.
    nodes, max_nodes : int, optional
        Starting and largest number of nodes per panel and dimension
        (defaults :data:`DEFAULT_NODES`, :data:`MAX_NODES`).
    certify : bool
        Where the last difference is above ``tol`` although the predicted
        error is not, evaluate one more rule to tighten the bound (the value
        does not change; :func:`quadrature_expectation` skips this).
    independent : bool
        Choose the order element by element: an element of a batch stops at
        the order it would stop at alone, and only the elements not yet
        converged go on to finer rules (what a batch of unlike states needs:
        otherwise every element pays for the hardest).  ``func`` must then take
        everything that differs between elements through ``args`` (it is
        called on subsets of the elements).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Value and error bound (see the module docstring) plus rounding, elementwise.

    Examples
    --------
    >>> value, error = quadrature_with_error(lambda a: np.tanh(a) ** 2, [[1.0]])
    >>> round(float(value), 12), bool(error < 1e-12)
    (0.394294490398, True)
    """
    k = _check_cov(cov)
    nodes = DEFAULT_NODES.get(k, 2) if nodes is None else nodes
    max_nodes = MAX_NODES.get(k, 4) if max_nodes is None else max_nodes
    _check_nodes(nodes, k)
    _check_nodes(max_nodes, k)
    matrix, extras, kinks, shape = _prepare(cov, args, kinks)
    independent = independent and int(np.prod(shape)) > 1  # one element: nothing to choose apart
    if independent:
        # one flat axis of elements, subsets of which go on to finer rules
        size = int(np.prod(shape))
        matrix = matrix.reshape((size, k, k))
        extras = [e.reshape(size) for e in extras]
        kinks = [(i, c.reshape(size)) for i, c in kinks]

    def integrate(active, n):
        if active is None:
            return _integrate(func, matrix, extras, kinks, shape, n)
        return _integrate(func, matrix[active], [e[active] for e in extras], [(i, c[active]) for i, c in kinks],
                          (active.size,), n)

    def per_element(condition, lead):
        # a condition of every integrand of an element (leading axes), element by element
        condition = np.all(condition, axis=tuple(range(lead))) if lead else condition
        return condition if independent else np.full(np.shape(condition), np.all(condition))

    active = np.arange(size) if independent else None
    values = bounds = None
    coarse, _ = integrate(active, nodes)
    previous = None
    while True:
        fine, rounding = integrate(active, 2 * nodes)
        lead = fine.ndim - (1 if independent else len(shape))
        difference = np.abs(fine - coarse)
        scale = np.maximum(1.0, np.abs(fine))
        # stop when the error of I(2n) predicted from the convergence rate,
        # |I(2n) - I(n)|^2 / |I(n) - I(n/2)|, is below the tolerance; the
        # reported error stays the (larger) difference itself
        if previous is None:
            predicted = difference
        else:
            predicted = np.where(difference < previous, difference**2 / np.maximum(previous, 1e-300), difference)
        done = per_element(predicted + rounding <= tol * scale, lead) | (4 * nodes > max_nodes)
        if not np.any(done):
            nodes, coarse, previous = 2 * nodes, fine, difference
            continue
        error = difference
        if previous is not None:
            # not (yet) geometric convergence, e.g. a kink off the breakpoints:
            # the error of an algebraically convergent rule can exceed the last
            # difference; bound it by twice the larger of the last two
            slow = difference > 1e-2 * previous
            error = np.where(slow, 2 * np.maximum(difference, previous), difference)
        uncertain = done & ~per_element(error + rounding <= tol * scale, lead)
        if certify and np.any(uncertain) and _affordable(4 * nodes, k):
            # the order was chosen from the predicted error, which the last
            # difference overstates by orders of magnitude: one more rule bounds
            # the error of the value returned (the same value as without
            # ``certify``) by 2 |I(4n) - I(2n)|, the error of I(4n) being at most
            # |I(4n) - I(2n)| for a converging rule (algebraically at least like 1/n)
            if independent:
                finer, _ = integrate(active[uncertain], 4 * nodes)
                error[..., uncertain] = np.minimum(error[..., uncertain], 2 * np.abs(finer - fine[..., uncertain]))
            else:
                finer, _ = integrate(active, 4 * nodes)
                error = np.minimum(error, 2 * np.abs(finer - fine))
        if not independent:
            return fine, error + rounding
        if values is None:
            values, bounds = np.empty(fine.shape[:lead] + (size,)), np.empty(fine.shape[:lead] + (size,))
        values[..., active[done]], bounds[..., active[done]] = fine[..., done], (error + rounding)[..., done]
        if np.all(done):
            return values.reshape(values.shape[:lead] + shape), bounds.reshape(values.shape[:lead] + shape)
        rest = ~done
        active, nodes, coarse, previous = active[rest], 2 * nodes, fine[..., rest], difference[..., rest]


def quadrature_expectation(func, cov, nodes=None, args=(), kinks=(), tol=DEFAULT_TOLERANCE):
    """``E[func(X_1, ..., X_k)]`` for a centred Gaussian vector with covariance ``cov``.

    The value of :func:`quadrature_with_error` (same parameters); with
    ``nodes`` given, a single rule with that many nodes per panel instead.

    Examples
    --------
    >>> value = quadrature_expectation(lambda a, b: a * a * b * b, [[1, 0.5], [0.5, 1]])
    >>> round(float(value), 12)  # Isserlis: 1 + 2 * 0.5**2
    1.5
    >>> relu = lambda a: np.maximum(a, 0.0)
    >>> value = quadrature_expectation(lambda a, b: relu(a) * relu(b), [[1, 0.5], [0.5, 1]], kinks=[(0, 0), (1, 0)])
    >>> round(float(value), 12)  # arc-cosine kernel: (sqrt(1 - r²) + (π - acos r) r) / (2π)
    0.304498890522
    """
    if nodes is not None:
        _check_nodes(nodes, len(cov))
        matrix, extras, kinks, shape = _prepare(cov, args, kinks)
        return _integrate(func, matrix, extras, kinks, shape, int(nodes))[0]
    return quadrature_with_error(func, cov, args, kinks, tol, certify=False)[0]
