"""``symlora simulate``: finite-d one-pass SGD and the log d escape law."""

from __future__ import annotations

import argparse

import numpy as np

from ..cli import emit, parse_int_list
from ._common import add_model_arguments, build_model, positive_float, positive_int

EXAMPLE = """examples:
  symlora simulate --student x --mu 0.5 --d 250,500,1000,2000
  symlora simulate --student relu --mu 0.2 --d 200:1600:4 --seeds 32 --format json"""


def _d_list(text):
    values = parse_int_list(text, "d")
    if np.any(values < 2):
        raise argparse.ArgumentTypeError(f"invalid d list {text!r}: every d must be at least 2")
    return values


def _mu(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid mu {text!r}: expected one number >= 0") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"invalid mu {text!r}: must be finite and >= 0")
    return value


def register(subparsers):
    parser = subparsers.add_parser(
        "simulate",
        help="one-pass SGD of the real model at finite d; escape time against log d",
        description="Simulate one-pass SGD of the LoRA model (fresh Gaussian inputs, lr = eta/d, v renormalised "
        "each step) for several d and seeds, and fit the mean escape time against log d; the ODE theory "
        "predicts the slope tau/(2 eta).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    parser.add_argument("--mu", required=True, type=_mu, help="pre-training strength")
    parser.add_argument("--d", required=True, type=_d_list, metavar="LIST",
                        help="input dimensions: 250,500,1000 or start:stop:num (geometric)")
    parser.add_argument("--seeds", type=positive_int("--seeds"), default=16, help="runs per d (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of numpy.random.default_rng (default 0)")
    parser.add_argument("--threshold", type=positive_float("--threshold"), default=0.5,
                        help="escape when |m| reaches this value (default 0.5)")
    parser.add_argument("--t-max", type=positive_float("--t-max"), default=None,
                        help="horizon in t = steps/d (default from tau: 3 (tau/eta) log d + 10 tau/eta)")
    parser.add_argument("--format", choices=("json", "table"), default="table")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .._sgd import escape_slope, simulate_sgd

    if not 0 < args.threshold < 1:
        raise ValueError(f"--threshold must lie in (0, 1), got {args.threshold}")
    model = build_model(args)
    tau = float(model.tau(args.mu))
    eta = float(model.lr)
    results = []
    for k, d in enumerate(args.d):
        results.append(simulate_sgd(model, args.mu, int(d), t_max=args.t_max, seeds=args.seeds,
                                    seed=args.seed + k, threshold=args.threshold))
    times = [r.escape_time for r in results]
    try:
        fit = escape_slope(args.d, times)
        slope, slope_sem = fit.slope, fit.slope_sem
        means, sems = fit.mean, fit.sem
    except ValueError:
        slope = slope_sem = float("nan")
        means = np.array([np.mean(t[np.isfinite(t)]) if np.isfinite(t).any() else np.inf for t in times])
        sems = np.full(len(times), np.nan)
    censored = np.array([r.censored for r in results])
    payload = {
        "student": model.student.name,
        "teacher": model.teacher.name,
        "mu": args.mu,
        "lr": eta,
        "batch": int(model.batch),
        "noise": float(model.noise),
        "threshold": args.threshold,
        "n_seeds": args.seeds,
        "seed": args.seed,
        "d": args.d,
        "escape_time_mean": means,
        "escape_time_sem": sems,
        "censored": censored,
        "slope": slope,
        "slope_sem": slope_sem,
        "tau": tau,
        "predicted_slope": tau / (2 * eta),
    }
    emit(payload, args.format, {"d": args.d, "mean": means, "sem": sems, "censored": censored}, extra_lines=[
        f"slope of mean escape time in log d: {slope:.4g} ± {slope_sem:.2g}; predicted tau/(2 eta) = {tau / (2 * eta):.4g}",
        *([f"warning: {int(censored.sum())} runs censored (did not reach |m| = {args.threshold}); "
           "they are excluded from the means"] if censored.sum() else []),
    ])
    return 0
