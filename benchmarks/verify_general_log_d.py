"""Check the log d law of general pre-training (w0 = mu w* + mu_perp w_perp) against finite-d SGD.

For ReLU at (mu, mu_perp) = (0.5, 0.3) and erf at (1.2, 0.7), runs the reduced
SGD chain at d = 100, 600, 3600 (128 runs each, eta = 1, B = 1) and prints the
fitted slope of the mean escape time (|m| first reaching 0.2) against log d
next to the prediction tau/(2 eta) of the linearisation at the origin
(docs/theory.md §4.6).  A few CPU minutes.

Run: python benchmarks/verify_general_log_d.py [--runs N]
"""

import argparse
import math
import time

from symlora import LoRAModel
from symlora.simulate import escape_slope, simulate_sgd

CASES = (("relu", 0.5, 0.3), ("erf", 1.2, 0.7))
DS = (100, 600, 3600)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=128)
    args = parser.parse_args()
    for student, mu, mu_perp in CASES:
        model = LoRAModel(student, pretraining="general")
        tau = model.coefficients(mu, mu_perp)["tau"]
        start = time.process_time()
        # horizon: three times the predicted escape time at the largest d, plus a margin
        t_max = 3 * tau / 2 * math.log(DS[-1]) + 50
        runs = [simulate_sgd(model, mu, d, seeds=args.runs, seed=200 + i, method="reduced", mu_perp=mu_perp,
                             threshold=0.2, t_max=t_max, progress=False) for i, d in enumerate(DS)]
        fit = escape_slope(list(DS), runs)
        predicted = tau / 2
        print(f"{student} at (mu, mu_perp) = ({mu}, {mu_perp}): slope {fit.slope:.4f} ± {fit.slope_sem:.4f}, "
              f"predicted tau/(2 eta) = {predicted:.4f} ({(fit.slope - predicted) / fit.slope_sem:+.2f} standard "
              f"errors); censored {int(fit.censored.sum())}; CPU {time.process_time() - start:.0f} s")


if __name__ == "__main__":
    main()
