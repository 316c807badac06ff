"""Overflow-free forms of scalar expressions (softplus, sigmoid, SiLU and their derivatives).

The rules that keep numpy evaluation of an expression in one variable (or
several) finite wherever its value is: ``log(1 + exp(b)) -> logaddexp(0, b)``,
rational functions of an exponential as polynomials in logistic functions,
exponentials under a one-sided Heaviside confined to its support, ``log1p``
and ``expm1``.  Only SymPy is needed, so the first stage of the package
(:meth:`symlora.Activation.numpy`) and the code generator
(:mod:`symlora._safe_rewriting`, which applies them inside quadrature nodes
too) use the same rules.
"""

from __future__ import annotations

import functools

import sympy as sp
from sympy.codegen.numpy_nodes import logaddexp
from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize

__all__ = ["overflow_safe", "logaddexp_as_elementary"]


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


def _exponential_groups(expr):
    """The exponentials of ``expr`` grouped as integer powers of one generator each.

    Returns ``[(g, {exp(a): k, ...}), ...]`` with ``a = k g`` and integer
    ``k``: ``exp(-x)`` and ``exp(2 x)`` share ``g = x`` (``k = -1, 2``).
    Only exponentials of non-constant arguments take part.
    """
    args = sorted({e.args[0] for e in expr.atoms(sp.exp) if e.free_symbols}, key=sp.default_sort_key)
    groups = []  # [first argument, {argument: ratio to the first}]
    for arg in args:
        for first, ratios in groups:
            ratio = sp.cancel(arg / first)
            if ratio.is_Rational:
                ratios[arg] = ratio
                break
        else:
            groups.append((arg, {arg: sp.S.One}))
    result = []
    for first, ratios in groups:
        denominator = functools.reduce(sp.ilcm, [r.q for r in ratios.values()], 1)
        numerator = functools.reduce(sp.igcd, [int(r * denominator) for r in ratios.values()], 0)
        generator = first * numerator / denominator
        result.append((generator, {sp.exp(a): int(r * denominator / numerator) for a, r in ratios.items()}))
    return result


def _in_logistic_form(expr, t):
    """Whether ``t`` occurs inside the base of a negative power (``1/(1 + t)``, ...)."""
    return any(
        e.is_Pow and e.exp.is_negative and e.base.is_Add and e.base.has(t)
        for e in sp.preorder_traversal(expr)
    )


def _logistic(arg):
    """``1/(1 + exp(-arg))`` in a form that never overflows."""
    return sp.exp(-logaddexp(0, -arg))


def _through_logistic(expr):
    r"""Rational functions of ``exp(g)`` as polynomials in ``s = σ(g)`` and ``1 - s = σ(-g)``.

    With ``exp(g) = s/(1 - s)`` a sigmoid, SiLU or softplus derivative such
    as ``exp(-g)/(1 + exp(-g))^2`` becomes ``s (1 - s)``: a polynomial in
    numbers from ``[0, 1]``, finite for any ``g`` however large, where the
    original quotient is ``inf/inf``.  Every generator in logistic form is
    substituted at once (a product ``σ(λ) σ'(ν)`` needs both); the powers of
    ``s`` and ``1 - s`` are factored out, and ``1 - s`` is evaluated as
    ``σ(-g)`` (no cancellation).  The expression is left alone if the result
    would still divide by some ``s`` or ``1 - s`` (then it grows like
    ``exp(|g|)`` itself).
    """
    substitutions = {}
    logistic = []  # (s, g)
    for generator, powers in _exponential_groups(expr):
        t = sp.Dummy("t", positive=True)
        in_t = expr.xreplace({e: t**k for e, k in powers.items()})
        if not _in_logistic_form(in_t, t):
            continue
        s = sp.Dummy("s", positive=True)
        substitutions.update({e: (s / (1 - s)) ** k for e, k in powers.items()})
        logistic.append((s, generator))
    if not logistic:
        return expr
    symbols = [s for s, _ in logistic]
    numerator, denominator = sp.fraction(sp.cancel(sp.together(expr.xreplace(substitutions))))
    if denominator.has(*symbols) or not numerator.is_polynomial(*symbols):
        return expr
    factor = sp.S.One
    for s, generator in logistic:
        poly = sp.Poly(numerator, s)
        at_zero = at_one = 0
        while poly.degree() > 0 and poly.eval(0) == 0:
            poly, at_zero = sp.quo(poly, sp.Poly(s, s)), at_zero + 1
        while poly.degree() > 0 and sp.expand(poly.eval(1)) == 0:
            poly, at_one = sp.quo(poly, sp.Poly(1 - s, s)), at_one + 1
        numerator = poly.as_expr()
        factor *= _logistic(generator) ** at_zero * _logistic(-generator) ** at_one
    rest = numerator.xreplace({s: _logistic(g) for s, g in logistic})
    return sp.powsimp(factor, combine="exp") * rest / denominator


def overflow_safe(expr):
    """Rewrite ``expr`` so that generated code neither overflows nor loses digits.

    ``log(1 + exp(b)) -> logaddexp(0, b)``; rational functions of an
    exponential in logistic form (sigmoid, SiLU, softplus' and all their
    derivatives) as polynomials in ``σ(g) = exp(-logaddexp(0, -g))`` and
    ``σ(-g)`` (:func:`_through_logistic`); what is left of ``(1 +
    exp(b))**p`` as ``exp(p logaddexp(0, b))`` with exponentials then
    combined; exponentials under a one-sided Heaviside evaluated on its
    support only; then :mod:`sympy.codegen.rewriting`'s ``log1p`` and
    ``expm1`` optimisations.  What is left can overflow only where the value itself is
    beyond the float range (``exp(x)`` at ``x = 1000``).

    Examples
    --------
    >>> t = sp.Symbol("t", real=True)
    >>> overflow_safe(sp.log(1 + sp.exp(t)))
    logaddexp(0, t)
    >>> overflow_safe(sp.exp(-t) / (1 + sp.exp(-t)) ** 2)  # σ(t) σ(-t)
    exp(-logaddexp(0, -t) - logaddexp(0, t))
    """
    # softplus is stored as v + log(2 cosh(v)) (symlora._activation_catalogue): log(2 cosh v) = logaddexp(v, -v)
    expr = expr.replace(
        lambda e: isinstance(e, sp.log) and e.args[0].is_Mul and len(e.args[0].args) == 2
        and sp.S(2) in e.args[0].args and any(isinstance(a, sp.cosh) for a in e.args[0].args),
        lambda e: logaddexp(*(lambda v: (v, -v))(next(a for a in e.args[0].args if isinstance(a, sp.cosh)).args[0])),
    )
    if not expr.has(sp.exp):
        return expr
    expr = expr.replace(lambda e: isinstance(e, sp.log) and _is_one_plus_exp(e.args[0]),
                        lambda e: _log_one_plus_exp(e.args[0]))
    expr = _through_logistic(expr)
    if any(e.is_Pow and _is_one_plus_exp(e.base) for e in sp.preorder_traversal(expr)):
        # not rational in exp(g) (a power such as sqrt(1 + exp(g))): exp(p logaddexp(0, g)), then
        # products of exponentials combined into one (finite) exponential each
        expr = expr.replace(lambda e: e.is_Pow and _is_one_plus_exp(e.base),
                            lambda e: sp.exp(e.exp * _log_one_plus_exp(e.base)))
        expr = sp.powsimp(sp.expand(expr), combine="exp")
    if expr.has(sp.Heaviside):
        expr = expr.replace(lambda e: e.is_Mul and e.has(sp.Heaviside), _confine_exponentials)
    optimized = optimize(expr, [log1p_opt, expm1_opt])
    if optimized.atoms(sp.exp) - expr.atoms(sp.exp):
        # expm1_opt factored out an exponential (exp(-2 L) (exp(L) L ...)): the factor can overflow
        return optimize(expr, [log1p_opt])
    return optimized


def logaddexp_as_elementary(expr):
    """``logaddexp(0, b)`` as ``max(b, 0) + log1p(exp(-|b|))``: the same, overflow-free, in
    functions every printer knows (the ``math`` module has no ``logaddexp``).

    Examples
    --------
    >>> t = sp.Symbol("t", real=True)
    >>> logaddexp_as_elementary(logaddexp(0, t))
    log1p(exp(-Abs(t))) + Max(0, t)
    """
    from sympy.codegen.cfunctions import log1p

    def elementary(node):
        a, b = node.args
        return sp.Max(a, b) + log1p(sp.exp(-sp.Abs(a - b)))

    return expr.replace(lambda e: isinstance(e, logaddexp), elementary)
