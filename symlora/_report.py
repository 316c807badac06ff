"""``symlora reproduce``: the whole analysis on the default pairs, as files.

Writes into an output folder:

* ``tex/<pair>.tex`` (one standalone document per pair) and ``tex/index.md``;
* ``tau.csv``: ``a``, ``b``, ``τ`` on a grid of ``μ`` for every pair;
* ``critical_mu.csv``: zeros of ``a(μ)`` in ``[0, 1]`` and the escape law there;
* ``escape_ode.csv``: ODE escape times against ``log(1/ε)``, slope vs ``τ/η``;
* ``escape_sgd.csv``: finite-``d`` SGD escape times against ``log d``;
* ``tau.png``, ``trajectories.png``, ``escape_log_d.png``, ``tau_plane.png`` (general
  pre-training) and ``report.md``.

The library does the work; this module only orchestrates and draws.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import sympy as sp

from ._plateau import finite_d_law
from ._figures import STYLES, describe_number, finish_axes, format_number, plot_tau_panel, tau_curve
from ._figures import pyplot as _pyplot
from ._figures import write_csv as _write_csv
from ._general_report import tau_plane_section
from ._escape_time import fit_escape_slope
from ._theory import THEORY_FILE, copy_theory, section_link
from .simulate import compare_with_ode, escape_slope, simulate_sgd
from .models import DEFAULT_PAIRS, model as pair_model

__all__ = ["reproduce"]

#: The pairs of ``reproduce --quick``: one of each kind (polynomial, erf, kinked, quadrature, a Hermite
#: pair with a critical μ, a mismatched teacher).
QUICK_PAIRS = ("x", "erf", "relu", "tanh", "He3", "x/x^2")




def reproduce(out="symlora-out", quick=False, progress=None, pairs=None) -> Path:
    """Run the analysis and write files, figures and ``report.md`` into ``out``.

    Parameters
    ----------
    out : str or os.PathLike
        Output folder (created if needed).
    quick : bool
        A reduced run: the pairs of :data:`QUICK_PAIRS` only (unless
        ``pairs`` is given), coarser grids and smaller SGD runs.
    progress : bool, optional
        Progress bar on stderr (default: when stderr is a terminal).
    pairs : sequence of str, optional
        Labels from :data:`symlora.models.DEFAULT_PAIRS` (default: all of
        them, or :data:`QUICK_PAIRS` with ``quick``).

    Returns
    -------
    pathlib.Path
        The report's path.
    """
    plt = _pyplot()
    out = Path(out)
    try:
        (out / "tex").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create output folder {out}: {exc.strerror or exc}") from exc
    copy_theory(out)
    if pairs is None:
        labels = list(QUICK_PAIRS if quick else DEFAULT_PAIRS)
    else:
        labels = list(pairs)
    for label in labels:
        if label not in DEFAULT_PAIRS:
            raise ValueError(f"unknown pair {label!r}; known pairs: {', '.join(DEFAULT_PAIRS)}")
    sgd_pairs = [p for p in ("x", "relu") if p in labels][: 1 if quick else 2]
    total = len(labels) * 3 + len(sgd_pairs) + 2
    from tqdm.auto import tqdm

    bar = tqdm(total=total, disable=None if progress is None else not progress, unit="task", leave=False)
    started = time.perf_counter()
    models = {}
    lines = ["# symlora reproduction report", ""]
    lines.append(
        "Aligned rank-1 LoRA, one-pass SGD, learning rate η/d with η = 1, batch 1, no label noise "
        f"({section_link(2, 'theory §2')}). τ is in units of 1/η; escape from m0 ~ d^(-1/2) takes about "
        f"(τ/(2η)) log d ({section_link(5, 'theory §5')}). The theory document is copied beside this report "
        f"as [{THEORY_FILE}]({THEORY_FILE})."
    )
    lines.append("")

    # -- derivation and LaTeX ---------------------------------------------------
    derivation_rows = []
    for label in labels:
        t0 = time.perf_counter()
        model = pair_model(label)
        model.ode()
        lin = model.linearization()
        models[label] = model
        derive_seconds = time.perf_counter() - t0
        bar.set_postfix_str(f"derive {label}", refresh=False)
        bar.update()
        safe = label.replace("/", "_over_").replace("^", "")
        (out / "tex" / f"{safe}.tex").write_text(model.to_latex())
        derivation_rows.append((label, model.student.name, model.teacher.name, "exact" if model.exact else
                                "quadrature", f"{derive_seconds:.2f}", sp.sstr(lin.a), sp.sstr(lin.b), f"tex/{safe}.tex"))
        bar.set_postfix_str(f"latex {label}", refresh=False)
        bar.update()
    index = ["# LaTeX exports", "", "| pair | student | teacher | ODE | file |", "|---|---|---|---|---|"]
    index += [f"| {r[0]} | `{r[1]}` | `{r[2]}` | {r[3]} | [{r[7]}]({Path(r[7]).name}) |" for r in derivation_rows]
    (out / "tex" / "index.md").write_text("\n".join(index) + "\n")
    lines += ["## Derived systems", "", f"ODEs as in {section_link(3)}, a and b as in {section_link(4)}.", "",
              "| pair | student | teacher | expectations | derive (s) | a(μ) | b(μ) |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r[0]} | `{r[1]}` | `{r[2]}` | {r[3]} | {r[4]} | `{r[5]}` | `{r[6]}` |" for r in derivation_rows]
    lines.append("")

    # -- tau table and figure ---------------------------------------------------
    mu_grid = np.linspace(0.0, 0.98, 50 if quick else 99)
    tau_rows = []
    curves = {"standard": {}, "hermite": {}}
    for label, model in models.items():
        coeffs = model.coefficients(mu_grid)
        for k, mu in enumerate(mu_grid):
            tau_rows.append((label, float(mu), float(coeffs["a"][k]), float(coeffs["b"][k]), float(coeffs["tau"][k])))
        try:
            roots = model.critical_mu((0, sp.Rational(49, 50)))
        except (ValueError, NotImplementedError):
            roots = []
        curves["hermite" if label.startswith("He") else "standard"][label] = tau_curve(
            model, 0.0, 0.98, len(mu_grid), roots=roots)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.8), squeeze=False)
    for row, (group, title) in enumerate((("standard", "standard activations and squared teachers"),
                                          ("hermite", "Hermite activations $\\mathrm{He}_k$"))):
        plot_tau_panel(axes[row], curves[group], title=title)
    fig.tight_layout()
    fig.savefig(out / "tau.png", dpi=110)
    plt.close(fig)
    _write_csv(out / "tau.csv", ["pair", "mu", "a", "b", "tau"], tau_rows)
    bar.set_postfix_str("tau table", refresh=False)
    bar.update()

    # -- critical mu and escape laws ------------------------------------------------
    crit_rows = []
    for label, model in models.items():
        for root in model.critical_mu((0, 1)):
            law = model.escape_law(root)
            # the finite-d law (drift + diffusion): which law holds at d < ∞ and why (symlora predict)
            status, finite_law = finite_d_law(model, float(sp.N(root)))
            crit_rows.append((label, describe_number(root), format_number(float(sp.N(root))), law.kind, str(law),
                              status, finite_law))
    _write_csv(out / "critical_mu.csv", ["pair", "mu_c", "mu_c_numeric", "law", "statement", "finite_d_status",
                                         "finite_d_law"], crit_rows)
    lines += ["## Critical μ (zeros of a(μ) in [0, 1]) and escape laws there", "",
              f"See {section_link(5, 'theory §5.3')} and, for the finite-d picture, {section_link(6)}.", "",
              "| pair | μc | law | finite-d law (drift + diffusion) |", "|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[4]} | {r[6]} ({r[5]}) |" for r in crit_rows]
    lines += ["", "Where a = 0 the line u = 0 is invariant for the d → ∞ ODE (see `symlora derive`); "
              "the finite-d law reported there is a fluctuation-driven estimate, see the escape law's derivation.", ""]
    limit_rows = []
    for label in [p for p in ("x", "relu", "erf", "tanh") if p in models]:
        limit = models[label].tau_limits()["mu->1"]
        limit_rows.append((label, limit["law"]))
    if limit_rows:
        lines += ["Strong pre-training (μ → 1, σ = σ*): τ blows up.", "", "| pair | τ as μ → 1 |", "|---|---|"]
        lines += [f"| {r[0]} | {r[1]} |" for r in limit_rows]
        lines.append("")
    bar.set_postfix_str("critical mu", refresh=False)
    bar.update()

    # -- escape law by ODE integration ---------------------------------------------
    eps = np.array([1e-3, 1e-4, 1e-5, 1e-6])
    mu_check = 0.5
    ode_rows = []
    for label in labels:
        model = models[label]
        result = model.escape_time(mu_check, eps)
        tau = float(model.tau(mu_check))
        if np.sum(np.isfinite(result.time)) >= 2:
            slope, _ = fit_escape_slope(eps, result.time)
            rel = slope / tau - 1 if math.isfinite(tau) else float("nan")
        else:
            slope, rel = float("nan"), float("nan")
        statuses = ",".join(sorted(set(result.status)))
        # which law holds at finite d and why: log d law, or a plateau (with the largest η/B that escapes)
        finite_status, finite_law = finite_d_law(model, mu_check)
        ode_rows.append((label, mu_check, f"{tau:.8g}", f"{slope:.8g}", f"{rel:.2e}", statuses,
                         f"{finite_law} ({finite_status})"))
        bar.set_postfix_str(f"ODE escape {label}", refresh=False)
        bar.update()
    _write_csv(out / "escape_ode.csv", ["pair", "mu", "tau", "slope", "relative_error", "status", "finite_d_law"],
               ode_rows)
    lines += [f"## Escape law by ODE integration (μ = {mu_check}, ε = 1e-3 … 1e-6)", "",
              f"Slope of T(ε) against log(1/ε) vs τ/η ({section_link(7, 'theory §7.3')}). Runs stuck on a plateau below |m| = 0.5 are "
              "reported as censored, not slow.", "", "| pair | τ | slope | relative error | status | finite-d law |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} |" for r in ode_rows]
    lines.append("")

    # -- SGD --------------------------------------------------------------------------
    ds = [100, 200, 400] if quick else [250, 500, 1000, 2000]
    seeds = 16 if quick else 24
    sgd_rows, fit_rows = [], []
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for label in sgd_pairs:
        model = models[label]
        # m0 = d^(-1/2): the law concerns log(1/m0) = log(d)/2; a uniform start only adds spread
        runs = [simulate_sgd(model, mu_check, d, seeds=seeds, seed=100 + i, m0=d**-0.5) for i, d in enumerate(ds)]
        fit = escape_slope(ds, [r.escape_time for r in runs])
        predicted = float(model.tau(mu_check)) / 2
        for d, mean, sem, cens in zip(ds, fit.mean, fit.sem, fit.censored):
            sgd_rows.append((label, d, float(mean), float(sem), int(cens)))
        fit_rows.append((label, float(fit.slope), float(fit.slope_sem), predicted))
        line = ax.errorbar(np.log(ds), fit.mean, yerr=fit.sem, fmt="os"[len(fit_rows) % 2], label=f"{label}: SGD, slope {fit.slope:.2f} ± {fit.slope_sem:.2f}")
        xs = np.log(np.array(ds, dtype=float))
        ax.plot(xs, fit.intercept + fit.slope * xs, color=line[0].get_color(), alpha=0.4)
        ax.plot(xs, fit.mean.mean() + predicted * (xs - xs.mean()), "--", color=line[0].get_color(),
                label=f"{label}: theory slope τ/(2η) = {predicted:.2f}")
        bar.set_postfix_str(f"SGD {label}", refresh=False)
        bar.update()
    ax.set_xlabel("log d")
    ax.set_ylabel("mean escape time  (t = steps/d)")
    ax.set_title(f"Escape time vs log d at μ = {mu_check} ({seeds} seeds per d)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "escape_log_d.png", dpi=120)
    plt.close(fig)
    _write_csv(out / "escape_sgd.csv", ["pair", "d", "mean", "sem", "censored"], sgd_rows)
    _write_csv(out / "escape_sgd_fit.csv", ["pair", "slope", "slope_sem", "predicted_slope"], fit_rows)
    lines += [f"## Escape law by finite-d SGD (μ = {mu_check}, {seeds} seeds per d, m0 = d^(-1/2))", "",
              "Starting every run at m0 = d^(-1/2) keeps log(1/m0) = (log d)/2, the quantity the law is about, "
              "and removes the spread of a uniform start; u0 = 0 and the SGD noise are those of the real model "
              f"({section_link(7, 'theory §7.4')}; the O(1) offset is explained in {section_link(6)}).", "",
              "| pair | d | mean escape time | s.e.m. | censored |", "|---|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {format_number(r[2], 6)} | {format_number(r[3], 3)} | {r[4]} |" for r in sgd_rows]
    lines += ["", "| pair | slope in log d | predicted τ/(2η) |", "|---|---|---|"]
    lines += [f"| {r[0]} | {format_number(r[1], 4)} ± {format_number(r[2], 2)} | {format_number(r[3], 4)} |"
              for r in fit_rows]
    lines += ["", "![escape time vs log d](escape_log_d.png)", ""]

    # -- trajectories ODE vs SGD ---------------------------------------------------------
    model = models[sgd_pairs[0]] if sgd_pairs else models[labels[0]]
    d_traj = 400 if quick else 2000
    run = simulate_sgd(model, mu_check, d_traj, seeds=4, seed=7, stop_at_escape=False,
                       t_max=float(2.5 * model.tau(mu_check) * math.log(d_traj) / 2 + 10))
    comparison = compare_with_ode(model, run, align=0.1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for k in range(run.m.shape[0]):
        # (u, v) -> (-u, -v) is a symmetry: show every run with m > 0 at the end
        sign = np.sign(run.m[k][-1]) or 1.0
        axes[0].plot(run.t, sign * run.m[k], lw=1, ls=STYLES[k % len(STYLES)]["ls"], label=f"SGD seed {k}")
    finish_axes(axes[0], "$t$ = steps$/d$", "$m(t)$ (sign fixed by $(u,v)\\to(-u,-v)$)",
                f"SGD runs, {model.student.name}, $d$ = {d_traj}, $\\mu$ = {mu_check}")
    for k in np.flatnonzero(comparison.aligned):
        axes[1].plot(comparison.t, comparison.sgd["m"][k], lw=1.5, ls=STYLES[k % len(STYLES)]["ls"],
                     label=f"SGD seed {k}")
        axes[1].plot(comparison.t, comparison.ode["m"][k], "k--", lw=1, label="ODE" if k == 0 else None)
    for ax, t, m in ((axes[0], run.t, np.abs(run.m)), (axes[1], comparison.t, comparison.sgd["m"])):
        with np.errstate(invalid="ignore"):
            done = np.flatnonzero(np.all(np.nan_to_num(m, nan=1.0) > 0.99, axis=0))
        if done.size and done[0] > 0:
            ax.set_xlim(0, 1.3 * t[done[0]])  # cut where every run has converged and the curves are flat
    finish_axes(axes[1], "time since $|m|$ first reached 0.1", "$m(t)$ (sign fixed by $(u,v)\\to(-u,-v)$)",
                f"after alignment: max |ODE − SGD| = {comparison.max_deviation:.3f}")
    fig.tight_layout()
    fig.savefig(out / "trajectories.png", dpi=120)
    plt.close(fig)
    bar.set_postfix_str("trajectories", refresh=False)
    bar.update()
    from ._rank_report import rank_section

    rank_lines = rank_section(out, plt, quick=quick)
    bar.close()
    lines += tau_plane_section(plt, out, quick)
    from .two_layer._report import two_layer_section

    lines += two_layer_section(plt, out, quick)
    lines += ["## Trajectories: ODE vs SGD after alignment", "",
              f"Four SGD runs at d = {d_traj}; the ODE is started from each run's state when |m| first reaches 0.1 "
              f"({section_link(7, 'theory §7.4')}).", "", "![trajectories](trajectories.png)", "",
              *rank_lines,
              "## τ(μ)", "", "![tau](tau.png)", "",
              f"Files: `tau.csv`, `critical_mu.csv`, `escape_ode.csv`, `escape_sgd.csv`, `rank.csv`, `tex/` "
              f"(index in `tex/index.md`). Total time {time.perf_counter() - started:.1f} s"
              f"{' (quick run)' if quick else ''}.", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
