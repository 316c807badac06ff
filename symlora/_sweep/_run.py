"""Running a sweep's tasks on dask.distributed, with an on-disk cache, into one table."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._spec import prediction_tasks, read_spec, simulation_tasks, task_key

__all__ = ["sweep", "SweepResult", "run_task"]

#: Columns of the table, in order: the parameters, the seed, then the outcome.
COLUMNS = ("pair", "student", "teacher", "mu", "lr", "batch", "noise", "d", "method", "threshold", "t_max",
           "seed", "run", "status", "escape_time", "diverge_time", "tau", "predicted_slope",
           "ode_escape_time")


@dataclass(frozen=True)
class SweepResult:
    """The table of a sweep (one row per run) and how it was obtained.

    Attributes
    ----------
    columns : dict
        Column name -> numpy array, in the order of :data:`COLUMNS`.
    path : pathlib.Path
        The file the table was written to.
    n_tasks, n_cached : int
        Tasks in the sweep, and tasks read from the cache instead of run.
    """

    columns: dict
    path: Path
    n_tasks: int
    n_cached: int

    @property
    def n_rows(self) -> int:
        """Number of runs in the table."""
        return int(len(self.columns["seed"]))

    def __repr__(self):
        return (f"SweepResult({self.n_rows} runs, {self.n_tasks} tasks of which {self.n_cached} from the cache, "
                f"written to {str(self.path)!r})")


def _model(task):
    from .._model import LoRAModel
    import sympy as sp

    # exact rationals: the model's symbolic settings equal the runs' numbers
    return LoRAModel(task["student"], task["teacher"], lr=sp.nsimplify(task["lr"], rational=True),
                     batch=task["batch"], noise=sp.nsimplify(task["noise"], rational=True))


def run_task(task: dict) -> list:
    """Run one task (a dict from the spec's expansion); returns JSON-ready rows.

    A simulation task returns one row per run; a prediction task one row
    with ``tau``, ``predicted_slope = tau/(2 eta)`` and the ODE escape time
    from ``m0 = d^{-1/2}``, ``u0 = 0`` (docs/theory.md §5, §6).
    """
    model = _model(task)
    if task["kind"] == "prediction":
        tau = float(np.asarray(model.tau(task["mu"])))
        ode = float("inf")
        if math.isfinite(tau) and tau > 0:
            ode = float(np.asarray(model.escape_time(task["mu"], task["d"] ** -0.5,
                                                     threshold=task["threshold"]).time).ravel()[0])
        return [{"tau": tau, "predicted_slope": tau / (2 * task["lr"]), "ode_escape_time": ode}]
    from ..simulate import simulate_sgd

    result = simulate_sgd(model, task["mu"], task["d"], t_max=task["t_max"], seeds=task["n_runs"],
                          seed=task["seed"], threshold=task["threshold"], method=task["method"], threads=1,
                          progress=False, record_every=10**12)
    return [{"run": k, "status": str(result.status[k]), "escape_time": float(result.escape_time[k]),
             "diverge_time": float(result.diverge_time[k])}
            for k in range(task["n_runs"])]


def _encode(rows):
    # JSON has no inf: store it as a string and restore it on reading
    return json.dumps([{k: (repr(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                       for r in rows])


def _decode(text):
    special = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
    return [{k: special.get(v, v) if isinstance(v, str) and v in special else v for k, v in r.items()}
            for r in json.loads(text)]


def _write_atomic(path: Path, text: str):
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def sweep(spec, scheduler=None, workers=2, processes=True, progress=None, output=None) -> SweepResult:
    """Run a grid of simulations and predictions as independent dask tasks.

    Parameters
    ----------
    spec : str, os.PathLike or dict
        A TOML sweep specification (see ``symlora sweep --help`` and the
        README for its keys) or its content as a dict.
    scheduler : str, optional
        ``None``: start a ``dask.distributed.LocalCluster`` with ``workers``
        single-threaded workers; an address (``tcp://host:8786``): use that
        running scheduler (e.g. one started by dask-jobqueue on SLURM/PBS);
        ``"inline"``: run the tasks one after the other in this process,
        without dask.
    workers : int
        Workers of the local cluster.
    processes : bool
        Local cluster workers as processes (default) or threads.
    progress : bool, optional
        tqdm bar over tasks (default: when stderr is a terminal).
    output : path, optional
        Overrides the spec's ``output``.

    Returns
    -------
    SweepResult

    Notes
    -----
    Every task is keyed by a hash of its parameters (including its seed and
    the symlora version) and its rows are stored under that key in the
    cache folder as soon as it finishes, by this process: an interrupted
    sweep resumes where it stopped and a repeated one runs nothing.  The
    row with ``seed`` and ``run`` is run ``run`` of
    ``simulate_sgd(model, mu, d, seeds=run + 1, seed=seed, ...)`` (a run does
    not depend on how many runs share its call).  Results do not depend on
    the scheduler or the number of workers.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> spec = {"pairs": ["x"], "mu": [0.5], "d": [100], "runs": 2, "output": "runs.csv"}
    >>> res = sweep(read_spec(spec, base=folder), scheduler="inline")
    >>> res.n_rows, res.columns["status"].tolist()
    (2, ['escaped', 'escaped'])
    >>> sweep(read_spec(spec, base=folder), scheduler="inline").n_cached
    2
    """
    from tqdm.auto import tqdm

    if not hasattr(spec, "pairs"):
        spec = read_spec(spec)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out_path = Path(output) if output is not None else spec.output
    if out_path.suffix not in (".parquet", ".csv"):
        raise ValueError(f"output must end in .parquet or .csv, got {out_path.name!r}")
    sims, preds = simulation_tasks(spec), prediction_tasks(spec)
    tasks = sims + preds
    keys = [task_key(t) for t in tasks]
    spec.cache.mkdir(parents=True, exist_ok=True)
    rows, todo = {}, []
    for key, task in zip(keys, tasks):
        file = spec.cache / f"{key}.json"
        if file.exists():
            rows[key] = _decode(file.read_text())
        else:
            todo.append((key, task))
    n_cached = len(tasks) - len(todo)
    bar = tqdm(total=len(tasks), initial=n_cached, desc="sweep", unit="task",
               disable=None if progress is None else not progress)
    try:
        for key, value in _execute(todo, scheduler, workers, processes):
            _write_atomic(spec.cache / f"{key}.json", _encode(value))
            rows[key] = value
            bar.update()
    finally:
        bar.close()
    columns = _table(spec, sims, preds, keys, rows)
    _write_table(columns, out_path)
    return SweepResult(columns=columns, path=out_path, n_tasks=len(tasks), n_cached=n_cached)


def _execute(todo, scheduler, workers, processes):
    """Yield ``(key, rows)`` as tasks finish."""
    if not todo:
        return
    if scheduler == "inline":
        for key, task in todo:
            yield key, run_task(task)
        return
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise ImportError("sweeps run on dask.distributed: pip install 'symlora[sweep]'") from exc
    import logging

    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        cluster, client = None, Client(scheduler)
    try:
        futures = {client.submit(run_task, task, key=f"symlora-{key}", pure=False): key for key, task in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _table(spec, sims, preds, keys, rows):
    key_of = dict(zip((id(t) for t in sims + preds), keys))
    predicted = {}
    for task in preds:
        point = (task["pair"], task["mu"], task["lr"], task["batch"], task["noise"], task["d"])
        predicted[point] = rows[key_of[id(task)]][0]
    table = {c: [] for c in COLUMNS}
    for task in sims:
        point = (task["pair"], task["mu"], task["lr"], task["batch"], task["noise"], task["d"])
        extra = predicted.get(point, {"tau": math.nan, "predicted_slope": math.nan, "ode_escape_time": math.nan})
        for row in rows[key_of[id(task)]]:
            values = {**task, **row, **extra,
                      "t_max": math.nan if task["t_max"] is None else task["t_max"]}
            for c in COLUMNS:
                table[c].append(values[c])
    return {c: np.array(v) for c, v in table.items()}


def _write_table(columns, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ImportError("Parquet output needs pyarrow: pip install 'symlora[sweep]', or write .csv") from exc
        pq.write_table(pa.table({c: v.tolist() for c, v in columns.items()}), path)
    else:
        import csv

        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(list(columns))
            writer.writerows(zip(*(v.tolist() for v in columns.values())))
