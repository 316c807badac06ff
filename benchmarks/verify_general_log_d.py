"""Check the log d law of general pre-training (w0 = mu w* + mu_perp w_perp) against finite-d SGD.

For ReLU and erf at (mu, mu_perp) = (0.5, 0.3), runs the reduced SGD chain at
d = 10^3, 10^4, 10^5 (128 runs each, eta = 1, B = 1) and prints the fitted
slope of the mean escape time (|m| first reaching 0.5) against log d next to
the prediction tau/(2 eta) of the linearisation at the origin
(docs/theory.md §4.6).  About two CPU minutes per pair.

The statistic |m| suits points where the escape carries m far (here the ODE
ends at m = 0.86).  Where alpha/a is small it does not: for erf at
(1.2, 0.7) the state escapes towards -w_perp, m peaks at 0.21 and turns back,
so the first time |m| reaches 0.2 is not a log d law at all.

Run: python benchmarks/verify_general_log_d.py [--runs N]
"""

import argparse
import math
import time

from symlora import LoRAModel
from symlora.simulate import escape_slope, simulate_sgd

CASES = (("relu", 0.5, 0.3), ("erf", 0.5, 0.3))
DS = (1000, 10_000, 100_000)


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
                             threshold=0.5, t_max=t_max, progress=False) for i, d in enumerate(DS)]
        fit = escape_slope(list(DS), runs)
        predicted = tau / 2
        print(f"{student} at (mu, mu_perp) = ({mu}, {mu_perp}): slope {fit.slope:.4f} ± {fit.slope_sem:.4f}, "
              f"predicted tau/(2 eta) = {predicted:.4f} ({(fit.slope - predicted) / fit.slope_sem:+.2f} standard "
              f"errors); censored {int(fit.censored.sum())}; CPU {time.process_time() - start:.0f} s")


if __name__ == "__main__":
    main()
