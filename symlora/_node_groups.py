"""Generated code for the quadrature nodes of a set of expressions.

:func:`compile_nodes` is the part of the code generator
(:mod:`symlora._codegen`) that evaluates :class:`~symlora.GaussianExpectation`
nodes.  Nodes with separable integrands (Mehler's route) that share a
covariance — every node of an aligned right-hand side does — become one
:class:`~symlora._separable.MehlerSums`: the distinct one-variable functions
of all of them are compiled into two vectorised functions (one per variable,
with common subexpressions shared, so ``tanh`` is evaluated once however many
powers of it occur), the Hermite coefficients of the side whose variance is a
constant are computed once, and a call costs a handful of numpy operations
for all nodes together.  Nodes with a kinked factor are grouped the same way
on the semi-analytic route of :mod:`symlora._conditional` (one adaptive
one-dimensional rule for all of them, each distinct function evaluated once
per point); what is left
(kink-aligned quadrature in two or more dimensions) is printed node by node
through its ``_numpycode``.

Three rules: ``default`` (values), ``with_error`` (values and error bounds)
and ``refined`` (a hundredfold tighter tolerance: the reference of
:meth:`~symlora._codegen.CompiledODE.rhs_error`).
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp
from sympy.printing.numpy import SciPyPrinter
from sympy.printing.precedence import precedence

from . import _conditional, _quadrature, _separable
from ._integrand_structure import conditional_parts, separable_parts
from ._node import NUMPY_NAMESPACE, kink_aligned

__all__ = ["compile_nodes", "MODULES"]


def _heaviside(arg, h0=0.5):
    return np.heaviside(arg, float(h0))


def _dirac(*_):
    raise ValueError("generated code cannot evaluate a Dirac delta pointwise")


#: Namespaces of generated code (``H(0) = 1/2``; a Dirac delta cannot be evaluated pointwise).
MODULES = [NUMPY_NAMESPACE, {"Heaviside": _heaviside, "DiracDelta": _dirac}, "scipy", "numpy"]


def _refined_expectation(func, cov, nodes=None, args=(), kinks=()):
    # the adaptive rule at a hundredfold tighter tolerance (kinks on breakpoints)
    return _quadrature.quadrature_expectation(func, cov, None, args, kinks, tol=_quadrature.DEFAULT_TOLERANCE / 100)


def _expectation_with_error(func, cov, nodes=None, args=(), kinks=()):
    # the default rule's own value and error bound, |I(2n) - I(n)| plus rounding
    return _quadrature.quadrature_with_error(func, cov, args, kinks)


def _conditional_with_error(parts, a, b, c, args=()):
    # the semi-analytic route: value and the one-dimensional rule's bound
    return _conditional.conditional_with_error(parts, a, b, c, args)


def _refined_conditional(parts, a, b, c, args=()):
    # the one-dimensional rule at a hundredfold tighter tolerance
    return _conditional.conditional_with_error(parts, a, b, c, args, tol=_quadrature.DEFAULT_TOLERANCE / 100)[0]


def _refined_separable(left, right, a, b, c, args=()):
    return _separable.separable_expectation(left, right, a, b, c, args, **_REFINED_MEHLER)


def _separable_with_error(left, right, a, b, c, args=()):
    return _separable.separable_with_error(left, right, a, b, c, args)


#: Mehler's series with more terms and a finer one-dimensional rule (the refined rule).
_REFINED_MEHLER = {"tol": _separable.SEPARABLE_TOLERANCE / 100, "nodes": 3 * _separable.MEHLER_NODES // 2}

_NODE_MODULES = {
    "default": MODULES,
    "with_error": [{"_gauss_expectation": _expectation_with_error, "_gauss_separable": _separable_with_error,
                    "_gauss_conditional": _conditional_with_error}] + MODULES[1:],
    "refined": [{"_gauss_expectation": _refined_expectation, "_gauss_separable": _refined_separable,
                 "_gauss_conditional": _refined_conditional}] + MODULES[1:],
}


class _PowerPrinter(SciPyPrinter):
    """The printer of generated code, with small integer powers written as products.

    ``numpy.power`` of a negative base takes the slow path of the C library's
    ``pow`` (about 150 ns an element, fifty times a product): in the functions
    of one variable, evaluated on every quadrature node, ``tanh(x)**3`` costs more
    than the rest of the sum.  Squares are fast in numpy already.
    """

    def _print_Pow(self, expr, rational=False):
        if expr.exp.is_Integer and 3 <= expr.exp <= 8:
            base = self.parenthesize(expr.base, precedence(expr))
            return "(" + "*".join([base] * int(expr.exp)) + ")"
        return super()._print_Pow(expr, rational=rational)


def _lambdify(args, exprs):
    """``sympy.lambdify`` with :data:`MODULES` and common subexpressions shared, powers as products."""
    names = {key: key for namespace in MODULES if isinstance(namespace, dict) for key in namespace}
    printer = _PowerPrinter({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                             "user_functions": names})
    return sp.lambdify(args, exprs, modules=MODULES, cse=True, printer=printer)


@functools.lru_cache(maxsize=256)
def _lambdify_node(args: tuple, node, rule: str):
    return sp.lambdify(args, node, modules=_NODE_MODULES[rule])


_X, _Y = sp.Dummy("x", real=True), sp.Dummy("y", real=True)


def _terms(expr):
    """``[(κ, f), ...]`` with ``expr = Σ κ f``, ``κ`` numbers, ``f = None`` for the constant term.

    One compiled function serves ``f``, ``2 f``, ``-f`` and ``f - 1``.
    """
    constant, rest = expr.as_coeff_Add()
    terms = [(constant, None)] if constant != 0 else []
    if rest == 0:
        return terms
    coefficient, rest = rest.as_content_primitive()
    if rest.could_extract_minus_sign():
        coefficient, rest = -coefficient, -rest
    if rest.is_Mul:
        number, rest = rest.as_coeff_Mul()
        coefficient *= number
    return terms + [(coefficient, None if rest == 1 else rest)]


def _parity(expr, variable):
    """1 if ``expr`` is even in ``variable``, -1 if odd, 0 if neither is evident (no symmetry used)."""
    mirrored = sp.expand(expr.xreplace({variable: -variable}))
    expanded = sp.expand(expr)
    if mirrored == expanded:
        return 1
    if mirrored == -expanded:
        return -1
    return 0


class _SeparableGroup:
    """Separable nodes sharing one covariance ``[[a, c], [c, b]]``: one :class:`MehlerSums`."""

    def __init__(self, args, key, members):
        a, b, c = key
        extras = sorted(set().union(*(node.integrand.free_symbols for node, _ in members)), key=lambda s: s.name)
        sides = ([], [])  # distinct functions of x and of y
        terms = []  # (member, coefficient, left index or None, right index or None)
        for index, (node, parts) in enumerate(members):
            x = node.variables[0]
            y = node.variables[1] if len(node.variables) == 2 else None
            for f, g in parts:
                expanded = []  # per side: [(coefficient, index or None)]
                for side, (expr, variable, common) in enumerate(((f, x, _X), (g, y, _Y))):
                    if expr is None:
                        expanded.append([(sp.S.One, None)])
                        continue
                    expanded.append([])
                    for number, function in _terms(expr.xreplace({variable: common})):
                        if function is not None and function not in sides[side]:
                            sides[side].append(function)
                        expanded[side].append((number, None if function is None else sides[side].index(function)))
                terms.extend((index, float(kf * kg), i, j) for kf, i in expanded[0] for kg, j in expanded[1])
        combination = np.zeros((len(members), len(sides[0]) + 1, len(sides[1]) + 1))
        for index, coefficient, i, j in terms:
            combination[index, len(sides[0]) if i is None else i, len(sides[1]) if j is None else j] += coefficient
        # expand the side whose variance is a constant (computed once); else the side with fewer functions
        fixed = [v.is_number and not any(e.has(*extras) for e in side) for v, side in zip((a, b), sides)]
        self.swap = (fixed[0] and not fixed[1]) or (fixed[0] == fixed[1] and len(sides[0]) < len(sides[1]))
        order = (1, 0) if self.swap else (0, 1)
        # the expanded side, when fixed, is evaluated once without the extra arguments
        functions = [_lambdify((common, *([] if fixed[i] and i == order[1] else extras)), list(side))
                     if side else None
                     for i, (side, common) in enumerate(zip(sides, (_X, _Y)))]
        expanded = sides[order[1]]
        self.sums = _separable.MehlerSums(
            functions[order[0]], functions[order[1]],
            combination if not self.swap else combination.transpose(0, 2, 1),
            right_variance=float((a, b)[order[1]]) if fixed[order[1]] else None,
            right_parity=[_parity(e, (_X, _Y)[order[1]]) for e in expanded] if fixed[order[1]] else None)
        self.covariance = _lambdify(args, [a, b, c])
        self.extras = [args.index(e) for e in extras]

    def __call__(self, arrays, rule):
        a, b, c = self.covariance(*arrays)
        if self.swap:
            a, b = b, a
        extras = [arrays[i] for i in self.extras]
        if rule == "with_error":
            return list(zip(*self.sums.with_error(a, b, c, extras)))
        if rule == "refined":
            return list(self.sums(a, b, c, extras, **_REFINED_MEHLER))
        return list(self.sums(a, b, c, extras))


class _SharedValues:
    """All functions of one variable compiled together (common subexpressions shared), evaluated once
    per array of points: ``function(i)`` is the ``i``-th as a callable of its own."""

    def __init__(self, compiled):
        self.compiled, self.points, self.values = compiled, None, None

    def function(self, index):
        def value(x):
            if x is not self.points:  # the same array for every part of one integrand call
                self.points, self.values = x, self.compiled(x)
            return self.values[index]

        return value


class _ConditionalGroup:
    """Nodes on the semi-analytic route with the same ``(Var X, Var Y, Cov)`` on one side: one rule."""

    def __init__(self, args, key, members):
        a, b, c = key
        distinct = list(dict.fromkeys(f.xreplace({variable: _X}) for variable, parts in members
                                      for f, _, _ in parts if f is not None))
        shared = _SharedValues(_lambdify(_X, distinct)) if distinct else None

        def compiled(expr, variable):
            return None if expr is None else shared.function(distinct.index(expr.xreplace({variable: _X})))

        self.outputs = [[(compiled(f, variable), kinks, pieces) for f, kinks, pieces in parts]
                        for variable, parts in members]
        self.covariance = _lambdify(args, [a, b, c])

    def __call__(self, arrays, rule):
        a, b, c = self.covariance(*arrays)
        tol = _quadrature.DEFAULT_TOLERANCE / (100 if rule == "refined" else 1)
        # the tighter bound costs one more rule: only where the bound is asked for
        values, errors = _conditional.conditional_sums(self.outputs, a, b, c, (), tol, certify=rule == "with_error")
        return list(zip(values, errors)) if rule == "with_error" else list(values)


def _separable_key(node):
    """``((a, b, c), parts)`` of a node on Mehler's route, else None."""
    aligned = kink_aligned(node)
    parts = separable_parts(aligned.integrand.expr, aligned.variables)
    if parts is None:
        return None
    cov = aligned.covariance
    key = (cov[0, 0], sp.S.One, sp.S.Zero) if cov.shape[0] == 1 else (cov[0, 0], cov[1, 1], cov[0, 1])
    return key, aligned, parts


def _conditional_keys(node):
    """``[((a, b, c), variable, parts), ...]`` per side of a node on the semi-analytic route, else None."""
    aligned = kink_aligned(node)
    if aligned.integrand.free_symbols:
        return None
    routes = conditional_parts(aligned.integrand.expr, aligned.variables)
    if routes is None:
        return None
    cov = aligned.covariance
    keys = []
    for side, parts in enumerate(routes):
        if parts:
            a, b = (cov[0, 0], cov[1, 1]) if side == 0 else (cov[1, 1], cov[0, 0])
            keys.append(((a, b, cov[0, 1]), aligned.variables[side], parts))
    return keys


def compile_nodes(args, nodes, rule="default"):
    """One function evaluating all ``nodes`` at the arguments ``args``.

    Returns ``evaluate(*arrays) -> list`` with one entry per node, in order:
    its value, or ``(value, error bound)`` for ``rule = "with_error"``.
    Separable nodes sharing a covariance form one :class:`_SeparableGroup`,
    nodes on the semi-analytic route sharing one a :class:`_ConditionalGroup`
    (a node with parts on both sides is the sum of two outputs).
    """
    args = tuple(args)
    separable, conditional, single = {}, {}, []
    for position, node in enumerate(nodes):
        found = _separable_key(node)
        if found is not None:
            key, aligned, parts = found
            separable.setdefault(key, []).append((position, (aligned, parts)))
            continue
        sides = _conditional_keys(node)
        if sides is None:
            single.append((position, _lambdify_node(args, node, rule)))
            continue
        for key, variable, parts in sides:
            conditional.setdefault(key, []).append((position, (variable, parts)))
    groups = [([p for p, _ in members], kind(args, key, [m for _, m in members]))
              for kind, table in ((_SeparableGroup, separable), (_ConditionalGroup, conditional))
              for key, members in table.items()]

    def evaluate(*arrays):
        values = [None] * len(nodes)
        for position, function in single:
            values[position] = function(*arrays)
        for positions, group in groups:
            for position, value in zip(positions, group(arrays, rule)):
                if values[position] is None:
                    values[position] = value
                elif rule == "with_error":
                    values[position] = (values[position][0] + value[0], values[position][1] + value[1])
                else:
                    values[position] = values[position] + value
        return values

    return evaluate
