"""Arguments shared by subcommands: the model, the point (``--mu``, ``--d``, ``--threshold``), progress.

Every subcommand that builds a :class:`~symlora.LoRAModel` registers its
options with :func:`add_model_arguments` and builds it with
:func:`build_model`, so that ``--pretraining``, ``--mu-perp`` and ``--rank``
mean the same everywhere and new model options (e.g. a two-layer student)
are added in one place.  :func:`add_point_arguments` does the same for where
the model is evaluated.
"""

from __future__ import annotations

import argparse

import numpy as np

from .._statistics import MAX_RANK
from .._validate import MU_MAX
from ..cli import CommandError, parse_float_list, parse_int, parse_int_list, parse_number

#: Largest input dimension and number of values of ``--d``.
MAX_D = 10**6
MAX_D_VALUES = 50


def positive_float(name):
    def parse(text):
        value = parse_number(text, name)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: must be a positive number")
        return value

    return parse


def nonnegative_float(name, maximum=None):
    def parse(text):
        value = parse_number(text, name)
        if value < 0:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: must be a non-negative number")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: must be at most {maximum:g}")
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


def d_list(text):
    """Input dimensions: ``250,500`` or ``start:stop:num``, each in ``[2, MAX_D]``."""
    values = parse_int_list(text, "d")
    if np.any(values < 2) or np.any(values > MAX_D):
        raise argparse.ArgumentTypeError(f"invalid d list {text[:60]!r}: every d must be at least 2 and at most {MAX_D}")
    if values.size > MAX_D_VALUES:
        raise argparse.ArgumentTypeError(f"invalid d list {text[:60]!r}: at most {MAX_D_VALUES} values of d")
    return values


def threshold_value(text):
    """The escape threshold on ``|m|``, in ``(0, 1)``."""
    value = parse_number(text, "--threshold")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"invalid --threshold {text!r}: must lie in (0, 1)")
    return value


def add_model_arguments(parser):
    """The model: --student, --teacher, --lr, --batch, --noise, --pretraining, --mu-perp, --rank.

    Returns the argument group, so that a command (or a new kind of model)
    can add its own model options next to these.
    """
    group = parser.add_argument_group("model")
    group.add_argument("--student", required=True, metavar="S",
                       help="student activation: a name (x, relu, erf, sigmoid, tanh, softplus, He<k>) "
                            "or an expression in x such as 'x**3 - 3*x'")
    group.add_argument("--teacher", default=None, metavar="T",
                       help="teacher activation (default: same as the student)")
    group.add_argument("--lr", type=positive_float("--lr"), default=1.0, metavar="ETA",
                       help="eta, the learning rate is eta/d (default 1)")
    group.add_argument("--batch", type=positive_int("--batch"), default=1, metavar="B",
                       help="batch size B (default 1)")
    group.add_argument("--noise", type=nonnegative_float("--noise"), default=0.0, metavar="DELTA",
                       help="label-noise variance Delta (default 0)")
    group.add_argument("--pretraining", choices=("aligned", "general"), default="aligned",
                       help="aligned: w0 = mu w*; general: w0 = mu w* + mu_perp w_perp (default aligned)")
    group.add_argument("--mu-perp", type=nonnegative_float("--mu-perp", MU_MAX), default=None, metavar="MU_PERP",
                       help="orthogonal part of the pre-trained weight (only with --pretraining general; "
                            "default 0)")
    group.add_argument("--rank", type=positive_int("--rank", MAX_RANK), default=1, metavar="R",
                       help=f"LoRA rank r, 1 to {MAX_RANK} (default 1)")
    from ._two_layer import add_two_layer_arguments

    add_two_layer_arguments(group)
    return group


def add_point_arguments(parser, *, mu="one", d=False, threshold=False):
    """Where the model is evaluated: --mu (``"one"``, ``"list"`` or ``"optional"`` list), --d, --threshold."""
    if mu == "one":
        parser.add_argument("--mu", required=True, type=mu_value, help="pre-training strength")
    elif mu in ("list", "optional"):
        parser.add_argument("--mu", required=mu == "list", default=None, type=mu_list, metavar="LIST",
                            help="pre-training strengths: 0.1,0.5,0.9 or start:stop:num")
    else:
        raise ValueError(f"mu must be 'one', 'list' or 'optional', got {mu!r}")
    if d:
        parser.add_argument("--d", required=True, type=d_list, metavar="LIST",
                            help="input dimensions: 250,500,1000 or start:stop:num (geometric)")
    if threshold:
        parser.add_argument("--threshold", type=threshold_value, default=0.5,
                            help="escape when the overlap reaches this value, in (0, 1) (default 0.5)")


def build_model(args):
    """The :class:`~symlora.LoRAModel` the model arguments describe."""
    from .._model import LoRAModel

    two_layer = [flag for flag, value in (("--hidden", getattr(args, "hidden", None)),
                                          ("--teacher-hidden", getattr(args, "teacher_hidden", None)),
                                          ("--readout", getattr(args, "readout", None)),
                                          ("--mus", getattr(args, "mus", None))) if value is not None]
    if two_layer:
        # tau, derive, escape, simulate and latex route two-layer students (symlora/_commands/_two_layer.py)
        raise CommandError(f"{', '.join(two_layer)}: two-layer students are available in 'symlora tau', 'derive', "
                           "'escape', 'simulate' and 'latex' (with --hidden K) only")
    if args.mu_perp is not None and args.pretraining != "general":
        raise CommandError("--mu-perp needs --pretraining general (aligned pre-training has w0 = mu w*)")
    return LoRAModel(args.student, args.teacher, pretraining=args.pretraining, rank=args.rank,
                     lr=args.lr, batch=args.batch, noise=args.noise)


def point_keywords(args) -> dict:
    """Keyword arguments locating the point besides ``mu``: ``{"mu_perp": ...}`` for general pre-training."""
    return {"mu_perp": args.mu_perp or 0.0} if args.pretraining == "general" else {}


def describe_model(model, args) -> dict:
    """The model part of every JSON payload, naming every summary statistic."""
    payload = {
        "student": model.student.name,
        "teacher": model.teacher.name,
        "pretraining": model.pretraining,
        "rank": int(model.rank),
        "states": [str(state) for state in model.states],
    }
    if model.pretraining == "general":
        payload["mu_perp"] = args.mu_perp or 0.0
    return payload


def add_progress_argument(parser):
    """--progress/--no-progress (default: on when stderr is a terminal)."""
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: on when stderr is a terminal)")
