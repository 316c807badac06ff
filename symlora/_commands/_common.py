"""Arguments shared by subcommands (model description)."""

from __future__ import annotations

import argparse

from .._validate import MU_MAX
from ..cli import parse_float_list, parse_int, parse_number


def positive_float(name):
    def parse(text):
        value = parse_number(text, name)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: must be a positive number")
        return value

    return parse


def nonnegative_float(name):
    def parse(text):
        value = parse_number(text, name)
        if value < 0:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: must be a non-negative number")
        return value

    return parse


def positive_int(name, maximum=None):
    def parse(text):
        value = parse_int(text, name)
        if value < 1:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: must be at least 1")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: must be at most {maximum}")
        return value

    return parse


def mu_value(text):
    """One pre-training strength: a number in [0, MU_MAX]."""
    value = parse_number(text, "mu")
    if not 0 <= value <= MU_MAX:
        raise argparse.ArgumentTypeError(f"invalid mu {text!r}: must lie in [0, {MU_MAX:g}]")
    return value


def mu_list(text):
    values = parse_float_list(text, "mu")
    if (values < 0).any() or (values > MU_MAX).any():
        raise argparse.ArgumentTypeError(
            f"invalid mu list {text[:60]!r}: pre-training strengths must lie in [0, {MU_MAX:g}]"
        )
    return values


def add_model_arguments(parser, *, pretraining=False):
    """--student, --teacher, --lr, --batch, --noise (and --pretraining/--rank)."""
    parser.add_argument("--student", required=True, metavar="S",
                        help="student activation: a name (x, relu, erf, sigmoid, tanh, softplus, He<k>) "
                             "or an expression in x such as 'x**3 - 3*x'")
    parser.add_argument("--teacher", default=None, metavar="T",
                        help="teacher activation (default: same as the student)")
    parser.add_argument("--lr", type=positive_float("--lr"), default=1.0, metavar="ETA",
                        help="eta, the learning rate is eta/d (default 1)")
    parser.add_argument("--batch", type=positive_int("--batch"), default=1, metavar="B",
                        help="batch size B (default 1)")
    parser.add_argument("--noise", type=nonnegative_float("--noise"), default=0.0, metavar="DELTA",
                        help="label-noise variance Delta (default 0)")
    if pretraining:
        parser.add_argument("--pretraining", choices=("aligned", "general"), default="aligned",
                            help="aligned: w0 = mu w*; general: w0 = mu w* + mu_perp w_perp")
        parser.add_argument("--rank", type=int, choices=(1, 2), default=1, help="LoRA rank (default 1)")


def build_model(args):
    from .._model import LoRAModel

    return LoRAModel(
        args.student,
        args.teacher,
        pretraining=getattr(args, "pretraining", "aligned"),
        rank=getattr(args, "rank", 1),
        lr=args.lr,
        batch=args.batch,
        noise=args.noise,
    )


def add_progress_argument(parser):
    """--progress/--no-progress (default: on when stderr is a terminal)."""
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: on when stderr is a terminal)")
