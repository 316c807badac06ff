"""Escape of He3 at its critical μ (a(μc) = 0) by SGD simulation, against ``predict_escape``.

At ``μc`` (the real root of ``5μ³ + 5μ² + μ - 1``) the ``d → ∞`` ODE from
``u0 = 0`` never moves; escape is driven by the finite-``d`` noise
(:mod:`symlora._critical`).  For each ``d`` this runs the reduced chain
(``runs`` runs, η from ``--lr``, B = 1), stores the escape steps (``-1``
censored, ``-2`` diverged) in ``notebooks/data/critical_he3_times.npz``, and
writes ``notebooks/data/critical_he3.csv``: simulated mean and standard
error of the escape time, prediction, and the exponent ``p`` of a
least-squares fit ``log t = log C + p log d`` over the given ``d`` for both.

The cost is ``d · t_esc ∝ d² log d`` steps per run: d = 10^4 at η = 0.5 is
about 10^8 steps per run.  Run niced, e.g.::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/critical_he3.py --d 100 300 1000 3000 10000 --runs 200
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np
import sympy as sp

from symlora import LoRAModel, simulate_sgd

DATA = Path(__file__).parent.parent / "notebooks" / "data"
MU_C = float(sp.CRootOf(sp.Symbol("x") ** 3 * 5 + 5 * sp.Symbol("x") ** 2 + sp.Symbol("x") - 1, 0).evalf(30))


def simulate(model, d, runs, seed, t_max, store, chunk):
    """Escape steps of ``runs`` runs (``-1`` censored, ``-2`` diverged), read from or added to ``store``."""
    key = f"{float(model.lr)}|{d}|{runs}|{seed}"
    data = dict(np.load(store)) if store.exists() else {}
    stored = [k for k in data if k.startswith(f"{float(model.lr)}|{d}|")]
    if stored:  # any stored set of runs at this (η, d): its size is in the key and the table
        return data[stored[0]][:-1], float(data[stored[0]][-1])
    start = time.time()
    pieces = []
    for index, first in enumerate(range(0, runs, chunk)):
        run = simulate_sgd(model, MU_C, d, seeds=min(chunk, runs - first), seed=seed + 10**6 * index,
                           method="reduced", record_every=10**9, t_max=t_max)
        steps = np.where(np.asarray(run.escaped), np.round(np.asarray(run.escape_time) * d), -1)
        pieces.append(np.where(np.asarray(run.status) == "diverged", -2, steps).astype(np.int64))
    seconds = time.time() - start
    steps = np.concatenate(pieces)
    data = dict(np.load(store)) if store.exists() else {}
    data[key] = np.append(steps, round(seconds, 1))
    store.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(store, **data)
    return steps, seconds


def fitted_exponent(d, t, se=None):
    """Slope and its standard error of the (weighted) least-squares line of ``log t`` against ``log d``."""
    x, y = np.log(d), np.log(t)
    w = np.ones_like(x) if se is None else (t / se) ** 2  # var(log t) ≈ (se/t)²
    X = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    coef = cov @ X.T @ (w * y)
    return float(coef[1]), float(math.sqrt(cov[1, 1])) if se is not None else float("nan")


def log_slope(d, t, se=None):
    """Slope and its standard error of the (weighted) least-squares line of ``t/d`` against ``log d``.

    The law ``t ≈ C d log d + C' d`` is the straight line ``t/d = C log d + C'``: its slope is ``C``.
    """
    x, y = np.log(d), np.asarray(t) / d
    w = np.ones_like(x) if se is None else (d / np.asarray(se)) ** 2
    X = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    coef = cov @ X.T @ (w * y)
    return float(coef[1]), float(math.sqrt(cov[1, 1])) if se is not None else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", nargs="+", type=int, default=[100, 300, 1000, 3000, 10000])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--chunk", type=int, default=20, help="runs per simulate_sgd call (its CPU budget)")
    parser.add_argument("--simulate-only", action="store_true")
    parser.add_argument("--times", type=Path, default=DATA / "critical_he3_times.npz")
    parser.add_argument("--out", type=Path, default=DATA / "critical_he3.csv")
    args = parser.parse_args(argv)
    model = LoRAModel("He3", lr=args.lr)
    law_prefactor = None
    rows = []
    for d in args.d:
        prediction = None if args.simulate_only else model.predict_escape(MU_C, [d])
        if law_prefactor is None:
            law_prefactor = model.predict_escape(MU_C, [10**4]).settings["prefactor"]
        t_max = 8 * law_prefactor * d * math.log(d)
        steps, seconds = simulate(model, d, args.runs, args.seed + d, t_max, args.times, args.chunk)
        times = steps[steps >= 0] / d
        row = {"lr": args.lr, "d": d, "runs": steps.size, "escaped": times.size, "diverged": int(np.sum(steps == -2)),
               "censored": int(np.sum(steps == -1)), "sim_mean": float(times.mean()) if times.size else math.nan,
               "sim_se": float(times.std(ddof=1) / math.sqrt(times.size)) if times.size > 1 else math.nan,
               "sim_std": float(times.std(ddof=1)) if times.size > 1 else math.nan,
               "pred_mean": math.nan if prediction is None else float(prediction.mean[0]),
               "pred_std": math.nan if prediction is None else float(prediction.std[0]),
               "law_mean": law_prefactor * d * math.log(d), "t_max": t_max, "sim_seconds": seconds}
        rows.append(row)
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    if args.simulate_only:
        return
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    d = np.array([r["d"] for r in rows], dtype=float)
    # rows where more than 10 % of the runs diverged are biased towards fast runs: left out of the fit
    ok = np.array([r["censored"] == 0 and r["escaped"] > 1 and r["diverged"] <= 0.1 * r["runs"] for r in rows])
    p_sim, p_sim_se = fitted_exponent(d[ok], np.array([r["sim_mean"] for r in rows])[ok],
                                      np.array([r["sim_se"] for r in rows])[ok])
    pred = np.array([r["pred_mean"] for r in rows])
    good = ok & np.isfinite(pred)
    p_pred, _ = fitted_exponent(d[good], pred[good])
    print(f"fitted exponent of d: simulation {p_sim:.3f} ± {p_sim_se:.3f} (d = {d[ok].astype(int).tolist()}), "
          f"prediction {p_pred:.3f} (d = {d[good].astype(int).tolist()})")


if __name__ == "__main__":
    main()
