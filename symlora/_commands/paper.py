"""``symlora paper``: the paper's theory figures, regenerated, with errata."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  symlora paper                          # full run into ./symlora-paper (tens of minutes)
  symlora paper --quick --out /tmp/p     # small grids and few SGD runs
  symlora paper --published ../shared/paper"""


def register(subparsers):
    parser = subparsers.add_parser(
        "paper",
        help="regenerate the paper's theory figures and an errata table of its published tau values",
        description="tau(mu) for x, erf, ReLU, sigmoid with SGD estimates; Hermite panels (paper's k!k normalisation "
        "and symlora's) with critical mu; squared teachers; two-term Hermite activations; ODE vs SGD dynamics; "
        "general pre-training; the He3 curriculum; errata.md/errata.csv against the published tables.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="symlora-paper", metavar="DIR", help="output folder (default ./symlora-paper)")
    parser.add_argument("--quick", action="store_true", help="small grids, few SGD runs (about a minute)")
    parser.add_argument("--published", default="auto", metavar="DIR",
                        help="folder of the published tau tables (default: shared/paper next to the repository "
                             "or the current directory; errata are skipped when none is found)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .._paper import paper

    if not args.out.strip():
        raise ValueError("--out is empty; give an output folder such as symlora-paper")
    report, note = paper(args.out, quick=args.quick, published=args.published)
    print(f"wrote {report} ({note})")
    return 0
