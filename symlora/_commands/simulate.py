"""``symlora simulate``: finite-d one-pass SGD and the log d escape law."""

from __future__ import annotations

import argparse
import math

import numpy as np

from .._validate import check_budget
from ..cli import emit, parse_int
from ._common import (add_model_arguments, add_point_arguments, add_progress_argument, build_model, describe_model,
                      point_keywords, positive_float, positive_int)

EXAMPLE = """examples:
  symlora simulate --student x --mu 0.5 --d 250,500,1000,2000
  symlora simulate --student relu --mu 0.5 --d 100:3000:4 --seeds 64 --method reduced --format json
  symlora simulate --student erf --rank 2 --mu 0.5 --d 500,1000 --method reduced
  symlora simulate --student x --pretraining general --mu-perp 0.3 --mu 0.5 --d 500,1000
  symlora simulate --student erf --hidden 4 --mus mu,mu,1,1 --mu 0 --d 200,400 --seeds 8"""


#: Largest input dimension and number of runs per d accepted on the command line.
MAX_SEEDS = 100_000


def _seed(text):
    value = parse_int(text, "--seed")
    if value >= 2**63:
        raise argparse.ArgumentTypeError(f"invalid --seed {text!r}: must be below 2**63")
    return value


def estimate_cost(method, d_values, seeds, t_max):
    """Rough (memory in bytes, floating-point operations) of a simulate run.

    ``full`` keeps ``seeds`` vectors of length ``d`` (a few copies) and does
    ``O(d)`` work per step and run, with ``t_max d`` steps; ``reduced``
    works on a few numbers per run (its cost does not grow with ``d``).
    """
    d_max = max(int(d) for d in d_values)
    if method == "full":
        memory = 6 * 8 * seeds * d_max
        work = sum(20.0 * seeds * t_max * float(d) ** 2 for d in d_values)
    else:
        memory = 64 * 8 * seeds
        work = sum(50.0 * seeds * t_max * float(d) for d in d_values)
    return memory, work


def _check_cost(method, d_values, seeds, t_max):
    memory, work = estimate_cost(method, d_values, seeds, t_max)
    check_budget(memory, work, f"this run ({seeds} runs for each of {len(d_values)} values of d up to "
                 f"{max(d_values)}, t_max = {t_max:.3g})",
                 "use fewer --seeds, smaller --d, a shorter --t-max or --method reduced")


def register(subparsers):
    parser = subparsers.add_parser(
        "simulate",
        help="one-pass SGD of the real model at finite d; escape time against log d",
        description="Simulate one-pass SGD of the LoRA model (fresh Gaussian inputs, lr = eta/d, v renormalised "
        "after every step) for several d and seeds, and fit the mean escape time against log d; the ODE "
        "theory predicts the slope tau/(2 eta).  Runs that do not reach the threshold within the horizon "
        "are censored, runs whose state blows up are diverged: both are counted per d and left out of "
        "the fit.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    add_point_arguments(parser, mu="one", d=True, threshold=True)
    parser.add_argument("--seeds", type=positive_int("--seeds", MAX_SEEDS), default=16, help="runs per d (default 16)")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed of numpy.random.SeedSequence; d number k uses seed + k (default 0)")
    parser.add_argument("--t-max", type=positive_float("--t-max"), default=None,
                        help="horizon in t = steps/d (default from tau: 3 (tau/eta) log d + 10 tau/eta)")
    parser.add_argument("--method", choices=("full", "reduced"), default="full",
                        help="full: literal d-dimensional SGD; reduced: the same process exactly in law, "
                             "cost independent of d (default full)")
    parser.add_argument("--threads", type=positive_int("--threads"), default=None,
                        help="threads advancing runs (default: CPU count); results do not depend on it")
    parser.add_argument("--format", choices=("json", "table"), default="table")
    add_progress_argument(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..simulate import escape_slope, simulate_sgd

    # memory first (it needs no model): refuse before any work
    _check_cost(args.method, args.d, args.seeds, 0.0)
    two_layer = getattr(args, "hidden", None) is not None  # a two-layer student (symlora/_commands/_two_layer.py)
    if two_layer:
        from ._two_layer import build_two_layer_model, describe_two_layer, simulate_two_layer_runs, two_layer_tau

        model = build_two_layer_model(args)
        tau, description = two_layer_tau(model, args.mu), describe_two_layer(model)
    else:
        model = build_model(args)
        point = point_keywords(args)
        tau, description = float(model.coefficients(args.mu, **point)["tau"]), describe_model(model, args)
    eta = float(model.lr)
    if args.t_max is not None:
        horizon = args.t_max
    elif np.isfinite(tau):
        horizon = max(3 * tau / eta * math.log(max(args.d)) + 10 * tau / eta, 1.0)
    else:
        horizon = 1e3 / eta
    _check_cost(args.method, args.d, args.seeds, horizon)
    if two_layer:
        results = simulate_two_layer_runs(model, args, horizon)
    else:
        results = [
            simulate_sgd(model, args.mu, int(d), t_max=args.t_max, seeds=args.seeds, seed=args.seed + k,
                         threshold=args.threshold, method=args.method, threads=args.threads, progress=args.progress,
                         **point)
            for k, d in enumerate(args.d)
        ]
    d_values = [int(d) for d in args.d]
    censored = np.array([r.censored for r in results])
    diverged = np.array([r.diverged for r in results])
    if len(d_values) >= 2:
        fit = escape_slope(d_values, [r if not two_layer else r.escape_time for r in results])
        means, sems, slope, slope_sem, note = fit.mean, fit.sem, fit.slope, fit.slope_sem, fit.message
    else:
        # one d: means without a slope
        complete = [bool(r.escaped.all()) for r in results]
        means = np.array([np.mean(r.escape_time) if ok else np.nan for r, ok in zip(results, complete)])
        sems = np.array([np.std(r.escape_time, ddof=1) / math.sqrt(r.n_seeds)
                         if ok and r.n_seeds > 1 else np.nan for r, ok in zip(results, complete)])
        slope = slope_sem = float("nan")
        note = "one value of d: no slope"
    predicted = tau / (2 * eta)
    payload = {
        **description,
        "mu": args.mu,
        "tau": tau,
        "lr": eta,
        "batch": int(model.batch),
        "noise": float(model.noise),
        "threshold": args.threshold,
        "method": args.method,
        "runs_per_d": args.seeds,
        "seed_per_d": [r.seed for r in results],
        "d": d_values,
        "escape_time_mean": means,
        "escape_time_sem": sems,
        "censored": censored,
        "diverged": diverged,
        "slope": slope,
        "slope_sem": slope_sem,
        "predicted_slope": predicted,
        "note": note,
    }
    lines = [f"slope of mean escape time in log d: {slope:.4g} ± {slope_sem:.2g}; "
             f"predicted tau/(2 eta) = {predicted:.4g}"]
    if note:
        lines.append(f"note: {note}")
    emit(payload, args.format, {"d": d_values, "mean": means, "sem": sems, "censored": censored, "diverged": diverged},
         extra_lines=lines)
    return 0
