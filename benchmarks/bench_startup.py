"""Benchmark: cold start of symlora — import, ``symlora --help``, derivations cold and cached.

Each number is measured in fresh interpreters (``python -c ...``), the way a
user pays it:

* ``import symlora`` (lazy: SymPy, SciPy, matplotlib, numba and dask are
  imported only when used), against ``import sympy`` and
  ``import numpy`` measured in the same run as baselines;
* ``symlora --help``;
* per standard pair: the ODE and the linearisation derived with an empty
  cache directory (cold), then again in a new process with the cache the
  first one wrote (cached), and the ratio.

Run: python benchmarks/bench_startup.py [--repeat N] [--pairs x,erf,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DERIVE = """
import json, sys, time
t0 = time.perf_counter()
from symlora import LoRAModel
from symlora import _diskcache
t1 = time.perf_counter()
student, teacher, pretraining, rank = json.loads(sys.argv[1])
model = LoRAModel(student, teacher, pretraining=pretraining, rank=rank)
model.ode()
t2 = time.perf_counter()
model.linearization()
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "ode": t2 - t1, "linearization": t3 - t2, "hits": _diskcache.STATS["hits"]}))
"""

PAIRS = {
    "x": ("x", None, "aligned", 1),
    "erf": ("erf", None, "aligned", 1),
    "relu": ("relu", None, "aligned", 1),
    "tanh": ("tanh", None, "aligned", 1),
    "He4": ("He4", None, "aligned", 1),
    "x/x^2": ("x", "x**2", "aligned", 1),
    "erf general": ("erf", None, "general", 1),
    "erf rank 2": ("erf", None, "aligned", 2),
}


def _env(cache):
    return dict(os.environ, SYMLORA_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))


def _wall(argv, env, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, env=env, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def _import_time(module, env, repeat):
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    values = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True,
                              text=True)
        values.append(float(done.stdout))
    return min(values)


def _derive(spec, env):
    done = subprocess.run([sys.executable, "-c", DERIVE, json.dumps(spec)], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per import timing (minimum kept)")
    parser.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated labels of " + ", ".join(PAIRS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as empty:
        env = _env(Path(empty) / "unused")
        numpy_s = _import_time("numpy", env, args.repeat)
        sympy_s = _import_time("sympy", env, args.repeat)
        symlora_s = _import_time("symlora", env, args.repeat)
        model_s = _import_time("symlora; symlora.LoRAModel", env, args.repeat)
        python_s = _wall([sys.executable, "-c", "pass"], env, args.repeat)
        help_s = _wall([sys.executable, "-m", "symlora.cli", "--help"], env, args.repeat)
    print(f"import symlora        {symlora_s * 1e3:8.1f} ms   (import numpy {numpy_s * 1e3:.1f} ms, "
          f"import sympy {sympy_s * 1e3:.1f} ms; ratio symlora/sympy {symlora_s / sympy_s:.2f})")
    print(f"symlora.LoRAModel     {model_s * 1e3:8.1f} ms   (first use of the model class: SymPy is loaded here)")
    print(f"symlora --help        {help_s * 1e3:8.1f} ms   (bare interpreter {python_s * 1e3:.1f} ms)")
    print()
    print(f"{'pair':<14}{'cold ode':>10}{'cold lin':>10}{'cold total':>12}{'cached total':>14}{'speed-up':>10}")
    for label in args.pairs.split(","):
        spec = PAIRS[label]
        with tempfile.TemporaryDirectory() as cache:
            env = _env(cache)
            cold = _derive(spec, env)
            cached = _derive(spec, env)
        assert cold["hits"] == 0 and cached["hits"] > 0, "the second process did not read the cache"
        cold_total = cold["ode"] + cold["linearization"]
        cached_total = cached["ode"] + cached["linearization"]
        print(f"{label:<14}{cold['ode']:>9.3f}s{cold['linearization']:>9.3f}s{cold_total:>11.3f}s"
              f"{cached_total:>13.3f}s{cold_total / cached_total:>9.1f}x")
    print("\n(times exclude the import, reported above; cold = empty cache directory, "
          "cached = a second process reading what the first wrote)")


if __name__ == "__main__":
    main()
