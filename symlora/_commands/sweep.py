"""``symlora sweep``: a grid of simulations and predictions on dask, into one table."""

from __future__ import annotations

import argparse

import numpy as np

from ..cli import emit
from ._common import add_progress_argument, positive_int

EXAMPLE = """example spec (sweep.toml):
  pairs = ["x", "relu", {student = "tanh", teacher = "x"}]
  mu = [0.3, 0.5]
  lr = [0.5]
  d = [1000, 10000, 100000]
  runs = 64
  runs_per_task = 16
  method = "reduced"
  output = "runs.parquet"

examples:
  symlora sweep sweep.toml
  symlora sweep sweep.toml --workers 4 --output runs.csv
  symlora sweep sweep.toml --scheduler tcp://head-node:8786"""

_KEYS_HELP = ("keys: pairs, mu, lr, batch, noise, d (lists); runs, runs_per_task, seed, method, threshold, "
              "t_max, predictions, output, cache")


def register(subparsers):
    parser = subparsers.add_parser(
        "sweep",
        help="grid of SGD simulations and ODE predictions on dask.distributed, one row per run",
        description="Run every combination of pairs x mu x lr x batch x noise x d, `runs` runs each, as "
        "independent tasks on dask.distributed (a local cluster unless --scheduler names a running one), "
        "and write one table (Parquet or CSV) with a row per run: every parameter, the seed, the status "
        "(escaped, censored, diverged), the escape time and the predictions tau, tau/(2 eta) and the ODE "
        "escape time from m0 = d^-1/2.  Finished tasks are cached under a hash of their parameters: an "
        "interrupted sweep resumes, a repeated one runs nothing.  " + _KEYS_HELP + ".",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", metavar="SPEC.toml", help="the sweep specification")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="address of a running dask scheduler (e.g. from dask-jobqueue); 'inline' runs "
                             "the tasks in this process; default: a local cluster")
    parser.add_argument("--workers", type=positive_int("--workers", 256), default=2,
                        help="workers of the local cluster (default 2)")
    parser.add_argument("--output", default=None, metavar="PATH",
                        help="table to write (.parquet or .csv); default: the spec's output")
    parser.add_argument("--format", choices=("json", "table"), default="table")
    add_progress_argument(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from .._sweep import read_spec, sweep

    spec = read_spec(args.spec)
    result = sweep(spec, scheduler=args.scheduler, workers=args.workers, progress=args.progress,
                   output=args.output)
    cols = result.columns
    points = sorted({(p, m, lr, b, n, d) for p, m, lr, b, n, d in
                     zip(cols["pair"], cols["mu"], cols["lr"], cols["batch"], cols["noise"], cols["d"])},
                    key=lambda t: (str(t[0]), *t[1:]))
    summary = {k: [] for k in ("pair", "mu", "lr", "batch", "noise", "d", "runs", "escaped", "censored", "diverged",
                               "escape_time_mean", "ode_escape_time")}
    for point in points:
        mask = np.ones(result.n_rows, dtype=bool)
        for name, value in zip(("pair", "mu", "lr", "batch", "noise", "d"), point):
            mask &= cols[name] == value
        status = cols["status"][mask]
        escaped = status == "escaped"
        for name, value in zip(("pair", "mu", "lr", "batch", "noise", "d"), point):
            summary[name].append(value)
        summary["runs"].append(int(mask.sum()))
        summary["escaped"].append(int(escaped.sum()))
        summary["censored"].append(int(np.sum(status == "censored")))
        summary["diverged"].append(int(np.sum(status == "diverged")))
        # a mean over runs some of which did not escape is not the mean escape time
        summary["escape_time_mean"].append(float(np.mean(cols["escape_time"][mask])) if escaped.all() else None)
        summary["ode_escape_time"].append(float(cols["ode_escape_time"][mask][0]))
    payload = {"output": str(result.path), "tasks": result.n_tasks, "cached_tasks": result.n_cached,
               "rows": result.n_rows, "summary": summary}
    lines = [f"{result.n_rows} runs written to {result.path}; {result.n_tasks} tasks, "
             f"{result.n_cached} read from the cache"]
    table = {k: np.array([np.nan if v is None else v for v in vals]) if k == "escape_time_mean" else vals
             for k, vals in summary.items()}
    emit(payload, args.format, table, extra_lines=lines)
    return 0
