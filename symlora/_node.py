"""An explicit, unevaluated Gaussian expectation: the mark of an approximation.

Where the engine finds no closed form (sigmoid, tanh, softplus, ...), it
returns a :class:`GaussianExpectation` node instead of a number.  The node is
ordinary SymPy: it can be differentiated (Price's theorem), printed in LaTeX
as ``\\mathbb{E}[...]``, evaluated with ``evalf`` at numeric covariances, and
compiled by :mod:`symlora._codegen` into vectorised numeric code.  The route
is chosen from the integrand's structure (:mod:`symlora._integrand_structure`),
after kinks along combinations of the variables are put on coordinate
hyperplanes (:func:`kink_aligned`):

* sums of smooth products ``f(X) g(Y)``: Mehler's series over one-dimensional
  rules (:mod:`symlora._separable`);
* products with a piecewise-polynomial factor (ReLU family): that factor
  integrated exactly given the other variable, one-dimensional kink-aligned
  quadrature for the rest (:mod:`symlora._conditional`);
* anything else: iterated composite Gauss–Legendre with breakpoints on the
  kinks, order chosen from an error estimate (:mod:`symlora._quadrature`).

Every route returns an error bound with its value (:meth:`GaussianExpectation.numeric`).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._conditional import conditional_expectation, conditional_with_error
from ._integrand_structure import _KINKED, _kink_directions, conditional_parts, kink_locations, separable_parts  # noqa: F401
from ._quadrature import quadrature_expectation, quadrature_with_error
from ._separable import separable_expectation, separable_with_error
from ._validate import covariance_matrix

__all__ = ["GaussianExpectation", "kink_locations", "kink_aligned", "separable_parts", "conditional_parts"]

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

        By the route the integrand's structure allows (module docstring):
        Mehler's series (truncation bound by Cauchy–Schwarz plus the
        difference of two one-dimensional rules), the semi-analytic
        conditional route or kink-aligned quadrature (order doubling until
        two successive rules agree to ``tol``, relative to
        ``max(1, |value|)``; their difference plus rounding is the bound).

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
