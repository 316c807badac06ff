"""Shared test helpers: independent high-precision Gaussian expectations."""

import math
import os
import sys

import mpmath
import pytest
from scipy.integrate import quad

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mp_expect_1d(func, variance=1, dps=25):
    """E[func(X)], X ~ N(0, variance), by mpmath.quad split at the kink 0."""
    with mpmath.workdps(dps):
        sd = mpmath.sqrt(variance)
        return mpmath.quad(lambda z: func(sd * z) * mpmath.npdf(z), [-mpmath.inf, 0, mpmath.inf])


def mp_expect_2d(func, Q, R, T):
    """E[func(X, Y)] for (X, Y) centred Gaussian with Var X = Q, Cov = R, Var Y = T.

    Nested adaptive scipy quadrature (about 1e-13), independent of symlora:
    X = sqrt(Q) z1, Y = (R/sqrt(Q)) z1 + c z2; the inner integral over z2 is
    split where Y = 0 (kinks of ReLU/Heaviside in Y), the outer at z1 = 0.
    ``func`` receives floats.
    """
    Q, R, T = float(Q), float(R), float(T)
    a = R / math.sqrt(Q)
    c = math.sqrt(T - a * a)
    norm = 1 / math.sqrt(2 * math.pi)

    def inner(z1):
        x = math.sqrt(Q) * z1
        kink = -a * z1 / c
        g = lambda z2: float(func(x, a * z1 + c * z2)) * norm * math.exp(-z2 * z2 / 2)  # noqa: E731
        return (quad(g, -14, kink, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
                + quad(g, kink, 14, epsabs=1e-15, epsrel=1e-13, limit=200)[0])

    outer = lambda z1: inner(z1) * norm * math.exp(-z1 * z1 / 2)  # noqa: E731
    return (quad(outer, -14, 0, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
            + quad(outer, 0, 14, epsabs=1e-15, epsrel=1e-13, limit=200)[0])


@pytest.fixture
def mp1():
    return mp_expect_1d


@pytest.fixture
def mp2():
    return mp_expect_2d
