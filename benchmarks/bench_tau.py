"""Benchmark: tau(mu) from generated code against the routes a user would write.

Baselines (``scipy.integrate.quad``, every integral split at the kink 0):

* "Hermite k<=16": the paper's route.  At the fixed point ``λ = μν``
  (variance ``μ²``, covariance ``μ`` with ``ν``), Mehler's formula
  (docs/theory.md §3.4) gives ``E[f(μν) g(ν)] = Σ_k f_k^[μ²] g_k^[1] / (k! μ^k)``;
  a(μ) and b(μ) of §4.2 are sums of four such series, truncated at k = 16,
  each coefficient one ``quad``.  The teacher-side coefficients do not
  depend on μ and are computed once per pair (their cost is included);
* "direct quad": one one-dimensional ``quad`` per integral of a(μ), b(μ)
  (docs/theory.md §4.2).

ReLU's ``σ'' = δ`` contributes ``(σ(0) - σ*(0)) / (μ sqrt(2π))`` to b in both
baselines (the delta integrated by hand, as a careful user would).  Every
route is compared with 30-digit values (``Linearization.values``: mpmath
quadrature, or the closed forms at 30 digits).  Prints, per pair, the time
per μ value, the ratio against the generated code and the largest relative
error.  Run: python benchmarks/bench_tau.py [--quick]
"""

import argparse
import math
import time

import numpy as np
from scipy.integrate import quad
from scipy.special import erf as sp_erf
from scipy.special import expit

from symlora import LoRAModel

K = 16


def _sigmoid_derivative(x):
    s = expit(x)
    return s * (1 - s)


#: student = teacher: (σ, σ', smooth part of σ'', weight of the δ in σ'' at 0)
PAIRS = {
    "x": (lambda x: x, lambda x: 1.0, lambda x: 0.0, 0.0),
    "erf": (sp_erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x),
            lambda x: -4 * x / math.sqrt(math.pi) * math.exp(-x * x), 0.0),
    "relu": (lambda x: max(x, 0.0), lambda x: float(x > 0), lambda x: 0.0, 1.0),
    "tanh": (math.tanh, lambda x: 1 - math.tanh(x) ** 2, lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2), 0.0),
    "sigmoid": (expit, _sigmoid_derivative, lambda x: _sigmoid_derivative(x) * (1 - 2 * expit(x)), 0.0),
}


def _gauss(f, q=1.0):
    """E[f(X)], X ~ N(0, q), by quad split at 0."""
    sd = math.sqrt(q)
    integrand = lambda x: f(x) * math.exp(-x * x / (2 * q)) / math.sqrt(2 * math.pi * q)  # noqa: E731
    return quad(integrand, -12 * sd, 0, limit=200)[0] + quad(integrand, 0, 12 * sd, limit=200)[0]


def _coefficient(f, k, q):
    """f_k^[q] = E[f(X) He_k^[q](X)], X ~ N(0, q), He_k^[q](x) = q^(k/2) He_k(x/sqrt(q))."""
    unit = [0] * k + [1]
    return _gauss(lambda x: f(x) * q ** (k / 2) * np.polynomial.hermite_e.hermeval(x / math.sqrt(q), unit), q)


def _mehler(f, teacher_coefficients, mu):
    q = mu * mu
    return sum(_coefficient(f, k, q) * g_k / (math.factorial(k) * mu**k) for k, g_k in enumerate(teacher_coefficients))


def _tau(a, b):
    return (b + math.sqrt(b * b + 4 * a * a)) / (2 * a * a)


def _delta_term(sigma, jump, mu):
    # E[(σ(μν) - σ*(ν)) jump δ(μν)] = jump (σ(0) - σ*(0)) φ(0) / μ
    return jump * (sigma(0.0) - sigma(0.0)) / (mu * math.sqrt(2 * math.pi))


def hermite_route(pair):
    """tau(mu) by Hermite series truncated at k = K (teacher coefficients computed once)."""
    sigma, dsigma, d2sigma, jump = pair
    teacher = {
        "y": [_coefficient(lambda y: y, k, 1.0) for k in range(K + 1)],
        "y sigma": [_coefficient(lambda y: y * sigma(y), k, 1.0) for k in range(K + 1)],
        "1": [_coefficient(lambda y: 1.0, k, 1.0) for k in range(K + 1)],
        "sigma": [_coefficient(sigma, k, 1.0) for k in range(K + 1)],
    }

    def tau(mu):
        a = -_mehler(lambda x: sigma(x) * dsigma(x), teacher["y"], mu) + _mehler(dsigma, teacher["y sigma"], mu)
        b = (_mehler(lambda x: dsigma(x) ** 2 + sigma(x) * d2sigma(x), teacher["1"], mu)
             - _mehler(d2sigma, teacher["sigma"], mu) + _delta_term(sigma, jump, mu))
        return _tau(a, b)

    return tau


def direct_route(pair):
    """tau(mu) by one-dimensional quad of a(mu) and b(mu)."""
    sigma, dsigma, d2sigma, jump = pair

    def tau(mu):
        a = -_gauss(lambda n: (sigma(mu * n) - sigma(n)) * dsigma(mu * n) * n)
        b = _gauss(lambda n: dsigma(mu * n) ** 2 + (sigma(mu * n) - sigma(n)) * d2sigma(mu * n))
        return _tau(a, b + _delta_term(sigma, jump, mu))

    return tau


def run(mu, subset, pairs=PAIRS, repeats=20, out=print):
    """Time and check every route; returns ``{pair: {route: (seconds per mu, max relative error)}}``."""
    out(f"tau(mu), mu in [{mu[0]:g}, {mu[-1]:g}]; generated code on {mu.size} values (vectorised), "
        f"baselines on {subset.size}")
    out("CPU time (process_time: robust on a shared machine) per mu value; "
        "error = max relative error against 30-digit mpmath values at the baselines' mu")
    results = {}
    for name in pairs:
        model = LoRAModel(name)
        lin = model.linearization()
        reference = np.array([lin.values(float(m), dps=30)["tau"] for m in subset])
        model.tau(mu)  # compile once (cached per model)
        start = time.process_time()
        for _ in range(repeats):
            fast = model.tau(mu)
        fast_time = (time.process_time() - start) / repeats / mu.size
        fast_error = float(np.max(np.abs(model.tau(subset) / reference - 1)))
        results[name] = {"generated": (fast_time, fast_error)}
        out(f"{name:8s} {'generated':13s} {fast_time * 1e3:10.4f} ms  error {fast_error:.1e}")
        for label, route in (("Hermite k<=16", hermite_route), ("direct quad", direct_route)):
            start = time.process_time()
            tau = route(PAIRS[name])
            values = np.array([tau(float(m)) for m in subset])
            seconds = (time.process_time() - start) / subset.size
            error = float(np.max(np.abs(values / reference - 1)))
            results[name][label] = (seconds, error)
            out(f"{'':8s} {label:13s} {seconds * 1e3:10.2f} ms  error {error:.1e}  "
                f"({seconds / fast_time:9.3g}x the generated code's time)")
    assert fast.shape == mu.shape
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 mu values, baselines on 2 of them")
    args = parser.parse_args(argv)
    if args.quick:
        mu = np.linspace(0.05, 0.95, 20)
        run(mu, mu[[2, 15]], repeats=3)
    else:
        mu = np.linspace(0.05, 0.95, 200)
        run(mu, mu[::20])


if __name__ == "__main__":
    main()
