"""Rewrite expressions so that generated numpy code neither overflows nor loses digits.

The code generator (:mod:`symlora._codegen`, :mod:`symlora._export`) prints
:func:`evaluation_form` of every expression: Dirac deltas integrated out,
one-sided kinks in normal form, then :func:`numerically_safe` (the scalar
rules of :mod:`symlora._overflow_safe`, applied inside quadrature nodes too).
"""

from __future__ import annotations

import sympy as sp

from ._delta_conditioning import condition_deltas, kink_normal_form
from ._node import GaussianExpectation
from ._overflow_safe import logaddexp_as_elementary, overflow_safe

__all__ = ["evaluation_form", "numerically_safe", "logaddexp_as_elementary"]


def numerically_safe(expr):
    """:func:`~symlora._overflow_safe.overflow_safe` of ``expr``, quadrature nodes rewritten inside their integrand.

    Examples
    --------
    >>> t = sp.Symbol("t", real=True)
    >>> numerically_safe(sp.log(1 + sp.exp(t)))
    logaddexp(0, t)
    """
    if isinstance(expr, GaussianExpectation):
        body = numerically_safe(expr.integrand.expr)
        return GaussianExpectation(sp.Lambda(expr.variables, body), expr.covariance)
    if expr.has(GaussianExpectation):
        nodes = expr.atoms(GaussianExpectation)
        return expr.xreplace({node: numerically_safe(node) for node in nodes})
    return overflow_safe(expr)


def evaluation_form(expr):
    """The form of ``expr`` that generated code evaluates.

    Dirac deltas conditioned away exactly
    (:func:`~symlora._delta_conditioning.condition_deltas`), quadrature
    integrands with ``H(a)^k = H(a)`` and ``H(a) H(-a) = 0``
    (:func:`~symlora._delta_conditioning.kink_normal_form`: equal almost
    everywhere, and ``exp(a) H(-a)`` then stays confined to its support),
    then :func:`numerically_safe`.
    """
    return _clamped_square_roots(numerically_safe(kink_normal_form(condition_deltas(expr))))


def _clamped_square_roots(expr):
    """``sqrt(x) -> sqrt(max(x, 0))`` where ``x`` is not known to be non-negative.

    The arguments are squared norms (``P = u²(1 - m²)``, ``1 - m²``) that are
    non-negative on every state the statistics can take, but an integrator's
    trial stage or rounding can push ``|m|`` a hair past 1; the clamp keeps
    such a stage finite (no NaN, no numpy warning) and changes nothing on the
    state space.  Applied after differentiation, so Jacobians are unaffected.
    """
    def is_open_root(e):
        return (e.is_Pow and e.exp == sp.S.Half and bool(e.base.free_symbols)
                and e.base.is_nonnegative is not True and not isinstance(e.base, sp.Max))

    return expr.replace(is_open_root, lambda e: sp.sqrt(sp.Max(e.base, 0)))
