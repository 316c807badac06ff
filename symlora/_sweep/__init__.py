"""Sweeps: grids of simulations and predictions as independent tasks on dask.distributed.

:mod:`._spec` reads and checks a TOML specification and expands it into
tasks (each with its own seed and a hash of its parameters); :mod:`._run`
runs the tasks that are not in the on-disk cache (on a local cluster, an
existing scheduler, or inline) and writes one table with a row per run.
"""

from ._run import COLUMNS, SweepResult, run_task, sweep
from ._spec import SweepSpec, read_spec

__all__ = ["sweep", "SweepResult", "SweepSpec", "read_spec", "run_task", "COLUMNS"]
