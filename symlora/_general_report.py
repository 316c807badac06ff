"""The general pre-training section of ``symlora reproduce``: τ over the ``(μ, μ⊥)`` plane.

One figure, ``tau_plane.png``: a heat map of ``log10 τ`` from generated
code, the curves ``α = 0`` and ``b = 0`` and the critical points of
:func:`symlora._general_pretraining.critical_set`; and the markdown lines that
describe it.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._figures import format_number, mathtext_label
from ._general_pretraining import critical_set, tau_on_grid
from .models import model as pair_model

__all__ = ["tau_plane_section"]

#: Pairs of the figure: smooth monotone, kinked monotone, and a Hermite pair with a critical point off the axis.
PLANE_PAIRS = ("x", "relu", "erf", "He2")
QUICK_PLANE_PAIRS = ("x", "relu")


def tau_plane_section(plt, out, quick=False) -> list:
    """Draw ``tau_plane.png`` into ``out`` and return the report's markdown lines."""
    labels = QUICK_PLANE_PAIRS if quick else PLANE_PAIRS
    mu = np.linspace(0.0, 1.6, 161 if quick else 321)
    mu_perp = np.linspace(0.0, 1.0, 101 if quick else 201)
    # the closed forms are 0/0 at w0 = 0 only: shift the grid's corner off it
    grid_mu, grid_mp = np.meshgrid(np.maximum(mu, 1e-9), np.maximum(mu_perp, 1e-9))
    fig, axes = plt.subplots(1, len(labels), figsize=(4.6 * len(labels), 4.0), squeeze=False)
    lines = ["## General pre-training: τ over the (μ, μ⊥) plane", "",
             "w0 = μ w* + μ⊥ w⊥. At the origin of (m, s, u) the Jacobian is η [[0, 0, α], [0, 0, β], [α, β, −b]] "
             "with α = −E[e0 σ'(λ0) ν], β = −μ⊥ b, b = E[σ'(λ0)² + e0 σ''(λ0)], λ0 = μν + μ⊥ξ; τ is the aligned "
             "formula with a = sqrt(α² + β²). τ = ∞ needs α = β = 0: on μ⊥ = 0 the aligned critical μ, off the "
             "axis b = 0 and A_ν = 0 at once, i.e. isolated points (stars), never curves. Solid: α = 0 (the escape "
             "direction carries no overlap with w*); dashed: b = 0 (the damping changes sign, τ stays finite).", "",
             "| pair | critical points (μ, μ⊥) | α = 0 | b = 0 |", "|---|---|---|---|"]
    for ax, label in zip(axes[0], labels):
        model = pair_model(label, pretraining="general")
        grid = tau_on_grid(model, grid_mu, grid_mp)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_tau = np.log10(grid["tau"])
        finite = log_tau[np.isfinite(log_tau)]
        # robust colour range: τ → ∞ at the critical points and → 0 where b → -∞ (ReLU at w0 → 0)
        low, top = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
        low = max(float(low), float(top) - 3)
        image = ax.pcolormesh(mu, mu_perp, np.clip(log_tau, low, top), shading="auto", cmap="viridis")
        fig.colorbar(image, ax=ax, label="$\\log_{10}\\,\\tau$ (units of $1/\\eta$)")
        for key, style in (("alpha", "-"), ("b", "--")):
            values = grid[key]
            if np.nanmin(values) < 0 < np.nanmax(values):
                ax.contour(mu, mu_perp, values, levels=[0.0], colors="w", linestyles=style, linewidths=1.4)
        found = critical_set(model, mu_max=float(mu[-1]), mu_perp_max=float(mu_perp[-1]))
        for point in found.points:
            ax.plot(float(point.mu), float(point.mu_perp), "r*", ms=13, mec="k", clip_on=False, zorder=5)
        ax.set_xlabel("$\\mu$")
        ax.set_ylabel("$\\mu_\\perp$")
        ax.set_title(f"{mathtext_label(label)}: $\\tau(\\mu, \\mu_\\perp)$")
        points = ", ".join(f"({_short(p.mu)}, {_short(p.mu_perp)})" for p in found.points) or "none"
        lines.append(f"| {label} | {points} | {_curve(found.alpha_curve, grid['alpha'])} | "
                     f"{_curve(found.b_curve, grid['b'])} |")
    fig.tight_layout()
    fig.savefig(out / "tau_plane.png", dpi=110)
    plt.close(fig)
    return lines + ["", "![tau over the plane](tau_plane.png)", ""]


def _short(value) -> str:
    text = sp.sstr(value)
    return text if len(text) <= 12 and not value.atoms(sp.Float) else format_number(float(sp.N(value)), 6)


def _curve(equation, values) -> str:
    """The exact implicit equation when short, else whether the drawn curve exists in the window."""
    if equation is not None and len(sp.sstr(equation.lhs)) <= 60:
        return f"`{sp.sstr(equation.lhs)} = 0`"
    crosses = np.nanmin(values) < 0 < np.nanmax(values)
    return "drawn from generated code" if crosses else "not in the window"
