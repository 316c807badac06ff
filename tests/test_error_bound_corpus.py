"""The error bound of every approximate expectation is above its true error.

A hypothesis corpus: activations from the parser's families (smooth without
closed form, kinked, closed form), products ``f(X) g(Y)`` and kinks along a
combination of the variables (``g(X + Y)``), random covariances; the
reference is the nested mpmath quadrature of ``test_separable.mp_product``
(20 digits, split at the kinks), computed for the pair ``(X, W)`` with
``W = Y`` or ``W = X + Y`` so that its kinks are on its own axes.
"""

from __future__ import annotations

import mpmath
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from symlora import activation
from symlora._expectation import evaluate_with_error, gaussian_expectation, is_exact

from test_separable import mp_product


def _sigmoid(t):
    return 1 / (1 + mpmath.exp(-t))


#: text -> (mpmath function, kinks)
FAMILIES = {
    "tanh": (mpmath.tanh, ()),
    "sigmoid": (_sigmoid, ()),
    "softplus": (lambda t: mpmath.log(1 + mpmath.exp(t)), ()),
    "silu": (lambda t: t * _sigmoid(t), ()),
    "gelu": (lambda t: t * mpmath.ncdf(t), ()),
    "erf(2*x)": (lambda t: mpmath.erf(2 * t), ()),
    "elu": (lambda t: t if t > 0 else mpmath.expm1(t), (0,)),
    "softsign": (lambda t: t / (1 + abs(t)), (0,)),
    "relu(x - 0.5)": (lambda t: max(t - mpmath.mpf(1) / 2, 0), (0.5,)),
    "abs": (abs, (0,)),
    "tanh(x)*relu(x)": (lambda t: mpmath.tanh(t) * max(t, 0), (0,)),
}

X, Y = sp.symbols("X Y", real=True)


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    f=st.sampled_from(sorted(FAMILIES)),
    g=st.sampled_from(sorted(FAMILIES)),
    combination=st.booleans(),
    var_x=st.integers(3, 10),
    var_y=st.integers(3, 10),
    cov=st.integers(-8, 8),
)
def test_bound_is_above_the_true_error(f, g, combination, var_x, var_y, cov):
    a, b, c = sp.Rational(var_x, 10), sp.Rational(var_y, 10), sp.Rational(cov, 10)
    assume(c * c < sp.Rational(81, 100) * a * b)  # |ρ| < 0.9
    act_f, act_g = activation(f), activation(g)
    w = X + Y if combination else Y
    result = gaussian_expectation(act_f(X) * act_g(w), [X, Y], [[a, c], [c, b]])
    value, bound = evaluate_with_error(result)
    # (X, W): Var W and Cov(X, W)
    var_w, cov_xw = (a + 2 * c + b, a + c) if combination else (b, c)
    (mf, kf), (mg, kg) = FAMILIES[f], FAMILIES[g]
    reference = mp_product(mf, mg, float(a), float(var_w), float(cov_xw), f_kinks=kf, g_kinks=kg)
    error = abs(value - float(reference))
    # the reference is good to ~1e-15; exact results have bound 0
    assert error <= bound + 1e-14, (f, g, combination, value, float(reference), bound)
    assert bound < 1e-9, (f, g, combination, bound)
    assert is_exact(result) == (bound == 0)
