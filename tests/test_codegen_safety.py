"""Generated code is overflow-free and warning-free at extreme inputs, for every activation.

Every activation the parser names (and shifted / scaled / composed forms),
with its first two derivatives, is compiled twice: by the vectorised
generator (:func:`compile_expressions`) and as ``math``-module source
(:func:`scalar_function_source`, what numba compiles for the SGD
simulator).  Both are evaluated at ``|x|`` up to ``1e3`` with every
floating-point error raised (underflow excepted: a result too small for a
double rounds to 0 or a subnormal, which is the correctly rounded value and
is silent in numpy by default) and compared with a 30-digit mpmath
evaluation of the original, un-rewritten expression.
"""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp

from symlora import LoRAModel, activation
from symlora import _symbols as S
from symlora._activation import ACTIVATION_NAMES, x
from symlora._codegen import compile_expressions, compile_ode
from symlora._export import scalar_function_source

EXTREME = np.array([-1e3, -745.0, -710.0, -40.0, -1.0, -1e-300, 0.0, 1e-300, 0.5, 40.0, 710.0, 745.0, 1e3])

SPECS = [name for name in ACTIVATION_NAMES if name != "He<k>"] + [
    "He5", "relu(x - 1)", "erf(2*x)", "sigmoid(3*x + 1)", "softplus(-2*x)", "silu(x/2)", "elu(x + 1/2)",
    "gelu(2*x)", "leaky_relu(x, 1/5)", "abs(x - 1)", "softsign(3*x)", "tanh(x)*relu(x)", "sigmoid(x)**2",
    "softplus(x)**2", "x*sigmoid(x) - softplus(x)",
]


def _mp_heaviside(value, h0=0.5):
    return mpmath.mpf(1) if value > 0 else (mpmath.mpf(0) if value < 0 else mpmath.mpf(h0))


def _reference(expr):
    func = sp.lambdify(x, expr, modules=[{"Heaviside": _mp_heaviside}, "mpmath"])

    def evaluate(point):
        with mpmath.workdps(30):
            return float(func(mpmath.mpf(float(point))))

    return evaluate


def _cases():
    # derivatives with a Dirac delta have no pointwise value: they are integrated out before code is generated
    for spec in SPECS:
        for order in (0, 1, 2):
            if not activation(spec).derivative(order).has(sp.DiracDelta):
                yield pytest.param(spec, order, id=f"{spec}-d{order}")


@pytest.mark.parametrize("spec, order", list(_cases()))
def test_generated_activation_code_is_finite_and_exact_at_extreme_inputs(spec, order):
    expr = activation(spec).derivative(order)
    reference = np.array([_reference(expr)(p) for p in EXTREME])
    vectorised = compile_expressions([x], [expr], name="sigma")
    with np.errstate(all="raise", under="ignore"):
        values = vectorised(EXTREME)[0]
    source = scalar_function_source("sigma", x, expr)
    namespace = {"math": math}
    exec(compile(source, "<generated>", "exec"), namespace)  # our own generated source, not user text
    scalar = np.array([namespace["sigma"](float(p)) for p in EXTREME])  # math raises OverflowError on overflow
    tolerance = 1e-12 * np.maximum(1.0, np.abs(reference))
    for name, got in (("vectorised", values), ("math-module", scalar)):
        error = np.abs(got - reference)
        assert np.all(error <= tolerance), (name, EXTREME[error > tolerance], got[error > tolerance],
                                            reference[error > tolerance])


def test_plain_exponential_overflows_only_where_its_value_does():
    # exp(x) itself exceeds the double range at x = 1000: there the honest answer is inf (and the error)
    f = compile_expressions([x], [sp.exp(x)])
    with np.errstate(all="raise", under="ignore"):
        assert f(np.array([-1e3, 0.0, 700.0]))[0].tolist() == [0.0, 1.0, math.exp(700.0)]
        with pytest.raises(FloatingPointError, match="overflow"):
            f(np.array([1e3]))


@pytest.mark.parametrize("student, teacher", [("sigmoid", "softplus"), ("elu", "tanh")])
def test_generated_rhs_and_jacobian_raise_nothing_at_extreme_states(student, teacher):
    compiled = compile_ode(LoRAModel(student, teacher).ode_system())
    m, u, mu = (np.array(v) for v in zip(*[
        (0.999999, 1e-300, 1e3), (-0.999999, 1e3, 0.0), (0.0, 1e3, 1e3), (0.5, 3.0, 1.0), (-0.3, 1e-8, 1e-9),
    ]))
    states = np.stack([m, u])
    with np.errstate(all="raise", under="ignore"):
        rhs = compiled.rhs(states, mu)
        jacobian = compiled.jacobian(states, mu)
    assert np.all(np.isfinite(rhs)) and np.all(np.isfinite(jacobian))
    # the Jacobian is the derivative of the right-hand side (central differences at a moderate state)
    point, h = states[:, 3:4], 1e-6
    for j in range(2):
        step = np.zeros((2, 1))
        step[j] = h
        slope = (compiled.rhs(point + step, mu[3:4]) - compiled.rhs(point - step, mu[3:4])) / (2 * h)
        np.testing.assert_allclose(jacobian[:, j, 3], slope[:, 0], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("student", ["relu", "erf"])
def test_rhs_stays_finite_when_a_trial_stage_overshoots_the_sphere(student):
    # |m| a hair above 1 happens in Runge-Kutta trial stages once v has aligned; sqrt(1 - m²) must not be NaN
    compiled = compile_ode(LoRAModel(student).ode_system())
    states = np.array([[1 + 1e-9, -1 - 1e-9, 0.3], [0.4, 0.4, 0.4]])
    with np.errstate(all="raise", under="ignore"):
        rhs = compiled.rhs(states, np.array([0.5, 0.5, 0.5]))
    assert np.all(np.isfinite(rhs))
    # on the state space the clamp changes nothing: the interior value is the unclamped one
    model = LoRAModel(student)
    exact = model.ode()
    values = {S.m: sp.Rational(3, 10), S.u: sp.Rational(2, 5), S.mu: sp.Rational(1, 2)}
    for i, state in enumerate(model.states):
        assert rhs[i, 2] == pytest.approx(float(sp.N(exact[state].subs(values), 30)), rel=1e-12)


@pytest.mark.parametrize("arg", ["t):\n    import os\ndef g(t", sp.Symbol("not a name"), 3])
def test_scalar_function_source_refuses_arguments_that_are_not_symbols(arg):
    # argument names are printed into compiled source: text must never get there
    with pytest.raises(TypeError, match="sympy Symbol"):
        scalar_function_source("f", arg, x + 1)
    with pytest.raises(TypeError, match="sympy Symbol"):
        scalar_function_source("f", (x, arg), [x, x + 1])
