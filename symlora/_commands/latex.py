"""``symlora latex``: export the ODE system and linearisation as LaTeX."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_model_arguments, build_model

EXAMPLE = """examples:
  symlora latex --student erf -o erf.tex
  symlora latex --student 'x**3-3*x' --teacher relu -o mixed.tex
  symlora latex --student relu --pretraining general --body-only -o relu_body.tex
  symlora latex --student erf --rank 2 -o erf_rank2.tex
  symlora latex --student erf --hidden 4 --mus mu,mu,1,1 -o committee.tex"""


def register(subparsers):
    parser = subparsers.add_parser(
        "latex",
        help="write the ODE system and its linearisation as a LaTeX document",
        description="Write a standalone LaTeX document (article + amsmath, compiles with pdflatex) with the "
        "model, Q and R, the ODE system, a(mu), b(mu), tau(mu), critical mu and which parts are exact.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="FILE.tex", help="output file ('-' for stdout)")
    parser.add_argument("--body-only", action="store_true", help="only the equations, for \\input")
    parser.add_argument("--force", action="store_true", help="overwrite FILE.tex if it exists")
    parser.set_defaults(func=run)


def _check_output(output, force):
    """The output path, refused before any work if it cannot or must not be written."""
    if not output.strip():
        raise ValueError("-o/--output is empty; give a file name such as model.tex (or '-' for stdout)")
    path = Path(output)
    if path.is_dir():
        raise ValueError(f"output {path} is a folder; give a file name such as {path / 'model.tex'}")
    if not path.parent.exists():
        raise OSError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.exists() and not force:
        raise ValueError(f"{path} exists; pass --force to overwrite it")
    return path


def run(args) -> int:
    path = None if args.output == "-" else _check_output(args.output, args.force)
    if getattr(args, "hidden", None) is not None:  # a two-layer student (symlora/_commands/_two_layer.py)
        from ._two_layer import build_two_layer_model

        model = build_two_layer_model(args)
    else:
        model = build_model(args)
    text = model.to_latex(body_only=args.body_only)
    if path is None:
        print(text)
        return 0
    path.write_text(text)
    print(f"wrote {path}")
    return 0
