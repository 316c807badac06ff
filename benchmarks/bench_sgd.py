"""Benchmark: SGD steps per second against the floor of one step's array work.

For d = 1000, 4000, 16000 and 16 seeds (batch 1, relu/relu at mu = 0.5),
prints the time per step of ``simulate_sgd`` and its ratio to

* products: the two batched matrix products a step needs (``ζ = x·v`` for
  all seeds and the update ``Σ_b g_b x_b``), on inputs drawn beforehand --
  the floor the issue asks for;
* draws: drawing the step's ``seeds·batch·d`` Gaussian inputs with numpy's
  default generator on one thread, which every literal one-pass simulation
  pays (fresh inputs every step) and which costs several times the products.

``method="full"`` is the literal d-dimensional simulation (inputs drawn by
several threads); ``method="reduced"`` simulates the same Markov chain in the
frame of the state, exactly in law, at a cost independent of d.

Run: python benchmarks/bench_sgd.py [--float32]
"""

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from symlora import LoRAModel  # noqa: E402
from symlora._sgd import simulate_sgd  # noqa: E402

SEEDS = 16
BATCH = 1


def _best_of(func, repeat=5):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def floor_products(d, steps, dtype):
    """Seconds per step of the bare products, on pre-drawn inputs."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((SEEDS, BATCH, d)).astype(dtype)
    v = rng.standard_normal((SEEDS, 1, d)).astype(dtype)
    g = np.full((SEEDS, 1, BATCH), 1e-6, dtype=dtype)

    def matmul():
        for _ in range(steps):
            X @ v.transpose(0, 2, 1)
            g @ X

    def einsum():
        for _ in range(steps):
            np.einsum("sbd,srd->sbr", X, v)
            np.einsum("srb,sbd->srd", g, X)

    # the cheaper of BLAS and einsum: OpenBLAS threads long dot products, which
    # helps on an idle machine and stalls on a loaded one
    return min(_best_of(matmul), _best_of(einsum)) / steps


def floor_draws(d, steps, dtype):
    """Seconds per step of drawing the inputs (one thread, numpy's default generator)."""
    rng = np.random.default_rng(0)
    out = np.empty((steps, SEEDS, BATCH, d), dtype=dtype)
    return _best_of(lambda: rng.standard_normal(out=out, dtype=dtype), repeat=3) / steps


def main():
    dtype = np.float32 if "--float32" in sys.argv else np.float64
    model = LoRAModel("relu")
    print(f"one-pass SGD, {SEEDS} seeds, batch {BATCH}, relu/relu at mu = 0.5, {np.dtype(dtype).name}, "
          f"{os.cpu_count()} CPUs")
    for d in (1000, 4000, 16000):
        steps = max(400, 2_000_000 // d)
        timings = {}
        for method in ("full", "reduced"):
            n = steps if method == "full" else 20000
            start = time.perf_counter()
            simulate_sgd(model, 0.5, d, steps=n, seeds=SEEDS, stop_at_escape=False, record_every=n,
                         method=method, dtype=dtype, progress=False)
            timings[method] = (time.perf_counter() - start) / n
        products = floor_products(d, min(steps, 1000), dtype)
        draws = floor_draws(d, min(steps, 64), dtype)
        full = timings["full"]
        print(f"d = {d:6d}: full {1 / full:8.0f} steps/s = {full / products:5.2f}x products, "
              f"{full / draws:4.2f}x draws | draws alone {draws / products:5.2f}x products | "
              f"reduced {1 / timings['reduced']:8.0f} steps/s = {timings['reduced'] / products:5.2f}x products")


if __name__ == "__main__":
    main()
