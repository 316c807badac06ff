"""Validation of symlora.predict_escape against the reduced SGD simulator.

For each (pair, mu, d): the predicted mean, standard deviation and distribution
of the escape time against ``runs`` simulated runs (``v0`` uniform, ``u0 = 0``):
the difference of the means in standard errors, the ratio of the standard
deviations and a two-sample-free KS test of the runs against the predicted
distribution function.  At He3's critical mu (a = 0) it also fits the exponent
of d of the simulated and the predicted means over the same dimensions.

Writes one CSV row per setting (default: notebooks/data/finite_d.csv) and
prints the table.  Run (about 10 CPU minutes with the numba simulator):

    nice -n 10 python benchmarks/bench_predict.py [--quick] [--out PATH]

With ``--timing`` it only times ``predict_escape`` itself (no simulation):
CPU seconds per pair on a fresh model, as a ratio to the ``x``/``x`` pair
measured in the same run, and the cost of the diffusion matrix at one state
on its two routes (the fields beyond ``λ, ν`` removed by integration by
parts, as ``LoRAModel.diffusion`` does, against the direct three-dimensional
quadrature it replaced):

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_predict.py --timing
"""

import argparse
import csv
import math
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from symlora import LoRAModel, simulate_sgd

#: (student, teacher, mu) at eta = 0.5, B = 1: two mu per pair.
PAIRS = [
    ("x", None, 0.3), ("x", None, 0.6),
    ("relu", None, 0.3), ("relu", None, 0.5),
    ("tanh", None, 0.3), ("tanh", None, 0.5),
    ("x", "x**2", 0.5), ("x", "x**2", 0.8),
]
MU_C_HE3 = 0.320724347323  # real root of 5 mu^3 + 5 mu^2 + mu - 1


def compare(model, mu, d, runs, seed, prediction, t_max=None):
    k = list(prediction.d).index(d)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = simulate_sgd(model, mu, d, seeds=runs, seed=seed, method="reduced", record_every=10**9,
                              t_max=t_max)
    times = result.escape_time[result.escaped]
    se = times.std(ddof=1) / math.sqrt(times.size)
    ks = stats.kstest(times, lambda t: prediction.cdf(t, d)).pvalue if prediction._cdf else float("nan")
    return {
        "pair": model.student.name if model.teacher == model.student else f"{model.student.name}/{model.teacher.name}",
        "mu": mu, "eta": float(model.lr), "d": d, "runs": runs, "escaped": int(times.size),
        "diverged": int(np.sum(result.status == "diverged")), "censored": int(np.sum(result.status == "censored")),
        "pred_mean": float(prediction.mean[k]), "sim_mean": float(times.mean()), "sim_se": float(se),
        "z": float((times.mean() - prediction.mean[k]) / se), "pred_std": float(prediction.std[k]),
        "sim_std": float(times.std(ddof=1)), "ks_p": float(ks), "law": prediction.law,
        "status": prediction.status, "sim_seconds": round(time.perf_counter() - start, 1),
    }


#: Pairs timed by ``--timing``; the first is the baseline of the ratios.
TIMED = [("x", None), ("tanh", None), ("sigmoid", None), ("tanh", "relu"), ("x", "x**2")]


def _cpu(function):
    start = time.process_time()
    value = function()
    return value, time.process_time() - start


def time_predictions(pairs=TIMED, mu=0.3, dims=(250, 2500, 25000), out=print):
    """CPU seconds of ``predict_escape`` per pair (fresh model), and the ratio to the first pair."""
    rows = []
    for student, teacher in pairs:
        model = LoRAModel(student, teacher, lr=0.5)
        _, derive = _cpu(lambda: (model.ode_system(), model.diffusion_function()))
        prediction, predict = _cpu(lambda: model.predict_escape(mu, list(dims)))
        rows.append((f"{student}/{teacher or student}", derive, predict, prediction.mean[0]))
    base = rows[0][2]
    out(f"{'pair':>12} {'derive+compile s':>16} {'predict s':>9} {'ratio':>7}  mean at d = {dims[0]}")
    for name, derive, predict, mean in rows:
        out(f"{name:>12} {derive:>16.2f} {predict:>9.2f} {predict / base:>7.2f}  {mean:.10g}")
    return rows


def time_diffusion_routes(student="tanh", mu=0.3, state=(0.2, -0.1), out=print):
    """CPU seconds of ``E[g² ζ²]`` (the u-noise) at one state, on the two routes, and their ratio."""
    import sympy as sp

    from symlora import _symbols as S
    from symlora._codegen import compile_expressions
    from symlora._diffusion import _XI, _fields, _integrated_by_parts, _label_average
    from symlora._expectation import gaussian_expectation

    model = LoRAModel(student, lr=0.5)
    fields, cov, values = _fields(model)
    lam, nu, zeta = fields
    g = (model.student(lam) - model.teacher(nu) - sp.sqrt(model.noise) * _XI) * model.student.derivative_at(lam)
    expr = _label_average(g**2 * zeta**2)
    values = {**values, **model.overlaps()}
    results = {}
    for name, entry in (("direct 3-D", gaussian_expectation(expr, fields, cov)),
                        ("by parts 2-D", _integrated_by_parts(expr, fields, cov))):
        compiled = compile_expressions((S.m, S.u, S.mu), [entry.xreplace(values).xreplace(values)], name=name)
        compiled(*state, mu)  # compile the nodes before timing
        (value,), seconds = _cpu(lambda: compiled(*state, mu))
        results[name] = (float(value), seconds)
        out(f"{name:>13}: E[g² ζ²] = {float(value):.15g} in {seconds * 1e3:.2f} ms CPU")
    ratio = results["direct 3-D"][1] / max(results["by parts 2-D"][1], 1e-9)
    out(f"speed-up of the diffusion at one state: {ratio:.0f}x; difference "
        f"{abs(results['direct 3-D'][0] - results['by parts 2-D'][0]):.1e}")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d = 250, 1000 and 300 runs")
    parser.add_argument("--timing", action="store_true", help="only time predict_escape (see the module notes)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "notebooks" / "data" /
                                             "finite_d.csv"))
    args = parser.parse_args()
    if args.timing:
        time_diffusion_routes()
        time_predictions()
        return
    dims = [250, 1000] if args.quick else [250, 1000, 4000]
    runs = 300 if args.quick else 1000
    rows = []
    for k, (student, teacher, mu) in enumerate(PAIRS):
        model = LoRAModel(student, teacher, lr=0.5)
        prediction = model.predict_escape(mu, dims)
        for d in dims:
            rows.append(compare(model, mu, d, runs, 100 + k, prediction))
            print(rows[-1], flush=True)
    he3 = LoRAModel("x**3 - 3*x", lr=0.5)
    crit_dims = [1000] if args.quick else [1000, 2000, 4000]
    prediction = he3.predict_escape(MU_C_HE3, crit_dims)
    for k, d in enumerate(crit_dims):
        rows.append(compare(he3, MU_C_HE3, d, 100 if args.quick else 200, 7, prediction,
                            t_max=6 * float(prediction.mean[k])))
        print(rows[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    crit = [r for r in rows if r["mu"] == MU_C_HE3]
    if len(crit) >= 2:
        logd = np.log([r["d"] for r in crit])
        sim = np.polyfit(logd, np.log([r["sim_mean"] for r in crit]), 1)[0]
        pred = np.polyfit(logd, np.log([r["pred_mean"] for r in crit]), 1)[0]
        print(f"He3 at mu_c: fitted exponent of d, simulated {sim:.3f}, predicted {pred:.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
