"""Slope of the mean SGD escape time in log d for LoRA ranks r = 1, 2, 3 (docs/theory.md §4.7).

The linear theory says every mode at the random start grows at the rank-1
rate, so the slope tau/(2 eta) should not depend on r; only the O(1)
constant falls with r.  Run: ``python benchmarks/bench_rank_slope.py``
(reduced chain, cost independent of d; about a minute of CPU).
"""

import numpy as np

from symlora import LoRAModel
from symlora.simulate import escape_slope, simulate_sgd

MU, DS, SEEDS = 0.5, (250, 1000, 4000, 16000), 200


def main():
    for rank in (1, 2, 3):
        model = LoRAModel("x", rank=rank)
        runs = [simulate_sgd(model, MU, d, seeds=SEEDS, seed=10 * rank + k, method="reduced", t_max=80.0)
                for k, d in enumerate(DS)]
        fit = escape_slope(list(DS), runs)
        print(f"rank {rank}: slope {fit.slope:.3f} ± {fit.slope_sem:.3f} (predicted {model.tau(MU) / 2:.3f}); "
              f"means {np.round(fit.mean, 2).tolist()}; censored {[r.censored for r in runs]}")


if __name__ == "__main__":
    main()
