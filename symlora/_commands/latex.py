"""``symlora latex``: export the ODE system and linearisation as LaTeX."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_model_arguments, build_model

EXAMPLE = """examples:
  symlora latex --student erf -o erf.tex
  symlora latex --student 'x**3-3*x' --teacher relu -o mixed.tex
  symlora latex --student relu --pretraining general --body-only -o relu_body.tex"""


def register(subparsers):
    parser = subparsers.add_parser(
        "latex",
        help="write the ODE system and its linearisation as a LaTeX document",
        description="Write a standalone LaTeX document (article + amsmath, compiles with pdflatex) with the "
        "model, Q and R, the ODE system, a(mu), b(mu), tau(mu), critical mu and which parts are exact.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser, pretraining=True)
    parser.add_argument("-o", "--output", required=True, metavar="FILE.tex", help="output file ('-' for stdout)")
    parser.add_argument("--body-only", action="store_true", help="only the equations, for \\input")
    parser.set_defaults(func=run)


def run(args) -> int:
    model = build_model(args)
    text = model.to_latex(body_only=args.body_only)
    if args.output == "-":
        print(text)
        return 0
    path = Path(args.output)
    if path.is_dir():
        raise ValueError(f"output {path} is a folder; give a file name such as {path / 'model.tex'}")
    if not path.parent.exists():
        raise OSError(f"cannot write {path}: folder {path.parent} does not exist")
    path.write_text(text)
    print(f"wrote {path}")
    return 0
