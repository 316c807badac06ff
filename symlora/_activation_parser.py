"""Parsing activation text: a whitelist tokeniser and a recursive-descent parser.

Nothing a user types is evaluated as Python: the tokeniser accepts numbers,
the names of :mod:`symlora._activation_catalogue`, ``pi``, ``x`` and the
operators ``+ - * / ** ( ) ,``; the parser builds SymPy expressions from
them, bounding nesting, calls, exponents, literal sizes and polynomial degree
before SymPy does any expensive work.
"""

from __future__ import annotations

import re

import sympy as sp

from ._activation_catalogue import (
    _HERMITE_RE,
    _NAMED,
    _PARAMETERS,
    MAX_CALL_DEPTH,
    MAX_CALLS,
    MAX_CONSTANT_BITS,
    MAX_DEGREE,
    MAX_EXPONENT,
    MAX_LITERAL_EXPONENT,
    MAX_NESTING,
    MAX_SPEC_LENGTH,
    _named_function,
    x,
)


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


