"""The two-layer section of ``symlora reproduce``: τ(μ) of the paper's case and SGD against the ODE.

* ``tau_two_layer.png``: τ(μ) of the committee ``K = K* = 4``, ``r = 1``,
  ``D = diag(μ, μ, 1, 1)``, erf, readout ``1/K`` (from the linearisation:
  seconds), next to the single-index erf model.
* ``two_layer_trajectories.png``: finite-``d`` SGD of the same committee
  against its derived ODE after alignment (``μ = 0`` with ``--quick``,
  ``μ = 1/2`` otherwise): the ODE is derived and compiled in stages
  (docs/theory.md §9.5), seconds from an empty cache.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .._figures import STYLES, finish_axes, format_number
from ._comparison import compare_two_layer_with_ode
from ._model import TwoLayerLoRAModel
from ._sgd import simulate_two_layer_sgd

__all__ = ["two_layer_section"]


def two_layer_section(plt, out, quick=False) -> list:
    """Draw the two figures into ``out`` and return the report's markdown lines."""
    from .._model import LoRAModel

    mus = np.linspace(0.0, 0.9, 7 if quick else 19)
    tau_committee = np.array([TwoLayerLoRAModel("erf", hidden=4, pretraining=[m, m, 1, 1]).tau() for m in mus])
    tau_single = np.asarray(LoRAModel("erf").tau(np.maximum(mus, 1e-9)), dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.semilogy(mus, tau_committee, label="two-layer K = K* = 4, D = diag(μ, μ, 1, 1)", **STYLES[0])
    ax.semilogy(mus, tau_single, label="single index", **STYLES[1])
    finish_axes(ax, "μ", "τ (units of 1/η)", "erf, readout 1/K")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "tau_two_layer.png", dpi=120)
    plt.close(fig)

    # the paper's case against SGD of the full network: mu = 0 escapes in t ~ 35 (quick), mu = 1/2 in ~ 400
    mu, d, lr, seeds = (0, 300, 2, 4) if quick else (sp.Rational(1, 2), 500, 2, 8)
    model = TwoLayerLoRAModel("erf", hidden=4, pretraining=[mu, mu, 1, 1], lr=lr)
    tau = model.tau()
    horizon = 2 * tau / lr  # two e-folds of the linear growth: |M| from 0.15 to its plateau
    runs = simulate_two_layer_sgd(model, d, 1.6 * tau / (2 * lr) * np.log(d) + horizon, seeds=seeds, seed=2026)
    comparison = compare_two_layer_with_ode(model, runs, align=0.15, horizon=horizon)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, name in zip(axes, ("M11", "M12", "U11")):
        flip = np.sign(comparison.sgd["M11"][:, :1] + comparison.sgd["M12"][:, :1])  # (U, v) -> (-U, -v)
        for k in range(flip.shape[0]):
            ax.plot(comparison.t, flip[k] * comparison.sgd[name][k], color="0.6", lw=0.8,
                    label="SGD" if k == 0 else None)
            ax.plot(comparison.t, flip[k] * comparison.ode[name][k], "k--", lw=0.9, label="ODE" if k == 0 else None)
        finish_axes(ax, "time since |M| = 0.15", name, f"K = 4, μ = {format_number(float(mu), 3)}, d = {d}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "two_layer_trajectories.png", dpi=120)
    plt.close(fig)
    rows = [f"| {format_number(m, 3)} | {format_number(t, 5)} | {format_number(s, 5)} |"
            for m, t, s in zip(mus, tau_committee, tau_single)]
    return ["## Two-layer student with a LoRA adapter", "",
            "τ of the committee K = K* = 4, r = 1, D = diag(μ, μ, 1, 1), erf, readout 1/K, from the "
            "linearisation at W = W0 (`symlora.TwoLayerLoRAModel`), next to the single-index model.", "",
            "| μ | τ two-layer | τ single index |", "|---|---|---|", *rows, "",
            "![tau two-layer](tau_two_layer.png)", "",
            f"SGD of the same committee (K = K* = 4, r = 1, μ = {format_number(float(mu), 3)}, η = {lr}, d = {d}, "
            f"{comparison.align_time.size} of {seeds} runs) against its derived ODE, each run's ODE started from its "
            f"own state at |M| = 0.15: max |ODE − SGD| of M = {format_number(comparison.max_deviation, 3)} "
            f"(fluctuations are of order d^-1/2 = {format_number(d ** -0.5, 3)}; "
            "`benchmarks/bench_two_layer_committee.py` runs μ = 0.5 and 0.2 at d = 1000).", "",
            "![two-layer trajectories](two_layer_trajectories.png)", ""]
