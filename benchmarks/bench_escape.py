"""Benchmark: escape times for many mu values, batched vs a loop of solve_ivp calls.

Both use the same generated right-hand side and tolerances (DOP853, rtol
1e-10, atol 1e-14); the loop uses a terminal event per mu (the usual
route).  Closed-form pairs (x, erf, relu) and pairs whose right-hand side
evaluates quadrature nodes: tanh/tanh, sigmoid/sigmoid, tanh/erf, gelu/silu
(Mehler's series, symlora._separable) and sigmoid/relu (the semi-analytic
route, symlora._conditional).  Prints CPU time (``process_time``: robust on
a shared machine), the ratio loop / batched and the largest relative
difference of the answers.
Run: python benchmarks/bench_escape.py [--quick]
"""

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp

from symlora import LoRAModel
from symlora._codegen import compile_ode

EPS = 1e-4
THRESHOLD = 0.5
CLOSED_FORM = (("x", "x"), ("erf", "erf"), ("relu", "relu"))
QUADRATURE = (("tanh", "tanh"), ("sigmoid", "sigmoid"), ("tanh", "erf"), ("sigmoid", "relu"), ("gelu", "silu"))


def solve_ivp_loop(model, mu_values, t_max):
    """Escape times by one solve_ivp call per mu with a terminal event (inf if none within t_max)."""
    compiled = compile_ode(model.ode_system())

    def event(t, y, mu):
        return abs(y[0]) - THRESHOLD

    event.terminal = True
    times = []
    for mu in mu_values:
        sol = solve_ivp(lambda t, y, mu: compiled.rhs(y, mu), (0, t_max), [EPS, 0.0], events=event, args=(mu,),
                        method="DOP853", rtol=1e-10, atol=1e-14)
        times.append(sol.t_events[0][0] if sol.t_events[0].size else np.inf)
    return np.array(times)


def compare(pair, mu_values, out=print):
    """Batched vs looped escape times for ``pair`` (student, teacher) or one name for both.

    Returns (ratio loop / batched CPU time, max relative difference of the escape times).
    """
    student, teacher = (pair, pair) if isinstance(pair, str) else pair
    model = LoRAModel(student, teacher)
    model.escape_time(mu_values[:2], EPS)  # compile once
    start = time.process_time()
    batched = model.escape_time(mu_values, EPS, threshold=THRESHOLD)
    batched_time = time.process_time() - start
    start = time.process_time()
    looped = solve_ivp_loop(model, mu_values, batched.t_max)
    loop_time = time.process_time() - start
    both = np.isfinite(looped) & np.isfinite(batched.time)
    diff = float(np.max(np.abs(batched.time[both] / looped[both] - 1))) if both.any() else float("nan")
    ratio = loop_time / batched_time
    out(f"{student + '/' + teacher:17s} {mu_values.size:4d} mu: batched {batched_time:8.3f} s, solve_ivp loop "
        f"{loop_time:8.2f} s -> ratio {ratio:6.1f}x; max relative difference {diff:.1e}; "
        f"escaped {np.sum(batched.status == 'escaped')}/{mu_values.size} (loop {np.sum(np.isfinite(looped))})")
    return ratio, diff


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 mu values per closed-form pair, 4 per quadrature pair")
    args = parser.parse_args(argv)
    closed = np.linspace(0.05, 0.8, 8 if args.quick else 400)
    quadrature = np.linspace(0.05, 0.8, 4 if args.quick else 40)
    print(f"escape times, eps = {EPS}, threshold = {THRESHOLD}; CPU time")
    for pair in CLOSED_FORM:
        compare(pair, closed)
    for pair in QUADRATURE:
        compare(pair, quadrature)


if __name__ == "__main__":
    main()
