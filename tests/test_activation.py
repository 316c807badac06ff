"""Activation parsing: the examples, distributional derivatives, safe rejection."""

import builtins
import os

import pytest
import sympy as sp

from symlora import Activation, activation, x


@pytest.mark.parametrize("spec, expected", [
    ("x", x), ("linear", x), ("relu", sp.Max(0, x)), ("erf", sp.erf(x)), ("sigmoid", 1 / (1 + sp.exp(-x))),
    ("tanh", sp.tanh(x)), ("sign", sp.sign(x)), ("softplus", sp.log(1 + sp.exp(x))),
    ("He3", x**3 - 3 * x), ("He10", sp.expand(sp.hermite_prob(10, x))), ("x**3 - 3*x", x**3 - 3 * x),
    ("erf(x/sqrt(2))", sp.erf(x / sp.sqrt(2))), ("relu(x)**2", sp.Max(0, x) ** 2),
    ("He2(x)**2", sp.expand((x**2 - 1) ** 2)), ("0.5*tanh(x) + x", sp.tanh(x) / 2 + x),
    ("-x + 2/3*x**2", -x + sp.Rational(2, 3) * x**2), ("exp(-x)*x", sp.exp(-x) * x), ("pi*x", sp.pi * x),
])
def test_examples_parse(spec, expected):
    assert sp.simplify(activation(spec).expr - expected) == 0


def test_distributional_derivatives():
    assert activation("relu").derivative(1) == sp.Heaviside(x)
    assert activation("relu").derivative(2) == sp.DiracDelta(x)
    assert activation("sign").derivative(1) == 2 * sp.DiracDelta(x)
    # x * delta(x) = 0 as a distribution
    assert activation("relu(x)**2").derivative(2) == 2 * sp.Heaviside(x) ** 2
    assert activation("He3").derivative(2) == 6 * x


def test_properties_and_numpy():
    import numpy as np

    he = activation("He4")
    assert he.is_polynomial and he.degree == 4
    assert not activation("tanh").is_polynomial and activation("tanh").degree is None
    np.testing.assert_allclose(activation("relu").numpy(1)(np.array([-1.0, 0.0, 2.0])), [0, 0.5, 1])
    with pytest.raises(ValueError, match="Dirac delta"):
        activation("relu").numpy(2)(np.array([0.0]))
    assert "tanh" in activation("tanh").latex()
    assert activation("relu")(2 * x) == sp.Max(0, 2 * x)
    with pytest.raises(ValueError, match="order"):
        activation("x").derivative(-1)


def test_sympy_expression_and_callable():
    t = sp.Symbol("t")
    assert activation(sp.tanh(t) + t).expr == sp.tanh(x) + x
    assert activation(lambda s: sp.erf(s / 2)).expr == sp.erf(x / 2)
    act = activation("relu")
    assert activation(act) is act and isinstance(act, Activation)


@pytest.mark.parametrize("text, token", [
    ("__import__('os')", "__import__"),
    ("x.__class__", "__class__"),
    ("x.real", "'.'"),
    ("lambda x: x", "'lambda'"),
    ("x if x else x", "'if'"),
    ("x**(10**10**10)", "too large"),
    ("(x + 1", "ends unexpectedly"),
    ("x + 1)", "')'"),
    ("exp(x**2)", "exp(c x^2)"),
    ("foo(x)", "'foo'"),
    ("x; x", "';'"),
    ("'x'", "\"'\""),
    ("", "empty"),
    ("x" + "+x" * 300, "too long"),
    ("x**12 * x**12 * x", "degree 25"),
    ("x**x", "constant"),
    ("x**0.5", "integer powers"),
    ("x^2", "use ** for powers"),
    ("open('f', 'w')", "'open'"),
    ("He99", "too large"),
    ("relu", None),
])
def test_unsafe_or_malformed_text_is_rejected(text, token, monkeypatch, tmp_path):
    if token is None:
        assert activation(text).name == "relu"
        return

    def refuse(*args, **kwargs):
        raise AssertionError("user text must never be evaluated")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as info:
        activation(text)
    assert token in str(info.value)
    assert os.listdir(tmp_path) == []  # no side effect


def test_other_bad_specs():
    with pytest.raises(TypeError, match="string"):
        activation(3.5)
    with pytest.raises(ValueError, match="does not depend"):
        activation("He0")
    with pytest.raises(ValueError, match="several free symbols"):
        activation(sp.Symbol("a") * sp.Symbol("b"))
    with pytest.raises(ValueError, match="does not depend on any"):
        activation(sp.Integer(2))
    with pytest.raises(TypeError, match="callable activation"):
        activation(lambda s: "text")
    with pytest.raises(ValueError, match="division by zero"):
        activation("x/0")
    with pytest.raises(ValueError, match="must be called"):
        activation("relu + x")
    with pytest.raises(ValueError, match="rational"):
        activation("x**pi")
    with pytest.raises(ValueError, match="too long"):
        activation("1" * 40 + "*x")
    with pytest.raises(ValueError, match="not real-valued"):
        activation("sqrt(x)")
