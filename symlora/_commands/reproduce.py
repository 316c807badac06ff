"""``symlora reproduce``: the whole analysis on the default pairs."""

from __future__ import annotations

import argparse

from ._common import add_progress_argument

EXAMPLE = """examples:
  symlora reproduce                 # full run into ./symlora-out (a few minutes)
  symlora reproduce --quick --out /tmp/quick"""


def register(subparsers):
    parser = subparsers.add_parser(
        "reproduce",
        help="derive, export, tabulate and verify the analysis for the default pairs",
        description="For the default activation pairs (x, erf, relu, sigmoid, tanh, He2..He6 with matching "
        "teachers, x and He2 with squared teachers): derive the ODEs, export LaTeX, tabulate tau(mu), find "
        "critical mu, verify the escape law by ODE integration and by SGD, and write report.md with figures.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="symlora-out", metavar="DIR", help="output folder (default ./symlora-out)")
    parser.add_argument("--quick", action="store_true", help="a reduced run: six pairs (x, erf, relu, tanh, He3, x/x^2), coarser grids, smaller SGD; well under a minute of CPU (the full run takes several minutes)")
    add_progress_argument(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from .._report import reproduce

    if not args.out.strip():
        raise ValueError("--out is empty; give an output folder such as symlora-out")
    if len(args.out) > 4096 or "\0" in args.out:
        raise ValueError("--out is not a usable path")
    report = reproduce(args.out, quick=args.quick, progress=args.progress)
    print(f"wrote {report}")
    return 0
