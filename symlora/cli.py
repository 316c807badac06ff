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
import re
import sys
import warnings

import numpy as np

__all__ = ["main", "parse_number", "parse_int", "parse_float_list", "parse_int_list", "emit", "format_table",
           "CommandError"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("derive", "law", "tau", "escape", "simulate", "sweep", "predict", "latex", "reproduce", "paper")


class CommandError(ValueError):
    """A user error detected by a subcommand; printed as one line."""


#: Longest accepted number or list argument (characters), checked first.
MAX_ARGUMENT_LENGTH = 2000
#: Most values a list or ``start:stop:num`` grid may hold.
MAX_LIST_LENGTH = 10_000

# ASCII only: float()/int() would also read '1_0' as 10, ' ١ ' (Arabic-Indic) as 1,
# 'inf', 'nan' and full-width digits
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\Z", re.ASCII)
_INT_RE = re.compile(r"\+?[0-9]{1,18}\Z", re.ASCII)


def parse_number(text: str, name: str = "value") -> float:
    """A finite decimal number written in ASCII (``0.5``, ``1e-3``), strictly.

    Raises
    ------
    argparse.ArgumentTypeError
        Anything else: ``1_0``, non-ASCII digits, ``inf``, ``nan``, hex,
        overflowing exponents.

    Examples
    --------
    >>> parse_number("1e-3")
    0.001
    """
    if len(text) > 60:
        raise argparse.ArgumentTypeError(f"invalid {name}: number of {len(text)} characters is too long")
    stripped = text.strip(" ")
    if not _FLOAT_RE.match(stripped):
        raise argparse.ArgumentTypeError(
            f"invalid {name} {_show(text)}: expected a decimal number such as 0.5 or 1e-3 (ASCII digits)"
        )
    value = float(stripped)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"invalid {name} {_show(text)}: the number is too large")
    return value


def parse_int(text: str, name: str = "value") -> int:
    """A whole number written in ASCII digits (``250``), strictly."""
    if len(text) > 60:
        raise argparse.ArgumentTypeError(f"invalid {name}: number of {len(text)} characters is too long")
    stripped = text.strip(" ")
    if not _INT_RE.match(stripped):
        raise argparse.ArgumentTypeError(
            f"invalid {name} {_show(text)}: expected a whole number such as 250 (ASCII digits, at most 18)"
        )
    return int(stripped)


def _show(text: str) -> str:
    """The argument as a short, printable quote (ascii escapes, truncated)."""
    shown = ascii(text)
    return shown if len(shown) <= 60 else shown[:57] + "...'"


def _check_list_text(text: str, name: str) -> str:
    if len(text) > MAX_ARGUMENT_LENGTH:
        raise argparse.ArgumentTypeError(
            f"invalid {name} list: {len(text)} characters, at most {MAX_ARGUMENT_LENGTH}"
        )
    return text.strip(" ")


def parse_float_list(text: str, name: str = "value") -> np.ndarray:
    """Parse ``"0.1,0.5,0.9"`` or ``"start:stop:num"`` (inclusive, like linspace).

    At most :data:`MAX_LIST_LENGTH` values; numbers are ASCII decimals
    (see :func:`parse_number`).

    Raises
    ------
    argparse.ArgumentTypeError
        Naming the argument and the offending text.
    """
    text = _check_list_text(text, name)
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(
                f"invalid {name} list {_show(text)}: use comma-separated numbers like 0.1,0.5 "
                "or start:stop:num like 0:0.9:10"
            )
        start, stop = parse_number(parts[0], f"{name} list"), parse_number(parts[1], f"{name} list")
        num = parse_int(parts[2], f"{name} count")
        if not 1 <= num <= MAX_LIST_LENGTH:
            raise argparse.ArgumentTypeError(
                f"invalid {name} list {_show(text)}: num must lie in [1, {MAX_LIST_LENGTH}], got {num}"
            )
        with np.errstate(all="ignore"):
            values = np.linspace(start, stop, num)
    else:
        parts = text.split(",")
        if len(parts) > MAX_LIST_LENGTH:
            raise argparse.ArgumentTypeError(f"invalid {name} list: more than {MAX_LIST_LENGTH} values")
        values = np.array([parse_number(p, f"{name} list") for p in parts])
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"invalid {name} list {_show(text)}: numbers must be finite")
    return values


def parse_int_list(text: str, name: str = "value") -> np.ndarray:
    """Parse ``"250,500,1000"`` or ``"start:stop:num"`` (geometric spacing, rounded)."""
    text = _check_list_text(text, name)
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(
                f"invalid {name} list {_show(text)}: use comma-separated integers like 250,500,1000 "
                "or start:stop:num"
            )
        start, stop, num = (parse_int(p, f"{name} list") for p in parts)
        if not 1 <= num <= MAX_LIST_LENGTH:
            raise argparse.ArgumentTypeError(
                f"invalid {name} list {_show(text)}: num must lie in [1, {MAX_LIST_LENGTH}], got {num}"
            )
        if start < 1 or stop < 1:
            raise argparse.ArgumentTypeError(f"invalid {name} list {_show(text)}: start and stop must be >= 1")
        values = np.unique(np.round(np.geomspace(start, stop, num)).astype(np.int64))
    else:
        parts = text.split(",")
        if len(parts) > MAX_LIST_LENGTH:
            raise argparse.ArgumentTypeError(f"invalid {name} list: more than {MAX_LIST_LENGTH} values")
        values = np.array([parse_int(p, f"{name} list") for p in parts], dtype=np.int64)
    if values.size == 0:
        raise argparse.ArgumentTypeError(f"invalid {name} list {_show(text)}: empty")
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
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


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
        # no command: usage on stderr, non-zero exit (nothing was done)
        commands = ",".join(COMMANDS)
        print(f"usage: symlora [-h] [--version] {{{commands}}} ...; error: a command is required "
              "(symlora --help describes them)", file=sys.stderr)
        return 2
    try:
        # numeric warnings never reach the terminal: results that are not finite
        # are refused or reported (e.g. as diverged runs) by the commands themselves
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return int(args.func(args) or 0)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("symlora: interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        print(f"symlora {args.command}: error: the input is nested too deeply to process", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"symlora {args.command}: error: out of memory; use smaller sizes", file=sys.stderr)
        return 2
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


def _one_line(exc, limit: int = 400) -> str:
    """The first line of the message, at most ``limit`` characters, printable."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
