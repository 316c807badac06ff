"""Benchmark: SGD steps per second against the floor of one step's array work.

For d = 1000, 4000, 16000 and 16 seeds (batch 1), prints the time per step of
`simulate_sgd` and its ratio to two floors measured in the same run:

* products: the two matrix-vector products a step needs (x·v for all seeds,
  and the rank-one update sum_b g_b x_b), on pre-drawn inputs;
* products + inputs: the same plus drawing the step's Gaussian inputs with
  numpy's default generator, which every implementation of one-pass SGD
  at finite d must pay.

Run: python benchmarks/bench_sgd.py
"""

import time

import numpy as np

from symlora import LoRAModel
from symlora._sgd import simulate_sgd

SEEDS = 16


def floor_products(d, steps, with_draw):
    rng = np.random.default_rng(0)
    v = rng.standard_normal((SEEDS, d))
    x_fixed = rng.standard_normal((SEEDS, 1, d))
    start = time.perf_counter()
    for _ in range(steps):
        x = rng.standard_normal((SEEDS, 1, d)) if with_draw else x_fixed
        zeta = np.einsum("sbd,sd->sb", x, v)
        v = v - 1e-6 * np.einsum("sb,sbd->sd", zeta, x)
    return (time.perf_counter() - start) / steps


def main():
    model = LoRAModel("relu")
    print(f"one-pass SGD, {SEEDS} seeds, batch 1, relu/relu at mu = 0.5")
    for d in (1000, 4000, 16000):
        steps = max(2000, 4_000_000 // d)
        start = time.perf_counter()
        simulate_sgd(model, 0.5, d, steps=steps, seeds=SEEDS, stop_at_escape=False, record_every=steps)
        per_step = (time.perf_counter() - start) / steps
        products = floor_products(d, steps, with_draw=False)
        with_draw = floor_products(d, steps, with_draw=True)
        print(f"d = {d:6d}: {1 / per_step:9.0f} steps/s ({per_step * 1e3:.3f} ms/step); "
              f"ratio to products {per_step / products:5.2f}x, to products + input draws {per_step / with_draw:5.2f}x")


if __name__ == "__main__":
    main()
