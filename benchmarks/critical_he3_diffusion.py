"""He3 at its critical μ: the diffusion approximation (drift + order-1/d diffusion) against ``predict_escape``.

The critical-μ law of :mod:`symlora._critical` is derived from the drift of
the ODE and the order-``1/d`` diffusion of :meth:`LoRAModel.diffusion` alone.
This script checks that derivation on its own ground, over two decades of
``d``, by Euler–Maruyama integration of the two-dimensional SDE

    d(m, u) = f(m, u) dt + (D(m, u)/d)^{1/2} dW

with the package's generated drift ``f`` and diffusion ``D`` (nothing about
He3 is re-implemented here).  SGD itself (``benchmarks/critical_he3.py``)
agrees with this SDE only once the per-step gradient noise has summed to a
Gaussian over one relaxation time of ``u``: the excess kurtosis of the
stationary ``u`` is about ``κ₄ η b / (B d)`` (``κ₄`` the excess kurtosis of one
sample's ``g ζ``, 6468 for He3 at μc), i.e. ``1.9·10⁴/d`` at η = 0.5.

The SDE costs ``t_esc / dt`` vectorised steps (``dt`` = 0.02 by default, a
bias of about ``η b dt / 2 ≈ 3 %`` on ``⟨u²⟩``; ``--dt`` to check it).
Results go to ``notebooks/data/critical_he3_diffusion.csv``.  Run niced::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/critical_he3_diffusion.py --d 1000 3000 10000 30000 100000
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np
from critical_he3 import MU_C, fitted_exponent

from symlora import LoRAModel
from symlora._codegen import compile_ode

DATA = Path(__file__).parent.parent / "notebooks" / "data"


def escape_times(model, d, runs, dt, threshold, seed):
    """Euler–Maruyama escape times of ``runs`` SDE paths from ``m0 ~ N(0, 1/d)``, ``u0 = 0`` (NaN: not escaped)."""
    drift = compile_ode(model.ode_system()).rhs
    diffusion = model.diffusion_function()
    rng = np.random.default_rng(seed)
    m = rng.standard_normal(runs) / math.sqrt(d)
    u = np.zeros(runs)
    times = np.full(runs, np.nan)
    active = np.arange(runs)
    t, scale, horizon = 0.0, math.sqrt(dt / d), 20.0 * d
    while active.size and t < horizon:
        x = np.array([m[active], u[active]])
        f = drift(x, MU_C)
        D = diffusion(x[0], x[1], MU_C)
        # Cholesky factor of the 2x2 covariance, column by column (D is positive semi-definite)
        l11 = np.sqrt(np.maximum(D[0, 0], 0.0))
        l21 = np.divide(D[0, 1], l11, out=np.zeros_like(l11), where=l11 > 0)
        l22 = np.sqrt(np.maximum(D[1, 1] - l21**2, 0.0))
        z1, z2 = rng.standard_normal((2, active.size))
        m[active] = x[0] + f[0] * dt + scale * l11 * z1
        u[active] = x[1] + f[1] * dt + scale * (l21 * z1 + l22 * z2)
        t += dt
        hit = np.abs(m[active]) >= threshold
        times[active[hit]] = t
        active = active[~hit]
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", nargs="+", type=int, default=[1000, 3000, 10000, 30000, 100000])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--dt", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DATA / "critical_he3_diffusion.csv")
    args = parser.parse_args(argv)
    model = LoRAModel("He3", lr=args.lr)
    rows = []
    for d in args.d:
        start = time.time()
        times = escape_times(model, d, args.runs, args.dt, 0.5, args.seed + d)
        escaped = times[np.isfinite(times)]
        prediction = model.predict_escape(MU_C, [d])
        rows.append({"lr": args.lr, "dt": args.dt, "d": d, "runs": args.runs, "escaped": escaped.size,
                     "sde_mean": float(escaped.mean()), "sde_se": float(escaped.std(ddof=1) / math.sqrt(escaped.size)),
                     "sde_std": float(escaped.std(ddof=1)), "pred_mean": float(prediction.mean[0]),
                     "pred_std": float(prediction.std[0]), "seconds": round(time.time() - start, 1)})
        print(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as handle:  # rewritten after every d: a long run loses nothing
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if len(rows) > 1:
        d = np.array([r["d"] for r in rows], dtype=float)
        p, p_se = fitted_exponent(d, np.array([r["sde_mean"] for r in rows]), np.array([r["sde_se"] for r in rows]))
        q, _ = fitted_exponent(d, np.array([r["pred_mean"] for r in rows]))
        print(f"fitted exponent of d: SDE {p:.3f} ± {p_se:.3f}, prediction {q:.3f} (d = {d.astype(int).tolist()})")


if __name__ == "__main__":
    main()
