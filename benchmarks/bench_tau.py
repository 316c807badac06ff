"""Benchmark: tau(mu) from generated code against the routes a user would write.

Baselines (both with scipy.integrate.quad, split at 0):

* "Hermite k<=16": the route of the paper -- Mehler's formula at the fixed
  point (lambda = mu nu, variance mu^2, correlation with nu equal to mu),
  ``E[f(mu nu) g(nu)] = sum_k f_k^[mu^2] g_k^[1] / (k! mu^k)``, one ``quad``
  per Hermite coefficient up to k = 16, summed;
* "direct quad": one-dimensional ``quad`` of the integrals a(mu), b(mu) of
  docs/theory.md section 4.

Every route is compared with 30-digit values (mpmath quadrature of the same
one-dimensional integrals, ``Linearization.values``).  Prints time per mu
value, the ratio against the generated code and the largest relative error
of each route.  Run: python benchmarks/bench_tau.py
"""

import math
import time

import numpy as np
from scipy.integrate import quad
from scipy.special import erf as sp_erf
from scipy.special import expit

from symlora import LoRAModel

K = 16
MU = np.linspace(0.05, 0.95, 200)
SUBSET = MU[::20]  # the baselines are slow: timed and checked on 10 values


def _sigmoid_pair():
    def d1(x):
        s = expit(x)
        return s * (1 - s)

    def d2(x):
        s = expit(x)
        return s * (1 - s) * (1 - 2 * s)

    return expit, d1, d2


PAIRS = {
    "erf": (sp_erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x),
            lambda x: -4 * x / math.sqrt(math.pi) * math.exp(-x * x)),
    "tanh": (math.tanh, lambda x: 1 - math.tanh(x) ** 2,
             lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2)),
    "sigmoid": _sigmoid_pair(),
}


def _gauss(f, q=1.0):
    """E[f(X)], X ~ N(0, q), by quad split at 0."""
    sd = math.sqrt(q)
    integrand = lambda x: f(x) * math.exp(-x * x / (2 * q)) / math.sqrt(2 * math.pi * q)  # noqa: E731
    return quad(integrand, -12 * sd, 0, limit=200)[0] + quad(integrand, 0, 12 * sd, limit=200)[0]


def _coefficient(f, k, q):
    he = lambda x: q ** (k / 2) * np.polynomial.hermite_e.hermeval(x / math.sqrt(q), [0] * k + [1])  # noqa: E731
    return _gauss(lambda x: f(x) * he(x), q)


def _mehler(f, g, mu):
    q = mu * mu
    return sum(_coefficient(f, k, q) * _coefficient(g, k, 1.0) / (math.factorial(k) * mu**k) for k in range(K + 1))


def _tau(a, b):
    return (b + math.sqrt(b * b + 4 * a * a)) / (2 * a * a)


def hermite_tau(sigma, dsigma, d2sigma, mu):
    a = -_mehler(lambda x: sigma(x) * dsigma(x), lambda y: y, mu) + _mehler(dsigma, lambda y: y * sigma(y), mu)
    b = _mehler(lambda x: dsigma(x) ** 2 + sigma(x) * d2sigma(x), lambda y: 1.0, mu) - _mehler(d2sigma, sigma, mu)
    return _tau(a, b)


def direct_tau(sigma, dsigma, d2sigma, mu):
    a = -_gauss(lambda n: (sigma(mu * n) - sigma(n)) * dsigma(mu * n) * n)
    b = _gauss(lambda n: dsigma(mu * n) ** 2 + (sigma(mu * n) - sigma(n)) * d2sigma(mu * n))
    return _tau(a, b)


def _timed(func, values):
    start = time.perf_counter()
    out = np.array([func(m) for m in values])
    return out, (time.perf_counter() - start) / len(values)


def main():
    print(f"tau(mu), mu in [{MU[0]}, {MU[-1]}]; generated code on {MU.size} values, baselines on {SUBSET.size}")
    print("time per mu value; error = max relative error against 30-digit mpmath quadrature")
    for name, funcs in PAIRS.items():
        model = LoRAModel(name)
        lin = model.linearization()
        reference = np.array([lin.values(m, dps=30)["tau"] for m in SUBSET])
        model.tau(MU)  # compile once (cached per model)
        repeats = 20
        start = time.perf_counter()
        for _ in range(repeats):
            fast = model.tau(MU)
        fast_time = (time.perf_counter() - start) / repeats / MU.size
        fast_error = np.max(np.abs(fast[::20] / reference - 1))
        hermite, hermite_time = _timed(lambda m: hermite_tau(*funcs, m), SUBSET)
        direct, direct_time = _timed(lambda m: direct_tau(*funcs, m), SUBSET)
        print(f"{name:8s} generated   {fast_time * 1e3:9.4f} ms  error {fast_error:.1e}")
        for label, values, seconds in (("Hermite k<=16", hermite, hermite_time), ("direct quad", direct, direct_time)):
            error = np.max(np.abs(values / reference - 1))
            print(f"{'':8s} {label:13s} {seconds * 1e3:9.2f} ms  error {error:.1e}  "
                  f"({seconds / fast_time:8.0f}x the generated code's time)")


if __name__ == "__main__":
    main()
