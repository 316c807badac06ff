"""Errata of the paper's published ``τ(μ)`` tables against symlora's exact values.

The published tables (CSV, one column per activation, one row per ``μ``) are
read from a folder the user points to; nothing of them is stored in the
package.  Each column is compared with symlora's exact ``τ`` in the paper's
convention, and the cause of a deviation is looked for by recomputing the
paper's route, a truncated Hermite series, independently:

* Hermite activations ``He_k``: the paper divides ``a`` and ``b`` by
  ``k!·k`` (and the SGD learning rate by the same factor).  ``τ`` is
  homogeneous of degree ``−1`` in ``(a, b)``, so the paper's ``τ`` is
  ``k!·k`` times symlora's (in units of the paper's learning rate).
* The truncated-series route (:func:`series_tau`): with
  ``σ_k = E[σ(X) He_k^[Q](X)]``, ``X ~ N(0, Q = μ²)``, Gaussian integration
  by parts gives ``(σ^{(n)})_k = σ_{k+n}/Q^n`` and Parseval/Mehler give

  ``E[σ'²] = Σ σ_{k+1}²/(k! Q^{k+2})``, ``E[σσ''] = Σ σ_k σ_{k+2}/(k! Q^{k+2})``,
  ``E[σ*'(ν)σ'(λ)] = Σ σ*_{k+1} σ_{k+1} μ^k/(k! Q^{k+1})``,
  ``E[σ*(ν)σ''(λ)] = Σ σ*_k σ_{k+2} μ^k/(k! Q^{k+2})``,

  so ``b = E[σ'²] + E[σσ''] − E[σ*σ'']`` and, by Stein's lemma on ``ν``,
  ``a = −μ(E[σ'²] + E[σσ'']) + E[σ*'σ'] + μ E[σ*σ'']``.  Each coefficient
  is one ``scipy.integrate.quad``; the sums stop at ``k ≤ k_max``.  The
  ``k = 0`` term of the last sum is the only place the teacher's mean
  ``σ*_0`` enters: leaving it out is the "dropped ``k = 0`` term" variant.
  The coefficients ``σ_k`` are of order ``μ^k`` and are divided by
  ``μ^{2k}``: quad's absolute error (1.5e-8 by default) is amplified by
  ``μ^{-k}``, the ill-conditioning at small ``μ``; comparing default and
  tight quadrature tolerances measures it.

This is our reconstruction of the route the paper's README describes, not
the authors' code: a cause is reported only when the reconstruction
reproduces the published number better than the exact value does.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from pathlib import Path

import numpy as np
from numpy.polynomial import hermite_e
from scipy import integrate

from ._figures import format_number
from ._model import LoRAModel

__all__ = ["PUBLISHED_TABLES", "find_published", "read_published", "series_tau", "errata_rows"]

#: file -> (description, k_max of the paper's series).
PUBLISHED_TABLES = {
    "tau_activations.csv": ("student = teacher", 16),
    "tau_squared_teacher.csv": ("teacher = student squared", 16),
    "tau_odd_hermite.csv": ("odd Hermite activations", 14),
    "tau_even_hermite.csv": ("even Hermite activations", 20),
}


def find_published(explicit=None, start=None):
    """The folder of the published tables, or ``None`` when there is none.

    ``explicit`` (``--published``) wins; otherwise ``shared/paper`` next to
    the repository holding this package, then next to ``start`` (default:
    the current directory) and its parents.
    """
    if explicit is not None:
        path = Path(explicit)
        if not (path / "tau_activations.csv").is_file():
            raise ValueError(f"--published {path}: no tau_activations.csv there")
        return path
    candidates = [Path(__file__).resolve().parents[1]]
    here = Path(start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    for base in candidates:
        for path in (base / "shared" / "paper", base.parent / "shared" / "paper"):
            if (path / "tau_activations.csv").is_file():
                return path
    return None


def _pair(column: str, squared: bool):
    """(label, student, teacher, paper scale) for a published column name."""
    hermite = re.fullmatch(r"He(?:\$_\{)?(\d+)\}?\$?", column)
    if hermite:
        k = int(hermite.group(1))
        student, scale = f"He{k}", math.factorial(k) * k
    else:
        student, scale = column, 1
    teacher = (student if student == "x" else f"{student}(x)") + "**2" if squared else student
    label = student + (f"/{teacher}" if squared else "")
    return label, student, teacher, scale


def read_published(folder):
    """``[(file, label, student, teacher, scale, k_max, mu, tau)]`` for every published column."""
    folder = Path(folder)
    curves = []
    for name, (_, kmax) in PUBLISHED_TABLES.items():
        path = folder / name
        if not path.is_file():
            continue
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
        header, data = rows[0], np.array(rows[1:], dtype=float)
        if header[0] != "mu":
            raise ValueError(f"{path}: first column must be mu, got {header[0]!r}")
        for j, column in enumerate(header[1:], start=1):
            label, student, teacher, scale = _pair(column, squared="squared" in name)
            curves.append((name, label, student, teacher, scale, kmax, data[:, 0], data[:, j]))
    return curves


# ---------------------------------------------------------------- the paper's route


def _coefficients(func, variance, kmax, tight):
    """``E[f(X) He_k^[Q](X)]`` for ``k = 0..kmax``, ``X ~ N(0, Q)``, one quad each.

    ``tight=False`` is the plain call ``quad(f, -inf, inf)`` with quad's
    default tolerances (our stand-in for the paper's); ``tight=True``
    integrates each half of ``±12`` standard deviations to ``1e-12``.
    """
    scale = math.sqrt(variance)
    norm = 1 / (scale * math.sqrt(2 * math.pi))
    out = []
    for k in range(kmax + 1):
        unit = np.zeros(k + 1)
        unit[k] = 1

        def integrand(x, unit=unit, k=k):
            return float(func(x)) * variance ** (k / 2) * hermite_e.hermeval(x / scale, unit) * norm * math.exp(
                -x * x / (2 * variance))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quad's accuracy warnings and exp overflow far out
            if tight:
                options = dict(epsabs=0.0, epsrel=1e-12, limit=400)
                value = (integrate.quad(integrand, -12 * scale, 0, **options)[0]
                         + integrate.quad(integrand, 0, 12 * scale, **options)[0])
            else:
                value = integrate.quad(integrand, -np.inf, np.inf)[0]
        out.append(value)
    return out


def series_tau(student, teacher, mu, kmax=16, drop_mean=False, tight=False, scale=1):
    """``τ(μ)`` by the truncated Hermite series described in the module notes.

    Parameters
    ----------
    student, teacher : str
        Activation specs.
    mu : float
        Pre-training strength, ``> 0``.
    kmax : int
        Last order kept.
    drop_mean : bool
        Leave out the ``k = 0`` term of ``E[σ*(ν)σ''(λ)]`` (the teacher's mean).
    tight : bool
        Coefficients to ``1e-12`` relative instead of quad's defaults on
        ``(-inf, inf)``.
    scale : float
        Multiplies ``τ`` (the paper's ``k!·k`` for ``He_k``).

    Examples
    --------
    >>> round(series_tau("x", "x", 0.5, tight=True), 10)      # exact for polynomials: (1 + sqrt(2))/(2 * 0.25)
    4.8284271247
    """
    from ._activation import activation

    if not mu > 0:
        raise ValueError(f"mu must be positive for the series route, got {mu}")
    s, t = activation(student), activation(teacher)
    variance = mu * mu
    with np.errstate(all="ignore"):
        sk = _coefficients(s.numpy(), variance, kmax + 2, tight)
        tk = _coefficients(t.numpy(), 1.0, kmax + 1, tight)
    fact = [math.factorial(k) for k in range(kmax + 1)]
    p1 = sum(sk[k + 1] ** 2 / (fact[k] * variance ** (k + 2)) for k in range(kmax + 1))
    p2 = sum(sk[k] * sk[k + 2] / (fact[k] * variance ** (k + 2)) for k in range(kmax + 1))
    c1 = sum(tk[k + 1] * sk[k + 1] * mu**k / (fact[k] * variance ** (k + 1)) for k in range(kmax + 1))
    c2 = sum(tk[k] * sk[k + 2] * mu**k / (fact[k] * variance ** (k + 2)) for k in range(1 if drop_mean else 0, kmax + 1))
    a = -mu * (p1 + p2) + c1 + mu * c2
    b = p1 + p2 - c2
    if a == 0:
        return math.inf
    return scale * (b + math.sqrt(b * b + 4 * a * a)) / (2 * a * a)


# ---------------------------------------------------------------- errata


def _relative(published, exact):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(published - exact) / np.abs(exact)


def _cause_at(mu, published, exact, route, kmax, roots):
    """Why the published value at one ``μ`` deviates (one clause), or ``None``."""
    worst = abs(published / exact - 1)
    dev = {name: abs(published / value - 1) if np.isfinite(value) and value != 0 else math.inf
           for name, value in route.items()}
    tight, dropped, default = route["tight"], route["dropped"], route["default"]
    at = f"at μ = {format_number(mu, 4)}"
    near = [r for r in roots if abs(r - mu) < 0.02]
    if dev["dropped"] < 0.5 * worst and abs(dropped / tight - 1) > 0.3 * worst:
        return (f"{at}: consistent with a dropped k = 0 term (the teacher's mean σ*_0 ≠ 0 is lost from "
                f"E[σ*(ν)σ''(λ)]; our k ≤ {kmax} series without it gives {format_number(dropped, 6)}, with it "
                f"{format_number(tight, 6)}, exact {format_number(exact, 6)})")
    if dev["tight"] < 0.3 * worst and abs(tight / exact - 1) > 0.3 * worst:
        return (f"{at}: series truncation (our series truncated at k ≤ {kmax} gives {format_number(tight, 6)}, "
                f"exact {format_number(exact, 6)})")
    ours = tight / exact - 1
    if 0.3 * worst < abs(ours) < 3 * worst:
        return (f"{at}: series truncation (a k ≤ {kmax} series is off by the same order here: ours by "
                f"{format_number(100 * ours, 2)} %, the published value by "
                f"{format_number(100 * (published / exact - 1), 2)} %; the sign depends on how the sums are arranged)")
    if abs(default / tight - 1) > min(0.3 * worst, 0.3):
        return (f"{at}: 1/μ^(2k) ill-conditioning (coefficients of order μ^k divided by μ^(2k); the same k ≤ {kmax} "
                f"series with quad's default tolerance gives {format_number(default, 6)} instead of "
                f"{format_number(tight, 6)})")
    if near:
        return (f"{at}: next to the critical μ = {format_number(near[0], 6)} where τ diverges, so any error in a "
                "is amplified")
    return f"{at}: not reproduced by our reconstruction of the series route; cause unknown"


def _route(student, teacher, mu, kmax, scale):
    return {name: series_tau(student, teacher, mu, kmax=kmax, scale=scale, **opts)
            for name, opts in (("tight", {"tight": True}), ("dropped", {"drop_mean": True, "tight": True}),
                               ("default", {}))}


def errata_rows(folder, causes_wanted=True, progress=None, only=None):
    """Compare every published column with symlora's exact ``τ``.

    Parameters
    ----------
    folder : path
        The folder of the published CSV tables.
    causes_wanted : bool
        Recompute the series route at the worst ``μ`` to find the cause
        (about 120 quads per point); ``False`` only tabulates deviations.
    progress : callable, optional
        Called with a label after each column.
    only : collection of str, optional
        Column labels to compare (default: all).

    Returns
    -------
    list of dict
        One per published column: deviations, where the worst one occurs,
        the series route there and the cause; plus ``"mu"``, ``"published"``,
        ``"exact"`` arrays for the figures.
    """
    rows = []
    models = {}
    for file, label, student, teacher, scale, kmax, mu, published in read_published(folder):
        if only is not None and label not in only:
            continue
        key = (student, teacher)
        if key not in models:
            models[key] = LoRAModel(student, teacher)
        model = models[key]
        values = model.coefficients(mu)
        exact = scale * np.asarray(values["tau"], dtype=float)
        exact = np.where(exact > 0, exact, np.inf)
        rel = _relative(published, exact)
        valid = np.isfinite(rel)
        masked = np.where(valid, rel, -1)
        k = int(np.argmax(masked))
        median = float(np.median(rel[valid]))
        try:
            # where b > 0 at a zero of a, tau diverges
            roots = [float(r) for r in model.critical_mu((0, 1))]
            roots = [r for r in roots if float(model.coefficients(np.array([r]))["b"][0]) > 0]
        except (ValueError, NotImplementedError):
            roots = []
        causes, route = [], {}
        if rel[k] >= 1e-3 and causes_wanted:
            # the worst point, and the worst in the other half of the range when it matters too
            half = mu > np.median(mu)
            other = np.where(half != half[k], masked, -1)
            points = [k] + [int(np.argmax(other))] * bool(other.max() > max(1e-3, 0.1 * rel[k]))
            for i in points:
                route_i = _route(student, teacher, float(mu[i]), kmax, scale)
                route = route or route_i
                causes.append(_cause_at(float(mu[i]), float(published[i]), float(exact[i]), route_i, kmax, roots))
        if rel[k] < 1e-3:
            cause = "agrees to better than 1e-3 (quadrature accuracy of the paper)"
        elif causes:
            cause = "; ".join(causes)
        else:
            cause = "not determined (--quick)"
        if median > 1e-2:
            cause += f"; wrong over most of the range (median relative deviation {format_number(median, 3)})"
        rows.append(dict(file=file, column=label, student=student, teacher=teacher, paper_scale=scale, k_max=kmax,
                         n=int(valid.sum()), max_rel_dev=float(rel[k]), mu_at_max=float(mu[k]),
                         published_at_max=float(published[k]), exact_at_max=float(exact[k]),
                         series_at_max=route.get("tight", math.nan),
                         series_without_k0_at_max=route.get("dropped", math.nan),
                         series_default_quad_at_max=route.get("default", math.nan),
                         median_rel_dev=median, cause=cause, mu=mu, published=published, exact=exact, roots=roots))
        if progress:
            progress(f"errata {file}:{label}")
    return rows


ERRATA_COLUMNS = ["file", "column", "student", "teacher", "paper_scale", "k_max", "n", "max_rel_dev", "mu_at_max",
                  "published_at_max", "exact_at_max", "series_at_max", "series_without_k0_at_max", "series_default_quad_at_max",
                  "median_rel_dev",
                  "cause"]
