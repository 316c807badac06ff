"""Shared test helpers: independent high-precision Gaussian expectations.

Everything here is independent of symlora: plain ``mpmath.quad`` over the
Gaussian density, with the integration domain split where the integrand has
kinks or jumps (ReLU, Heaviside, sign of a linear form that vanishes on a
coordinate axis).  Two-dimensional expectations are integrated in the
coordinates ``(x, y)`` of the Gaussian pair itself, where the kinks ``x = 0``
and ``y = 0`` are axis-aligned and the (non-singular) density is smooth, so
that Gauss–Legendre converges exponentially on each quadrant.

The package is imported from the repository root, without installation.
"""

import atexit
import functools
import os
import shutil
import sys
import tempfile

import mpmath
import pytest
import sympy as sp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Derived models are cached on disk (symlora._diskcache).  The tests use a
# fresh folder per session: they exercise the cache (later tests read what
# earlier ones derived) and never read results left by another checkout.
_CACHE = tempfile.mkdtemp(prefix="symlora-test-cache-")
os.environ["SYMLORA_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

#: Half-width of the integration boxes in standard deviations: the Gaussian
#: mass beyond 10 sd is below 2e-23, far below the 10 digits asserted
HALF_WIDTH = 10


#: Working precision of conversions and comparisons in the helpers below.  An
#: mpf keeps the precision it was made with, but parsing or arithmetic at
#: mpmath's default 15 digits would round to double precision.
COMPARE_DPS = 40


def mpf(value):
    """An mpmath number from an int, float, string, mpf or exact SymPy number (no rounding)."""
    with mpmath.workdps(COMPARE_DPS):
        if isinstance(value, sp.Basic):
            value = sp.nsimplify(value) if isinstance(value, sp.Float) else value
            if isinstance(value, sp.Rational):
                return mpmath.mpf(int(value.p)) / int(value.q)
            return mpmath.mpf(str(sp.N(value, COMPARE_DPS)))
        return mpmath.mpf(value)


def numeric(expr, dps=30):
    """An exact SymPy expression evaluated with ``dps`` digits, as mpf."""
    value = sp.N(sp.sympify(expr), dps)
    assert value.is_number and value.is_real, f"not a real number: {value}"
    with mpmath.workdps(COMPARE_DPS):
        return mpmath.mpf(str(value))


# mpmath's erf is the slowest part of the references: quadrature nodes repeat
# across the rows and columns of the product rule, so memoise it.
mp_erf = functools.lru_cache(maxsize=100_000)(mpmath.erf)


def mp_relu(value):
    return value if value > 0 else mpmath.mpf(0)


def mp_heaviside(value):
    # the value at the kink is immaterial for the integrals (a null set)
    return mpmath.mpf(1) if value > 0 else mpmath.mpf(0)


def mp_sign(value):
    return mpmath.sign(value)


def mp_expect_1d(func, variance=1, dps=30):
    """E[func(X)], X ~ N(0, variance), by tanh-sinh ``mpmath.quad`` split at the kink 0."""
    with mpmath.workdps(dps):
        sd = mpmath.sqrt(mpf(variance))
        return mpmath.quad(lambda z: func(sd * z) * mpmath.npdf(z), [-mpmath.inf, 0, mpmath.inf])


def mp_expect_2d(func, Q, R, T, dps=20, maxdegree=5):
    """E[func(X, Y)] for (X, Y) centred Gaussian, Var X = Q, Cov = R, Var Y = T.

    Gauss–Legendre ``mpmath.quad`` (up to ``3·2^4 = 48`` nodes per edge of
    each box) in coordinates where the kinks ``x = 0`` and ``y = 0`` are
    axis-aligned:

    * ``|ρ| <= 0.9``: the ``(x, y)`` plane itself, split into its four
      quadrants, with the density written out (nodes repeat along rows and
      columns, so memoised ``erf`` is cheap);
    * ``|ρ| > 0.9``, where the density is a narrow ridge that a box rule
      resolves badly: polar coordinates ``(θ, r)`` of the whitened pair
      ``x = √Q z1``, ``y = (R/√Q) z1 + c z2``; both kinks are rays through the
      origin, i.e. fixed angles, so the θ-range is split at those four angles,
      and the isotropic weight ``r exp(-r²/2)/(2π)`` does not care about ρ.

    mpmath's error estimate for multi-dimensional Gauss–Legendre is
    unreliable (it reports 1e-9 for results correct to 1e-20), so both rules
    are validated against textbook kernels in
    ``test_expectation.py::test_reference_quadrature_against_textbook_kernels``;
    a reference that is off can only make a test fail, never pass.
    """
    with mpmath.workdps(dps):
        Q, R, T = mpf(Q), mpf(R), mpf(T)
        det = Q * T - R * R
        assert det > 0, "mp_expect_2d needs a non-singular covariance"
        if abs(R) <= mpmath.mpf("0.9") * mpmath.sqrt(Q * T):
            norm = 1 / (2 * mpmath.pi * mpmath.sqrt(det))
            a, b, c = T / det, R / det, Q / det  # inverse covariance
            # the density factorises as g(x) h(y) exp(b x y); g and h repeat along rows/columns
            g = functools.lru_cache(maxsize=None)(lambda x: norm * mpmath.exp(-a * x * x / 2))
            h = functools.lru_cache(maxsize=None)(lambda y: mpmath.exp(-c * y * y / 2))

            def integrand(x, y):
                return func(x, y) * g(x) * h(y) * mpmath.exp(b * x * y)

            lx, ly = HALF_WIDTH * mpmath.sqrt(Q), HALF_WIDTH * mpmath.sqrt(T)
            return mpmath.quad(
                integrand, [-lx, 0, lx], [-ly, 0, ly], method="gauss-legendre", maxdegree=maxdegree
            )
        sq = mpmath.sqrt(Q)
        a = R / sq
        c = mpmath.sqrt(T - a * a)
        ray = mpmath.atan2(-a, c) % mpmath.pi  # y = 0 on the rays ray, ray + π
        cuts = sorted([mpmath.pi / 2, 3 * mpmath.pi / 2, ray, ray + mpmath.pi])
        edges = [mpmath.mpf(0)] + cuts + [2 * mpmath.pi]

        def polar(theta, r):
            z1, z2 = r * mpmath.cos(theta), r * mpmath.sin(theta)
            return func(sq * z1, a * z1 + c * z2) * r * mpmath.exp(-r * r / 2)

        value = mpmath.quad(polar, edges, [0, HALF_WIDTH], method="gauss-legendre", maxdegree=maxdegree)
        return value / (2 * mpmath.pi)


def gh_expect_2d(func, Q, R, T, nodes=24):
    """E[func(X, Y)] for a polynomial ``func`` by numpy Gauss–Hermite tensor quadrature.

    ``hermegauss(n)`` integrates polynomials of degree < 2n exactly against
    the standard normal weight; ``(X, Y) = (√Q z1, (R/√Q) z1 + c z2)`` keeps
    the degree, so the result is exact up to float64 rounding for every
    polynomial of degree < 2·nodes in each variable.  ``func`` takes numpy
    arrays.  Monte-Carlo-free and independent of the engine.
    """
    import math

    import numpy as np

    Q, R, T = float(Q), float(R), float(T)
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / math.sqrt(2 * math.pi)
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    weights = np.outer(w, w)
    a = R / math.sqrt(Q)
    c = math.sqrt(max(T - a * a, 0.0))
    return float(np.sum(weights * func(math.sqrt(Q) * z1, a * z1 + c * z2)))


def mp_expect_on_line(func, Q, R, T, dps=30):
    """E[func(Y) δ(X)] = ∫ func(y) p_{X,Y}(0, y) dy (density of the pair at x = 0).

    A one-dimensional ``mpmath.quad`` of the joint density on the line
    ``x = 0``, split at the kink ``y = 0``.
    """
    with mpmath.workdps(dps):
        Q, R, T = mpf(Q), mpf(R), mpf(T)
        det = Q * T - R * R
        norm = 1 / (2 * mpmath.pi * mpmath.sqrt(det))
        return mpmath.quad(
            lambda y: func(y) * norm * mpmath.exp(-Q * y * y / (2 * det)), [-mpmath.inf, 0, mpmath.inf]
        )


def assert_close(value, reference, digits=10):
    """``value`` (SymPy or number) agrees with ``reference`` to ``digits`` significant digits.

    Values much smaller than one are compared absolutely (``10^-digits``):
    a relative comparison of a result that is zero up to cancellation is
    meaningless.
    """
    with mpmath.workdps(COMPARE_DPS):
        got = numeric(value) if isinstance(value, sp.Basic) else mpmath.mpf(value)
        ref = mpmath.mpf(reference)
        scale = max(abs(ref), mpmath.mpf(1))
        assert abs(got - ref) <= mpmath.mpf(10) ** (-digits) * scale, (
            f"{mpmath.nstr(got, 25)} != {mpmath.nstr(ref, 25)} (difference {mpmath.nstr(got - ref, 5)})"
        )


@pytest.fixture
def mp1():
    return mp_expect_1d


@pytest.fixture
def mp2():
    return mp_expect_2d
