"""Activation parsing: the examples, distributional derivatives, safe rejection.

Every ``raise`` of ``symlora/_activation.py`` has a ``pytest.raises`` below
(``test_every_raise_of_the_module``).  Malformed or hostile text is rejected
with a ``ValueError`` naming the offending token, without evaluating anything:
``eval``, ``exec``, ``compile`` and SymPy's own (eval-based) string parser are
replaced by tripwires while parsing, and the working directory must stay
empty.
"""

import builtins
import contextlib
import importlib.util
import os
import re
import signal
import sys

import numpy as np
import pytest
import sympy as sp
import sympy.parsing.sympy_parser

from symlora import Activation, activation, x
from symlora import _activation as act_module


@contextlib.contextmanager
def deadline(seconds):
    """Fail (instead of hanging the suite) if the block runs longer than ``seconds``.

    Not a timing test: the limit is orders of magnitude above the expected
    milliseconds; it turns a hang in Python code (e.g. printing a huge float,
    parsing a tower of powers) into a failure.  A single C-level big-integer
    operation is only interrupted once it returns.
    """

    if not hasattr(signal, "setitimer"):  # no interval timers (Windows): run unguarded
        yield
        return

    def expire(*_):
        raise TimeoutError(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _tripwires():
    """Every route by which text could be run as Python raises while the block runs."""

    def refuse(*args, **kwargs):
        raise AssertionError("user text must never be evaluated")

    original_import = builtins.__import__

    def guarded_import(module, globals=None, locals=None, fromlist=(), level=0):
        # re-importing a loaded module runs no code; loading a new one would
        name = module
        if level:
            package = (globals or {}).get("__package__") or ""
            name = importlib.util.resolve_name("." * level + module, package) if module else package
        if name not in sys.modules:
            raise AssertionError(f"import of {name!r} while parsing")
        return original_import(module, globals, locals, fromlist, level)

    with pytest.MonkeyPatch.context() as patch:
        for name in ("eval", "exec", "compile"):
            patch.setattr(builtins, name, refuse)
        patch.setattr(builtins, "__import__", guarded_import)
        patch.setattr(sp, "sympify", refuse)
        patch.setattr(sympy.parsing.sympy_parser, "parse_expr", refuse)
        yield


@pytest.fixture
def no_evaluation(monkeypatch, tmp_path):
    """A guard for parsing: tripwires on, in an empty working directory."""
    monkeypatch.chdir(tmp_path)
    # parsing results are cached: clear so that the text really goes through the parser
    act_module._activation_from_text.cache_clear()
    yield _tripwires
    assert os.listdir(tmp_path) == [], "parsing had a side effect on the file system"


# -- the examples -------------------------------------------------------------------


@pytest.mark.parametrize("spec, expected", [
    ("x", x),
    ("linear", x),
    ("relu", sp.Max(0, x)),
    ("erf", sp.erf(x)),
    ("sigmoid", 1 / (1 + sp.exp(-x))),
    ("tanh", sp.tanh(x)),
    ("sign", sp.sign(x)),
    ("softplus", sp.log(1 + sp.exp(x))),
    ("He3", x**3 - 3 * x),
    ("He10", x**10 - 45 * x**8 + 630 * x**6 - 3150 * x**4 + 4725 * x**2 - 945),
    ("x**3 - 3*x", x**3 - 3 * x),
    ("erf(x/sqrt(2))", sp.erf(sp.sqrt(2) * x / 2)),
    ("relu(x)**2", sp.Max(0, x) ** 2),
    ("He2(x)**2", x**4 - 2 * x**2 + 1),
    ("0.5*tanh(x) + x", sp.tanh(x) / 2 + x),
    # more of the grammar: unary minus, rationals, pi, exp, nesting, spaces
    ("-x + 2/3*x**2", -x + sp.Rational(2, 3) * x**2),
    ("exp(-x)*x", sp.exp(-x) * x),
    ("pi*x", sp.pi * x),
    ("  relu( 2*x - 1 )  ", sp.Max(0, 2 * x - 1)),
    ("He2(He2(x))", sp.expand((x**2 - 1) ** 2 - 1)),
    ("x**-1 * x**2", x),
    ("1.5e1*x", 15 * x),
    ("x/(1 + x**2)", x / (1 + x**2)),
    ("exp(-exp(x))", sp.exp(-sp.exp(x))),
])
def test_examples_parse(spec, expected):
    # structural equality: the parsed expression is exactly the canonical one
    result = activation(spec).expr
    # (sigmoid and softplus are stored in their tanh / log cosh forms: the same functions)
    difference = result - expected
    assert result == expected or sp.expand(difference) == 0 or (
        sp.simplify(sp.diff(difference, x).rewrite(sp.exp)) == 0 and sp.simplify(difference.subs(x, 0)) == 0
    )
    assert result.free_symbols <= {x}


def test_decimals_are_exact_rationals():
    expr = activation("0.1*x + 0.25").expr
    assert expr == x / 10 + sp.Rational(1, 4)
    assert not expr.has(sp.Float)


def test_names_and_text_round_trip():
    assert activation("relu").name == "relu"
    assert activation("  He3 ").name == "He3"
    assert activation("He3").expr == activation("x**3 - 3*x").expr
    assert activation("linear").expr == activation("x").expr == x
    for name in ("x", "linear", "relu", "erf", "sigmoid", "tanh", "sign", "softplus"):
        assert name in act_module.ACTIVATION_NAMES
        assert activation(name).expr == activation(f"{name}(x)").expr


# -- derivatives ----------------------------------------------------------------------


def test_distributional_derivatives():
    relu, sign = activation("relu"), activation("sign")
    assert relu.derivative(0) == sp.Max(0, x)
    assert relu.derivative(1) == sp.Heaviside(x)
    assert relu.derivative(2) == sp.DiracDelta(x)
    assert sign.derivative(1) == 2 * sp.DiracDelta(x)
    assert sign.derivative(2) == 2 * sp.DiracDelta(x, 1)
    # x δ(x) = 0 as a distribution, so (relu²)'' = 2 H(x) (no δ term)
    assert activation("relu(x)**2").derivative(1) == 2 * sp.Max(0, x) * sp.Heaviside(x)
    assert activation("relu(x)**2").derivative(2) == 2 * sp.Heaviside(x) ** 2
    # shifted kink: the δ sits at the kink of the shifted argument
    assert activation("relu(x - 1)").derivative(2) == sp.DiracDelta(x - 1)


def test_smooth_derivatives():
    assert activation("He3").derivative(1) == 3 * x**2 - 3
    assert activation("He3").derivative(2) == 6 * x
    assert activation("He3").derivative(4) == 0
    assert sp.simplify(activation("erf").derivative(1) - 2 / sp.sqrt(sp.pi) * sp.exp(-x**2)) == 0
    assert sp.simplify(activation("tanh").derivative(1) - (1 - sp.tanh(x) ** 2)) == 0
    sig = activation("sigmoid")
    assert sp.simplify(sig.derivative(1) - sig.expr * (1 - sig.expr)) == 0
    assert sp.simplify(activation("softplus").derivative(1) - sig.expr) == 0
    # derivative_at substitutes the argument
    assert activation("He3").derivative_at(2 * x, 1) == 12 * x**2 - 3
    # the cache returns the same object
    relu = activation("relu")
    assert relu.derivative(2) is relu.derivative(2)


@pytest.mark.parametrize("spec", ["x", "He3", "He10", "relu", "erf", "tanh", "sigmoid", "softplus", "sign",
                                  "erf(x/sqrt(2))", "relu(x)**2", "0.5*tanh(x) + x"])
def test_numpy_matches_sympy(spec):
    act = activation(spec)
    points = np.array([-2.3, -0.7, 0.4, 1.9])
    for order in range(3):
        expr = act.derivative(order)
        if expr.has(sp.DiracDelta):
            continue
        expected = [float(expr.subs(x, sp.Float(p, 30))) for p in points]
        np.testing.assert_allclose(act.numpy(order)(points), expected, rtol=1e-12, atol=1e-14)


def test_properties():
    he = activation("He4")
    assert he.is_polynomial and he.degree == 4
    assert activation("x").degree == 1
    assert not activation("tanh").is_polynomial and activation("tanh").degree is None
    np.testing.assert_allclose(activation("relu").numpy(1)(np.array([-1.0, 0.0, 2.0])), [0, 0.5, 1])
    assert activation("relu").numpy(0)(0.5).shape == ()
    assert "tanh" in activation("tanh").latex() and activation("tanh")._repr_latex_().startswith("$")
    assert activation("He3").latex(sp.Symbol("lambda")) == r"\lambda^{3} - 3 \lambda"
    assert activation("relu")(2 * x) == sp.Max(0, 2 * x)
    act = activation("erf")
    assert hash(act) == hash(activation("erf")) and act == activation("erf")


# -- other kinds of spec ----------------------------------------------------------------


def test_sympy_expression_and_callable():
    t = sp.Symbol("t")
    assert activation(sp.tanh(t) + t).expr == sp.tanh(x) + x
    assert activation(sp.tanh(x)).expr == sp.tanh(x)
    assert activation((t + 1) ** 2).expr == x**2 + 2 * x + 1  # polynomials are expanded
    assert activation(lambda s: sp.erf(s / 2)).expr == sp.erf(x / 2)
    assert activation(sp.tanh).expr == sp.tanh(x)  # a SymPy function class is a callable
    act = activation("relu")
    assert activation(act) is act and isinstance(act, Activation)


def test_activation_is_frozen():
    act = activation("relu")
    with pytest.raises(AttributeError):
        act.expr = x


# -- rejection of unsafe or malformed text ----------------------------------------------

_REJECTED = [
    # (text, token that the message must name)
    ("__import__('os')", "__import__"),
    ("__import__('os').system('touch pwned')", "__import__"),
    ("open('pwned', 'w').write('x')", "'open'"),
    ("x.__class__", "__class__"),
    ("x.real", "'.'"),
    ("lambda x: x", "'lambda'"),
    ("x if x else x", "'if'"),
    ("[x for x in ()]", "'['"),
    ("x**(10**10**10)", "10000000000"),
    ("(x + 1", "ends unexpectedly"),
    ("x + 1)", "')'"),
    ("relu(x", "ends unexpectedly"),
    ("(x x", "found 'x'"),
    ("exp(x**2)", "exp(c x^2)"),
    ("foo(x)", "'foo'"),
    ("X", "'X'"),
    ("x; x", "';'"),
    ("'x'", "\"'\""),
    ('"x"', "'\"'"),
    ("", "empty"),
    ("   ", "empty"),
    ("x" + "+x" * 300, "too long"),
    ("x**12 * x**12 * x", "degree 25"),
    ("He4(x)**7", "degree 28"),
    ("((x+1)**12)**12", "degree up to 144"),
    ("x**x", "constant"),
    ("x**0.5", "integer powers"),
    ("x^2", "use ** for powers"),
    ("He99", "He99"),
    ("x @ x", "'@'"),
    ("x\n;", "';'"),
]


@pytest.mark.parametrize("text, token", _REJECTED)
def test_unsafe_or_malformed_text_is_rejected(text, token, no_evaluation):
    with deadline(20), pytest.raises(ValueError) as info, no_evaluation():
        activation(text)
    assert token in str(info.value)


@pytest.mark.parametrize("text, token", [
    # hostile sizes: each of these used to hang (building 10**(10**9), a tower of
    # powers, a degree-20736 expansion or printing a 14428-bit binary exponent)
    ("1e999999999*x", "'1e999999999'"),
    ("1e-999999999*x", "'1e-999999999'"),
    ("((((((((9**12)**12)**12)**12)**12)**12)**12)**12*x", "too large"),
    ("((((x+1)**12)**12)**12)**12", "degree up to 20736"),
    ("exp(exp(x))", "exp(c x^2)"),
])
def test_hostile_sizes_are_rejected_quickly(text, token, no_evaluation):
    with deadline(20), pytest.raises(ValueError) as info, no_evaluation():
        activation(text)
    assert token in str(info.value)


def test_bounded_double_exponential_is_accepted_quickly(no_evaluation):
    # exp(-exp(x)) is bounded and integrable; its value at x = 10^4 is about
    # 10^(-10^4343): the integrability check must not print it in decimal
    with deadline(20), no_evaluation():
        act = activation("exp(-exp(x))")
    assert act.expr == sp.exp(-sp.exp(x))


def test_parsing_evaluates_nothing(no_evaluation):
    # the tripwires do not break legitimate parsing
    with no_evaluation():
        first = activation("0.5*tanh(x) + x")
        second = activation("relu(x)**2 - He2(x)/3")
    assert first.expr == x + sp.tanh(x) / 2
    assert second.expr.has(sp.Max)


def test_tripwires_work(no_evaluation):
    # the guard itself must be able to fail
    with pytest.raises(AssertionError, match="never be evaluated"), no_evaluation():
        eval("1")  # noqa: S307 - deliberately tripping the wire


@pytest.mark.parametrize("text", ["1/x", "x**-2", "1/(x - 1)"])
def test_poles_are_rejected(text):
    with pytest.raises(ValueError, match="pole"):
        activation(text)
    # denominators without real zeros stay accepted
    activation("x/(1 + x**2)")
    activation("sigmoid")


# -- every raise of symlora/_activation.py ---------------------------------------------


def test_every_raise_of_the_module(monkeypatch):
    cases = [
        ("He25", "at most He24"),  # _named_function: Hermite index
        ("x $ 1", "unexpected character '$'"),  # tokenizer: character
        ("x + cosh(x)", "unknown name 'cosh'"),  # tokenizer: name
        ("x +", "ends unexpectedly"),  # _next
        ("erf(x x)", "expected ')' but found 'x'"),  # _expect
        ("x + 1)", "unexpected token ')'"),  # parse: trailing tokens
        ("x/0", "division by zero"),  # _term
        ("x/(x - x)", "division by zero"),
        ("x**x", "must be a constant"),  # _checked_power
        ("x**pi", "rational number"),
        ("x**13", "too large"),
        ("x**(-13)", "too large"),
        ("x**(1/2)", "integer powers"),
        ("((9**12)**12)**12*x", "builds a constant that is too large"),
        ("1" * 31 + "*x", "is too long"),  # _atom: number length
        ("1e101*x", "decimal exponent"),  # _atom: number range
        ("x + *x", "unexpected '*'"),  # _atom: operator
        ("relu + x", "must be called"),  # _call
        ("x" + " " * 400, "too long"),  # _parse
        ("x/(exp(x) - exp(10000))", "may have a pole"),  # _integrability: enclosure holds 0
        ("x/(x - 10000)", "has a pole at x ≈ 10000"),  # _integrability: polynomial root
        ("sqrt(x)", "not real-valued: x takes negative values"),
        ("sqrt(-1)*x", "not real-valued"),
        ("exp(x**2/2)", "grows like exp(c x^2)"),
        ("He0", "does not depend on x"),  # _activation_from_text
        ("x*0 + 1", "does not depend on x"),
        ("((x+1)**10)**10", "degree up to 100"),
        ("x**12*x**12*x", "has degree 25"),
        ("x_1", "underscores are not allowed"),  # activation: underscores
    ]
    act_module._activation_from_text.cache_clear()
    for text, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            activation(text)
    with pytest.raises(ValueError, match="non-negative integer"):
        activation("x").derivative(-1)
    with pytest.raises(TypeError, match="non-negative integer"):
        activation("x").derivative(1.0)
    with pytest.raises(ValueError, match="at most 8"):
        activation("x").derivative(10**6)
    with pytest.raises(ValueError, match="Dirac delta"):
        activation("relu").numpy(2)(np.array([0.0]))
    with pytest.raises(TypeError, match="string, a SymPy expression or a callable"):
        activation(3.5)
    with pytest.raises(TypeError, match="callable activation"):
        activation(lambda s: "text")
    with pytest.raises(TypeError, match="callable activation"):
        activation(np.tanh)  # a numpy ufunc cannot take a SymPy symbol
    with pytest.raises(TypeError, match="must be a SymPy expression"):
        activation(lambda s: sp.Eq(s, 1))
    with pytest.raises(ValueError, match="several free symbols"):
        activation(sp.Symbol("a") * sp.Symbol("b"))
    with pytest.raises(ValueError, match="does not depend on any"):
        activation(sp.Integer(2))
    with pytest.raises(ValueError, match="grows like"):
        activation(sp.exp(sp.Symbol("t") ** 2))
    # defensive raises that the public API cannot reach (the tokenizer rejects
    # unknown names first; numpy() never lambdifies a Dirac delta): still raise
    parser = act_module._Parser.__new__(act_module._Parser)
    parser.text, parser.tokens, parser.pos = "cosh(x)", [("name", "cosh", 0)], 0
    parser.depth = parser.calls = parser.call_depth = 0
    with pytest.raises(ValueError, match="unknown name 'cosh'"):
        parser.parse()
    with pytest.raises(ValueError, match="Dirac delta"):
        act_module._numpy_dirac(np.zeros(2))
