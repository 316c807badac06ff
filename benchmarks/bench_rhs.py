"""Benchmark: cost of the generated ODE right-hand side, by pair, against the erf pair.

The erf pair is closed form.  Pairs without a closed form evaluate their
expectations semi-analytically: sums of products f(λ) g(ν) of smooth
factors by Mehler's series over one-dimensional rules, all expectations of
the right-hand side in one evaluation (tanh, sigmoid, GELU/SiLU pairs;
symlora._separable, symlora._node_groups), near unit correlation by
conditioning on ν with a short Gauss-Hermite rule instead
(symlora._near_unit_correlation); a piecewise-polynomial factor (ReLU
teacher) integrated exactly given the other variable, leaving
one-dimensional kink-aligned quadrature whose order each state of a batch
chooses for itself (symlora._conditional).  Prints the
CPU time of one call at a single state (what solve_ivp does) and on a batch
of states, as ratios to the erf pair measured in the same run (the least of
several repeats: robust on a shared machine), then the escape-time batch
against a loop of solve_ivp calls for the same pairs (bench_escape.compare).
Run: python benchmarks/bench_rhs.py [--quick]
"""

import argparse
import time
import timeit

import numpy as np

from bench_escape import compare
from symlora import LoRAModel
from symlora._codegen import compile_ode

BASELINE = ("erf", "erf")
PAIRS = [BASELINE, ("tanh", "tanh"), ("sigmoid", "sigmoid"), ("tanh", "erf"), ("sigmoid", "relu"), ("gelu", "silu")]
STATE = np.array([0.3, 0.7])
BATCH = np.stack([np.linspace(-0.9, 0.9, 200), np.linspace(-3, 3, 200)])
MU = 0.5


def cpu_time_per_call(func, number, repeat):
    """Least CPU time of one call over ``repeat`` runs of ``number`` calls."""
    func()
    return min(timeit.repeat(func, number=number, repeat=repeat, timer=time.process_time)) / number


def rhs_costs(pairs=PAIRS, repeat=15):
    """``{pair: (seconds per call at one state, seconds per call on BATCH)}``."""
    costs = {}
    for student, teacher in pairs:
        compiled = compile_ode(LoRAModel(student, teacher).ode_system())
        costs[student, teacher] = (cpu_time_per_call(lambda: compiled.rhs(STATE, MU), 20, repeat),
                                   cpu_time_per_call(lambda: compiled.rhs(BATCH, MU), 1, repeat))
    return costs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats; escape times for 4 mu values")
    args = parser.parse_args(argv)
    costs = rhs_costs(repeat=5 if args.quick else 15)
    single, batch = costs[BASELINE]
    print(f"RHS CPU cost relative to the {'/'.join(BASELINE)} pair (single state; batch of {BATCH.shape[1]} states); "
          "goal <= 3x for tanh and sigmoid pairs")
    for pair, (one, many) in costs.items():
        print(f"{'/'.join(pair):17s} single {one * 1e6:8.1f} us = {one / single:7.1f}x   "
              f"batch {many * 1e3:8.2f} ms = {many / batch:8.1f}x")
    mu_values = np.linspace(0.05, 0.8, 4 if args.quick else 16)
    print(f"\nescape times for {mu_values.size} values of mu: batched vs a solve_ivp loop (same RHS, tolerances)")
    for pair in PAIRS:
        compare(pair, mu_values)


if __name__ == "__main__":
    main()
