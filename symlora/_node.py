"""An explicit, unevaluated Gaussian expectation: the mark of an approximation.

Where the engine finds no closed form (sigmoid, tanh, softplus, ...), it
returns a :class:`GaussianExpectation` node instead of a number.  The node is
ordinary SymPy: it can be differentiated by the chain rule through nothing
(it is treated as a function of its covariance entries only through
numeric evaluation), printed in LaTeX as ``\\mathbb{E}[...]``, evaluated with
``evalf`` at numeric covariances, and compiled by :mod:`symlora._codegen`
into vectorised Gaussian quadrature (iterated composite Gauss–Legendre with
breakpoints on the kinks of the integrand, order chosen from an error
estimate; see :mod:`symlora._quadrature`).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._conditional import conditional_expectation, conditional_with_error
from ._quadrature import quadrature_expectation, quadrature_with_error
from ._separable import separable_expectation, separable_with_error
from ._validate import covariance_matrix

__all__ = ["GaussianExpectation", "kink_locations", "kink_aligned", "separable_parts", "conditional_parts"]

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


def kink_aligned(node):
    """An equal expectation whose kinks lie on coordinate hyperplanes, where possible.

    A kink along ``l·X = c`` with ``l`` not a coordinate axis (``relu(X + Y)``)
    crosses the panels of the iterated quadrature rule, which then converges
    only algebraically and its error estimate is unreliable.  With at most
    ``k`` linearly independent kink directions ``l_1, ...`` the variables
    ``W = T X`` (rows of ``T``: the directions, completed by coordinate axes)
    put every kink on a hyperplane ``W_i = c``; ``Cov W = T Σ Tᵀ`` and the
    integrand is ``f(T⁻¹ W)``.  Otherwise ``node`` itself is returned.

    Examples
    --------
    >>> a, b = sp.symbols("a b", real=True)
    >>> node = GaussianExpectation(sp.Lambda((a, b), sp.Max(0, a + b) * sp.tanh(a)), sp.ImmutableMatrix([[1, 0], [0, 1]]))
    >>> aligned = kink_aligned(node)
    >>> aligned.covariance, kink_locations(aligned.integrand.expr, aligned.variables)
    (Matrix([
    [2, 1],
    [1, 1]]), ((0, 0),))
    """
    variables = node.variables
    k = len(variables)
    directions = _kink_directions(node.integrand.expr, variables)
    if not directions or all(sum(1 for c in row if c != 0) == 1 for row in directions):
        return node
    if len(directions) > k or sp.Matrix(directions).rank() < len(directions):
        return node
    rows = [list(row) for row in directions]
    for i in range(k):
        if len(rows) == k:
            break
        axis = [1 if j == i else 0 for j in range(k)]
        if sp.Matrix(rows + [axis]).rank() == len(rows) + 1:
            rows.append(axis)
    T = sp.Matrix(rows)
    new = [sp.Dummy(f"w{i}", real=True) for i in range(k)]
    back = T.inv() * sp.Matrix(new)
    integrand = node.integrand.expr.xreplace({v: back[i] for i, v in enumerate(variables)})
    covariance = (T * sp.Matrix(node.covariance) * T.T).applyfunc(sp.expand)
    return GaussianExpectation(sp.Lambda(tuple(new), integrand), sp.ImmutableMatrix(covariance))


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


class GaussianExpectation(sp.Expr):
    """``E[f(X)]`` for ``X ~ N(0, covariance)``, kept unevaluated.

    Parameters
    ----------
    integrand : sympy.Lambda
        ``f`` as a Lambda of the Gaussian variables.
    covariance : sympy.ImmutableMatrix
        Their covariance (entries may contain free symbols).

    Examples
    --------
    >>> import sympy as sp
    >>> t = sp.Symbol("t")
    >>> node = GaussianExpectation(sp.Lambda(t, sp.tanh(t) ** 2), sp.ImmutableMatrix([[1]]))
    >>> round(float(node.evalf()), 10)
    0.3942944904
    """

    is_commutative = True
    is_real = True

    def __new__(cls, integrand, covariance):
        if not isinstance(integrand, sp.Lambda):
            raise TypeError("integrand must be a sympy.Lambda of the Gaussian variables")
        nvars = len(integrand.variables)
        # entries one by one, never parsed from text; symmetric, PSD, finite
        covariance = covariance_matrix(covariance, nvars, "covariance")
        return sp.Expr.__new__(cls, integrand, covariance)

    @property
    def integrand(self) -> sp.Lambda:
        return self.args[0]

    @property
    def covariance(self) -> sp.ImmutableMatrix:
        return self.args[1]

    @property
    def variables(self):
        return self.integrand.variables

    @property
    def free_symbols(self):
        return self.integrand.free_symbols | self.covariance.free_symbols

    def _eval_subs(self, old, new):
        integrand = self.integrand.subs(old, new)
        covariance = self.covariance.subs(old, new)
        if integrand != self.integrand or covariance != self.covariance:
            return GaussianExpectation(integrand, covariance)
        return None

    def _eval_derivative(self, symbol):
        # Price's theorem: d E[f] / d cov_ij = E[d_i d_j f] (1/2 on the diagonal
        # of a symmetric matrix whose (i, j) and (j, i) entries move together).
        variables = self.variables
        expr = self.integrand.expr
        total = 0
        if expr.has(symbol):
            total += GaussianExpectation(sp.Lambda(variables, sp.diff(expr, symbol)), self.covariance)
        k = len(variables)
        for i in range(k):
            for j in range(k):
                dcov = sp.diff(self.covariance[i, j], symbol)
                if dcov != 0:
                    second = sp.diff(expr, variables[i], variables[j])
                    total += sp.Rational(1, 2) * dcov * GaussianExpectation(
                        sp.Lambda(variables, second), self.covariance
                    )
        return total

    def numeric(self, tol: float = 1e-13):
        """Value and error bound at a numeric covariance.

        Iterated composite Gauss–Legendre with breakpoints on the kinks of
        the integrand (:func:`kink_locations`); the order doubles until two
        successive rules agree to ``tol`` (relative to ``max(1, |value|)``),
        and their difference (plus rounding) is the error bound.

        Returns
        -------
        (float, float)
        """
        if self.free_symbols:
            raise ValueError(
                "cannot evaluate a Gaussian expectation with free symbols "
                + ", ".join(sorted(map(str, self.free_symbols)))
            )
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
            raise TypeError(f"tol must be a number in (0, 1), got {tol!r}")
        aligned = kink_aligned(self)
        if aligned is not self:
            return aligned.numeric(tol)
        cov = [[float(c) for c in row] for row in self.covariance.tolist()]
        parts = separable_parts(self.integrand.expr, self.variables)
        if parts is not None:
            a, b, c = (cov[0][0], 1.0, 0.0) if len(cov) == 1 else (cov[0][0], cov[1][1], cov[0][1])
            left, right = _part_functions(parts, self.variables, _NUMERIC_MODULES)
            with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
                value, error = separable_with_error(left, right, a, b, c, tol=tol)
            return float(value), float(error)
        routes = conditional_parts(self.integrand.expr, self.variables)
        if routes is not None:
            value, error = 0.0, 0.0
            for side, parts in enumerate(routes):
                if not parts:
                    continue
                variable = self.variables[side]
                numeric_parts = [
                    (None if f is None else sp.lambdify(variable, f, modules=_NUMERIC_MODULES), kinks, pieces)
                    for f, kinks, pieces in parts
                ]
                a, b = (cov[0][0], cov[1][1]) if side == 0 else (cov[1][1], cov[0][0])
                with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
                    v, e = conditional_with_error(numeric_parts, a, b, cov[0][1], tol=tol)
                value, error = value + float(v), error + float(e)
            return value, error
        func = sp.lambdify(self.variables, self.integrand.expr, modules=_NUMERIC_MODULES)
        kinks = [(i, float(c)) for i, c in kink_locations(self.integrand.expr, self.variables)]
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            value, error = quadrature_with_error(func, cov, kinks=kinks, tol=tol)
        return float(value), float(error)

    def _eval_evalf(self, prec):
        if self.free_symbols:
            return None
        value, _ = self.numeric()
        return sp.Float(value, prec)

    def _latex(self, printer):
        names = ", ".join(printer._print(v) for v in self.variables)
        body = printer._print(self.integrand.expr)
        return rf"\mathbb{{E}}_{{{names}}}\left[{body}\right]"

    def _sympystr(self, printer):
        names = ", ".join(printer._print(v) for v in self.variables)
        return (
            f"E[{printer._print(self.integrand.expr)}; ({names}) ~ "
            f"N(0, {printer._print(self.covariance.tolist())})]"
        )

    def _numpycode(self, printer):
        aligned = kink_aligned(self)
        if aligned is not self:
            return aligned._numpycode(printer)
        names = ", ".join(printer._print(v) for v in self.variables)
        body = printer._print(self.integrand.expr)
        rows = ", ".join(
            "(" + ", ".join(printer._print(c) for c in row) + ",)" for row in self.covariance.tolist()
        )
        extras = sorted(self.integrand.free_symbols, key=lambda sym: sym.name)
        parts = separable_parts(self.integrand.expr, self.variables)
        if parts is not None:
            return self._separable_code(printer, parts, extras)
        routes = conditional_parts(self.integrand.expr, self.variables) if not extras else None
        if routes is not None:
            return self._conditional_code(printer, routes)
        kinks = kink_locations(self.integrand.expr, self.variables)
        kink_text = "(" + "".join(f"({i}, {printer._print(c)}), " for i, c in kinks) + ")"
        if extras:
            # outer parameters enter the integrand as explicit, broadcast arguments
            extra_names = ", ".join(printer._print(e) for e in extras)
            return (
                f"_gauss_expectation(lambda {names}, {extra_names}: {body}, ({rows},), None, "
                f"({extra_names},), {kink_text})"
            )
        return f"_gauss_expectation(lambda {names}: {body}, ({rows},), None, (), {kink_text})"

    def _separable_code(self, printer, parts, extras):
        """``_gauss_separable((f_1, ...), (g_1, ...), a, b, c, extras)`` (see :mod:`symlora._separable`)."""
        extra_names = "".join(", " + printer._print(e) for e in extras)

        def function(expr, variable):
            if expr is None:
                return "None"
            return f"(lambda {printer._print(variable)}{extra_names}: {printer._print(expr)})"

        cov = self.covariance
        x = self.variables[0]
        y = self.variables[1] if len(self.variables) == 2 else x
        a, b, c = (cov[0, 0], 1, 0) if cov.shape[0] == 1 else (cov[0, 0], cov[1, 1], cov[0, 1])
        left = "".join(function(f, x) + ", " for f, _ in parts)
        right = "".join(function(g, y) + ", " for _, g in parts)
        return (
            f"_gauss_separable(({left}), ({right}), {printer._print(a)}, {printer._print(b)}, "
            f"{printer._print(c)}, ({extra_names[2:]}{',' if extras else ''}))"
        )

    def _conditional_code(self, printer, routes):
        """``_gauss_conditional(parts, a, b, c)`` per side (see :mod:`symlora._conditional`)."""
        cov = self.covariance
        calls = []
        for side, parts in enumerate(routes):
            if not parts:
                continue
            variable = printer._print(self.variables[side])
            text = "".join(
                "(" + ("None" if f is None else f"(lambda {variable}: {printer._print(f)})")
                + f", {kinks!r}, {tuple(pieces)!r}), "
                for f, kinks, pieces in parts
            )
            a, b = (cov[0, 0], cov[1, 1]) if side == 0 else (cov[1, 1], cov[0, 0])
            calls.append(
                f"_gauss_conditional(({text}), {printer._print(a)}, {printer._print(b)}, {printer._print(cov[0, 1])})"
            )
        return "(" + " + ".join(calls) + ")"

    _scipycode = _numpycode
    _pythoncode = _numpycode


def _part_functions(parts, variables, modules):
    """Vectorised functions (or None) of the separable parts, left and right."""
    x = variables[0]
    y = variables[1] if len(variables) == 2 else x

    def function(expr, variable):
        return None if expr is None else sp.lambdify(variable, expr, modules=modules)

    return [function(f, x) for f, _ in parts], [function(g, y) for _, g in parts]


#: Names generated code needs for :class:`GaussianExpectation` nodes.
NUMPY_NAMESPACE = {
    "_gauss_expectation": quadrature_expectation,
    "_gauss_separable": separable_expectation,
    "_gauss_conditional": conditional_expectation,
}

#: Heaviside with H(0) = 1/2 for the node's own numeric evaluation.
_NUMERIC_FUNCTIONS = {"Heaviside": lambda arg, h0=0.5: np.heaviside(arg, float(h0))}
_NUMERIC_MODULES = [_NUMERIC_FUNCTIONS, "scipy", "numpy"]
