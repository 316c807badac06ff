"""Figure and table helpers shared by ``symlora reproduce`` and ``symlora paper``.

Numbers for people: :func:`format_number` (12 significant digits, never
``-0``), :func:`describe_number` (an algebraic number as "root of p(μ) ≈ x"),
and :func:`tau_curve` (a grid refined at every zero of ``a(μ)`` where ``τ``
diverges, with the divergence left as a gap rather than sampled across).
Drawing: :func:`pyplot`, :data:`STYLES` (line style + marker per curve, so
curves stay distinguishable where they overlap), :func:`mathtext_label`
(``He3`` → ``$\\mathrm{He}_{3}$``) and :func:`plot_tau_panel` (``τ``, ``a``,
``b`` side by side with the critical ``μ`` marked).
"""

from __future__ import annotations

import csv
import itertools
import re

import numpy as np
import sympy as sp

from . import _symbols as S

__all__ = ["pyplot", "write_csv", "format_number", "describe_number", "mathtext_label", "STYLES",
           "tau_curve", "plot_tau_panel", "finish_axes", "table_number"]

#: Line style, marker per curve, cycled: overlapping curves (erf and tanh) stay apart.
STYLES = [dict(ls="-", marker="o"), dict(ls="--", marker="s"), dict(ls="-.", marker="^"), dict(ls=":", marker="D"),
          dict(ls=(0, (5, 1, 1, 1)), marker="v"), dict(ls=(0, (1, 1)), marker="P"), dict(ls="-", marker="X"),
          dict(ls="--", marker="*"), dict(ls="-.", marker="h")]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only)."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("symlora draws figures with matplotlib: pip install 'symlora[plots]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_csv(path, header, rows):
    """Write ``rows`` under ``header``; floats as :func:`format_number`."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([format_number(v) if isinstance(v, (float, np.floating)) else v for v in row])


def format_number(value, digits: int = 12) -> str:
    """A float with ``digits`` significant digits; ``-0`` prints as ``0``.

    >>> format_number(1.0000000000000000000), format_number(-0.0), format_number(1 / 3)
    ('1', '0', '0.333333333333')
    >>> format_number(float("inf"))
    'inf'
    """
    value = float(value)
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    return "0" if re.fullmatch(r"-?0(\.0*)?(e[+-]?0+)?", text) else text


def describe_number(value, latex: bool = False, digits: int = 4) -> str:
    """An exact real number for people: rationals as they are, others with ``≈``.

    Algebraic numbers given as ``CRootOf`` print as "root of p(μ) ≈ x"
    (``p`` the minimal polynomial) instead of ``CRootOf(..., k)``; floats as
    :func:`format_number`.

    >>> import sympy as sp
    >>> describe_number(sp.Rational(1, 2)), describe_number(sp.Integer(1))
    ('1/2', '1')
    >>> mu = sp.Symbol("mu")
    >>> describe_number(sp.CRootOf(5*mu**3 + 5*mu**2 + mu - 1, 0))
    'root of 5μ³ + 5μ² + μ − 1 ≈ 0.3207'
    >>> describe_number(sp.sqrt(5) / 5)
    'sqrt(5)/5 ≈ 0.4472'
    """
    value = sp.sympify(value)
    if value.is_Rational:
        return sp.latex(value) if latex else sp.sstr(value)
    numeric = float(sp.N(value, 30))
    approx = format_number(numeric, digits)
    if value.is_Float:
        return format_number(numeric)
    if isinstance(value, sp.CRootOf):
        poly = sp.Poly(value.expr, value.poly.gen).as_expr().subs(value.poly.gen, S.mu)
        if latex:
            return f"\\text{{root of }} {sp.latex(poly)} \\approx {approx}"
        return f"root of {_pretty_polynomial(poly)} ≈ {approx}"
    if latex:
        return f"{sp.latex(value)} \\approx {approx}"
    return f"{sp.sstr(value)} ≈ {approx}"


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _pretty_polynomial(poly) -> str:
    """``5μ³ + 5μ² + μ − 1`` (one line, unicode superscripts, a real minus sign)."""
    terms = []
    for (power,), coeff in sp.Poly(poly, S.mu).terms():
        mag = abs(coeff)
        base = "" if power == 0 else ("μ" if power == 1 else "μ" + str(power).translate(_SUPERSCRIPT))
        text = (sp.sstr(mag) if (mag != 1 or not base) else "") + base
        terms.append(("−" if coeff < 0 else "+", text))
    first_sign, first = terms[0]
    out = ("−" if first_sign == "−" else "") + first
    for sign, text in terms[1:]:
        out += f" {sign} {text}"
    return out


def mathtext_label(name: str) -> str:
    """A label for matplotlib: ``He3`` → ``$\\mathrm{He}_{3}$``, ``x**2`` → ``$x^{2}$``.

    >>> mathtext_label("He3"), mathtext_label("relu(x)**2"), mathtext_label("He3+He5")
    ('$\\\\mathrm{He}_{3}$', '$\\\\mathrm{relu}(x)^{2}$', '$\\\\mathrm{He}_{3} + \\\\mathrm{He}_{5}$')
    """
    text = re.sub(r"\*\*\s*\(?(\d+)\)?", r"^{\1}", name)
    text = re.sub(r"\bHe(\d+)\b", r"\\mathrm{He}_{\1}", text)
    text = re.sub(r"\b(relu|erf|sigmoid|tanh|softplus|sign)\b", r"\\mathrm{\1}", text)
    text = text.replace("*", r"\,").replace("+", " + ").replace("  ", " ")
    return f"${text}$"


def tau_curve(model, lo, hi, num=200, roots=None, approach=1e-5):
    """``μ``, ``a``, ``b``, ``τ`` on ``[lo, hi]``, refined at the zeros of ``a``.

    The grid is uniform plus, on both sides of every zero ``μc`` of ``a(μ)``
    (``model.critical_mu``), points at geometric distances ``approach`` …
    ``0.05`` from ``μc``; a NaN row at ``μc`` itself separates the branches,
    so a plot never draws a line across a divergence.

    Returns
    -------
    dict
        ``"mu", "a", "b", "tau"`` arrays and ``"roots"`` (exact zeros in
        ``[lo, hi]``).
    """
    if roots is None:
        roots = list(model.critical_mu((sp.nsimplify(lo), sp.nsimplify(hi))))
    grid = [np.linspace(lo, hi, num)]
    centres = [float(sp.N(r)) for r in roots]
    for c in centres:
        offsets = np.geomspace(approach, 0.05, 40)
        grid += [c - offsets, c + offsets]
    mu = np.unique(np.clip(np.concatenate(grid), lo, hi))
    mu = mu[np.min(np.abs(mu[:, None] - np.array(centres or [np.inf])[None, :]), axis=1) > approach / 2]
    values = model.coefficients(mu)
    a, b, tau = (np.asarray(values[k], dtype=float) for k in ("a", "b", "tau"))
    for c in centres:  # the gap at the root
        k = np.searchsorted(mu, c)
        mu, a, b, tau = (np.insert(arr, k, v) for arr, v in ((mu, c), (a, np.nan), (b, np.nan), (tau, np.nan)))
    return {"mu": mu, "a": a, "b": b, "tau": tau, "roots": roots}


def finish_axes(ax, xlabel, ylabel, title=None, legend=True):
    """Consistent labels, a light grid and a small legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def plot_tau_panel(axes, curves, scale=None, title=""):
    """Draw ``τ(μ)``, ``a(μ)``, ``b(μ)`` of several curves on three axes.

    Parameters
    ----------
    axes : sequence of 3 matplotlib axes
    curves : dict
        label -> the dict of :func:`tau_curve`.
    scale : dict, optional
        label -> factor multiplying ``τ`` and dividing ``a``, ``b`` (the
        paper's ``k!·k`` normalisation of ``He_k``); default 1.
    title : str

    Notes
    -----
    ``τ`` goes on a log axis when its finite values span more than two
    decades; the y-range is cut to the 1st-99th percentiles (times a margin)
    so a divergence does not flatten everything else.  Every critical ``μ``
    where ``τ`` diverges is a dotted vertical line and a marker on ``μ``'s axis.
    """
    scale = scale or {}
    ax_tau, ax_a, ax_b = axes
    finite = []
    for (label, curve), style in zip(curves.items(), itertools.cycle(STYLES)):
        c = float(scale.get(label, 1))
        mu, tau = curve["mu"], curve["tau"] * c
        tau = np.where(np.isfinite(tau) & (tau > 0), tau, np.nan)
        # markevery as a fraction of the axes diagonal: evenly spaced markers on a refined grid
        kw = dict(ls=style["ls"], marker=style["marker"], markevery=0.1, ms=4, lw=1.3, label=mathtext_label(label))
        line, = ax_tau.plot(mu, tau, **kw)
        ax_a.plot(mu, curve["a"] / c, **kw)
        ax_b.plot(mu, curve["b"] / c, **kw)
        # the y-range comes from points away from the divergences (the refined grid would dominate)
        far = np.ones(mu.shape, bool)
        for root in curve["roots"]:
            far &= np.abs(mu - float(sp.N(root))) > 0.03
        finite.append(tau[np.isfinite(tau) & far])
        for root in curve["roots"]:
            r = float(sp.N(root))
            k = np.nanargmin(np.abs(mu - r))
            if np.nanmax(tau[max(k - 3, 0): k + 4], initial=0) > 10 * np.nanmedian(tau):
                ax_tau.axvline(r, color=line.get_color(), ls=":", lw=1)
            ax_tau.plot([r], [0], marker="|", ms=12, mew=2, color=line.get_color(), clip_on=False,
                        transform=ax_tau.get_xaxis_transform())
            ax_a.plot([r], [0], marker="o", mfc="none", color=line.get_color())
    values = np.concatenate(finite) if finite else np.array([1.0])
    if values.size:
        lo, hi = np.min(values), np.max(values)
        if hi / max(lo, 1e-300) > 100:
            ax_tau.set_yscale("log")
            ax_tau.set_ylim(lo / 2, hi * 10)
        else:
            ax_tau.set_ylim(0, hi * 1.3)
    ax_a.axhline(0, color="k", lw=0.6)
    ax_b.axhline(0, color="k", lw=0.6)
    _symlog_if_wide(ax_a, [np.asarray(c["a"], float) / float(scale.get(k, 1)) for k, c in curves.items()])
    _symlog_if_wide(ax_b, [np.asarray(c["b"], float) / float(scale.get(k, 1)) for k, c in curves.items()])
    finish_axes(ax_tau, "pre-training strength $\\mu$", "$\\tau(\\mu)$  (units of $1/\\eta$)", title)
    finish_axes(ax_a, "pre-training strength $\\mu$", "$a(\\mu)$", "coupling $a(\\mu)$ (critical $\\mu$: circles)",
                legend=False)
    finish_axes(ax_b, "pre-training strength $\\mu$", "$b(\\mu)$", "damping $b(\\mu)$", legend=False)


def _symlog_if_wide(ax, arrays):
    scales = [np.nanmax(np.abs(a[np.isfinite(a)])) for a in arrays if np.isfinite(a).any()]
    scales = [v for v in scales if v > 0]
    # curves of very different sizes (He2 next to He14): symlog, linear below a tenth of the smallest curve's
    # size, so that every curve and every sign change stays visible
    if scales and max(scales) / min(scales) > 100:
        ax.set_yscale("symlog", linthresh=min(scales) / 10)


def table_number(value) -> str:
    """A cell for Markdown/CSV: exact rationals as is, other numbers to 12 digits."""
    if isinstance(value, (float, np.floating, int, np.integer)):
        return format_number(value)
    value = sp.sympify(value)
    if value.is_Rational:
        return sp.sstr(value)
    return format_number(float(sp.N(value, 20)))

