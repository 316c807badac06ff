"""The structure of an integrand, read from its SymPy form: where it is not
smooth and how it splits into factors of one variable each.

Used to choose the numeric route of a :class:`~symlora.GaussianExpectation`:
kink-aligned quadrature (:func:`kink_locations`), Mehler's series for sums of
smooth products (:func:`separable_parts`), or a piecewise-polynomial factor
integrated exactly given the other variable (:func:`conditional_parts`).
"""

from __future__ import annotations

import sympy as sp

__all__ = ["kink_locations", "separable_parts", "conditional_parts"]

#: Functions whose value or derivative jumps where their argument vanishes.
_KINKED = (sp.Heaviside, sp.DiracDelta, sp.sign, sp.Abs, sp.Max, sp.Min)


def kink_locations(expr, variables) -> tuple:
    """``((i, c), ...)``: ``expr`` is not smooth where ``variables[i] = c``.

    Found from the arguments of ``Heaviside``, ``sign``, ``Abs``, ``Max``,
    ``Min`` that are affine in a single variable; kinks along other lines are
    not reported (the quadrature then sees them as unaligned).

    Examples
    --------
    >>> a, b = sp.symbols("a b", real=True)
    >>> kink_locations(sp.tanh(a) * sp.Max(0, b - sp.Rational(1, 2)) + sp.Abs(2 * a), (a, b))
    ((0, 0), (1, 1/2))
    """
    found = []
    for atom in sp.preorder_traversal(expr):
        if not isinstance(atom, _KINKED):
            continue
        for arg in atom.args:
            used = [i for i, v in enumerate(variables) if arg.has(v)]
            if len(used) != 1:
                continue
            v = variables[used[0]]
            poly = sp.Poly(arg, v) if arg.is_polynomial(v) else None
            if poly is None or poly.degree() != 1:
                continue
            slope, offset = poly.all_coeffs()
            location = sp.cancel(-offset / slope)
            if (used[0], location) not in found:
                found.append((used[0], location))
    return tuple(sorted(found, key=lambda item: (item[0], sp.default_sort_key(item[1]))))


def _kink_directions(expr, variables) -> list:
    """Distinct directions ``l`` (first non-zero entry 1) of the kinks ``l·X = c`` of ``expr``, or None.

    None when some kink is not along an affine form of the variables.
    """
    directions = []
    for atom in sp.preorder_traversal(expr):
        if not isinstance(atom, _KINKED):
            continue
        for arg in atom.args:
            if not arg.has(*variables):
                continue
            if not arg.is_polynomial(*variables) or sp.Poly(arg, *variables).total_degree() != 1:
                return None
            row = [sp.expand(arg).coeff(v) for v in variables]
            lead = next(c for c in row if c != 0)
            row = tuple(sp.nsimplify(c / lead) for c in row)
            if row not in directions:
                directions.append(row)
    return directions


class _NotSeparable(Exception):
    """Internal: a factor depends on both variables."""


def separable_parts(expr, variables, allow_kinks=False):
    """``[(f_j, g_j), ...]`` with ``expr = Σ_j f_j(X) g_j(Y)``, or None.

    ``None`` also for integrands with kinks (their Hermite coefficients decay
    too slowly for Mehler's series) and for more than two variables; a part
    that does not depend on a variable is ``None`` there (the constant 1).

    Examples
    --------
    >>> a, b = sp.symbols("a b", real=True)
    >>> separable_parts((sp.tanh(a) - sp.tanh(b)) ** 2, (a, b))
    [(tanh(a)**2, None), (None, tanh(b)**2), (2*tanh(a), -tanh(b))]
    >>> separable_parts(sp.tanh(a * b), (a, b)) is None
    True
    """
    if not 1 <= len(variables) <= 2 or (expr.has(*_KINKED) and not allow_kinks):
        return None
    x, y = variables[0], (variables[1] if len(variables) == 2 else None)
    hidden = {}

    def placeholder(e, side):
        if e not in hidden:
            hidden[e] = (sp.Dummy(f"f{side}"), side)
        return hidden[e][0]

    def hide(e):
        if y is None or not e.has(y):
            return placeholder(e, 0) if e.has(x) else e
        if not e.has(x):
            return placeholder(e, 1)
        if e.is_Add or e.is_Mul:
            return e.func(*[hide(arg) for arg in e.args])
        if e.is_Pow and e.exp.is_Integer and e.exp > 0:
            return hide(e.base) ** e.exp
        if isinstance(e, sp.exp) and e.args[0].is_Add:
            # exp(a(x) + b(y)) = exp(a(x)) exp(b(y)) (generated code combines exponentials)
            by_side = [sp.Add(*[t for t in e.args[0].args if t.has(x) and not t.has(y)]),
                       sp.Add(*[t for t in e.args[0].args if not t.has(x)])]
            if sp.Add(*by_side) == e.args[0]:
                return placeholder(sp.exp(by_side[0]), 0) * hide(sp.exp(by_side[1]))
        raise _NotSeparable

    try:
        polynomial = sp.expand(hide(expr))
    except _NotSeparable:
        return None
    back = {dummy: e for e, (dummy, _) in hidden.items()}
    side_of = {dummy: side for dummy, side in hidden.values()}
    groups = {}
    for term in sp.Add.make_args(polynomial):
        parts = [sp.S.One, sp.S.One]
        for factor in sp.Mul.make_args(term):
            base = factor.as_base_exp()[0]
            parts[side_of.get(base, 0)] *= factor
        right = parts[1].xreplace(back)
        groups[right] = groups.get(right, sp.S.Zero) + parts[0].xreplace(back)
    result = []
    for right, left in groups.items():
        if left == 0:
            continue
        if right == 1:
            right = None
        if not left.has(x):
            if right is None:
                result.append((left, None))  # a constant (rare: a node of a constant)
                continue
            right, left = left * right, None
        result.append((left, right))
    return result or None


def _pieces(expr, variable):
    """``expr`` as ``[(p, k, t, direction), ...]`` (see :func:`symlora._conditional.conditional_mean`), or None."""
    pieces = []
    for term in sp.Add.make_args(sp.expand(expr)):
        coefficient, power, indicator = sp.S.One, 0, None
        for factor in sp.Mul.make_args(term):
            base, exponent = factor.as_base_exp()
            if not factor.has(variable):
                coefficient *= factor
            elif base == variable and exponent.is_Integer and exponent > 0:
                power += int(exponent)
            elif isinstance(base, sp.Heaviside) and exponent.is_Integer and exponent > 0 and indicator is None:
                arg = sp.expand(base.args[0])
                if not arg.is_polynomial(variable) or sp.degree(arg, variable) != 1:
                    return None
                slope, offset = arg.coeff(variable), arg.subs(variable, 0)
                if not (slope.is_number and offset.is_number):
                    return None
                indicator = (float(-offset / slope), 1 if slope > 0 else -1)
            else:
                return None
        if not coefficient.is_number:
            return None
        threshold, direction = indicator if indicator else (0.0, 0)
        pieces.append((float(coefficient), power, threshold, direction))
    return pieces


def conditional_parts(expr, variables):
    """``(over_x, over_y)``: parts ``(f, f_kinks, pieces)`` for :mod:`symlora._conditional`, or None.

    Each separable part ``f(X) g(Y)`` with ``g`` piecewise polynomial goes
    into ``over_x`` (``g`` integrated exactly given ``X``), with ``f``
    piecewise polynomial into ``over_y``; parts where neither is, None.
    """
    if len(variables) != 2:
        return None
    parts = separable_parts(expr, variables, allow_kinks=True)
    if parts is None:
        return None
    sides = ([], [])
    for f, g in parts:
        for side, (own, other) in enumerate(((f, g), (g, f))):
            pieces = [(1.0, 0, 0.0, 0)] if other is None else _pieces(other, variables[1 - side])
            if pieces is not None:
                kinks = tuple(float(c) for _, c in kink_locations(own, (variables[side],))) if own is not None else ()
                if own is not None and own.has(*_KINKED) and not kinks:
                    return None  # a kink the rule cannot place
                sides[side].append((own, kinks, pieces))
                break
        else:
            return None
    return sides


