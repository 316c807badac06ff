"""``symlora escape``: ODE escape times against the analytic log law."""

from __future__ import annotations

import argparse

import numpy as np

from ..cli import emit, parse_float_list
from ._common import add_model_arguments, add_point_arguments, build_model, describe_model, point_keywords, positive_float

EXAMPLE = """examples:
  symlora escape --student tanh --mu 0.5 --eps 1e-3,1e-4,1e-5,1e-6
  symlora escape --student relu --mu 0.3 --eps 1e-3,1e-6 --format json
  symlora escape --student erf --pretraining general --mu-perp 0.3 --mu 0.5 --eps 1e-3,1e-5
  symlora escape --student x --rank 2 --mu 0.5 --eps 1e-3,1e-5
  symlora escape --student erf --hidden 4 --mus mu,mu,1,1 --mu 0 --eps 1e-3,1e-4,1e-5"""


#: Most initial overlaps integrated by one command.
MAX_EPS = 100
#: Solver steps before the remaining members are reported as censored (bounds the run time
#: where the dynamics are stiff, e.g. at large mu).
MAX_STEPS = 5_000


def register(subparsers):
    parser = subparsers.add_parser(
        "escape",
        help="integrate the ODE from m0 = eps, u0 = 0 and fit T(eps) against log(1/eps)",
        description="Time T(eps) for |m| to reach the threshold from m0 = eps, u0 = 0, by integrating the "
        "generated ODE; the slope of T against log(1/eps) must equal tau/eta.  With --hidden K (two-layer "
        "student) the adapter starts on the unstable direction of the linearisation with max_j |M_1j| = eps "
        "and escapes when max_j |M_1j| reaches the threshold.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    add_point_arguments(parser, mu="one", threshold=True)
    parser.add_argument("--eps", required=True, type=lambda t: parse_float_list(t, "eps"), metavar="LIST",
                        help="initial overlaps, e.g. 1e-3,1e-4,1e-5,1e-6 (each below the threshold)")
    parser.add_argument("--t-max", type=positive_float("--t-max"), default=None,
                        help="horizon (default: 10 (tau/eta) log(threshold/eps) + 20/eta)")
    parser.add_argument("--format", choices=("json", "table"), default="table")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .._escape_time import fit_escape_slope

    eps = np.asarray(args.eps, dtype=float)
    if np.any(eps <= 0) or np.any(eps >= args.threshold):
        raise ValueError(f"--eps values must satisfy 0 < eps < threshold = {args.threshold}")
    if np.any(eps < 1e-300):
        raise ValueError("--eps values must be >= 1e-300")
    if eps.size > MAX_EPS:
        raise ValueError(f"--eps takes at most {MAX_EPS} values, got {eps.size}")
    if np.unique(eps).size != eps.size:
        raise ValueError("--eps values must be distinct (a slope needs different initial overlaps)")
    if getattr(args, "hidden", None) is not None:  # a two-layer student (symlora/_commands/_two_layer.py)
        from ._two_layer import build_two_layer_model, describe_two_layer, two_layer_escape, two_layer_tau

        model = build_two_layer_model(args)
        tau, description = two_layer_tau(model, args.mu), describe_two_layer(model)
        eta = float(model.lr)
        t_max = args.t_max or 10 * tau / eta * float(np.log(args.threshold / eps.min())) + 20 / eta
        result = two_layer_escape(model, args, eps, t_max if np.isfinite(t_max) else 1e4 / eta, MAX_STEPS)
    else:
        model = build_model(args)
        point = point_keywords(args)
        tau, description = float(model.coefficients(args.mu, **point)["tau"]), describe_model(model, args)
        # bounded work: a member still running after MAX_STEPS solver steps is censored
        result = model.escape_time(args.mu, eps, threshold=args.threshold, t_max=args.t_max,
                                   max_steps=MAX_STEPS, **point)
        eta = float(model.lr)
    predicted = tau / eta
    finite = np.isfinite(result.time)
    if finite.sum() >= 2:
        slope, slope_err = fit_escape_slope(eps, result.time)
        relative_error = slope / predicted - 1 if np.isfinite(predicted) else float("nan")
    else:
        slope, slope_err, relative_error = float("nan"), float("nan"), float("nan")
    if finite.sum() < 2:
        slope_note = "fewer than two escaped values of eps: no slope"
    elif finite.sum() == 2:
        slope_note = "two points: a line through them has no residual, so no standard error (null)"
    else:
        slope_note = f"least squares over {int(finite.sum())} escaped values of eps"
    payload = {
        **description,
        "mu": args.mu,
        "lr": eta,
        "threshold": args.threshold,
        "eps": eps,
        "time": result.time,
        "status": list(result.status),
        "slope": slope,
        "slope_stderr": slope_err,
        "slope_note": slope_note,
        "tau": tau,
        "predicted_slope": predicted,
        "relative_error": relative_error,
        "t_max": result.t_max,
    }
    emit(payload, args.format, {"eps": eps, "time": result.time, "status": list(result.status)}, extra_lines=[
        f"slope dT/dlog(1/eps) = {slope:.10g} (± {slope_err:.2g}); predicted tau/eta = {predicted:.10g}; "
        f"relative error {relative_error:.3g}",
        f"note: {slope_note}",
    ])
    return 0
