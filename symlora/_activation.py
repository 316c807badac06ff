"""Activations: parsing user text into SymPy expressions, safely.

An :class:`Activation` is a frozen wrapper around a SymPy expression in the
real symbol :data:`x`.  Derivatives are taken in the sense of distributions:
``relu' = Heaviside``, ``relu'' = DiracDelta``, ``sign' = 2 DiracDelta``.

User text is parsed by a small recursive-descent parser over a whitelist of
names and operators; nothing a user types is evaluated as Python.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp

from ._integrability import check_activation_expr
from ._picklable import restore_with_empty_cache, state_without_cache
from ._validate import as_exact_number, check_magnitude, check_text

__all__ = ["Activation", "activation", "x", "ACTIVATION_NAMES"]

#: The argument of every activation.
x = sp.Symbol("x", real=True)

MAX_SPEC_LENGTH = 400
MAX_EXPONENT = 12
MAX_DEGREE = 24
MAX_HERMITE_INDEX = 24
#: Deepest nesting of parentheses, calls and signs in activation text.
MAX_NESTING = 30
#: Most function calls in one activation text.
MAX_CALLS = 40
#: Highest derivative order (the ODE needs two; each order can double the expression).
MAX_DERIVATIVE_ORDER = 8
#: Deepest nesting of function calls, e.g. ``tanh(tanh(tanh(x)))`` is 3.
MAX_CALL_DEPTH = 3
#: Largest decimal exponent of a number literal (``1e999999999`` would take
#: hours to build as an exact rational).
MAX_LITERAL_EXPONENT = 100
#: Largest size, in bits, of an exact constant built by ``**`` (towers such as
#: ``((9**12)**12)**12 ...`` grow twelvefold per level).
MAX_CONSTANT_BITS = 4096


def _relu(arg):
    return sp.Max(0, arg)


# Sigmoid, softplus, SiLU and ELU are written in forms whose derivatives of
# every order stay finite in double precision (|x| = 1000 and beyond):
# 1/(1 + exp(-x)) = (1 + tanh(x/2))/2 and log(1 + exp(x)) = x/2 + log(2 cosh(x/2))
# are the same functions, but exp(1000)/(1 + exp(1000))**2 is inf/inf.


def _sigmoid(arg):
    return (1 + sp.tanh(arg / 2)) / 2


def _softplus(arg):
    # log(1 + e^x); cosh(x/2) overflows only beyond |x| = 1420
    return arg / 2 + sp.log(2 * sp.cosh(arg / 2))


def _gelu(arg):
    # x Φ(x) with Φ written through erf: the engine integrates it exactly
    return arg * (1 + sp.erf(arg / sp.sqrt(2))) / 2


def _silu(arg):
    return arg * _sigmoid(arg)


def _softsign(arg):
    return arg / (1 + sp.Abs(arg))


def _elu(arg):
    # α = 1: relu(x) + exp(min(x, 0)) - 1; the exponential never sees a
    # positive argument, and Max/Min make the kink visible to the engine and
    # the quadrature
    return sp.Max(0, arg) + sp.exp(sp.Min(0, arg)) - 1


def _leaky_relu(arg, slope=sp.Rational(1, 100)):
    # α x + (1 - α) relu(x): exact in the ReLU family
    return slope * arg + (1 - slope) * sp.Max(0, arg)


_NAMED: dict[str, Callable[[sp.Expr], sp.Expr]] = {
    "x": lambda arg: arg,
    "linear": lambda arg: arg,
    "relu": _relu,
    "erf": sp.erf,
    "sigmoid": _sigmoid,
    "tanh": sp.tanh,
    "sign": sp.sign,
    "softplus": _softplus,
    "gelu": _gelu,
    "silu": _silu,
    "swish": _silu,
    "softsign": _softsign,
    "elu": _elu,
    "leaky_relu": _leaky_relu,
    "abs": sp.Abs,
    "sqrt": sp.sqrt,
    "exp": sp.exp,
}

#: Names accepted by :func:`activation` on their own (``He<k>`` is accepted too).
ACTIVATION_NAMES = (
    "x", "linear", "relu", "erf", "sigmoid", "tanh", "sign", "softplus",
    "gelu", "silu", "swish", "softsign", "elu", "leaky_relu", "abs", "He<k>",
)

#: Named functions that take a second, constant argument, with its allowed range:
#: ``leaky_relu(x, α)`` with ``0 <= α <= 1`` (default ``α = 1/100``).
_PARAMETERS = {"leaky_relu": (sp.S.Zero, sp.S.One)}

#: Names with an underscore (every other identifier with one is refused).
_UNDERSCORE_NAMES = ("leaky_relu",)
_UNDERSCORE_RE = re.compile(
    r"(?<![A-Za-z0-9_])(?:" + "|".join(_UNDERSCORE_NAMES) + r")(?![A-Za-z0-9_])|(?P<bad>_+[A-Za-z0-9_]*)"
)

_HERMITE_RE = re.compile(r"He([0-9]+)\Z")


def _named_function(name: str):
    if name in _NAMED:
        return _NAMED[name]
    match = _HERMITE_RE.match(name)
    if match:
        k = int(match.group(1))
        if k > MAX_HERMITE_INDEX:
            raise ValueError(
                f"Hermite index in {name!r} is too large (at most He{MAX_HERMITE_INDEX})"
            )
        return lambda arg, k=k: sp.expand(sp.hermite_prob(k, arg))
    return None


# --------------------------------------------------------------------------
# Tokeniser and parser

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>leaky_relu|[A-Za-z][A-Za-z0-9]*)
  | (?P<op>\*\*|[-+*/(),])
    """,
    # ASCII only: \d and \s would otherwise accept Arabic-Indic digits or
    # full-width characters and read them as numbers
    re.VERBOSE | re.ASCII,
)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            bad = text[pos]
            hint = " (use ** for powers)" if bad == "^" else ""
            raise ValueError(
                f"unexpected character {bad!r} at position {pos} in activation {text!r}{hint}"
            )
        kind = match.lastgroup
        if kind == "name" and match.group() not in ("x", "pi") and _named_function(match.group()) is None:
            # report unknown names in reading order, before later characters
            known = ", ".join(sorted(set(_NAMED) | {"He<k>", "pi", "x"}))
            raise ValueError(
                f"unknown name {match.group()!r} at position {pos} in activation {text!r}; known names: {known}"
            )
        if kind != "space":
            tokens.append((kind, match.group(), pos))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive-descent parser for activation expressions in ``x``.

    Grammar::

        expr   := term (('+' | '-') term)*
        term   := unary (('*' | '/') unary)*
        unary  := ('+' | '-') unary | power
        power  := atom ('**' unary)?
        atom   := NUMBER | 'x' | 'pi' | NAME '(' expr ')' | '(' expr ')'
    """

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0
        self.calls = 0
        self.call_depth = 0

    def _peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self):
        tok = self._peek()
        if tok is None:
            raise ValueError(f"activation {self.text!r} ends unexpectedly")
        self.pos += 1
        return tok

    def _expect(self, value):
        tok = self._next()
        if tok[1] != value:
            raise ValueError(
                f"expected {value!r} but found {tok[1]!r} at position {tok[2]} in {self.text!r}"
            )

    def parse(self) -> sp.Expr:
        if not self.tokens:
            raise ValueError("activation text is empty")
        result = self._expr()
        tok = self._peek()
        if tok is not None:
            raise ValueError(
                f"unexpected token {tok[1]!r} at position {tok[2]} in activation {self.text!r}"
            )
        return result

    def _expr(self):
        result = self._term()
        while (tok := self._peek()) is not None and tok[1] in "+-" and tok[0] == "op":
            self._next()
            rhs = self._term()
            result = result + rhs if tok[1] == "+" else result - rhs
        return result

    def _term(self):
        result = self._unary()
        while (tok := self._peek()) is not None and tok[1] in ("*", "/"):
            self._next()
            rhs = self._unary()
            if tok[1] == "*":
                result = result * rhs
            else:
                if rhs == 0 or (not rhs.free_symbols and _numerically_zero(rhs)):
                    raise ValueError(f"division by zero in activation {self.text!r}")
                result = result / rhs
        return result

    def _unary(self):
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise ValueError(
                    f"activation {self.text!r} is nested too deeply (more than {MAX_NESTING} levels of "
                    "parentheses, calls or signs)"
                )
            return self._unary_inner()
        finally:
            self.depth -= 1

    def _unary_inner(self):
        tok = self._peek()
        if tok is not None and tok[1] in ("+", "-") and tok[0] == "op":
            self._next()
            operand = self._unary()
            return operand if tok[1] == "+" else -operand
        return self._power()

    def _power(self):
        base = self._atom()
        tok = self._peek()
        if tok is not None and tok[1] == "**":
            self._next()
            exponent = self._unary()
            return self._checked_power(base, exponent, tok[2])
        return base

    def _checked_power(self, base, exponent, pos):
        if exponent.free_symbols:
            raise ValueError(
                f"exponent at position {pos} in {self.text!r} must be a constant, not {exponent}"
            )
        if not exponent.is_Rational:
            raise ValueError(
                f"exponent at position {pos} in {self.text!r} must be a rational number"
            )
        if abs(exponent) > MAX_EXPONENT:
            raise ValueError(
                f"exponent {exponent} at position {pos} in {self.text!r} is too large "
                f"(|exponent| <= {MAX_EXPONENT})"
            )
        if base.free_symbols and not exponent.is_Integer:
            raise ValueError(
                f"only integer powers of expressions in x are allowed (position {pos} in {self.text!r})"
            )
        # bound the exact numbers SymPy would build before it builds them
        bits = sum(max(abs(r.p).bit_length(), r.q.bit_length()) for r in base.atoms(sp.Rational))
        if abs(exponent) * bits > MAX_CONSTANT_BITS:
            raise ValueError(
                f"power at position {pos} in {self.text!r} builds a constant that is too large "
                f"(more than {MAX_CONSTANT_BITS} bits)"
            )
        return base**exponent

    def _atom(self):
        kind, value, pos = self._next()
        if kind == "number":
            if len(value) > 30:
                raise ValueError(f"number {value[:20]}... at position {pos} is too long")
            _, _, decimal_exponent = value.lower().partition("e")
            if decimal_exponent and abs(int(decimal_exponent)) > MAX_LITERAL_EXPONENT:
                raise ValueError(
                    f"number {value!r} at position {pos} in {self.text!r} is too large or too small "
                    f"(decimal exponent at most {MAX_LITERAL_EXPONENT})"
                )
            # Decimal text is read exactly: 0.5 is the rational 1/2.
            return sp.Rational(value)
        if kind == "op":
            if value == "(":
                inner = self._expr()
                self._expect(")")
                return inner
            raise ValueError(f"unexpected {value!r} at position {pos} in activation {self.text!r}")
        # a name
        if value == "x":
            tok = self._peek()
            if tok is not None and tok[1] == "(":
                return self._call(value, pos)
            return x
        if value == "pi":
            return sp.pi
        func = _named_function(value)
        if func is None:
            known = ", ".join(sorted(set(_NAMED) | {"He<k>", "pi"}))
            raise ValueError(
                f"unknown name {value!r} at position {pos} in activation {self.text!r}; "
                f"known names: {known}"
            )
        return self._call(value, pos)

    def _call(self, name, pos):
        tok = self._peek()
        if tok is None or tok[1] != "(":
            raise ValueError(
                f"{name!r} at position {pos} in {self.text!r} must be called, e.g. {name}(x)"
            )
        self._next()
        self.calls += 1
        if self.calls > MAX_CALLS:
            raise ValueError(f"activation {self.text!r} has more than {MAX_CALLS} function calls")
        self.call_depth += 1
        if self.call_depth > MAX_CALL_DEPTH:
            # each level multiplies the size of the derivatives the ODE needs
            # (sigmoid(sigmoid(sigmoid(sigmoid(x)))) already takes minutes to derive)
            raise ValueError(
                f"activation {self.text!r} nests functions more than {MAX_CALL_DEPTH} deep "
                f"(at position {pos})"
            )
        arg = self._expr()
        tok = self._peek()
        if name in _PARAMETERS and tok is not None and tok[1] == ",":
            self._next()
            parameter = self._constant_parameter(name, pos)
            self._expect(")")
            return _named_function(name)(arg, parameter)
        self._expect(")")
        self.call_depth -= 1
        match = _HERMITE_RE.match(name)
        if match:
            # bound the degree before SymPy expands He_k(arg): He24(He24(x)) has
            # degree 576 and takes minutes to expand, even when multiplied by 0
            degree = int(match.group(1)) * _atom_degree_bound(arg)
            if degree > MAX_DEGREE:
                raise ValueError(
                    f"{name}(...) at position {pos} in {self.text!r} has degree up to {degree} "
                    f"in x and its functions, above the limit {MAX_DEGREE}"
                )
            if not arg.is_polynomial(x):
                return sp.hermite_prob(int(match.group(1)), arg)
        return _named_function(name)(arg)

    def _constant_parameter(self, name, pos):
        """The second argument of e.g. ``leaky_relu(x, 0.1)``: a number in the allowed range."""
        value = self._expr()
        low, high = _PARAMETERS[name]
        if value.free_symbols or not value.is_Rational:
            raise ValueError(
                f"the parameter of {name!r} at position {pos} in {self.text!r} must be a "
                f"rational number (a decimal such as 0.1), not {value}"
            )
        if not low <= value <= high:
            raise ValueError(
                f"the parameter of {name!r} at position {pos} in {self.text!r} must lie in "
                f"[{low}, {high}], got {value}"
            )
        return value


def _numerically_zero(constant: sp.Expr) -> bool:
    """Whether a constant is 0 to 50 digits (``sigmoid(1) + sigmoid(-1) - 1``)."""
    value = sp.N(constant, 50)
    return not value.is_number or value.has(sp.nan, sp.zoo) or abs(value) < sp.Float("1e-45")


def _parse(text: str) -> sp.Expr:
    if len(text) > MAX_SPEC_LENGTH:
        raise ValueError(
            f"activation text is too long ({len(text)} characters, at most {MAX_SPEC_LENGTH})"
        )
    stripped = text.strip()
    func = _named_function(stripped)
    if func is not None and stripped not in ("sqrt", "exp"):
        return func(x)
    return _Parser(text).parse()


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
                raw = sp.lambdify(x, expr, modules=_NUMPY_MODULES)

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


def _atom_degree_bound(expr: sp.Expr) -> int:
    """Degree bound of ``expr`` as a polynomial in ``x`` and its function atoms (each of degree 1)."""
    if not expr.has(x):
        return 0
    if expr == x or isinstance(expr, sp.Function):
        return 1
    if expr.is_Add:
        return max(_atom_degree_bound(arg) for arg in expr.args)
    if expr.is_Mul:
        return sum(_atom_degree_bound(arg) for arg in expr.args)
    if expr.is_Pow and expr.exp.is_Integer:
        return abs(int(expr.exp)) * _atom_degree_bound(expr.base)
    return 1


def _degree_bound(expr: sp.Expr) -> int:
    """An upper bound on the degree in ``x`` of a polynomial expression, without expanding it."""
    if not expr.has(x):
        return 0
    if expr == x:
        return 1
    if expr.is_Add:
        return max(_degree_bound(arg) for arg in expr.args)
    if expr.is_Mul:
        return sum(_degree_bound(arg) for arg in expr.args)
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 0:
        return int(expr.exp) * _degree_bound(expr.base)
    return int(sp.degree(expr, x))  # not reached for polynomials built by the parser


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
