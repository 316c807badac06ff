"""Benchmark: cost of the generated ODE right-hand side, by pair, against the erf pair.

The erf pair is closed form.  Pairs without a closed form evaluate their
expectations semi-analytically: sums of products f(λ) g(ν) of smooth
factors by Mehler's series over one-dimensional rules (tanh, sigmoid pairs;
symlora._separable), a piecewise-polynomial factor (ReLU teacher) integrated
exactly given the other variable, leaving one-dimensional kink-aligned
quadrature (symlora._conditional).  Prints the time of one call at a single
state (what solve_ivp does) and on a batch of states, as ratios to the erf
pair measured in the same run, then the escape-time batch against a loop of
solve_ivp calls for the same pairs.
Run: python benchmarks/bench_rhs.py
"""

import time

import numpy as np
from scipy.integrate import solve_ivp

from symlora import LoRAModel
from symlora._codegen import compile_ode

PAIRS = [("erf", "erf"), ("tanh", "tanh"), ("sigmoid", "sigmoid"), ("tanh", "erf"), ("sigmoid", "relu")]
STATE = np.array([0.3, 0.7])
BATCH = np.stack([np.linspace(-0.9, 0.9, 200), np.linspace(-3, 3, 200)])
MU_ESCAPE = np.linspace(0.1, 0.7, 8)
EPS, THRESHOLD = 1e-4, 0.5


def _per_call(func, repeats):
    func()
    start = time.perf_counter()
    for _ in range(repeats):
        func()
    return (time.perf_counter() - start) / repeats


def _escape_loop(model, t_max):
    compiled = compile_ode(model.ode_system())

    def event(t, y):
        return abs(y[0]) - THRESHOLD

    event.terminal = True
    out = []
    for mu in MU_ESCAPE:
        sol = solve_ivp(lambda t, y: compiled.rhs(y, mu), (0, t_max), [EPS, 0.0], events=event,
                        method="DOP853", rtol=1e-10, atol=1e-14)
        out.append(sol.t_events[0][0] if sol.t_events[0].size else np.inf)
    return np.array(out)


def main():
    single, batch = {}, {}
    for student, teacher in PAIRS:
        compiled = compile_ode(LoRAModel(student, teacher).ode_system())
        single[student, teacher] = _per_call(lambda: compiled.rhs(STATE, 0.5), 20)
        batch[student, teacher] = _per_call(lambda: compiled.rhs(BATCH, 0.5), 3)
    base_single, base_batch = single["erf", "erf"], batch["erf", "erf"]
    print(f"RHS cost relative to the erf pair (single state; batch of {BATCH.shape[1]} states); goal <= 3x")
    for pair in PAIRS:
        print(f"{pair[0]:8s}/{pair[1]:8s} single {single[pair] * 1e3:8.3f} ms = {single[pair] / base_single:8.1f}x   "
              f"batch {batch[pair] * 1e3:9.2f} ms = {batch[pair] / base_batch:8.1f}x")
    print(f"\nescape times for {MU_ESCAPE.size} values of mu: batched vs a solve_ivp loop (same RHS, tolerances)")
    for name in ("erf", "tanh", "sigmoid"):
        model = LoRAModel(name)
        model.escape_time(MU_ESCAPE[:2], EPS)
        start = time.perf_counter()
        batched = model.escape_time(MU_ESCAPE, EPS)
        batched_time = time.perf_counter() - start
        start = time.perf_counter()
        looped = _escape_loop(model, batched.t_max)
        loop_time = time.perf_counter() - start
        diff = np.max(np.abs(batched.time / looped - 1))
        print(f"{name:8s} batched {batched_time:8.2f} s, loop {loop_time:8.2f} s -> ratio {loop_time / batched_time:6.1f}x; "
              f"max relative difference {diff:.1e}")


if __name__ == "__main__":
    main()
