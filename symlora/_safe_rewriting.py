"""Rewrite expressions so that generated numpy code neither overflows nor loses digits.

The code generator (:mod:`symlora._codegen`, :mod:`symlora._export`) passes
every expression through :func:`numerically_safe` before printing it.
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.numpy_nodes import logaddexp
from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize

from ._node import GaussianExpectation

__all__ = ["numerically_safe"]


def _is_one_plus_exp(expr) -> bool:
    return expr.is_Add and len(expr.args) == 2 and sp.S.One in expr.args and any(
        isinstance(a, sp.exp) for a in expr.args
    )


def _log_one_plus_exp(expr):
    """``log(1 + exp(b))`` as ``logaddexp(0, b)`` (never overflows)."""
    (power,) = [a for a in expr.args if isinstance(a, sp.exp)]
    return logaddexp(0, power.args[0])


def _confine_exponentials(term):
    """``f(v) H(c - v)`` with ``exp`` in ``f``: evaluate ``f`` at ``Min(v, c)``.

    Equal wherever ``H`` is not zero, and ``exp(1000) * 0`` (``nan``) cannot
    occur (e.g. ``elu = v H(v) + (exp(v) - 1) H(-v)``).
    """
    if not term.is_Mul or not term.has(sp.exp):
        return term
    for factor in term.args:
        if isinstance(factor, sp.Heaviside) and len(factor.free_symbols) == 1:
            (v,) = factor.free_symbols
            arg = sp.expand(factor.args[0])
            if not arg.is_polynomial(v) or sp.degree(arg, v) != 1:
                continue
            slope = arg.coeff(v)
            if not slope.is_number:
                continue
            edge = sp.solve(arg, v)[0]
            bound = sp.Min(v, edge) if slope < 0 else sp.Max(v, edge)
            others = term.func(*[a for a in term.args if a is not factor])
            return factor * others.xreplace({v: bound})
    return term


def numerically_safe(expr):
    """Rewrite ``expr`` so that generated code neither overflows nor loses digits.

    ``log(1 + exp(b)) -> logaddexp(0, b)``, ``(1 + exp(b))**p ->
    exp(p logaddexp(0, b))`` with exponentials then combined (sigmoid,
    softplus, SiLU and their derivatives stay finite for any argument),
    exponentials under a one-sided Heaviside evaluated on its support only,
    then :mod:`sympy.codegen.rewriting`'s ``log1p`` and ``expm1``
    optimisations.  Quadrature nodes are rewritten inside their integrand.

    Examples
    --------
    >>> t = sp.Symbol("t", real=True)
    >>> numerically_safe(sp.log(1 + sp.exp(t)))
    logaddexp(0, t)
    >>> numerically_safe(sp.exp(-t) / (1 + sp.exp(-t)) ** 2)
    exp(-t - 2*logaddexp(0, -t))
    """
    if isinstance(expr, GaussianExpectation):
        body = numerically_safe(expr.integrand.expr)
        return GaussianExpectation(sp.Lambda(expr.variables, body), expr.covariance)
    if expr.has(GaussianExpectation):
        nodes = expr.atoms(GaussianExpectation)
        return expr.xreplace({node: numerically_safe(node) for node in nodes})
    if not expr.has(sp.exp):
        return expr
    expr = expr.replace(lambda e: isinstance(e, sp.log) and _is_one_plus_exp(e.args[0]),
                        lambda e: _log_one_plus_exp(e.args[0]))
    expr = expr.replace(lambda e: e.is_Pow and _is_one_plus_exp(e.base),
                        lambda e: sp.exp(e.exp * _log_one_plus_exp(e.base)))
    # products of exponentials combined into one (finite) exponential each
    expr = sp.powsimp(sp.expand(expr) if expr.has(logaddexp) else expr, combine="exp")
    if expr.has(sp.Heaviside):
        expr = expr.replace(lambda e: e.is_Mul and e.has(sp.Heaviside), _confine_exponentials)
    return optimize(expr, [log1p_opt, expm1_opt])
