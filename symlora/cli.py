"""The ``symlora`` command line.

Every subcommand lives in ``symlora/_commands/<name>.py`` and exposes
``register(subparsers)`` (adding its parser, with ``func=run``) and
``run(args) -> int``.  This module owns what they share: error handling
(one readable line on stderr, exit status 2, never a traceback), number-list
parsing and output formatting.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys

import numpy as np

__all__ = ["main", "parse_float_list", "parse_int_list", "emit", "format_table", "CommandError"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("derive", "law", "tau", "escape", "simulate", "sweep", "latex", "reproduce", "paper")


class CommandError(ValueError):
    """A user error detected by a subcommand; printed as one line."""


def parse_float_list(text: str, name: str = "value") -> np.ndarray:
    """Parse ``"0.1,0.5,0.9"`` or ``"start:stop:num"`` (inclusive, like linspace).

    Raises
    ------
    argparse.ArgumentTypeError
        Naming the argument and the offending text.
    """
    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop = float(parts[0]), float(parts[1])
            num = int(parts[2])
            if num < 1:
                raise ValueError
            values = np.linspace(start, stop, num)
        else:
            values = np.array([float(p) for p in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid {name} list {text!r}: use comma-separated numbers like 0.1,0.5 "
            "or start:stop:num like 0:0.9:10"
        ) from None
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"invalid {name} list {text!r}: numbers must be finite")
    return values


def parse_int_list(text: str, name: str = "value") -> np.ndarray:
    """Parse ``"250,500,1000"`` or ``"start:stop:num"`` (geometric spacing, rounded)."""
    text = text.strip()
    try:
        if ":" in text:
            start, stop, num = text.split(":")
            values = np.unique(np.round(np.geomspace(int(start), int(stop), int(num))).astype(int))
        else:
            values = np.array([int(p) for p in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid {name} list {text!r}: use comma-separated integers like 250,500,1000"
        ) from None
    if values.size == 0:
        raise argparse.ArgumentTypeError(f"invalid {name} list {text!r}: empty")
    return values


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        # JSON has no inf/nan: null says "no value" (e.g. censored runs)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def format_table(columns: dict) -> str:
    """Aligned plain-text table of equal-length columns (scalars are repeated)."""
    names = list(columns)
    lengths = [len(np.atleast_1d(v)) for v in columns.values() if np.ndim(v) > 0]
    nrows = max(lengths) if lengths else 1
    cells = []
    for name in names:
        values = columns[name]
        values = [values] * nrows if np.ndim(values) == 0 else list(values)
        cells.append([_format_cell(v) for v in values])
    widths = [max(len(n), *(len(c) for c in col)) for n, col in zip(names, cells)]
    lines = ["  ".join(n.rjust(w) for n, w in zip(names, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for row in range(nrows):
        lines.append("  ".join(col[row].rjust(w) for col, w in zip(cells, widths)))
    return "\n".join(lines)


def _format_cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.10g}"
    return str(value)


def emit(payload: dict, fmt: str, table_columns: dict | None = None, extra_lines=()) -> None:
    """Print ``payload`` as JSON (stdout only) or as a table plus extra lines."""
    if fmt == "json":
        json.dump(_jsonable(payload), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(format_table(table_columns if table_columns is not None else payload))
        for line in extra_lines:
            print(line)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # one readable line, exit 2 (argparse's own convention)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="symlora",
        description="Symbolic ODEs, asymptotics and escape-time laws of LoRA fine-tuning.",
        epilog="Example: symlora tau --student relu --mu 0:0.9:10 --format table",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"symlora {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"symlora._commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"symlora._commands.{name}":
                raise
            continue  # a subcommand not built yet
        module.register(subparsers)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``symlora`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("symlora: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ArithmeticError, NotImplementedError, ImportError) as exc:
        print(f"symlora {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the command line never shows a traceback
        if os.environ.get("SYMLORA_DEBUG"):
            raise
        print(
            f"symlora {args.command}: internal error ({type(exc).__name__}): {_one_line(exc)} "
            "(set SYMLORA_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


def _one_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
