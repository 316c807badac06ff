"""Benchmark: escape times for 400 mu values, batched vs a loop of solve_ivp calls.

Both use the same generated right-hand side and tolerances; the loop uses a
terminal event per mu (the usual route).  Prints the speed-up ratio and the
largest relative difference of the answers.  Run: python benchmarks/bench_escape.py
"""

import time

import numpy as np
from scipy.integrate import solve_ivp

from symlora import LoRAModel
from symlora._codegen import compile_ode

MU = np.linspace(0.05, 0.8, 400)
EPS = 1e-4
THRESHOLD = 0.5


def loop(model, t_max):
    compiled = compile_ode(model.ode_system())

    def event(t, y):
        return abs(y[0]) - THRESHOLD

    event.terminal = True
    times = []
    for mu in MU:
        sol = solve_ivp(lambda t, y: compiled.rhs(y, mu), (0, t_max), [EPS, 0.0], events=event,
                        method="DOP853", rtol=1e-10, atol=1e-14)
        times.append(sol.t_events[0][0] if sol.t_events[0].size else np.inf)
    return np.array(times)


def main():
    print(f"escape times for {MU.size} values of mu, eps = {EPS}, threshold = {THRESHOLD}")
    for name in ("x", "erf", "relu"):
        model = LoRAModel(name)
        model.escape_time(MU[:2], EPS)  # compile once
        start = time.perf_counter()
        batched = model.escape_time(MU, EPS)
        batched_time = time.perf_counter() - start
        start = time.perf_counter()
        looped = loop(model, batched.t_max)
        loop_time = time.perf_counter() - start
        diff = np.max(np.abs(batched.time / looped - 1))
        print(f"{name:5s}: batched {batched_time:7.3f} s, solve_ivp loop {loop_time:7.2f} s -> "
              f"ratio {loop_time / batched_time:6.1f}x; max relative difference {diff:.1e}; "
              f"escaped {np.sum(batched.status == 'escaped')}/{MU.size}")


if __name__ == "__main__":
    main()
