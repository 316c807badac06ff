"""Activations: frozen SymPy expressions in ``x``, built safely from text, expressions or callables.

An :class:`Activation` is a frozen wrapper around a SymPy expression in the
real symbol :data:`x`.  Derivatives are taken in the sense of distributions:
``relu' = Heaviside``, ``relu'' = DiracDelta``, ``sign' = 2 DiracDelta``.

User text is parsed by :mod:`symlora._activation_parser` over the names of
:mod:`symlora._activation_catalogue`; nothing a user types is evaluated as Python.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp

from ._activation_catalogue import (  # noqa: F401 - the limits are part of this module's interface
    ACTIVATION_NAMES,
    MAX_CALL_DEPTH,
    MAX_CALLS,
    MAX_CONSTANT_BITS,
    MAX_DEGREE,
    MAX_DERIVATIVE_ORDER,
    MAX_EXPONENT,
    MAX_HERMITE_INDEX,
    MAX_LITERAL_EXPONENT,
    MAX_NESTING,
    MAX_SPEC_LENGTH,
    _UNDERSCORE_RE,
    x,
)
from ._activation_parser import _Parser, _degree_bound, _parse  # noqa: F401 - _Parser: tests reach it here
from ._integrability import check_activation_expr
from ._overflow_safe import overflow_safe
from ._picklable import restore_with_empty_cache, state_without_cache
from ._validate import as_exact_number, check_magnitude, check_text

__all__ = ["Activation", "activation", "x", "ACTIVATION_NAMES"]


# --------------------------------------------------------------------------
# Distributional clean-up


def _clean_distributions(expr: sp.Expr) -> sp.Expr:
    """Evaluate continuous factors at the support of a Dirac delta.

    ``f(x) δ(x - c) = f(c) δ(x - c)`` for ``f`` continuous at ``c``: this
    drops products that vanish as distributions (``x δ(x)``) and merges the
    deltas of e.g. ``elu'' = exp(x) H(-x) + (1 - exp(x)) δ(x)``.
    """
    if not expr.has(sp.DiracDelta):
        return expr
    expr = sp.expand(expr)
    discontinuous = (sp.Heaviside, sp.DiracDelta, sp.sign, sp.Piecewise)  # Max, Min, Abs are continuous

    def at_support(term):
        deltas = [f for f in term.atoms(sp.DiracDelta) if len(f.args) == 1]
        if len(deltas) != 1:
            return term
        (delta,) = deltas
        rest = term.subs(delta, 1)
        if not rest.free_symbols or rest.has(*discontinuous) or not sp.Poly(delta.args[0], x).is_linear:
            return term
        root = sp.solve(delta.args[0], x)[0]
        return sp.simplify(rest.subs(x, root)) * delta

    return sp.Add(*[at_support(t) for t in sp.Add.make_args(expr)])


# --------------------------------------------------------------------------


def _numpy_heaviside(arg, h0=0.5):
    return np.heaviside(arg, float(h0))


def _numpy_dirac(arg, *_):
    raise ValueError(
        "this derivative contains a Dirac delta and cannot be evaluated pointwise"
    )


_NUMPY_MODULES = [
    {"Heaviside": _numpy_heaviside, "DiracDelta": _numpy_dirac},
    "scipy",
    "numpy",
]


@dataclass(frozen=True)
class Activation:
    """A scalar activation function ``σ(x)`` as an exact SymPy expression.

    Build instances with :func:`activation`.

    Attributes
    ----------
    name : str
        The text the activation was built from (or a canonical form).
    expr : sympy.Expr
        ``σ(x)`` as an expression in :data:`symlora.x`.

    Examples
    --------
    >>> from symlora import activation
    >>> act = activation("He3")
    >>> act.expr
    x**3 - 3*x
    >>> act.derivative(1)
    3*x**2 - 3
    >>> activation("relu").derivative(2)
    DiracDelta(x)
    """

    name: str
    expr: sp.Expr
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        # the constructor is public: the same checks as activation(), and no text
        # ever reaches SymPy (a str expr would be parsed as Python by sympify)
        check_text(self.name, "name", 10 * MAX_SPEC_LENGTH)
        if not isinstance(self.expr, sp.Expr):
            raise TypeError(
                f"expr must be a SymPy expression in symlora.x, not {type(self.expr).__name__} "
                "(build activations from text with symlora.activation)"
            )
        extra = self.expr.free_symbols - {x}
        if extra:
            raise ValueError(
                f"expr must depend only on symlora.x, found {', '.join(sorted(map(str, extra)))}"
            )
        if not self.expr.has(x):
            raise ValueError(f"activation {self.name!r} does not depend on x")
        _check_integrable(self.expr, self.name)

    # the cache holds compiled (local) functions: pickle without it, rebuild lazily
    def __getstate__(self):
        return state_without_cache(self)

    def __setstate__(self, state):
        restore_with_empty_cache(self, state)

    def __call__(self, arg):
        """``σ(arg)`` as a SymPy expression (``arg`` any SymPy expression or number)."""
        return self.expr.subs(x, _as_argument(arg))

    def derivative(self, order: int = 1) -> sp.Expr:
        """``σ^{(order)}(x)``, in the sense of distributions where needed."""
        if isinstance(order, bool) or not isinstance(order, int):
            raise TypeError(f"derivative order must be a non-negative integer, got {type(order).__name__}")
        if not 0 <= order <= MAX_DERIVATIVE_ORDER:
            raise ValueError(
                f"derivative order must be a non-negative integer at most {MAX_DERIVATIVE_ORDER}, got {order}"
            )
        key = ("derivative", order)
        if key not in self._cache:
            if order == 0:
                result = self.expr
            else:
                result = _clean_distributions(sp.diff(self.derivative(order - 1), x))
                if result.has(sp.cosh):
                    # (log cosh u)' = sinh u / cosh u: as tanh u, finite for every u
                    result = result.replace(sp.sinh, lambda u: sp.tanh(u) * sp.cosh(u))
            self._cache[key] = result
        return self._cache[key]

    def derivative_at(self, arg, order: int = 1) -> sp.Expr:
        """``σ^{(order)}(arg)``."""
        return self.derivative(order).subs(x, _as_argument(arg))

    @property
    def is_polynomial(self) -> bool:
        """Whether ``σ`` is a polynomial in ``x``."""
        return bool(self.expr.is_polynomial(x))

    @property
    def degree(self) -> int | None:
        """Degree of ``σ`` if it is a polynomial, else ``None``."""
        if not self.is_polynomial:
            return None
        return int(sp.degree(self.expr, x)) if self.expr.has(x) else 0

    def latex(self, argument: str | sp.Expr = "x") -> str:
        """LaTeX of ``σ(argument)``."""
        arg = sp.Symbol(argument) if isinstance(argument, str) else argument
        return sp.latex(self(arg))

    def _repr_latex_(self):
        return f"$\\sigma(x) = {self.latex()}$"

    def numpy(self, order: int = 0) -> Callable:
        """A vectorised numpy function evaluating ``σ^{(order)}``.

        Heaviside is evaluated with ``H(0) = 1/2``; a Dirac delta cannot be
        evaluated pointwise and raises ``ValueError`` when called.
        """
        key = ("numpy", order)
        if key not in self._cache:
            expr = self.derivative(order)
            if expr.has(sp.DiracDelta):
                def func(arg, _name=self.name, _order=order):
                    raise ValueError(
                        f"derivative {_order} of activation {_name!r} contains a Dirac delta "
                        "and cannot be evaluated pointwise"
                    )
            else:
                # the overflow-free form generated code uses too (exp under a
                # one-sided Heaviside evaluated on its support, logaddexp, ...)
                raw = sp.lambdify(x, overflow_safe(expr), modules=_NUMPY_MODULES)

                def func(arg, _raw=raw):
                    arg = np.asarray(arg, dtype=float)
                    return np.broadcast_to(_raw(arg), arg.shape).astype(float)

            self._cache[key] = func
        return self._cache[key]


def _as_argument(arg) -> sp.Expr:
    """An argument for ``σ(arg)``: a SymPy expression or a number, never text
    (``Basic.subs`` would sympify, that is evaluate, a string)."""
    return as_exact_number(arg, "argument", symbolic=True, rationalize=False)


def _check_integrable(expr: sp.Expr, name: str) -> None:
    """Refuse activations that are not real, finite and Gaussian-square-integrable.

    The decision is a structural analysis of the expression (poles under any
    denominator, fractional powers of negative values, growth like
    ``exp(c |x|^p)`` with ``p >= 2``); see :mod:`symlora._integrability`.
    Constants must lie within ``[1e-30, 1e30]`` in absolute value (the
    generated double-precision code squares them).
    """
    check_activation_expr(expr, x, f"activation {name!r}")
    for number in expr.atoms(sp.Number):
        check_magnitude(number, f"a constant in activation {name!r}")


@functools.lru_cache(maxsize=256)
def _activation_from_text(text: str) -> Activation:
    expr = _parse(text)
    if not expr.has(x):
        raise ValueError(f"activation {text!r} does not depend on x")
    if expr.is_polynomial(x):
        bound = _degree_bound(expr)
        if bound > 4 * MAX_DEGREE:
            # checked before expanding: (((x+1)**12)**12)**12 ... would take hours;
            # below 4*MAX_DEGREE the exact degree (after cancellations) decides
            raise ValueError(
                f"activation {text!r} has degree up to {bound}, above the limit {MAX_DEGREE}"
            )
        expr = sp.expand(expr)
        if sp.degree(expr, x) > MAX_DEGREE:
            raise ValueError(
                f"activation {text!r} has degree {sp.degree(expr, x)}, above the limit {MAX_DEGREE}"
            )
    return Activation(name=text.strip(), expr=expr)


def activation(spec) -> Activation:
    """Build an :class:`Activation` from a name, an expression string, a SymPy
    expression or a callable.

    Parameters
    ----------
    spec : str, sympy.Expr, callable or Activation
        * a name: ``x`` (alias ``linear``), ``relu``, ``erf``, ``sigmoid``,
          ``tanh``, ``sign``, ``softplus``, ``He<k>`` (probabilists' Hermite);
        * an expression in ``x`` using those names, ``sqrt``, ``exp``, ``pi``,
          ``+ - * / **`` and integer, decimal or rational constants, e.g.
          ``"x**3 - 3*x"`` or ``"erf(x/sqrt(2))"`` (decimals are read exactly);
        * a SymPy expression in a single symbol;
        * a callable taking a SymPy symbol and returning a SymPy expression.

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        Unknown names, unsafe or malformed text (naming the offending token),
        exponents above 12, number literals beyond ``1e±100``, constants
        above 4096 bits, polynomial degree above 24, complex coefficients,
        activations that do not depend on ``x`` or grow like ``exp(c x^2)``.
    TypeError
        If ``spec`` is of another type.

    Examples
    --------
    >>> activation("0.5*tanh(x) + x").expr
    x + tanh(x)/2
    >>> activation("He2(x)**2").expr
    x**4 - 2*x**2 + 1
    >>> activation("__import__('os')")
    Traceback (most recent call last):
    ...
    ValueError: unknown name '__import__' at position 0 ...
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        check_text(spec, "activation text", MAX_SPEC_LENGTH)
        # Leading underscores are never names here: reject them before tokenising
        # so that the message names the whole identifier.
        match = _UNDERSCORE_RE.search(spec)
        while match and match.group("bad") is None:  # a whitelisted name: look further
            match = _UNDERSCORE_RE.search(spec, match.end())
        if match:
            raise ValueError(
                f"unknown name {match.group('bad')!r} at position {match.start()} in activation {spec!r}; "
                "identifiers with underscores are not allowed"
            )
        return _activation_from_text(spec)
    if isinstance(spec, sp.Expr):
        return _activation_from_expr(spec, str(spec))
    if callable(spec):
        try:
            expr = sp.sympify(spec(x), strict=True)
        except Exception as exc:  # noqa: BLE001 - any failure of user code is reported
            raise TypeError(
                f"callable activation {spec!r} must map a SymPy symbol to a SymPy expression: {exc}"
            ) from exc
        return _activation_from_expr(expr, getattr(spec, "__name__", str(expr)))
    raise TypeError(
        f"activation spec must be a string, a SymPy expression or a callable, not {type(spec).__name__}"
    )


def _activation_from_expr(expr: sp.Expr, name: str) -> Activation:
    if not isinstance(expr, sp.Expr):
        raise TypeError(f"activation must be a SymPy expression, got {type(expr).__name__}")
    free = expr.free_symbols
    if len(free) > 1:
        raise ValueError(
            f"activation expression {expr} has several free symbols {sorted(map(str, free))}; "
            "it must depend on a single variable"
        )
    if not free:
        raise ValueError(f"activation expression {expr} does not depend on any variable")
    (sym,) = free
    expr = expr.subs(sym, x)
    if expr.is_polynomial(x):
        expr = sp.expand(expr)
    if name == str(expr.subs(x, sym)) and sym != x:
        name = str(expr)
    return Activation(name=name, expr=expr)
