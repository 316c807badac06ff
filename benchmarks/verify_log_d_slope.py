"""Check the log d law with the compiled reduced chain, through the command line.

Runs ``symlora simulate --method reduced`` for the linear pair at mu = 0.5,
eta = 0.5 on d = 10^2 .. 10^6 and prints the fitted slope of the mean escape
time in log d against the prediction tau/(2 eta), with the wall and CPU time.
About 10 CPU minutes with the defaults (128 runs per d).

Run: python benchmarks/verify_log_d_slope.py [--runs N] [--d-max D]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=128)
    parser.add_argument("--d-max", type=int, default=10**6)
    args = parser.parse_args()
    command = [sys.executable, "-m", "symlora.cli", "simulate", "--student", "x", "--lr", "0.5", "--mu", "0.5",
               "--d", f"100:{args.d_max}:5", "--seeds", str(args.runs), "--method", "reduced", "--format", "json",
               "--no-progress"]
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), os.pardir)}).stdout
    wall = time.perf_counter() - start
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    payload = json.loads(out)
    print(" ".join(command[1:]))
    for d, mean, sem, cens, div in zip(payload["d"], payload["escape_time_mean"], payload["escape_time_sem"],
                                       payload["censored"], payload["diverged"]):
        print(f"  d = {d:8d}: mean escape time {mean:8.3f} ± {sem:.3f}  (censored {cens}, diverged {div})")
    slope, sem, predicted = payload["slope"], payload["slope_sem"], payload["predicted_slope"]
    print(f"slope {slope:.4f} ± {sem:.4f}; predicted tau/(2 eta) = {predicted:.4f}; "
          f"relative difference {(slope - predicted) / predicted:+.2%} ({(slope - predicted) / sem:+.2f} standard errors)")
    print(f"wall {wall:.0f} s, CPU {cpu.ru_utime + cpu.ru_stime:.0f} s")


if __name__ == "__main__":
    main()
