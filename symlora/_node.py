"""An explicit, unevaluated Gaussian expectation: the mark of an approximation.

Where the engine finds no closed form (sigmoid, tanh, softplus, ...), it
returns a :class:`GaussianExpectation` node instead of a number.  The node is
ordinary SymPy: it can be differentiated by the chain rule through nothing
(it is treated as a function of its covariance entries only through
numeric evaluation), printed in LaTeX as ``\\mathbb{E}[...]``, evaluated with
``evalf`` at numeric covariances, and compiled by :mod:`symlora._codegen`
into vectorised Gaussian quadrature (composite Gauss–Legendre).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._quadrature import quadrature_expectation
from ._validate import covariance_matrix

__all__ = ["GaussianExpectation"]


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

    def numeric(self, nodes: int | None = None):
        """Value and error estimate at a numeric covariance.

        The error estimate is the difference between quadratures with
        ``nodes`` and ``nodes // 2`` nodes per dimension.

        Returns
        -------
        (float, float)
        """
        if self.free_symbols:
            raise ValueError(
                "cannot evaluate a Gaussian expectation with free symbols "
                + ", ".join(sorted(map(str, self.free_symbols)))
            )
        dim = len(self.variables)
        if nodes is None:
            nodes = {1: 160, 2: 40, 3: 20}.get(dim, 10)
        if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)):
            raise TypeError(f"nodes must be an integer, got {type(nodes).__name__}")
        func = sp.lambdify(self.variables, self.integrand.expr, modules=["scipy", "numpy"])
        cov = [[float(c) for c in row] for row in self.covariance.tolist()]
        fine = float(quadrature_expectation(func, cov, nodes))
        coarse = float(quadrature_expectation(func, cov, max(nodes // 2, 2)))
        return fine, abs(fine - coarse)

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
        names = ", ".join(printer._print(v) for v in self.variables)
        body = printer._print(self.integrand.expr)
        rows = ", ".join(
            "(" + ", ".join(printer._print(c) for c in row) + ",)" for row in self.covariance.tolist()
        )
        extras = sorted(self.integrand.free_symbols, key=lambda sym: sym.name)
        if extras:
            # outer parameters enter the integrand as explicit, broadcast arguments
            extra_names = ", ".join(printer._print(e) for e in extras)
            return (
                f"_gauss_expectation(lambda {names}, {extra_names}: {body}, ({rows},), None, ({extra_names},))"
            )
        return f"_gauss_expectation(lambda {names}: {body}, ({rows},))"

    _scipycode = _numpycode
    _pythoncode = _numpycode


#: Names generated code needs for :class:`GaussianExpectation` nodes.
NUMPY_NAMESPACE = {"_gauss_expectation": quadrature_expectation}
_ = np  # numpy is used by the quadrature this module exports
