"""``symlora tau``: a(μ), b(μ), τ(μ) of the linearised escape."""

from __future__ import annotations

import argparse

import numpy as np

from ..cli import emit
from ..cli import CommandError
from ._common import add_model_arguments, add_point_arguments, build_model, describe_model, point_keywords

EXAMPLE = """examples:
  symlora tau --student relu --mu 0:0.9:10 --format table
  symlora tau --student x --teacher 'x**2' --mu 0.1,0.5,0.9 --format json
  symlora tau --student tanh --mu 0.5 --precise
  symlora tau --student relu --pretraining general --mu-perp 0.3 --mu 0.5 --format json
  symlora tau --student erf --rank 3 --mu 0.5
  symlora tau --student erf --hidden 4 --mus mu,mu,1,1 --mu 0:0.9:10"""


#: Most mu values evaluated with --precise.
MAX_PRECISE = 200


def register(subparsers):
    parser = subparsers.add_parser(
        "tau",
        help="linearisation a(mu), b(mu) and escape time scale tau(mu)",
        description="Coefficients of the linearised dynamics d/dt (m, u) = eta [[0, a], [a, -b]] (m, u) "
        "at the uninformative fixed point, tau = (b + sqrt(b^2 + 4a^2))/(2a^2) in units of 1/eta, "
        "and the predicted escape slope tau/(2 eta) per unit log d.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    add_point_arguments(parser, mu="list")
    parser.add_argument("--precise", action="store_true",
                        help="evaluate with 30-digit arithmetic / adaptive quadrature instead of generated code")
    parser.add_argument("--format", choices=("json", "table"), default="table")
    parser.set_defaults(func=run)


def run(args) -> int:
    if getattr(args, "hidden", None) is not None:  # a two-layer student (symlora/_commands/_two_layer.py)
        from ._two_layer import run_tau

        return run_tau(args)
    model = build_model(args)
    mu = np.asarray(args.mu, dtype=float)
    lin = model.linearization()
    if args.precise and model.pretraining == "general":
        raise CommandError("--precise is available for aligned pre-training only; drop it for --pretraining general")
    if args.precise:
        if mu.size > MAX_PRECISE:
            raise ValueError(
                f"--precise evaluates each mu with 30-digit arithmetic (up to a second each): "
                f"at most {MAX_PRECISE} values, got {mu.size}"
            )
        rows = [lin.values(m) for m in mu]
        values = {k: np.array([r[k] for r in rows]) for k in ("a", "b", "tau", "a_error", "b_error")}
    else:
        values = model.coefficients(mu, **point_keywords(args))
    a, b, tau = (np.asarray(values[k], dtype=float) for k in ("a", "b", "tau"))
    bounds = error_bounds(model, values, mu, args)
    eta = float(model.lr)
    lambda_plus = np.where(np.isfinite(tau) & (tau != 0), 1.0 / tau, 0.0)
    payload = {
        **describe_model(model, args),
        "lr": eta,
        "exact": bool(lin.exact),
        "mu": mu,
        "a": a,
        "b": b,
        "tau": tau,
        "lambda_plus": lambda_plus,
        "escape_slope": tau / (2 * eta),
        **bounds,
    }
    table = {"mu": mu, "a": a, "b": b, "tau": tau, "tau/(2 eta)": tau / (2 * eta)}
    if bounds["tau_error_bound"] is not None:
        table["tau error bound"] = bounds["tau_error_bound"]
    kind = "exact closed form" if lin.exact else "numeric quadrature"
    emit(payload, args.format, table, extra_lines=[
        f"# {model.student.name} / {model.teacher.name}: a(mu), b(mu) by {kind}; tau in units of 1/eta"
    ])
    return 0


def error_bounds(model, values, mu, args) -> dict:
    """``a_error_bound``, ``b_error_bound``, ``tau_error_bound`` and a note saying what they are.

    Null bounds for exact closed forms (only double-precision rounding);
    otherwise the mpmath error estimates of ``--precise`` or the generated
    code's quadrature bounds (:func:`symlora._codegen.coefficients_function`),
    propagated to ``tau`` to first order.
    """
    from .._codegen import coefficients_function, tau_error_bound

    if model.linearization().exact:
        return {"a_error_bound": None, "b_error_bound": None, "tau_error_bound": None,
                "error_bound_note": "exact closed forms: no quadrature, only double-precision rounding"}
    if "a_error" in values:
        a_error, b_error = values["a_error"], values["b_error"]
        note = "error estimates of 30-digit adaptive mpmath quadrature, propagated to tau to first order"
    else:
        bounded = coefficients_function(model, with_error=True)(mu, **point_keywords(args))
        a_error, b_error = bounded["a_error_bound"], bounded["b_error_bound"]
        note = ("quadrature error bounds of the generated code (each node's |I(2n) - I(n)| plus rounding), "
                "propagated to a, b and tau to first order")
    tau_error = tau_error_bound(values["a"], values["b"], a_error, b_error)
    return {"a_error_bound": np.asarray(a_error, dtype=float), "b_error_bound": np.asarray(b_error, dtype=float),
            "tau_error_bound": np.asarray(tau_error, dtype=float), "error_bound_note": note}
