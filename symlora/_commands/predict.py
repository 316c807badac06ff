"""``symlora predict``: the distribution of the SGD escape time at finite d."""

from __future__ import annotations

import argparse

from ..cli import emit, parse_number
from ._common import add_model_arguments, add_point_arguments, build_model, describe_model

EXAMPLE = """examples:
  symlora predict --student x --mu 0.3 --d 250,1000,4000 --lr 0.5
  symlora predict --student 'x**3 - 3*x' --mu 0.320724347323 --d 100:10000:5 --format json
  symlora predict --student x --teacher 'x**2' --mu 0.2 --d 1000 --m0 0.01"""


def register(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="predicted mean, spread and quantiles of the SGD escape time at finite d",
        description="Escape-time distribution of one-pass SGD from v0 uniform on the sphere (or a given m0) "
        "and u0 = 0: effective start from the noise of u projected on the unstable direction, then the ODE "
        "(linear law); at a critical mu the fluctuation-driven law; 'no escape' only where it is derived.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    add_point_arguments(parser, mu="one", d=True, threshold=True)
    parser.add_argument("--m0", type=lambda t: parse_number(t, "--m0"), default=None,
                        help="fixed initial overlap (default: v0 uniform on the sphere)")
    parser.add_argument("--format", choices=("json", "table"), default="table")
    parser.set_defaults(func=run)


def run(args) -> int:
    model = build_model(args)
    prediction = model.predict_escape(args.mu, args.d, threshold=args.threshold, m0=args.m0)
    payload = {**describe_model(model, args), **prediction.as_dict()}
    columns = {"d": prediction.d, "mean": prediction.mean, "std": prediction.std}
    columns.update({f"q{int(100 * q)}": v for q, v in prediction.quantiles.items()})
    emit(payload, args.format, columns,
         extra_lines=[f"law: {prediction.law}", f"status: {prediction.status}", prediction.derivation])
    return 0
