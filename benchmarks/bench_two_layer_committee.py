"""The paper's two-layer case against symlora's own SGD (docs/theory.md §9.5, §9.6).

Committee ``K = K* = 4``, erf units, readout ``1/K``, rank ``r = 1``,
``D = diag(μ, μ, 1, 1)``.  The script

1. derives the ODE with an empty disk cache and compiles it (cold CPU time),
   and times the old tidy step of one four-field erf shape (deep expansion
   before ``factor(together(...))``) against the current one in the same run;
2. simulates the full network at dimension ``d`` (8 runs per ``μ``) and
   compares each run with the ODE started from its own state at ``|M| = 0.15``
   (:func:`symlora.two_layer.compare_two_layer_with_ode`), for ``2τ/η``
   after that.  ``tests/test_two_layer_committee.py`` runs :func:`compare`
   at ``μ = 0``, ``d = 300``.

Per run, ``gap_k = max over time and M_1j of |ODE - SGD|``; the script prints
the largest, the mean with its standard error, and the gap of the run-averaged
trajectories (which shrinks with ``d`` where a per-run gap is dominated by
``O(d^{-1/2})`` fluctuations).

Run: ``python benchmarks/bench_two_layer_committee.py [d] [mu ...]``
(defaults ``d = 1000``, ``μ = 0.5, 0.2``; a few minutes of CPU per ``μ = 0.5``).
"""

import os
import sys
import tempfile
import time

import numpy as np
import sympy as sp

from symlora import TwoLayerLoRAModel, gaussian_expectation
from symlora._codegen import compile_ode
from symlora.two_layer import compare_two_layer_with_ode, simulate_two_layer_sgd

LR, SEEDS, ALIGN = 2, 8, 0.15


def tidy_ratio():
    """CPU of the old tidy step (deep expansion first) over the current one, on E[σ'σ' σ σ] of four fields."""
    import symlora._closed_forms as closed
    import symlora._expectation as engine

    X = sp.symbols("X0:4", real=True)
    c = sp.Matrix(4, 4, lambda i, j: sp.Symbol(f"c{min(i, j)}{max(i, j)}", positive=(i == j), real=True))
    integrand = sp.exp(-X[0] ** 2) * sp.exp(-X[1] ** 2) * sp.erf(X[2]) * sp.erf(X[3])
    t0 = time.process_time()
    current = gaussian_expectation(integrand, X, c)
    t_current = time.process_time() - t0

    def deep_tidy(expr):  # the previous tidy: expand everything, then put the arcsine arguments together
        expr = sp.expand(expr)
        expr = expr.replace(sp.asin, lambda arg: sp.asin(sp.factor(sp.together(arg))))
        atoms = sorted(expr.atoms(sp.asin), key=sp.default_sort_key)
        collected = sp.collect(expr, atoms, evaluate=False)
        return sp.Add(*[sp.factor_terms(sp.cancel(v)) * (a if a != 1 else 1) for a, v in collected.items()])

    saved = engine._tidy
    engine._tidy = lambda e: deep_tidy(e) if e.has(sp.asin) and sp.count_ops(e) <= closed._TIDY_LIMIT else saved(e)
    engine._cached_expectation.cache_clear()
    try:
        t0 = time.process_time()
        old = gaussian_expectation(integrand, X, c)
        t_old = time.process_time() - t0
    finally:
        engine._tidy = saved
        engine._cached_expectation.cache_clear()
    print(f"four-field erf shape: {t_old:.2f} s (deep expansion) vs {t_current:.2f} s now, ratio "
          f"{t_old / t_current:.0f}x; same closed form: {old == current}")


def cold_derivation(mu):
    t0 = time.process_time()
    model = TwoLayerLoRAModel("erf", hidden=4, pretraining=[mu, mu, 1, 1], lr=LR)
    system = model.ode_system()
    t1 = time.process_time()
    compiled = compile_ode(system)
    state = np.full((len(system.states), SEEDS), 0.05)
    compiled.rhs(state)
    t2 = time.process_time()
    staged = sum(sp.count_ops(e) for _, e in system.definitions) + sum(sp.count_ops(e) for e in system.rhs)
    replacements, reduced = sp.cse([e for _, e in system.definitions] + list(system.rhs))
    after = sum(sp.count_ops(e) for _, e in replacements) + sum(sp.count_ops(e) for e in reduced)
    n = 200
    t3 = time.process_time()
    for _ in range(n):
        compiled.rhs(state)
    per_call = (time.process_time() - t3) / n
    print(f"mu = {mu}: derive {t1 - t0:.1f} s, compile {t2 - t1:.1f} s (cold cache); staged system "
          f"{staged} ops, {after} after cse; rhs {1e3 * per_call:.2f} ms per call ({SEEDS} states)")
    return model


def compare(model, mu, d, seeds=SEEDS, out=print) -> dict:
    """SGD of ``model`` at dimension ``d`` against its ODE after alignment; prints and returns the gaps."""
    tau = model.tau()
    horizon = 2 * tau / LR  # two e-folds of the linear growth: |M| from 0.15 to most of its way up
    t_max = 1.6 * tau / (2 * LR) * np.log(d) + horizon  # mean escape ~ tau/(2 eta) log d, plus the spread
    t0 = time.process_time()
    runs = simulate_two_layer_sgd(model, d, t_max, seeds=seeds, seed=2026)
    t1 = time.process_time()
    comparison = compare_two_layer_with_ode(model, runs, align=ALIGN, horizon=horizon)
    t2 = time.process_time()
    names = [n for n in comparison.ode if n.startswith("M")]
    per_run = np.max([np.abs(comparison.ode[n] - comparison.sgd[n]).max(axis=1) for n in names], axis=0)
    mean_gap = max(np.abs((comparison.ode[n] - comparison.sgd[n]).mean(axis=0)).max() for n in names)
    norm = np.sqrt(sum(comparison.sgd[n][:, -1] ** 2 for n in names))
    sem = per_run.std(ddof=1) / np.sqrt(per_run.size) if per_run.size > 1 else np.nan
    out(f"mu = {mu}, d = {d}: tau = {tau:.4g}; SGD {t1 - t0:.0f} s, ODE {t2 - t1:.1f} s; "
        f"{comparison.align_time.size}/{seeds} runs aligned at t = {np.round(comparison.align_time, 1).tolist()}")
    out(f"    |M| from {ALIGN} to {norm.mean():.3f} ± {norm.std(ddof=1):.3f} over {horizon:.0f} time units; "
        f"max |ODE - SGD| of M: largest {per_run.max():.4f}, per run {per_run.mean():.4f} ± {sem:.4f} "
        f"(s.e.m.); run-averaged trajectories {mean_gap:.4f}; d^-1/2 = {d ** -0.5:.4f}")
    return {"runs": comparison.align_time.size, "final_norm": norm, "per_run_gap": per_run, "mean_gap": mean_gap}


def main():
    # a cold start: every shape derived again (symlora reads the variable when it first caches)
    os.environ["SYMLORA_CACHE_DIR"] = tempfile.mkdtemp(prefix="symlora-cold-")
    d = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    mus = [sp.nsimplify(m) for m in sys.argv[2:]] or [sp.Rational(1, 2), sp.Rational(1, 5)]
    tidy_ratio()
    for mu in mus:
        model = cold_derivation(mu)
        compare(model, mu, d)


if __name__ == "__main__":
    main()
