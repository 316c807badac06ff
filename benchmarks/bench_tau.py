"""Benchmark: tau(mu) on 200 values, generated code vs a term-by-term Hermite series.

The baseline is the usual hand-written route: Mehler's formula at the fixed
point (lambda = mu nu, variance mu^2, correlation with nu equal to mu),

    E[f(mu nu) g(nu)] = sum_k f_k^[mu^2] g_k^[1] / (k! mu^k),

with every coefficient computed by scipy.integrate.quad, truncated at K
terms.  Both routes are compared with 30-digit values (mpmath quadrature of
the one-dimensional integrals of docs/theory.md §4).  Prints the speed-up
ratio and the accuracy of both.  Run: python benchmarks/bench_tau.py
"""

import math
import time

import mpmath
import numpy as np
from scipy.integrate import quad
from scipy.special import erf as sp_erf

from symlora import LoRAModel

K = 30
MU = np.linspace(0.05, 0.95, 200)

PAIRS = {
    "erf": (sp_erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x),
            lambda x: -4 * x / math.sqrt(math.pi) * math.exp(-x * x)),
    "tanh": (math.tanh, lambda x: 1 - math.tanh(x) ** 2,
             lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2)),
}


def _scaled_hermite(k, x, q):
    return q ** (k / 2) * np.polynomial.hermite_e.hermeval(x / math.sqrt(q), [0] * k + [1])


def _coefficient(f, k, q):
    sd = math.sqrt(q)
    integrand = lambda x: f(x) * _scaled_hermite(k, x, q) * math.exp(-x * x / (2 * q)) / math.sqrt(2 * math.pi * q)  # noqa: E731
    return quad(integrand, -12 * sd, 0, limit=200)[0] + quad(integrand, 0, 12 * sd, limit=200)[0]


def _mehler(f, g, mu):
    q = mu * mu
    total = 0.0
    for k in range(K):
        total += _coefficient(f, k, q) * _coefficient(g, k, 1.0) / (math.factorial(k) * mu**k)
    return total


def baseline_tau(sigma, dsigma, d2sigma, mu):
    # a = -E[s(mu nu) s'(mu nu) nu] + E[s'(mu nu) nu s(nu)]
    a = -_mehler(lambda x: sigma(x) * dsigma(x), lambda y: y, mu) + _mehler(dsigma, lambda y: y * sigma(y), mu)
    # b = E[s'(mu nu)^2] + E[s(mu nu) s''(mu nu)] - E[s''(mu nu) s(nu)]
    b = (_mehler(lambda x: dsigma(x) ** 2 + sigma(x) * d2sigma(x), lambda y: 1.0, mu)
         - _mehler(d2sigma, sigma, mu))
    return (b + math.sqrt(b * b + 4 * a * a)) / (2 * a * a)


def main():
    print(f"tau(mu) on {MU.size} values of mu in [{MU[0]}, {MU[-1]}]; baseline: Mehler series, K = {K}, quad")
    for name, funcs in PAIRS.items():
        model = LoRAModel(name)
        lin = model.linearization()
        reference = np.array([lin.values(m, dps=30)["tau"] for m in MU])
        start = time.perf_counter()
        model.tau(MU)  # compile once (cached per model)
        compile_time = time.perf_counter() - start
        repeats = 50
        start = time.perf_counter()
        for _ in range(repeats):
            fast = model.tau(MU)
        fast_time = (time.perf_counter() - start) / repeats
        subset = MU[::20]  # the baseline is slow: time it on 10 values and scale
        start = time.perf_counter()
        slow = np.array([baseline_tau(*funcs, m) for m in subset])
        slow_time = (time.perf_counter() - start) * MU.size / subset.size
        ref_subset = reference[::20]
        err_fast = np.max(np.abs(fast / reference - 1))
        err_slow = np.max(np.abs(slow / ref_subset - 1))
        print(f"{name:5s}: generated {fast_time * 1e3:8.3f} ms (compile once {compile_time:.2f} s), "
              f"baseline {slow_time:8.2f} s -> ratio {slow_time / fast_time:10.0f}x; "
              f"max relative error: generated {err_fast:.1e}, baseline {err_slow:.1e}")
    with mpmath.workdps(15):
        pass


if __name__ == "__main__":
    main()
