"""Cost per step of the reduced SGD chain, with and without compile-time sizes.

The reduced chain (``symlora/simulate/_chains.py``, ``run_reduced``) reads
the rank ``r``, the number ``F`` of fixed directions and the batch ``B`` as
the lengths of three tuples, so that numba compiles one specialisation per
shape with constant loop bounds.  The same compiled source also accepts
arrays there, whose lengths are only known at run time: that is the
baseline measured here, in the same run, on the same random streams (both
give bitwise the same trajectory, checked below), together with

* the floor: the step's draws alone (``F + r`` normals per sample and one
  chi-square, by the same samplers), and
* the numpy loop the compiled chain replaced (``numpy_reduced_baseline.py``).

CPU time of this process on one thread, best of three, d = 25 000 (the
runs are stopped before escape, so every step is a typical early step).

Run: python benchmarks/bench_reduced_chain.py [--quick]
"""

import os
import sys
import time

import numba
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, os.path.dirname(__file__))

from numpy_reduced_baseline import run_numpy_reduced  # noqa: E402

from symlora import LoRAModel  # noqa: E402
from symlora.simulate._compile import chain_kernels  # noqa: E402

QUICK = "--quick" in sys.argv
D = 25_000
STEPS = 100_000 if QUICK else 400_000


def best_cpu(func, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        result = func()
        best = min(best, time.process_time() - start)
    return best, result


def per_step(kernels, sizes, noise_sd, n_stats):
    records, final = np.empty((2, n_stats)), np.empty(n_stats)
    args = (D, 0.3, 0.0, sizes, 0.5 / D, noise_sd, 0.99, 0.0, False)
    kernels.run_reduced(np.random.default_rng(0), *args, 10, 10**9, False, records, final)  # compile

    def run():
        kernels.run_reduced(np.random.default_rng(1), *args, STEPS, 10**9, False, records, final)
        return final.copy()

    seconds, state = best_cpu(run)
    return seconds / STEPS, state


def floor_per_step(kernels, k, B):
    chi_square = kernels._chi_square

    @numba.njit(nogil=True)
    def draws_only(rng, n, k, B, dof):
        shape_third = dof / 2.0 - 1.0 / 3.0
        inv_sqrt = 1.0 / np.sqrt(9.0 * shape_third)
        total = 0.0
        for _ in range(n):
            for _ in range(B * k):
                total += rng.standard_normal()
            total += chi_square(rng, dof, shape_third, inv_sqrt)
        return total

    draws_only(np.random.default_rng(0), 10, k, B, float(D - k))
    seconds, _ = best_cpu(lambda: draws_only(np.random.default_rng(1), STEPS, k, B, float(D - k)))
    return seconds / STEPS


def main():
    print(f"reduced chain, d = {D}, {STEPS} steps, CPU ns per step (one thread, best of 3):")
    print(f"  {'pair':>6} {'r':>2} {'B':>2} {'noise':>5} {'run-time sizes':>15} {'compiled sizes':>15} "
          f"{'speed-up':>9} {'floor':>7} {'same state':>10}")
    cases = [("x", 1, 1, 0.0), ("tanh", 1, 1, 0.0), ("x", 1, 4, 0.0), ("x", 2, 1, 0.0), ("relu", 1, 1, 0.5)]
    for pair, r, B, noise in cases[:3] if QUICK else cases:
        model = LoRAModel(pair)
        kernels = chain_kernels(model.student, model.teacher)
        n_stats = 2 * r + r * (r - 1) // 2 + 1
        noise_sd = float(np.sqrt(noise)) if noise > 0 else None
        runtime, state_a = per_step(kernels, (np.zeros(r), np.zeros(1), np.zeros(B)), noise_sd, n_stats)
        compiled, state_b = per_step(kernels, ((0,) * r, (0,), (0,) * B), noise_sd, n_stats)
        floor = floor_per_step(kernels, 1 + r, B)
        print(f"  {pair:>6} {r:>2} {B:>2} {noise:>5} {runtime * 1e9:15.1f} {compiled * 1e9:15.1f} "
              f"{runtime / compiled:8.2f}x {floor * 1e9:7.1f} {str(bool(np.array_equal(state_a, state_b))):>10}")
    model = LoRAModel("x", lr=0.5)
    kernels = chain_kernels(model.student, model.teacher)
    compiled, _ = per_step(kernels, ((0,), (0,), (0,)), None, 3)
    n = 500 if QUICK else 2000
    for runs in (16, 256):
        seconds, _ = best_cpu(lambda: run_numpy_reduced(model, 0.3, D, n, runs, lr=0.5), repeats=1)
        numpy_loop = seconds / (n * runs)
        print(f"  numpy loop ({runs:3d} runs vectorised): {numpy_loop * 1e9:8.1f} ns per step and run -> "
              f"compiled chain {numpy_loop / compiled:5.1f}x faster")


if __name__ == "__main__":
    main()
