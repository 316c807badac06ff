"""Benchmark of the SGD simulators against their floors and against the numpy loop.

Prints, each measured in the same run (CPU seconds of this process, one
thread, so that a loaded machine inflates numerator and denominator alike):

reduced chain (x pair, mu = 0.5, eta = 0.5, d = 10^6)
    * its cost per step and run;
    * the floor of a compiled loop: drawing the same random numbers per step
      (``F + r`` normals per batch sample and one chi-square, by the same
      samplers) and nothing else;
    * the numpy loop it replaced (``numpy_reduced_baseline.py``, vectorised
      over runs) at 16 and 256 runs, and the ratio.

full method (relu pair, mu = 0.5; d = 10^3, 10^4, 10^5; float64 and float32)
    * its cost per step against drawing the step's inputs with numpy's
      default generator into a preallocated buffer (every literal one-pass
      simulation pays that);
    * the peak of traced memory during the run (numpy allocations: the
      per-run work arrays and the records) against ``(r + B) d`` numbers.

float32
    * the effect on escape times: mean escape time of the same seeds in
      float32 and float64 (x pair, d = 500), difference in standard errors.

Run: python benchmarks/bench_sgd.py [--quick]
"""

import os
import sys
import time
import tracemalloc

import numba
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, os.path.dirname(__file__))

from numpy_reduced_baseline import run_numpy_reduced  # noqa: E402

from symlora import LoRAModel, simulate_sgd  # noqa: E402
from symlora.simulate._compile import chain_kernels  # noqa: E402

QUICK = "--quick" in sys.argv


def cpu_seconds(func):
    start = time.process_time()
    func()
    return time.process_time() - start


def reduced_section():
    d, mu, lr = 10**6, 0.5, 0.5
    model = LoRAModel("x", lr=lr)
    steps = 200_000 if QUICK else 1_000_000
    seeds = 4
    # warm up (compilation, or reading numba's cache)
    simulate_sgd(model, mu, d, steps=10, seeds=1, method="reduced", progress=False)
    compiled = cpu_seconds(lambda: simulate_sgd(model, mu, d, steps=steps, seeds=seeds, method="reduced",
                                                stop_at_escape=False, record_every=steps, threads=1,
                                                progress=False)) / (steps * seeds)
    kernels = chain_kernels(model.student, model.teacher)
    chi_square = kernels._chi_square

    @numba.njit(nogil=True)
    def draws_only(rng, n, k, dof):
        shape_third = dof / 2.0 - 1.0 / 3.0
        inv_sqrt = 1.0 / np.sqrt(9.0 * shape_third)
        total = 0.0
        for _ in range(n):
            for _ in range(k):
                total += rng.standard_normal()
            total += chi_square(rng, dof, shape_third, inv_sqrt)
        return total

    rng = np.random.default_rng(0)
    draws_only(rng, 10, 2, float(d - 2))
    floor = cpu_seconds(lambda: draws_only(rng, steps, 2, float(d - 2))) / steps
    print(f"reduced chain, x pair, mu = {mu}, eta = {lr}, d = {d:.0e} (CPU time, one thread):")
    print(f"  compiled: {compiled * 1e9:7.1f} ns per step and run; floor (the step's draws alone) "
          f"{floor * 1e9:5.1f} ns -> {compiled / floor:4.2f}x the floor")
    for runs in (16, 256):
        n = 1000 if QUICK else 4000
        numpy_loop = cpu_seconds(lambda: run_numpy_reduced(model, mu, d, n, runs, lr=lr)) / (n * runs)
        print(f"  numpy loop ({runs:3d} runs vectorised): {numpy_loop * 1e9:8.1f} ns per step and run -> "
              f"compiled is {numpy_loop / compiled:5.1f}x faster")
    runs = 2 if QUICK else 4
    per_run = cpu_seconds(lambda: simulate_sgd(model, mu, d, seeds=runs, seed=1, method="reduced", threads=1,
                                               progress=False)) / runs
    print(f"  runs to escape at d = 1e6: {per_run:.1f} CPU s per run (mean of {runs}); 1000 runs: "
          f"{1000 * per_run / 60:.0f} CPU minutes = {1000 * per_run / 120:.0f} minutes on 2 idle cores")


def full_section():
    model = LoRAModel("relu")
    print("full method, relu pair, mu = 0.5, batch 1 (CPU time, one thread):")
    for dtype in (np.float64, np.float32):
        for d in (10**3, 10**4) if QUICK else (10**3, 10**4, 10**5):
            steps = max(200, 20_000_000 // d // (5 if QUICK else 1))
            simulate_sgd(model, 0.5, d, steps=10, seeds=1, progress=False, dtype=dtype)  # warm up
            tracemalloc.start()
            full = cpu_seconds(lambda: simulate_sgd(model, 0.5, d, steps=steps, seeds=2, stop_at_escape=False,
                                                    record_every=steps, threads=1, progress=False,
                                                    dtype=dtype)) / (2 * steps)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rng = np.random.default_rng(0)
            buffer = np.empty((1, d), dtype=dtype)

            def draws():
                for _ in range(steps):
                    rng.standard_normal(out=buffer, dtype=dtype)

            draw = cpu_seconds(draws) / steps
            work = (1 + 1) * d * np.dtype(dtype).itemsize
            print(f"  {np.dtype(dtype).name} d = {d:6d}: {full * 1e6:8.2f} us per step = {full / draw:4.2f}x "
                  f"drawing the inputs ({draw * 1e6:7.2f} us); peak traced memory {peak / 2**20:6.2f} MiB "
                  f"(work arrays (r + B) d = {work / 2**20:.2f} MiB per thread)")


def float32_section():
    model = LoRAModel("x")
    d, seeds = 500, 64 if QUICK else 256
    times = {}
    for dtype in (np.float64, np.float32):
        res = simulate_sgd(model, 0.5, d, seeds=seeds, seed=5, dtype=dtype, progress=False)
        times[np.dtype(dtype).name] = res.escape_time[res.escaped]
    a, b = times["float64"], times["float32"]
    same = int(np.sum(a == b)) if a.size == b.size else 0
    se = np.hypot(a.std(ddof=1) / np.sqrt(a.size), b.std(ddof=1) / np.sqrt(b.size))
    print(f"float32 vs float64, x pair, mu = 0.5, d = {d}, {seeds} runs, same seeds: mean escape time "
          f"{b.mean():.3f} vs {a.mean():.3f} (difference {(b.mean() - a.mean()) / se:+.2f} standard errors; "
          f"escaped {b.size} vs {a.size}; {same} runs escape at the very same step)")


def main():
    print(f"numba {numba.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    reduced_section()
    full_section()
    float32_section()


if __name__ == "__main__":
    main()
