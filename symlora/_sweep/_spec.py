"""A sweep specification: reading the TOML file, checking it, expanding it into tasks."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import dataclass
from itertools import product
from pathlib import Path

__all__ = ["SweepSpec", "read_spec", "simulation_tasks", "prediction_tasks", "task_key"]

#: Keys of a spec, with what each holds (the error messages quote this).
KEYS = {
    "pairs": "labels of standard pairs (symlora.models) or tables {student = ..., teacher = ...}",
    "mu": "pre-training strengths, numbers >= 0",
    "lr": "learning rates eta, numbers > 0 (default [1.0])",
    "batch": "batch sizes, integers >= 1 (default [1])",
    "noise": "label-noise variances, numbers >= 0 (default [0.0])",
    "d": "input dimensions, integers >= 2",
    "runs": "runs per grid point, an integer >= 1",
    "runs_per_task": "runs simulated by one task, an integer >= 1 (default: runs)",
    "seed": "base seed, an integer >= 0 (default 0)",
    "method": '"reduced" or "full" (default "reduced")',
    "threshold": "escape threshold on |m|, in (0, 1) (default 0.5)",
    "t_max": "horizon in t = steps/d, a number > 0 (default: from tau)",
    "predictions": "also evaluate tau, the predicted slope and the ODE escape time, true or false (default true)",
    "output": "table to write, a .parquet or .csv path relative to the spec (default sweep.parquet)",
    "cache": "cache folder, relative to the spec (default .symlora-sweep-cache)",
}


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep: the grid, the run settings and where results go."""

    pairs: tuple  # ((label, student, teacher), ...)
    mu: tuple
    lr: tuple
    batch: tuple
    noise: tuple
    d: tuple
    runs: int
    runs_per_task: int
    seed: int
    method: str
    threshold: float
    t_max: float | None
    predictions: bool
    output: Path
    cache: Path


def _fail(key, message):
    raise ValueError(f"sweep spec: {key!r} {message} ({KEYS.get(key, '')})")


def _numbers(spec, key, default, *, integer=False, minimum=None, strict=False):
    values = spec.get(key, default)
    if values is None:
        _fail(key, "is required")
    if not isinstance(values, list):
        values = [values]
    if not values:
        _fail(key, "is empty")
    kind = numbers.Integral if integer else numbers.Real
    for value in values:
        if isinstance(value, bool) or not isinstance(value, kind):
            _fail(key, f"must hold {'integers' if integer else 'numbers'}, got {value!r}")
        if not math.isfinite(value):
            _fail(key, f"must be finite, got {value!r}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            _fail(key, f"must be {'>' if strict else '>='} {minimum}, got {value!r}")
    if len(set(values)) != len(values):
        _fail(key, f"repeats a value: {values}")
    return tuple(int(v) if integer else float(v) for v in values)


def _integer(spec, key, default, minimum):
    value = spec.get(key, default)
    if value is None:
        _fail(key, "is required")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(key, f"must be an integer, got {value!r}")
    if value < minimum:
        _fail(key, f"must be >= {minimum}, got {value!r}")
    return int(value)


def _pairs(spec):
    from ..models import DEFAULT_PAIRS

    raw = spec.get("pairs")
    if not isinstance(raw, list) or not raw:
        _fail("pairs", f"must be a non-empty list, got {raw!r}")
    pairs = []
    for item in raw:
        if isinstance(item, str):
            if item not in DEFAULT_PAIRS:
                _fail("pairs", f"has unknown label {item!r}; known: {', '.join(DEFAULT_PAIRS)}")
            pairs.append((item, *DEFAULT_PAIRS[item]))
        elif isinstance(item, dict):
            extra = set(item) - {"student", "teacher"}
            if extra or not isinstance(item.get("student"), str):
                _fail("pairs", f"table {item!r} must have a text 'student' and optionally 'teacher'")
            teacher = item.get("teacher", item["student"])
            if not isinstance(teacher, str):
                _fail("pairs", f"teacher in {item!r} must be text")
            pairs.append((f"{item['student']}/{teacher}", item["student"], teacher))
        else:
            _fail("pairs", f"entries must be labels or tables, got {item!r}")
    if len({p[0] for p in pairs}) != len(pairs):
        _fail("pairs", "repeats a pair")
    return tuple(pairs)


def read_spec(spec, base=None) -> SweepSpec:
    """Check a sweep given as a TOML file path or a mapping.

    Parameters
    ----------
    spec : str, os.PathLike or mapping
        A path to a TOML file, or its content as a dict.
    base : path, optional
        Folder that relative ``output`` and ``cache`` paths refer to
        (default: the spec file's folder, or the working directory).

    Raises
    ------
    TypeError
        ``spec`` is neither a path nor a mapping.
    ValueError
        Unreadable TOML, an unknown key, or a value of the wrong kind (the
        message names the key and what it must hold).
    OSError
        The file cannot be read.
    """
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        try:
            import tomllib
        except ModuleNotFoundError:  # Python < 3.11
            import tomli as tomllib
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"sweep spec {path}: not valid TOML ({exc})") from None
        base = path.resolve().parent if base is None else Path(base)
    elif isinstance(spec, dict):
        data = spec
        base = Path.cwd() if base is None else Path(base)
    else:
        raise TypeError(f"spec must be a path to a TOML file or a dict, got {type(spec).__name__}")
    unknown = set(data) - set(KEYS)
    if unknown:
        raise ValueError(f"sweep spec: unknown key(s) {sorted(unknown)}; allowed: {', '.join(KEYS)}")
    runs = _integer(data, "runs", None, 1)
    method = data.get("method", "reduced")
    if method not in ("reduced", "full"):
        _fail("method", f"must be 'reduced' or 'full', got {method!r}")
    threshold = _numbers(data, "threshold", 0.5, minimum=0, strict=True)
    if len(threshold) != 1 or not threshold[0] < 1:
        _fail("threshold", f"must be one number in (0, 1), got {data.get('threshold')!r}")
    t_max = None
    if "t_max" in data:
        t_max = _numbers(data, "t_max", None, minimum=0, strict=True)
        if len(t_max) != 1:
            _fail("t_max", "must be one number")
        t_max = t_max[0]
    predictions = data.get("predictions", True)
    if not isinstance(predictions, bool):
        _fail("predictions", f"must be true or false, got {predictions!r}")
    paths = {}
    for key, default in (("output", "sweep.parquet"), ("cache", ".symlora-sweep-cache")):
        value = data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            _fail(key, f"must be a non-empty path, got {value!r}")
        paths[key] = base / value
    if paths["output"].suffix not in (".parquet", ".csv"):
        _fail("output", f"must end in .parquet or .csv, got {paths['output'].name!r}")
    return SweepSpec(
        pairs=_pairs(data),
        mu=_numbers(data, "mu", None, minimum=0),
        lr=_numbers(data, "lr", [1.0], minimum=0, strict=True),
        batch=_numbers(data, "batch", [1], integer=True, minimum=1),
        noise=_numbers(data, "noise", [0.0], minimum=0),
        d=_numbers(data, "d", None, integer=True, minimum=2),
        runs=runs,
        runs_per_task=min(_integer(data, "runs_per_task", runs, 1), runs),
        seed=_integer(data, "seed", 0, 0),
        method=method,
        threshold=threshold[0],
        t_max=t_max,
        predictions=predictions,
        output=paths["output"],
        cache=paths["cache"],
    )


def task_key(task: dict) -> str:
    """Hash of a task's parameters (and the symlora version): its cache key."""
    from .. import __version__

    text = json.dumps({"task": task, "symlora": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _grid(spec):
    for (label, student, teacher), mu, lr, batch, noise in product(spec.pairs, spec.mu, spec.lr, spec.batch,
                                                                   spec.noise):
        yield {"pair": label, "student": student, "teacher": teacher, "mu": mu, "lr": lr, "batch": batch,
               "noise": noise}


def simulation_tasks(spec: SweepSpec) -> list:
    """One task per grid point, ``d`` and chunk of runs, each with its own seed.

    The seed of a task is derived from the base seed and the task's own
    parameters, so adding values to the grid changes no existing task.
    """
    tasks = []
    for point in _grid(spec):
        for d in spec.d:
            for first in range(0, spec.runs, spec.runs_per_task):
                task = {"kind": "simulation", **point, "d": d, "first_run": first,
                        "n_runs": min(spec.runs_per_task, spec.runs - first), "method": spec.method,
                        "threshold": spec.threshold, "t_max": spec.t_max}
                material = json.dumps({"base_seed": spec.seed, **task}, sort_keys=True).encode()
                task["seed"] = int(hashlib.sha256(material).hexdigest()[:15], 16)
                tasks.append(task)
    return tasks


def prediction_tasks(spec: SweepSpec) -> list:
    """One task per grid point and ``d``: τ, the predicted slope, the ODE escape time."""
    if not spec.predictions:
        return []
    return [{"kind": "prediction", **point, "d": d, "threshold": spec.threshold}
            for point in _grid(spec) for d in spec.d]
