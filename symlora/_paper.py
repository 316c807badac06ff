"""``symlora paper``: the paper's theory figures regenerated exactly, with errata.

Every figure is computed from symlora's public API (exact ``a``, ``b``,
``τ``; the generated ODE; the finite-``d`` SGD simulator).  The published
tables are read from ``--published`` (never stored in the package) and
compared in :mod:`symlora._errata`.  Figures and tables share their helpers
with ``symlora reproduce`` (:mod:`symlora._figures`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import sympy as sp
from scipy import optimize

from . import _errata
from ._figures import (STYLES, describe_number, finish_axes, format_number, mathtext_label, plot_tau_panel, pyplot,
                       tau_curve, write_csv)
from ._model import LoRAModel
from ._quadrature import quadrature_expectation
from .simulate import compare_with_ode, escape_slope, simulate_sgd

__all__ = ["paper"]

#: The paper's grid: 200 μ in [0.032, 0.99].
PAPER_GRID = (0.032, 0.99, 200)
ACTIVATIONS = ("x", "erf", "relu", "sigmoid")
#: η used for SGD per activation: sigmoid's gradients are small (σ' ≤ 1/4), so a larger η keeps runs short;
#: τ is in units of 1/η either way.
SGD_ETA = {"x": 1.0, "relu": 1.0, "erf": 4.0, "sigmoid": 16.0}
EVEN_HERMITE = ("He2", "He6", "He10", "He14")
ODD_HERMITE = ("He3", "He5", "He7", "He9")
SQUARED = ("x", "erf", "relu", "sigmoid", "He2", "He3", "He4", "He5")
TWO_TERM = ((1, 1), (1, 2), (2, 2), (2, 4), (3, 2), (3, 4))


def _squared_teacher(student):
    return "x**2" if student == "x" else f"{student}(x)**2"


def _paper_scale(name):
    """``k!·k`` for ``He_k`` (the paper's normalisation), 1 otherwise."""
    return math.factorial(int(name[2:])) * int(name[2:]) if name.startswith("He") and name[2:].isdigit() else 1


def critical_points(model, lo, hi):
    """Zeros of ``a(μ)`` in ``[lo, hi]``: exact ones from ``model.critical_mu``.

    Where the exact root isolation is unavailable (``NotImplementedError``,
    e.g. coefficients with ``√π``), sign changes of the generated ``a(μ)``
    on 2001 points are refined with :func:`scipy.optimize.brentq` and
    returned as Floats.
    """
    try:
        return list(model.critical_mu((sp.nsimplify(lo), sp.nsimplify(hi))))
    except NotImplementedError:
        grid = np.linspace(lo, hi, 2001)
        a = np.asarray(model.coefficients(grid)["a"], dtype=float)
        f = lambda m: float(model.coefficients(np.array([m]))["a"][0])  # noqa: E731
        roots = [grid[i] if a[i] == 0 else optimize.brentq(f, grid[i], grid[i + 1], xtol=1e-14)
                 for i in range(len(grid) - 1) if a[i] == 0 or a[i] * a[i + 1] < 0]
        return [sp.Float(r, 15) for r in roots]


def population_mse(model, mu, m, u):
    """Test error ``½ E[(σ(λ) − σ*(ν))²]`` at overlap ``m``, adapter ``u`` (arrays broadcast).

    ``λ = μν + uζ`` with ``Corr(ν, ζ) = m``: ``Var λ = Q = μ² + u² + 2μum``,
    ``Cov(λ, ν) = R = μ + um``.  Two-dimensional Gauss–Legendre quadrature
    (:func:`symlora.quadrature_expectation`, error about 1e-10).
    """
    m, u = np.broadcast_arrays(np.asarray(m, float), np.asarray(u, float))
    q = mu * mu + u * u + 2 * mu * u * m
    r = mu + u * m
    s, t = model.student.numpy(), model.teacher.numpy()
    return 0.5 * quadrature_expectation(lambda lam, nu: (s(lam) - t(nu)) ** 2, [[q, r], [r, np.ones_like(q)]])


# ------------------------------------------------------------------ sections


def _tau_activations(plt, out, quick, bar):
    lo, hi, num = PAPER_GRID
    curves, rows, markers = {}, [], []
    for name in ACTIVATIONS:
        model = LoRAModel(name)
        curves[name] = tau_curve(model, lo, hi, num, roots=critical_points(model, lo, hi))
        for mu, a, b, tau in zip(*(curves[name][k] for k in ("mu", "a", "b", "tau"))):
            if np.isfinite(tau):
                rows.append((name, float(mu), float(a), float(b), float(tau)))
    mus = (0.3, 0.6) if quick else (0.2, 0.4, 0.6, 0.8)
    ds = (100, 400) if quick else (200, 600, 1800)
    seeds = 6 if quick else 16
    for j, name in enumerate([n for n in ACTIVATIONS if not quick or n == "x"]):
        model = LoRAModel(name)
        eta = SGD_ETA[name]
        for mu in mus:
            runs = [simulate_sgd(model, mu, d, seeds=seeds, seed=1000 * j + d, lr=eta, m0=d**-0.5, method="reduced")
                    for d in ds]
            fit = escape_slope(ds, [r.escape_time for r in runs])
            # the mean escape time grows like (tau / (2 eta)) log d
            markers.append((name, mu, eta, 2 * eta * fit.slope, 2 * eta * fit.slope_sem,
                            float(model.tau(mu)), int(fit.censored.sum())))
        bar(f"SGD τ {name}")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    plot_tau_panel(axes, curves, title=f"$\\tau(\\mu)$, student = teacher ({num} μ in [{lo}, {hi}])")
    colors = {line.get_label(): line.get_color() for line in axes[0].get_lines()}
    for name, mu, eta, tau_sgd, sem, _, _ in markers:
        axes[0].errorbar([mu], [tau_sgd], yerr=[sem], fmt="k*", ms=9, mfc=colors.get(mathtext_label(name), "k"),
                         label=None)
    axes[0].plot([], [], "k*", ms=9, label="SGD: $2\\eta\\times$ slope in $\\log d$")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "tau_activations.png", dpi=120)
    plt.close(fig)
    write_csv(out / "tau_activations.csv", ["activation", "mu", "a", "b", "tau"], rows)
    write_csv(out / "tau_sgd.csv", ["activation", "mu", "eta", "tau_sgd", "tau_sgd_sem", "tau_exact", "censored"],
              markers)
    lines = ["## τ(μ) for x, erf, ReLU, sigmoid", "", f"Exact τ on the paper's grid (`tau_activations.csv`), a(μ) and "
             f"b(μ) beside it. Stars: τ from finite-d SGD, 2η × the slope of the mean escape time against log d "
             f"(d = {', '.join(map(str, ds))}, {seeds} runs per d, m0 = d^(-1/2)).", "",
             "| activation | μ | η | τ from SGD | exact τ | censored runs |", "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {mu} | {format_number(eta)} | {format_number(t, 4)} ± {format_number(s, 2)} | "
              f"{format_number(e, 6)} | {c} |" for n, mu, eta, t, s, e, c in markers]
    return lines + ["", "![tau](tau_activations.png)", ""]


def _panel(plt, out, filename, models, title, lo, hi, num, scaled, bar):
    """τ, a, b for a family; with ``scaled`` a second row in the paper's k!·k normalisation."""
    curves, roots_rows = {}, []
    for label, model in models.items():
        roots = critical_points(model, lo, hi)
        curves[label] = tau_curve(model, lo, hi, num, roots=roots)
        for r in roots:
            b = float(model.coefficients(np.array([float(r)]))["b"][0])
            roots_rows.append((label, describe_number(r), format_number(float(sp.N(r))),
                               "diverges" if b > 0 else "finite (b < 0)"))
        bar(f"{filename} {label}")
    rows = 2 if scaled else 1
    fig, axes = plt.subplots(rows, 3, figsize=(15, 4.4 * rows), squeeze=False)
    plot_tau_panel(axes[0], curves, title=f"{title} (symlora's normalisation)")
    if scaled:
        plot_tau_panel(axes[1], curves, scale={k: _paper_scale(k) for k in curves},
                       title=f"{title} (paper: $a, b$ divided by $k!\\,k$)")
    fig.tight_layout()
    fig.savefig(out / filename, dpi=110)
    plt.close(fig)
    lines = [f"| pair | critical μ | numeric | τ there |", "|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in roots_rows]
    return lines


def _dynamics(plt, out, quick, bar):
    mu = 0.5
    d = 200 if quick else 1000
    names = ("x", "relu") if quick else ACTIVATIONS
    fig, axes = plt.subplots(3, len(names), figsize=(4 * len(names), 10), squeeze=False)
    lines = ["## Training dynamics: ODE vs SGD", "", f"μ = {mu}, d = {d}, 4 SGD runs per activation; the ODE "
             "(dashed) starts from each run's state when |m| first reaches 0.1 (docs/theory.md §7.4) and is drawn "
             "from that time on.", "", "| activation | η | max \\|m_ODE − m_SGD\\| after alignment | "
             "seed-to-seed spread |", "|---|---|---|---|"]
    for j, name in enumerate(names):
        model = LoRAModel(name)
        eta = SGD_ETA[name]
        tau = float(model.tau(mu))
        run = simulate_sgd(model, mu, d, seeds=4, seed=11 + j, lr=eta, stop_at_escape=False, method="reduced",
                           t_max=float(1.5 * tau / eta * math.log(d) + 8 * tau / eta))
        cmp = compare_with_ode(model, run, align=0.1)
        ode_model = LoRAModel(name, lr=sp.nsimplify(eta))
        for k in range(run.n_seeds):
            sign = np.sign(run.m[k][np.argmax(np.abs(run.m[k]) >= 0.1)]) or 1.0
            style = STYLES[k % len(STYLES)]
            m_sgd, u_sgd = sign * run.m[k], sign * run.u[k]
            every = max(1, run.t.size // 300)  # the test error is a 2-d quadrature per point: 300 points suffice
            axes[0, j].plot(run.t[::every], population_mse(model, mu, m_sgd[::every], u_sgd[::every]), ls=style["ls"],
                            lw=1, label=f"SGD run {k}")
            axes[1, j].plot(run.t, m_sgd, ls=style["ls"], lw=1)
            axes[2, j].plot(run.t, mu + u_sgd * m_sgd, ls=style["ls"], lw=1)
            if cmp.aligned[k]:
                t = cmp.align_time[k] + cmp.t
                m_ode, u_ode = cmp.ode["m"][k], cmp.ode["u"][k]
                every = max(1, t.size // 300)
                axes[0, j].plot(t[::every], population_mse(ode_model, mu, m_ode[::every], u_ode[::every]), "k--",
                                lw=0.9, label="ODE" if k == 0 else None)
                axes[1, j].plot(t, m_ode, "k--", lw=0.9)
                axes[2, j].plot(t, mu + u_ode * m_ode, "k--", lw=0.9)
        axes[0, j].set_yscale("log")
        axes[0, j].set_ylim(bottom=1e-9)  # below, the 2-d quadrature of the test error (~1e-10) is noise
        finite = run.escape_time[np.isfinite(run.escape_time)]
        for ax in axes[:, j]:
            ax.set_xlim(0, 1.6 * finite.max() if finite.size else run.t[-1])  # the rest is flat
        finish_axes(axes[0, j], "$t$ = steps$/d$", "test error (MSE)", f"{mathtext_label(name)}, $\\eta$ = "
                    f"{format_number(eta)}, $\\mu$ = {mu}")
        finish_axes(axes[1, j], "$t$ = steps$/d$", "$m(t)$ (sign fixed by $(u,v)\\to(-u,-v)$)", legend=False)
        finish_axes(axes[2, j], "$t$ = steps$/d$", "$\\mu + u\\,m$ (effective overlap)", legend=False)
        lines.append(f"| {name} | {format_number(eta)} | {format_number(cmp.max_deviation, 3)} | "
                     f"{format_number(cmp.spread, 3)} |")
        bar(f"dynamics {name}")
    fig.tight_layout()
    fig.savefig(out / "dynamics.png", dpi=110)
    plt.close(fig)
    return lines + ["", "![dynamics](dynamics.png)", ""]


def _general(plt, out, quick, bar):
    mu, mu_perp = 0.5, 0.5
    d = 200 if quick else 1000
    names = ("x", "relu")
    fig, axes = plt.subplots(1, 2 * len(names), figsize=(16, 4.2))
    lines = ["## General pre-training w0 = μ w* + μ⊥ w⊥", "", f"μ = {mu}, μ⊥ = {mu_perp}, d = {d}; "
             "s = v·w⊥ is the overlap of the LoRA direction with the orthogonal part of the pre-trained weight. "
             "ODE (dashed) from each run's state at alignment.", "",
             "| activation | max \\|m_ODE − m_SGD\\| | seed-to-seed spread |", "|---|---|---|"]
    for j, name in enumerate(names):
        model = LoRAModel(name, pretraining="general")
        run = simulate_sgd(model, mu, d, seeds=3, seed=21 + j, mu_perp=mu_perp, stop_at_escape=False,
                           method="reduced", t_max=40.0)
        cmp = compare_with_ode(model, run, align=0.1)
        for k in range(run.n_seeds):
            style = STYLES[k % len(STYLES)]
            for i, state in enumerate(("m", "s")):
                axes[2 * j + i].plot(run.t, run.stats[state][k], ls=style["ls"], lw=1, label=f"SGD run {k}")
                if cmp.aligned[k]:
                    sign = 1.0 if state == "q" else np.sign(run.m[k][np.argmax(np.abs(run.m[k]) >= 0.1)])
                    axes[2 * j + i].plot(cmp.align_time[k] + cmp.t, sign * cmp.ode[state][k], "k--", lw=0.9,
                                         label="ODE" if k == 0 else None)
        finish_axes(axes[2 * j], "$t$ = steps$/d$", "$m(t) = v\\cdot w^*$", f"{mathtext_label(name)}: overlap $m$")
        finish_axes(axes[2 * j + 1], "$t$ = steps$/d$", "$s(t) = v\\cdot w_\\perp$",
                    f"{mathtext_label(name)}: overlap $s$", legend=False)
        lines.append(f"| {name} | {format_number(cmp.max_deviation, 3)} | {format_number(cmp.spread, 3)} |")
        bar(f"general {name}")
    fig.tight_layout()
    fig.savefig(out / "general_pretraining.png", dpi=110)
    plt.close(fig)
    return lines + ["", "![general](general_pretraining.png)", ""]


def _curriculum(plt, out, quick, bar):
    # the paper's normalisation of He3: learning rate divided by 3!*3 = 18; it matters here because the
    # renormalisation term of dm/dt is of order eta^2 and decides where stage 1 settles
    eta = sp.Rational(1, 18)
    model = LoRAModel("He3", lr=eta)
    mu_c = float(sp.N(critical_points(model, 0.3, 0.35)[0]))
    stages = ((0.2, 3000.0), (0.325, 1e5 if quick else 2e5))
    d = 400
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    lines = ["## Two-stage He3 curriculum", "", "He3 student and teacher with the paper's learning rate η = 1/(3!·3) = "
             "1/18. Stage 1 fine-tunes at μ = 0.2, where a(0.2) < 0: the adapter grows against the pre-trained "
             "weight and the effective overlap μ + u m falls to a plateau near 0. Stage 2 restarts the adapter "
             "(u0 = 0, fresh v) on the pre-trained weight w0 = 0.325 w*, just above the critical "
             f"μc = {format_number(mu_c, 6)} where a(μc) = 0: τ is large and the escape slow. ODE from "
             f"m0 = d^(-1/2), d = {d}" + ("" if quick else "; stage 1 also by SGD (4 runs)") + ".", "",
             "| stage | μ | τ(μ)/η | final m | final μ + u m |", "|---|---|---|---|---|"]
    for i, (mu, horizon) in enumerate(stages):
        t = np.concatenate([[0.0], np.geomspace(1e-2, horizon, 400 if quick else 1500)])
        sol = model.integrate(mu, d**-0.5, 0.0, horizon, t_eval=t)
        m, u = np.asarray(sol.states["m"]), np.asarray(sol.states["u"])
        axes[i].plot(t, m, "-", label="ODE: $m$")
        axes[i].plot(t, mu + u * m, "--", label="ODE: $\\mu + u\\,m$")
        if not quick and i == 0:
            run = simulate_sgd(model, mu, d, seeds=4, seed=5, t_max=horizon, stop_at_escape=False, method="reduced")
            for k in range(run.n_seeds):
                sign = np.sign(run.m[k][-1]) or 1.0
                axes[i].plot(run.t, sign * run.m[k], ":", lw=0.8, color="C0", label="SGD: $m$" if k == 0 else None)
                axes[i].plot(run.t, mu + run.u[k] * run.m[k], ":", lw=0.8, color="C1",
                             label="SGD: $\\mu + u\\,m$" if k == 0 else None)
        axes[i].axhline(0, color="k", lw=0.6)
        axes[i].axhline(mu_c, color="grey", ls=":", lw=1, label=f"$\\mu_c$ = {mu_c:.4f}")
        axes[i].set_xscale("symlog", linthresh=1)
        axes[i].set_xlim(0, horizon)
        finish_axes(axes[i], "$t$ = steps$/d$", "overlaps",
                    f"stage {i + 1}: $\\mathrm{{He}}_3$, $\\mu$ = {mu}, $\\eta$ = 1/18")
        lines.append(f"| {i + 1} | {mu} | {format_number(float(model.tau(mu)) / float(eta), 6)} | "
                     f"{format_number(m[-1], 4)} | {format_number(mu + u[-1] * m[-1], 4)} |")
    bar("curriculum")
    fig.tight_layout()
    fig.savefig(out / "curriculum_he3.png", dpi=110)
    plt.close(fig)
    return lines + ["", "![curriculum](curriculum_he3.png)", ""]


def _two_term(plt, out, quick, bar):
    models = {}
    for k_star, k_prime in TWO_TERM[1:3] if quick else TWO_TERM:
        name = f"He{k_star}(x) + He{k_star + k_prime}(x)"
        models[name.replace("(x)", "").replace(" ", "")] = LoRAModel(name)
    table = _panel(plt, out, "tau_two_term_hermite.png", models, "$\\mathrm{He}_{k^*} + \\mathrm{He}_{k^*+k'}$",
                   0.01, 0.99, 200, False, bar)
    return ["## Two-term Hermite family He_k* + He_(k*+k')", "", "Critical μ inside (0, 1): τ diverges where a(μ) = 0 "
            "and b > 0 (dotted lines).", ""] + table + ["", "![two-term](tau_two_term_hermite.png)", ""]


def _latex_exports(out, quick, bar):
    """``tex/<pair>.tex``: the derivation of every pair the paper's figures use (a sample with ``quick``)."""
    pairs = [(name, None) for name in ACTIVATIONS] + [("He3", None), ("He2(x) + He4(x)", None),
                                                      ("relu", "relu(x)**2"), ("He2", "He2(x)**2")]
    if quick:
        pairs = pairs[:1] + pairs[4:6] + pairs[-1:]
    (out / "tex").mkdir(exist_ok=True)
    names = []
    for student, teacher in pairs:
        model = LoRAModel(student, teacher)
        name = "".join(ch if ch.isalnum() else "_" for ch in model.student.name + "__" + model.teacher.name)
        (out / "tex" / f"{name}.tex").write_text(model.to_latex())
        names.append(f"`tex/{name}.tex`")
    bar("LaTeX")
    return ["## LaTeX", "", "Derivations (model, ODE, linearisation, critical μ) as standalone documents: "
            + ", ".join(names) + ".", ""]


def _errata_section(plt, out, published, quick, bar):
    if published is None:
        return ["## Errata", "", "Skipped: no published tables found (pass --published DIR pointing at the folder "
                "with tau_activations.csv).", ""], "errata skipped: no published tables (use --published DIR)"
    rows = _errata.errata_rows(published, causes_wanted=not quick, progress=bar)
    write_csv(out / "errata.csv", _errata.ERRATA_COLUMNS, [[r[c] for c in _errata.ERRATA_COLUMNS] for r in rows])
    md = ["# Errata: published τ(μ) against symlora's exact values", "",
          f"Published tables: `{published}`. Hermite columns are in the paper's normalisation (a and b divided "
          "by k!·k, so τ multiplied by k!·k); symlora's exact τ is converted before comparing. Relative deviation "
          "= |published − exact| / exact. 'series' is our own truncated Hermite-series route "
          "(see `symlora/_errata.py`) at the worst μ, used to find the cause.", "",
          "| table | curve | max rel. dev. | at μ | published | exact | median rel. dev. | cause |",
          "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['file']} | `{r['column']}` | {format_number(r['max_rel_dev'], 3)} | "
                  f"{format_number(r['mu_at_max'], 4)} | {format_number(r['published_at_max'], 6)} | "
                  f"{format_number(r['exact_at_max'], 6)} | {format_number(r['median_rel_dev'], 3)} | {r['cause']} |")
    by_file = {}
    for r in rows:
        # one figure per panel: the activation table holds the standard and the Hermite panels
        hermite = r["student"].startswith("He") and r["file"] == "tau_activations.csv"
        by_file.setdefault(r["file"].replace(".csv", "_hermite.csv" if hermite else ".csv"), []).append(r)
    figures = []
    for file, group in by_file.items():
        fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
        for r, style in zip(group, STYLES * 3):
            line, = axes[0].plot(r["mu"], r["exact"], ls=style["ls"], lw=1.3, label=f"{mathtext_label(r['column'])} exact")
            every = max(1, len(r["mu"]) // 25)
            axes[0].plot(r["mu"][::every], r["published"][::every], ls="none", marker=style["marker"], ms=4,
                         mfc="none", color=line.get_color())
            axes[1].plot(r["mu"], np.abs(r["published"] / r["exact"] - 1), ls=style["ls"], color=line.get_color())
        axes[0].plot([], [], "ko", mfc="none", ms=4, label="published (markers)")
        axes[0].set_yscale("log")
        axes[1].set_yscale("log")
        axes[1].axhline(1e-3, color="grey", ls=":", lw=1)
        axes[1].set_ylim(bottom=1e-10)  # below: rounding of the published digits
        finish_axes(axes[0], "", "$\\tau(\\mu)$ (paper's units)", f"published vs exact: {file}")
        finish_axes(axes[1], "pre-training strength $\\mu$", "relative deviation", legend=False)
        name = f"errata_{Path(file).stem}.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        figures.append(name)
    md += [""] + [f"![{f}]({f})" for f in figures] + [""]
    (out / "errata.md").write_text("\n".join(md))
    flagged = [r["column"] for r in rows if r["max_rel_dev"] > 1e-2]
    return (["## Errata", "", f"See `errata.md` / `errata.csv`. Curves off by more than 1 %: "
             f"{', '.join(f'`{c}`' for c in flagged) or 'none'}.", ""] + [f"![{f}]({f})" for f in figures] + [""],
            f"errata: {len(rows)} published curves compared")


def paper(out="symlora-paper", quick=False, published="auto", progress=None) -> Path:
    """Regenerate the paper's theory figures and the errata of its published tables.

    Parameters
    ----------
    out : str or os.PathLike
        Output folder (created if needed).
    quick : bool
        Small grids, few SGD runs, errata without the series-route causes.
    published : str, os.PathLike or None
        Folder of the published tables; ``"auto"`` looks for
        ``shared/paper`` next to the repository or the current directory;
        ``None`` skips the errata.
    progress : bool, optional
        Progress bar on stderr (default: when stderr is a terminal).

    Returns
    -------
    tuple of (pathlib.Path, str)
        The report ``paper.md`` and a one-line note on the errata.
    """
    from tqdm import tqdm

    plt = pyplot()
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create output folder {out}: {exc.strerror or exc}") from exc
    folder = _errata.find_published(None if published == "auto" else published) if published is not None else None
    started = time.perf_counter()
    with tqdm(desc="symlora paper", disable=not progress if progress is not None else None, unit="step",
              leave=False) as bar_:
        def bar(label):
            bar_.set_postfix_str(label[:40])
            bar_.update()

        lines = ["# The paper's theory results, regenerated by symlora", "",
                 "Aligned rank-1 LoRA, one-pass SGD, learning rate η/d, batch 1, no label noise (docs/theory.md §2). τ is in "
                 "units of 1/η. Hermite panels show symlora's normalisation and the paper's (a, b divided by k!·k).",
                 ""]
        lines += _tau_activations(plt, out, quick, bar)
        lo, hi = 0.01, 0.99
        num = 120 if quick else 300
        for family, names in (("even", EVEN_HERMITE), ("odd", ODD_HERMITE)):
            chosen = names[:2] if quick else names
            table = _panel(plt, out, f"tau_{family}_hermite.png", {n: LoRAModel(n) for n in chosen},
                           f"{family} Hermite activations", lo, hi, num, True, bar)
            lines += [f"## {family.capitalize()} Hermite activations", "", "Grid refined geometrically towards every "
                      "zero of a(μ); no line is drawn across a divergence.", ""] + table
            lines += ["", f"![{family}](tau_{family}_hermite.png)", ""]
        # quick: the polynomial pairs (exact critical mu; the others bracket zeros numerically, slowly)
        squared = ("x", "He2", "He3") if quick else SQUARED
        table = _panel(plt, out, "tau_squared_teacher.png",
                       {f"{s}/{_squared_teacher(s)}": LoRAModel(s, _squared_teacher(s)) for s in squared},
                       "teacher = student squared", 0.03, hi, num, False, bar)
        lines += ["## Squared teachers", ""] + table + ["", "![squared](tau_squared_teacher.png)", ""]
        lines += _two_term(plt, out, quick, bar)
        lines += _dynamics(plt, out, quick, bar)
        lines += _general(plt, out, quick, bar)
        lines += _curriculum(plt, out, quick, bar)
        lines += _latex_exports(out, quick, bar)
        errata_lines, note = _errata_section(plt, out, folder, quick, bar)
        lines += errata_lines
    lines += [f"Total time {time.perf_counter() - started:.0f} s{' (quick run)' if quick else ''}.", ""]
    report = out / "paper.md"
    report.write_text("\n".join(lines))
    return report, note
