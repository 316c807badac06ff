r"""Is an activation a real, finite, Gaussian-square-integrable function on R?

The model needs ``E[σ(X)²]`` (and the same for derivatives) under
``X ~ N(0, Q)`` for every variance ``Q`` the dynamics can reach, and ``Q =
|w|²`` is unbounded.  So an activation must be

* real-valued at every real ``x`` (``sqrt(x**2 - 1)`` and ``x**x`` are not),
* finite at every real ``x``: no pole anywhere, whatever the denominator
  (``1/tanh(x)``, ``1/erf(x)``, ``1/(exp(x) - 1)``, ``exp(x**-2)``),
* of growth ``log|σ(x)| = o(x²)`` as ``|x| → ∞`` (``exp(c x²)`` diverges
  once ``Q >= 1/(4c)``, however small ``c`` is).

This module decides all three by a structural analysis of the SymPy
expression, not by sampling: each sub-expression gets an enclosure of its
range over the real line (interval arithmetic in the extended reals,
monotone maps for ``exp``, ``tanh``, ``erf``, ...) and an upper bound on its
growth, ``log|f(x)| <= c |x|^p + k log|x| + O(1)``.  Polynomials are
treated exactly (real roots, leading terms).

The analysis is sound and conservative: an expression it accepts has all
three properties; an expression it cannot certify (for example
``1/(exp(x) - x)``, which never vanishes but whose denominator's enclosure
contains 0) is refused with a message saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp

__all__ = ["NotIntegrableError", "check_activation_expr", "MAX_NODES", "MAX_DEPTH"]

#: Largest number of nodes of an activation expression tree.
MAX_NODES = 3000
#: Largest nesting depth of an activation expression tree.
MAX_DEPTH = 60

_INF = math.inf


class NotIntegrableError(ValueError):
    """The expectation diverges, or the function is not a real, finite,
    Gaussian-square-integrable function (e.g. a pole, ``exp(x²)`` growth)."""


@dataclass(frozen=True)
class _Info:
    """Range enclosure ``[lo, hi]`` over R and growth ``log|f| <= c|x|^p + k log|x|``."""

    lo: float
    hi: float
    p: float = 0.0
    c: float = 0.0
    k: float = 0.0

    @property
    def growth(self):
        return (self.p, self.c, self.k)


def _bounded(lo, hi):
    return _Info(lo, hi, 0.0, 0.0, 0.0)


def _max_growth(*infos):
    return max((i.growth for i in infos), default=(0.0, 0.0, 0.0))


def _sum_growth(*infos):
    p = max((i.p for i in infos), default=0.0)
    c = sum(i.c for i in infos if i.p == p) if p > 0 else 0.0
    k = sum(i.k for i in infos)
    return p, c, k


def _widen(lo, hi):
    """Outward slack covering float rounding in the enclosure."""
    def slack(v):
        return 1e-9 * abs(v) + 1e-300 if math.isfinite(v) else 0.0

    return lo - slack(lo), hi + slack(hi)


def _mul(a, b):
    if a == 0 or b == 0:
        return 0.0
    return a * b


def _interval_mul(i1, i2):
    # a lower end of -1e-300 is a widened 0: times an unbounded factor it would
    # read -inf (t**2 * |t| has no negative values)
    i1, i2 = (_Info(0.0, i.hi, i.p, i.c, i.k) if -1e-250 < i.lo < 0 else i for i in (i1, i2))
    products = [_mul(a, b) for a in (i1.lo, i1.hi) for b in (i2.lo, i2.hi)]
    return _widen(min(products), max(products))


def _safe_exp(v):
    if v == -_INF:
        return 0.0
    try:
        return math.exp(v)
    except OverflowError:
        return _INF


class _Analyser:
    def __init__(self, sym, what):
        self.sym = sym
        self.what = what

    def fail(self, reason):
        raise NotIntegrableError(f"{self.what} {reason}")

    # -------------------------------------------------------------- constants

    def constant(self, expr):
        if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            self.fail(f"contains the non-finite constant {expr}")
        if expr.is_real is False or expr.has(sp.I):
            self.fail(f"is not real-valued (constant {expr})")
        value = sp.N(expr, 30)
        if not value.is_number or value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            self.fail(f"contains a constant that cannot be evaluated: {expr}")
        re, im = value.as_real_imag()
        if im != 0 and abs(im) > 1e-25 * max(1, abs(re)):
            self.fail(f"is not real-valued (constant {expr})")
        v = float(re) if abs(re) < 1e300 else math.copysign(_INF, float(re))
        lo, hi = _widen(v, v)
        return _bounded(lo, hi)

    # ------------------------------------------------------------ polynomials

    def real_roots(self, poly):
        """Approximate real roots with multiplicities; exact where SymPy can."""
        roots = []
        try:
            _, factors = poly.sqf_list()
        except (sp.PolynomialError, NotImplementedError, sp.polys.polyerrors.CoercionFailed):
            factors = [(poly, 1)]
        for factor, mult in factors:
            if factor.degree() < 1:
                continue
            if factor.get_domain().is_ZZ or factor.get_domain().is_QQ:
                roots.extend((float(r), mult) for r in sp.real_roots(factor))
                continue
            try:
                approx = factor.nroots(n=30, maxsteps=200)
            except (sp.polys.polyerrors.PolynomialError, NotImplementedError, ValueError) as exc:
                self.fail(f"has a denominator or root argument whose real zeros cannot be located ({exc})")
            except Exception:  # mpmath.NoConvergence  # noqa: BLE001
                self.fail("has a polynomial whose real zeros cannot be located")
            for r in approx:
                re, im = r.as_real_imag()
                if abs(im) <= 1e-20 * (1 + abs(re)):
                    roots.append((float(re), mult))
        return roots

    def polynomial(self, expr):
        poly = sp.Poly(expr, self.sym)
        for coeff in poly.coeffs():
            self.constant(coeff)
        degree = poly.degree()
        if degree <= 0:
            return self.constant(expr)
        lead = float(sp.N(poly.LC(), 30))
        dpoly = poly.diff(self.sym)
        critical = [r for r, _ in self.real_roots(dpoly)] if dpoly.degree() > 0 else []
        values = [float(sp.N(poly.as_expr().subs(self.sym, sp.Float(r, 30)), 30)) for r in critical]
        if degree % 2:
            lo, hi = -_INF, _INF
        elif lead > 0:
            lo, hi = (min(values) if values else -_INF), _INF
        else:
            lo, hi = -_INF, (max(values) if values else _INF)
        lo, hi = _widen(lo, hi)
        return _Info(lo, hi, 0.0, 0.0, float(degree))

    def poly_sign(self, expr):
        """For a polynomial: 'positive', 'nonnegative', or the first sign change / real zero."""
        poly = sp.Poly(expr, self.sym)
        roots = self.real_roots(poly)
        if poly.degree() <= 0:
            value = float(sp.N(expr, 30))
            return ("positive" if value > 0 else "zero" if value == 0 else "negative"), None
        odd = [r for r, m in roots if m % 2]
        if odd:
            return "changes sign", odd[0]
        probe = max((abs(r) for r, _ in roots), default=0.0) + 1.0
        value = float(sp.N(expr.subs(self.sym, sp.Float(probe, 30)), 30))
        if value < 0:
            return "negative", None
        if roots:
            return "nonnegative", roots[0][0]
        return "positive", None

    # -------------------------------------------------------------- the walk

    def analyse(self, expr):
        sym = self.sym
        if not expr.has(sym):
            return self.constant(expr)
        if expr == sym:
            return _Info(-_INF, _INF, 0.0, 0.0, 1.0)
        if isinstance(expr, sp.Symbol):
            self.fail(f"depends on a second variable {expr}")
        if expr.is_polynomial(sym):
            return self.polynomial(expr)
        if isinstance(expr, sp.Add):
            infos = [self.analyse(a) for a in expr.args]
            lo = sum(i.lo for i in infos)
            hi = sum(i.hi for i in infos)
            lo, hi = _widen(lo, hi)
            p, c, k = _max_growth(*infos)
            return _Info(lo, hi, p, c, k)
        if isinstance(expr, sp.Mul):
            infos = [self.analyse(a) for a in expr.args]
            current = infos[0]
            lo, hi = current.lo, current.hi
            for info in infos[1:]:
                lo, hi = _interval_mul(_Info(lo, hi), info)
            p, c, k = _sum_growth(*infos)
            return _Info(lo, hi, p, c, k)
        if isinstance(expr, sp.Pow):
            return self.power(expr)
        if isinstance(expr, sp.exp):
            return self.exponential(expr.args[0])
        if isinstance(expr, sp.log):
            return self.logarithm(expr)
        return self.function(expr)

    def power(self, expr):
        base, exponent = expr.args
        if exponent.has(self.sym):
            self.fail(f"has the power {expr} with an exponent depending on x (complex for negative bases)")
        self.constant(exponent)
        n = float(sp.N(exponent, 30))
        if not math.isfinite(n):
            self.fail(f"has a non-finite exponent in {expr}")
        integer = exponent.is_Integer
        info = self.analyse(base)
        polynomial = base.is_polynomial(self.sym)
        if n < 0:
            self.nonvanishing(base, info, polynomial, positive=not integer)
        elif not integer:
            self.nonnegative(base, info, polynomial)
        lo, hi = self.power_interval(info, n, integer)
        if n < 0:
            # |base| is bounded away from 0, so |base|^n is bounded
            return _bounded(lo, hi)
        return _Info(lo, hi, info.p, info.c * n, info.k * n)

    def power_interval(self, info, n, integer):
        lo, hi = info.lo, info.hi
        if integer and n % 2 == 0 or not integer:
            # even or fractional powers see |base|
            if not integer:
                lo = max(lo, 0.0)
            mags = (abs(lo), abs(hi))
            small = 0.0 if lo <= 0 <= hi else min(mags)
            large = max(mags)
            candidates = [_pow(small, n), _pow(large, n)]
            return _widen(min(candidates), max(candidates))
        candidates = [_pow(lo, n), _pow(hi, n)]
        return _widen(min(candidates), max(candidates))

    def nonvanishing(self, base, info, polynomial, positive):
        if polynomial:
            sign, where = self.poly_sign(base)
            if sign == "positive" or (sign == "negative" and not positive):
                return
            if sign in ("zero",):
                self.fail("divides by zero")
            if sign == "negative":
                self.fail(f"is not real-valued: {base} < 0 under a fractional power")
            self.fail(f"has a pole at x ≈ {where:.6g} (where {base} vanishes): its Gaussian expectations diverge")
        if positive:
            if info.lo > 0:
                return
        elif info.lo > 0 or info.hi < 0:
            return
        self.fail(
            f"may have a pole: the denominator {base} reaches or approaches 0 on the real line "
            "(its range cannot be shown to exclude 0), so Gaussian expectations may diverge"
        )

    def nonnegative(self, base, info, polynomial):
        if polynomial:
            sign, where = self.poly_sign(base)
            if sign in ("positive", "nonnegative", "zero"):
                return
            at = f" (e.g. near x = {where:.6g})" if where is not None else ""
            self.fail(f"is not real-valued: {base} takes negative values{at} under a fractional power")
        if info.lo >= 0:
            return
        self.fail(f"may not be real-valued: {base} cannot be shown to be >= 0 under a fractional power")

    def exponential(self, arg):
        info = self.analyse(arg)
        lo, hi = _safe_exp(info.lo), _safe_exp(info.hi)
        lo, hi = _widen(lo, hi)
        lo = max(lo, 0.0)
        if info.hi < _INF:
            return _bounded(lo, hi)
        if arg.is_polynomial(self.sym):
            poly = sp.Poly(arg, self.sym)
            degree = poly.degree()
            lead = abs(float(sp.N(poly.LC(), 30)))
            return _Info(lo, hi, float(degree), lead, 0.0)
        if info.p == 0:
            # |arg| <= C |x|^k with an unknown constant C
            return _Info(lo, hi, info.k, _INF, 0.0)
        return _Info(lo, hi, _INF, _INF, 0.0)

    def logarithm(self, expr):
        if len(expr.args) != 1:
            self.fail(f"uses a logarithm with a base: {expr}")
        arg = expr.args[0]
        info = self.analyse(arg)
        polynomial = arg.is_polynomial(self.sym)
        if polynomial:
            sign, where = self.poly_sign(arg)
            if sign != "positive":
                self.fail(f"takes the logarithm of {arg}, which is not positive on the whole real line")
        elif not info.lo > 0:
            self.fail(f"takes the logarithm of {arg}, which cannot be shown to stay away from 0")
        lo = math.log(info.lo) if info.lo > 0 else -_INF
        hi = math.log(info.hi) if math.isfinite(info.hi) else _INF
        lo, hi = _widen(lo, hi)
        if info.p == _INF:
            return _Info(lo, hi, _INF, _INF, 0.0)
        return _Info(lo, hi, 0.0, 0.0, max(info.p, 1.0))

    def function(self, expr):
        cls = type(expr)
        if isinstance(expr, sp.DiracDelta):
            self.fail(f"contains {expr}, which is not a function")
        if cls in _BOUNDED_MONOTONE:
            (arg,) = expr.args
            info = self.analyse(arg)
            lo, hi = _BOUNDED_MONOTONE[cls](info.lo), _BOUNDED_MONOTONE[cls](info.hi)
            lo, hi = _widen(min(lo, hi), max(lo, hi))
            return _bounded(lo, hi)
        if cls in _BOUNDED:
            for arg in expr.args[:1]:
                self.analyse(arg)
            lo, hi = _BOUNDED[cls]
            return _bounded(lo, hi)
        if cls in (sp.Max, sp.Min):
            infos = [self.analyse(a) for a in expr.args]
            pick = max if cls is sp.Max else min
            lo, hi = pick(i.lo for i in infos), pick(i.hi for i in infos)
            p, c, k = _max_growth(*infos)
            return _Info(lo, hi, p, c, k)
        if cls is sp.Piecewise:
            # each piece over the whole line: conservative, conditions only restrict
            infos = [self.analyse(piece) for piece, _ in expr.args]
            lo, hi = min(i.lo for i in infos), max(i.hi for i in infos)
            p, c, k = _max_growth(*infos)
            return _Info(lo, hi, p, c, k)
        if cls is sp.Abs:
            info = self.analyse(expr.args[0])
            small = 0.0 if info.lo <= 0 <= info.hi else min(abs(info.lo), abs(info.hi))
            return _Info(small, max(abs(info.lo), abs(info.hi)), info.p, info.c, info.k)
        rewritten = expr.rewrite(sp.exp)
        if cls is sp.cosh:
            # (e^a + e^-a)/2 >= 1: the sum rule alone only sees each term > 0
            info = self.analyse(rewritten)
            return _Info(max(info.lo, 1.0), info.hi, info.p, info.c, info.k)
        if rewritten != expr and not isinstance(rewritten, type(expr)):
            return self.analyse(rewritten)
        self.fail(f"uses {cls.__name__}, whose integrability symlora cannot verify")


def _pow(v, n):
    if v == 0:
        return 0.0 if n > 0 else _INF
    if math.isinf(v):
        return (_INF if v > 0 or n % 2 == 0 else -_INF) if n > 0 else 0.0
    try:
        return math.copysign(abs(v) ** n, v if float(n).is_integer() and n % 2 else 1.0)
    except OverflowError:
        return _INF


def _monotone(func, lo_value, hi_value):
    def apply(v):
        if v == -_INF:
            return lo_value
        if v == _INF:
            return hi_value
        return func(v)

    return apply


_BOUNDED_MONOTONE = {
    sp.tanh: _monotone(math.tanh, -1.0, 1.0),
    sp.erf: _monotone(math.erf, -1.0, 1.0),
    sp.erfc: _monotone(math.erfc, 2.0, 0.0),
    sp.atan: _monotone(math.atan, -math.pi / 2, math.pi / 2),
}

_BOUNDED = {
    sp.sign: (-1.0, 1.0),
    sp.Heaviside: (0.0, 1.0),
    sp.sin: (-1.0, 1.0),
    sp.cos: (-1.0, 1.0),
}


def _check_size(expr, what):
    nodes = 0
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ValueError(f"{what} is too large (more than {MAX_NODES} nodes)")
        if depth > MAX_DEPTH:
            raise ValueError(f"{what} is nested too deeply (more than {MAX_DEPTH} levels)")
        stack.extend((a, depth + 1) for a in node.args)


def check_activation_expr(expr: sp.Expr, sym: sp.Symbol, what: str) -> None:
    """Refuse ``expr`` unless it is real, finite and Gaussian-square-integrable on R.

    Parameters
    ----------
    expr : sympy.Expr
        A function of the real symbol ``sym``.
    sym : sympy.Symbol
    what : str
        How messages name the function, e.g. ``"activation 'tanh(x)'"``.

    Raises
    ------
    NotIntegrableError
        With the reason: not real-valued, a pole (or a denominator whose
        range cannot be shown to exclude 0), or growth ``exp(c|x|^p)`` with
        ``p >= 2`` (Gaussian expectations diverge for large variances).
    ValueError
        The expression is too large or too deeply nested to analyse.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> check_activation_expr(sp.tanh(x) + x**3, x, "f")
    >>> check_activation_expr(1 / sp.tanh(x), x, "f")
    Traceback (most recent call last):
    ...
    symlora._integrability.NotIntegrableError: f may have a pole: ...
    """
    if not isinstance(expr, sp.Expr):
        raise TypeError(f"{what} must be a SymPy expression, got {type(expr).__name__}")
    _check_size(expr, what)
    analyser = _Analyser(sym, what)
    extra = expr.free_symbols - {sym}
    if extra:
        analyser.fail(f"depends on a second variable {', '.join(sorted(map(str, extra)))}")
    if expr.is_polynomial(sym):
        # polynomials are finite and integrable; only complex coefficients are refused
        for coeff in sp.Poly(expr, sym).coeffs():
            analyser.constant(coeff)
        return
    info = analyser.analyse(expr)
    if info.p >= 2:
        if info.p == _INF:
            raise NotIntegrableError(
                f"{what} grows faster than exp(c x^2) for every c: its Gaussian expectations diverge"
            )
        power = "x^2" if info.p == 2 else f"|x|^{info.p:g}"
        raise NotIntegrableError(
            f"{what} grows like exp(c {power}): its Gaussian expectations diverge "
            "(for every c > 0 at the large variances the dynamics reach)"
        )
