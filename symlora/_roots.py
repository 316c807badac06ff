r"""Zeros of a coefficient ``a(μ)``: exact where SymPy isolates them, certified brackets otherwise.

Used by :func:`symlora._escape_law.critical_mu`.  Three routes, tried in
this order:

1. ``a`` is a polynomial in ``μ`` with rational or algebraic coefficients:
   :func:`sympy.real_roots` isolates every real root exactly (``CRootOf``
   or radicals);
2. ``a`` is a polynomial whose coefficients are other exact constants
   (``sqrt(2/π)`` for ReLU against a sign teacher): :func:`sympy.roots`
   gives the roots in closed form and high-precision evaluation decides
   which are real and inside the interval;
3. anything else (``asin``/``sqrt`` closed forms, quadrature nodes): the
   expression itself is evaluated with mpmath (``dps`` digits; quadrature
   nodes by adaptive mpmath quadrature split at the kink ``ν = 0``, with
   its error estimate; nodes over several Gaussian variables by their own
   error-bounded quadrature at double precision).  Sign changes on a grid give brackets, refined by
   :func:`mpmath.findroot` with a bracketing solver, and the final bracket
   ``[r - δ, r + δ]`` is *certified*: ``a`` has opposite signs at its ends,
   each larger in magnitude than its evaluation error.  Local minima of
   ``|a|`` without a sign change (tangential zeros) are located by bounded
   minimisation and reported as uncertified when ``|a|`` there is below the
   evaluation error; numerics cannot prove a double root.

Each zero is a :class:`CriticalMu` record (value, exact or numeric, an
error bound, bracket, certification); :func:`find_zeros` returns them in a
:class:`CriticalMuRoots` tuple whose elements are plain SymPy numbers, so
that ``float(r)`` and ``model.escape_law(r)`` work on them directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np
import sympy as sp

from ._node import GaussianExpectation

__all__ = ["CriticalMu", "CriticalMuRoots", "find_zeros"]

#: Half-width of a certified bracket around a numeric zero.
BRACKET_HALF_WIDTH = 1e-13


@dataclass(frozen=True)
class CriticalMu:
    """One zero of ``a(μ)``.

    Attributes
    ----------
    value : sympy.Expr
        Exact (``Rational``, radical, ``CRootOf``, ``sqrt(2)/sqrt(pi)``...)
        when ``exact``; otherwise a ``Float`` with 20 digits.
    exact : bool
    error : float
        Bound on ``|value - zero|``: 0 when exact, the bracket half-width
        otherwise.
    bracket : tuple of float or None
        ``(lo, hi)`` with ``a(lo) a(hi) < 0`` certified (numeric zeros).
    certified : bool
        True for exact zeros and for brackets whose end signs exceed the
        evaluation error; False for tangential zeros found numerically.
    kind : {"simple", "multiple", "tangential"}
        ``"multiple"``: an exact root of even or odd multiplicity > 1;
        ``"tangential"``: numeric, ``a`` touches 0 without changing sign.
    method : str
        How the zero was found, in words.
    """

    value: sp.Expr
    exact: bool
    error: float
    bracket: object
    certified: bool
    kind: str
    method: str

    def __float__(self):
        return float(sp.N(self.value, 20))

    def __repr__(self):
        tag = "exact" if self.exact else f"±{self.error:.1g}" + ("" if self.certified else ", uncertified")
        return f"CriticalMu({sp.sstr(self.value)}, {tag}, {self.kind})"

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "value": sp.sstr(self.value),
            "numeric": float(self),
            "exact": self.exact,
            "error": self.error,
            "bracket": list(self.bracket) if self.bracket else None,
            "certified": self.certified,
            "kind": self.kind,
            "method": self.method,
        }


class CriticalMuRoots(tuple):
    """Zeros of ``a(μ)`` in increasing order, as SymPy numbers.

    A tuple of ``sympy.Expr`` (exact values or 20-digit ``Float``); the
    attribute :attr:`details` holds one :class:`CriticalMu` per element with
    its exactness, error bound and bracket.
    """

    def __new__(cls, details):
        details = tuple(sorted(details, key=float))
        self = super().__new__(cls, (d.value for d in details))
        self.details = details
        return self

    @property
    def exact(self) -> bool:
        """True when every zero is exact."""
        return all(d.exact for d in self.details)

    def __repr__(self):
        return "CriticalMuRoots(" + ", ".join(repr(d) for d in self.details) + ")"


# ---------------------------------------------------------------------------
# evaluation


class _Evaluator:
    """``a(μ)`` at one mpmath point, with an error bound.

    Closed forms are evaluated at ``dps`` digits (error ~ ``10^(5 - dps)``
    relative); each 1-D quadrature node by :func:`mpmath.quad` on
    ``(-inf, 0, inf)`` in the standardised variable, its error estimate
    propagated to first order.
    """

    def __init__(self, expr, symbol, dps=20):
        self.symbol = symbol
        self.dps = dps
        nodes = sorted(expr.atoms(GaussianExpectation), key=sp.default_sort_key)
        placeholders = [sp.Dummy(f"E{i}") for i in range(len(nodes))]
        plain = expr.xreplace(dict(zip(nodes, placeholders)))
        left = plain.free_symbols - {symbol} - set(placeholders)
        if left:
            raise ValueError("a(mu) has free symbols besides mu: " + ", ".join(sorted(map(str, left))))
        self.outer = sp.lambdify([symbol] + placeholders, plain, modules="mpmath")
        self.slopes = [sp.lambdify([symbol] + placeholders, sp.diff(plain, p), modules="mpmath") for p in placeholders]
        self.nodes = []
        for node in nodes:
            if len(node.variables) != 1:
                # several Gaussian variables (general pre-training of tanh, sigmoid): the node's own
                # Gauss–Legendre quadrature with its error bound, at double precision
                self.nodes.append((node, None))
                continue
            (var,) = node.variables
            func = sp.lambdify([var, symbol], node.integrand.expr, modules=["mpmath", {"Heaviside": _heaviside}])
            variance = sp.lambdify([symbol], node.covariance[0, 0], modules="mpmath")
            self.nodes.append((func, variance))

    def __call__(self, mu):
        """Return ``(value, error)`` as mpf."""
        # near mu = 0 closed forms are often 0/0 (removable): extra digits absorb the cancellation
        extra = 40 if abs(float(mu)) < 1e-6 else 0
        with mpmath.workdps(self.dps + extra):
            mu = mpmath.mpf(mu)
            values, errors = [], []
            for func, variance in self.nodes:
                if variance is None:
                    value, error = func.xreplace({self.symbol: sp.Float(mpmath.nstr(mu, 20), 20)}).numeric()
                    values.append(mpmath.mpf(value))
                    errors.append(mpmath.mpf(error) + abs(mpmath.mpf(value)) * mpmath.mpf(2) ** -50)
                    continue
                sd = mpmath.sqrt(variance(mu))
                value, error = mpmath.quad(
                    lambda z: func(sd * z, mu) * mpmath.npdf(z), [-mpmath.inf, 0, mpmath.inf], error=True
                )
                values.append(value)
                errors.append(abs(error))
            value = self.outer(mu, *values)
            error = sum((abs(s(mu, *values)) * e for s, e in zip(self.slopes, errors)), mpmath.mpf(0))
            # rounding of the closed form itself
            error += abs(value) * mpmath.mpf(10) ** (5 - self.dps) + mpmath.mpf(10) ** (5 - self.dps)
            return mpmath.re(value), error


def _heaviside(x, h0=0.5):
    return mpmath.mpf(1) if x > 0 else mpmath.mpf(0) if x < 0 else mpmath.mpf(h0)


def _sign(value, error):
    """+1/-1 when the sign is certain, 0 otherwise."""
    if value > error:
        return 1
    if value < -error:
        return -1
    return 0


# ---------------------------------------------------------------------------
# exact routes


def _exact_polynomial_roots(a, mu, lo, hi):
    """Exact zeros of a polynomial ``a``; ``None`` if SymPy cannot isolate them all."""
    poly = sp.Poly(sp.expand(a), mu)
    if poly.is_zero:
        raise ValueError("a(mu) vanishes identically: every mu is critical")
    if poly.degree() == 0:
        return []
    domain = poly.get_domain()
    if domain.is_ZZ or domain.is_QQ or domain.is_AlgebraicField:
        roots = sp.real_roots(poly)
        method = "exact real-root isolation (sympy.real_roots)"
        pairs = {}
        for r in roots:
            pairs[r] = pairs.get(r, 0) + 1
    else:
        pairs = sp.roots(poly, multiple=False)
        if sum(pairs.values()) != poly.degree():
            return None  # SymPy found no closed form for some roots
        method = "exact roots in closed form (sympy.roots); real and in-interval decided at 50 digits"
    out = []
    for r, multiplicity in pairs.items():
        value = sp.N(r, 50)
        if abs(sp.im(value)) > sp.Float(10) ** -40:
            continue  # complex pair (real coefficients): its imaginary part is far above the 50-digit noise
        if lo <= sp.re(value) <= hi:
            kind = "simple" if multiplicity == 1 else "multiple"
            out.append(CriticalMu(r, True, 0.0, None, True, kind, method + f"; multiplicity {multiplicity}"))
    return out


def _is_exact_zero(expr):
    """True when ``expr`` (no free symbols) is provably 0."""
    expr = expr.replace(lambda e: isinstance(e, GaussianExpectation) and e.integrand.expr == 0, lambda e: sp.S.Zero)
    if expr.has(GaussianExpectation):
        return False
    if expr == 0:
        return True
    if sp.count_ops(expr) > 400:
        return False
    try:
        return bool(sp.simplify(expr) == 0)
    except (TypeError, ValueError, NotImplementedError):
        return False


def _identify(a, mu, value):
    """An exact number equal to the numeric zero ``value`` with ``a = 0`` proven, or None."""
    for candidate in (sp.nsimplify(value, rational=True, tolerance=1e-20), sp.nsimplify(value, tolerance=1e-20)):
        if candidate.is_number and candidate.is_real and abs(float(candidate) - float(value)) < 1e-18:
            if candidate.count_ops() < 20 and _is_exact_zero(a.subs(mu, candidate)):
                return candidate
    return None


# ---------------------------------------------------------------------------
# numeric route


def _numeric_zeros(a, mu, lo, hi, grid_values=None, dps=20, tolerance=BRACKET_HALF_WIDTH):
    evaluate = _Evaluator(a, mu, dps)
    lo_f, hi_f = float(lo), float(hi)
    grid = np.linspace(lo_f, hi_f, 401)
    if grid_values is None:
        grid_values = np.array([float(evaluate(_regular(a, mu, g, lo_f))[0]) for g in grid])
    grid_values = np.asarray(grid_values, dtype=float)
    found = []

    def record(value, bracket, certified, kind, method):
        value_sym = sp.Float(mpmath.nstr(value, dps), dps)
        exact_value = _identify(a, mu, value_sym)
        if exact_value is not None:
            found.append(CriticalMu(exact_value, True, 0.0, None, True, "simple" if kind != "tangential" else "multiple",
                                    "numeric zero identified and proven exact by substitution"))
            return
        error = tolerance if bracket is None else float(bracket[1] - bracket[0]) / 2
        found.append(CriticalMu(value_sym, False, error, bracket, certified,
                                "tangential" if kind == "tangential" else "simple", method))

    # interval ends: exact zeros there are common (a(1) = 0 for matched pairs)
    for end, end_f in ((lo, lo_f), (hi, hi_f)):
        if _is_exact_zero(a.subs(mu, end)):
            found.append(CriticalMu(sp.nsimplify(end), True, 0.0, None, True, "simple",
                                    "a vanishes identically at the interval end (proven by substitution)"))
    for end, end_f in ((lo, lo_f), (hi, hi_f)):
        if any(c.value == sp.nsimplify(end) for c in found):
            continue
        value, error = evaluate(_regular(a, mu, end_f, lo_f))
        if abs(value) <= error:
            found.append(CriticalMu(sp.nsimplify(end), False, 0.0, None, False, "simple",
                                    f"|a| <= its evaluation error {float(error):.1g} at the interval end; "
                                    "not proven exact"))
    ends = {float(c.value) for c in found}
    signs = np.sign(grid_values)
    for k in range(len(grid) - 1):
        left, right = grid[k], grid[k + 1]
        if not (np.isfinite(grid_values[k]) and np.isfinite(grid_values[k + 1])):
            continue
        if signs[k] * signs[k + 1] < 0 or (signs[k + 1] == 0 and 0 < k + 1 < len(grid) - 1):
            if signs[k + 1] == 0:
                right = grid[min(k + 2, len(grid) - 1)]
            root = _refine(evaluate, left, right, dps)
            if root is None:
                continue
            value, bracket, certified = root
            if any(abs(float(value) - e) < 1e-9 for e in ends):
                continue
            record(value, bracket, certified, "simple",
                   f"sign change of a evaluated with mpmath at {dps} digits, refined by mpmath.findroot; "
                   f"bracket of half-width {BRACKET_HALF_WIDTH:g} {'certified' if certified else 'NOT certified'}")
    # tangential zeros: local minima of |a| on the grid with no sign change nearby
    absval = np.abs(grid_values)
    scale = max(float(np.nanmax(absval)), 1e-300) if np.any(np.isfinite(absval)) else 1.0
    for k in range(1, len(grid) - 1):
        if not (absval[k] <= absval[k - 1] and absval[k] <= absval[k + 1]):
            continue
        if signs[k - 1] != signs[k + 1] or signs[k] == -signs[k - 1] or absval[k] > 1e-3 * scale:
            continue
        left, right = grid[k - 1], grid[k + 1]
        if any(left <= float(c.value) <= right for c in found):
            continue
        from scipy.optimize import minimize_scalar

        best = minimize_scalar(lambda x: abs(float(evaluate(x)[0])), bounds=(left, right), method="bounded",
                               options={"xatol": 1e-13})
        value, error = evaluate(best.x)
        if abs(value) <= error or abs(value) < 1e-12 * scale:
            record(mpmath.mpf(best.x), None, False, "tangential",
                   "local minimum of |a| where a is zero within its evaluation error but does not change sign: "
                   "a tangential (double) zero that numerics cannot certify")
    return found


def _regular(a, mu, point, lo):
    """Evaluation point: ``μ = 0`` closed forms are often 0/0, use the limit from above."""
    return point if point != 0 else 1e-30


def _refine(evaluate, left, right, dps):
    """Refine a sign change to a certified bracket of half-width ``BRACKET_HALF_WIDTH``."""
    with mpmath.workdps(dps):
        fl, el = evaluate(left)
        fr, er = evaluate(right)
        if _sign(fl, el) * _sign(fr, er) >= 0:
            return None
        try:
            root = mpmath.findroot(lambda x: evaluate(x)[0], (mpmath.mpf(left), mpmath.mpf(right)),
                                   solver="illinois", tol=mpmath.mpf(10) ** (-2 * dps // 3))
        except (ValueError, ZeroDivisionError):
            root = mpmath.mpf(left + right) / 2
        if not left <= root <= right:
            root = mpmath.mpf(left + right) / 2
        delta = mpmath.mpf(BRACKET_HALF_WIDTH)
        for _ in range(8):
            lo_b, hi_b = root - delta, root + delta
            sl, sh = _sign(*evaluate(lo_b)), _sign(*evaluate(hi_b))
            if sl * sh < 0:
                return root, (float(lo_b), float(hi_b)), True
            delta *= 10
        return root, (float(root - delta), float(root + delta)), False


# ---------------------------------------------------------------------------
# entry point


def find_zeros(a, mu, lo, hi, grid_values=None, dps=20) -> CriticalMuRoots:
    """Zeros of ``a(μ)`` on ``[lo, hi]`` (see the module docstring for the routes).

    Parameters
    ----------
    a : sympy.Expr
        A function of the symbol ``mu`` only (closed form or with 1-D
        quadrature nodes).
    mu : sympy.Symbol
    lo, hi : sympy numbers, ``lo < hi``
    grid_values : array_like, optional
        ``a`` on ``numpy.linspace(lo, hi, 401)`` from fast generated code,
        used only to locate candidate brackets (every bracket is then
        re-evaluated and certified with mpmath).
    dps : int
        Working precision of the numeric route.

    Returns
    -------
    CriticalMuRoots

    Examples
    --------
    >>> import sympy as sp
    >>> mu = sp.Symbol("mu", positive=True)
    >>> roots = find_zeros(sp.sqrt(2) / (2 * sp.sqrt(sp.pi)) - mu / 2, mu, 0, 1)
    >>> roots
    CriticalMuRoots(CriticalMu(sqrt(2)/sqrt(pi), exact, simple))
    >>> roots = find_zeros(sp.cos(mu) - mu, mu, 0, 1)  # no closed form: certified bracket
    >>> round(float(roots[0]), 12), roots.details[0].certified
    (0.739085133215, True)
    """
    a = sp.sympify(a)
    if a.free_symbols - {mu}:
        raise ValueError("a(mu) has free symbols besides mu: " + ", ".join(sorted(map(str, a.free_symbols - {mu}))))
    if not a.has(GaussianExpectation) and a.is_polynomial(mu):
        exact = _exact_polynomial_roots(a, mu, lo, hi)
        if exact is not None:
            return CriticalMuRoots(exact)
    return CriticalMuRoots(_numeric_zeros(a, mu, lo, hi, grid_values, dps))
