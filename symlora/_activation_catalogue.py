"""The catalogue of named activations and the limits on activation text.

Each name the parser accepts maps to a function building its SymPy
expression.  Sigmoid, softplus and SiLU are written in forms whose
derivatives of every order stay finite in double precision (tanh, log cosh),
so that neither :meth:`Activation.numpy` nor generated code overflows at
extreme arguments.
"""

from __future__ import annotations

import re
from typing import Callable

import sympy as sp

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


# Sigmoid, softplus and SiLU are written in forms whose derivatives of
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
    # α = 1; Heaviside of the (linear) argument so that the kink is visible to
    # the engine and the quadrature (evaluation confines exp to its support:
    # Activation.numpy and generated code through symlora._overflow_safe)
    return arg * sp.Heaviside(arg) + (sp.exp(arg) - 1) * sp.Heaviside(-arg)


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


