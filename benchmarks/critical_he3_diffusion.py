"""He3 at its critical μ: the diffusion approximation (drift + order-1/d diffusion) against ``predict_escape``.

The critical-μ law of :mod:`symlora._critical` is derived from the drift of
the ODE and the order-``1/d`` diffusion of :meth:`LoRAModel.diffusion` alone.
This script checks that derivation on its own ground, over two decades of
``d`` and more, by integrating the two-dimensional SDE

    d(m, u) = f(m, u) dt + (D(m, u)/d)^{1/2} dW

with the package's drift ``f`` and diffusion ``D``, printed by the package's
one code generator as scalar functions (:func:`symlora._codegen.scalar_function_source`)
and compiled by numba; nothing about He3 is re-implemented here.  SGD itself
(``benchmarks/critical_he3.py``) agrees with this SDE only once the per-step
gradient noise has summed to a Gaussian over one relaxation time of ``u``:
the excess kurtosis of the stationary ``u`` is about ``κ₄ η b / (B d)``
(``κ₄`` the excess kurtosis of one sample's ``g ζ``, 6468 for He3 at μc),
i.e. ``1.9·10⁴/d`` at η = 0.5.

Schemes (``--scheme``):

* ``exponential`` (default): ``u`` is a fast variable with damping ``η b ≈ 2.9``
  and a slow ``m``; its step is the exponential Euler step of the local
  linearisation ``J = ∂f_u/∂u`` (exact for an Ornstein–Uhlenbeck ``u`` at any
  ``dt``: no ``O(dt)`` bias of ``⟨u²⟩``), with the matching covariance of the
  noise over the step; ``m`` takes an Euler–Maruyama step.  ``dt`` is then
  limited by the coupling of ``m`` to ``u²`` only; halving ``dt`` checks it.
* ``euler``: plain Euler–Maruyama (bias ``≈ η b dt / 2`` on ``⟨u²⟩``).

Each path is integrated to ``|m| >= 0.5`` or to the horizon ``20 d``.  Rows go
to ``notebooks/data/critical_he3_diffusion.csv`` (one row per scheme, ``dt``
and ``d``; a rerun replaces its own rows and keeps the others).  Run niced::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/critical_he3_diffusion.py --d 1000 3000 10000 30000 100000
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/critical_he3_diffusion.py --lr 1 --dt 0.05 --d 10000 100000

(at η = 1 half the step keeps ``η b dt`` the same).  A path costs about
0.3 µs per step, so d = 10⁵ at η = 0.5 (500 paths, ``t_esc ≈ 1.2·10⁵``) is
about 3 CPU-minutes and d = 3·10⁵ (400 paths) about 10.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import sympy as sp
from critical_he3 import MU_C, fitted_exponent, log_slope

from symlora import LoRAModel
from symlora._codegen import scalar_function_source

DATA = Path(__file__).parent.parent / "notebooks" / "data"
FIELDS = ["lr", "dt", "d", "runs", "escaped", "sde_mean", "sde_se", "sde_std", "pred_mean", "pred_std", "seconds",
          "scheme"]

# The integration loop; `drift`, `diffusion` and `damping` are the generated scalar functions of (m, u, mu).
_LOOP = '''
def _phi(z):
    """(e^z - 1)/z, 1 at z = 0."""
    if abs(z) < 1e-8:
        return 1.0 + z / 2
    return math.expm1(z) / z


def escape_paths(m0, d, dt, threshold, horizon, mu, seed, exponential):
    np.random.seed(seed)
    times = np.full(m0.size, np.nan)
    for i in range(m0.size):
        m, u, t = m0[i], 0.0, 0.0
        while t < horizon:
            fm, fu = drift(m, u, mu)
            dmm, dmu, duu = diffusion(m, u, mu)
            if exponential:
                z = damping(m, u, mu) * dt
                p1, p2 = _phi(z), _phi(2 * z)
            else:
                p1, p2 = 1.0, 1.0
            # covariance over the step of (∫dW_m, ∫e^{J(dt-s)} dW_u) scaled by D/d
            vm, c, vu = dmm * dt / d, dmu * p1 * dt / d, duu * p2 * dt / d
            l11 = math.sqrt(max(vm, 0.0))
            l21 = c / l11 if l11 > 0 else 0.0
            l22 = math.sqrt(max(vu - l21 * l21, 0.0))
            z1, z2 = np.random.standard_normal(), np.random.standard_normal()
            m, u = m + fm * dt + l11 * z1, u + fu * p1 * dt + l21 * z1 + l22 * z2
            t += dt
            if abs(m) >= threshold:
                times[i] = t
                break
    return times
'''


def sde_kernel(model):
    """numba-compiled functions of ``model``'s SDE: ``escape_paths``, ``drift``, ``diffusion``, ``damping``.

    ``escape_paths(m0, d, dt, threshold, horizon, mu, seed, exponential)``
    integrates one path per entry of ``m0``.  The drift, the three distinct
    entries of the diffusion matrix and ``∂f_u/∂u`` are printed from the
    model's SymPy expressions by :func:`scalar_function_source`; only aligned
    rank-1 models (states ``m, u``, parameter ``mu``) are supported.
    """
    import numba

    system = model.ode_system()
    if len(system.states) != 2 or len(system.parameters) != 1:
        raise ValueError(f"the SDE kernel needs states (m, u) and one parameter mu, got {system.states}, "
                         f"{system.parameters}")
    m, u = system.states
    D = model.diffusion()
    if not all(e.is_polynomial(m, u) for e in D):
        # closed forms with a removable 0/0 at u = 0 (compile_diffusion moves u off 0); not needed for He3
        raise ValueError("the SDE kernel supports polynomial diffusion matrices only")
    args = (m, u) + tuple(system.parameters)
    source = "\n\n".join([
        "import math\nimport numpy as np",
        scalar_function_source("drift", args, list(system.rhs), "drift (f_m, f_u)"),
        scalar_function_source("diffusion", args, [D[0, 0], D[0, 1], D[1, 1]], "diffusion (D_mm, D_mu, D_uu)"),
        scalar_function_source("damping", args, sp.diff(system.rhs[1], u), "∂f_u/∂u"),
        _LOOP,
    ])
    namespace = {}
    exec(compile(source, f"<sde kernel of {model.name}>", "exec"), namespace)  # our own generated source
    for name in ("drift", "diffusion", "damping", "_phi", "escape_paths"):
        namespace[name] = numba.njit(namespace[name])
    return SimpleNamespace(**{k: namespace[k] for k in ("escape_paths", "drift", "diffusion", "damping")})


def escape_times(model, d, runs, dt, threshold, seed, scheme="exponential", kernel=None):
    """Escape times of ``runs`` SDE paths from ``m0 ~ N(0, 1/d)``, ``u0 = 0`` (NaN: not escaped by ``20 d``)."""
    kernel = kernel or sde_kernel(model)
    m0 = np.random.default_rng(seed).standard_normal(runs) / math.sqrt(d)
    return kernel.escape_paths(m0, float(d), float(dt), float(threshold), 20.0 * d, MU_C, int(seed) % 2**31,
                               scheme == "exponential")


def read_rows(path):
    """The stored rows (old files have no ``scheme`` column: those were Euler–Maruyama)."""
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [{**row, "scheme": row.get("scheme") or "euler"} for row in csv.DictReader(handle)]


def _key(row):
    return (row["scheme"], float(row["lr"]), float(row["dt"]), int(row["d"]))


def write_rows(path, new):
    """Rows of ``new`` replace stored rows with the same scheme, η, dt and d; the rest is kept."""
    keys = {_key(r) for r in new}
    rows = [r for r in read_rows(path) if _key(r) not in keys] + new
    rows.sort(key=lambda r: (r["scheme"], float(r["lr"]), float(r["dt"]), int(r["d"])))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", nargs="+", type=int, default=[1000, 3000, 10000, 30000, 100000])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--scheme", choices=["exponential", "euler"], default="exponential")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DATA / "critical_he3_diffusion.csv")
    args = parser.parse_args(argv)
    model = LoRAModel("He3", lr=args.lr)
    start = time.time()
    kernel = sde_kernel(model)
    kernel.escape_paths(np.zeros(1), 100.0, args.dt, 0.5, 1.0, MU_C, 0, True)  # compile outside the timed rows
    print(f"kernel generated and compiled in {time.time() - start:.1f} s", flush=True)
    rows = []
    for d in args.d:
        start = time.time()
        times = escape_times(model, d, args.runs, args.dt, 0.5, args.seed + d, args.scheme, kernel)
        seconds = time.time() - start
        escaped = times[np.isfinite(times)]
        prediction = model.predict_escape(MU_C, [d])
        rows.append({"lr": args.lr, "dt": args.dt, "d": d, "runs": args.runs, "escaped": escaped.size,
                     "sde_mean": float(escaped.mean()), "sde_se": float(escaped.std(ddof=1) / math.sqrt(escaped.size)),
                     "sde_std": float(escaped.std(ddof=1)), "pred_mean": float(prediction.mean[0]),
                     "pred_std": float(prediction.std[0]), "seconds": round(seconds, 1), "scheme": args.scheme})
        print(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()), flush=True)
        write_rows(args.out, rows)  # after every d: a long run loses nothing
    if len(rows) > 1:
        d = np.array([r["d"] for r in rows], dtype=float)
        p, p_se = fitted_exponent(d, np.array([r["sde_mean"] for r in rows]), np.array([r["sde_se"] for r in rows]))
        q, _ = fitted_exponent(d, np.array([r["pred_mean"] for r in rows]))
        print(f"fitted exponent of d: SDE {p:.3f} ± {p_se:.3f}, prediction {q:.3f} (d = {d.astype(int).tolist()})")
        c, c_se = log_slope(d, np.array([r["sde_mean"] for r in rows]), np.array([r["sde_se"] for r in rows]))
        law = model.predict_escape(MU_C, [int(d[0])]).settings["prefactor"]
        print(f"slope of t/d against log d: SDE {c:.4f} ± {c_se:.4f}, law's prefactor bB/(η²Vκ) {law:.4f}")


if __name__ == "__main__":
    main()
