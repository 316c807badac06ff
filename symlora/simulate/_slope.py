"""The mean escape time against ``log d``: a weighted least-squares slope."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._display import OneLineDisplay
from ._arguments import frozen
from ._result import SGDResult

__all__ = ["EscapeSlope", "escape_slope"]


@dataclass(frozen=True, repr=False)  # repr from OneLineDisplay: no walls of arrays
class EscapeSlope(OneLineDisplay):
    """Mean escape time per ``d`` and its weighted least-squares slope in ``log d``.

    Attributes
    ----------
    d : numpy.ndarray
    mean, sem : numpy.ndarray
        Per ``d``: mean escape time and its standard error, over the runs
        that escaped (NaN when fewer than two escaped).
    n_runs, censored, diverged : numpy.ndarray of int
        Per ``d``: runs, runs censored (``inf`` times; horizon reached) and
        runs that diverged (known only from :class:`SGDResult` input; plain
        ``inf`` times count as censored).
    used : numpy.ndarray of bool
        Which ``d`` entered the fit.
    slope, slope_sem, intercept : float
        ``mean ≈ slope·log d + intercept``; ``slope_sem`` propagates the
        per-``d`` standard errors of the mean (NaN when fewer than two ``d``
        are usable).
    reduced_chi2 : float
        Goodness of fit (NaN with two points); far above 1 means the
        ``log d`` law does not describe the means within their errors.
    message : str
        What was excluded and why, or why there is no slope.
    """

    d: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    n_runs: np.ndarray
    censored: np.ndarray
    diverged: np.ndarray
    used: np.ndarray
    slope: float
    slope_sem: float
    intercept: float
    reduced_chi2: float
    message: str

    @property
    def success(self) -> bool:
        """Whether a slope was fitted."""
        return bool(math.isfinite(self.slope))

    def _summary(self) -> str:
        d = ", ".join(str(int(v)) for v in self.d)
        if self.success:
            error = f" ± {self.slope_sem:.2g}" if math.isfinite(self.slope_sem) else ""
            fit = f"slope {self.slope:.4g}{error} per log d over {int(np.sum(self.used))} of {self.d.size} d"
        else:
            fit = "no slope"
        counts = f"censored {int(np.sum(self.censored))}, diverged {int(np.sum(self.diverged))}"
        note = f"; {self.message}" if self.message else ""
        return f"d = {d}: {fit}; {counts}{note}"


_ON_CENSORED = ("exclude", "drop", "raise")


def escape_slope(d_values, escape_times, on_censored="exclude") -> EscapeSlope:
    r"""Weighted least-squares slope of the mean escape time against ``log d``.

    Parameters
    ----------
    d_values : sequence of int
        The dimensions, at least two.
    escape_times : sequence of arrays, or of SGDResult
        Per ``d``, the escape times of its runs (``inf`` = censored).
    on_censored : {"exclude", "drop", "raise"}
        A mean over runs some of which did not escape is not the mean escape
        time: ``"exclude"`` leaves such ``d`` out of the fit (reported in
        ``used`` and ``message``), ``"drop"`` averages the escaped runs only
        (biased low: the slow runs are missing), ``"raise"`` refuses.
        Censored counts are reported in every case.

    Returns
    -------
    EscapeSlope

    Raises
    ------
    TypeError
        ``d_values`` not integers.
    ValueError
        Lengths differ, fewer than two ``d``, ``d < 2``, negative or NaN
        escape times, an empty set of runs, an unknown ``on_censored``, or
        censored runs with ``on_censored="raise"``.

    Notes
    -----
    With ``x_i = log d_i``, ``y_i`` the means and ``s_i`` their standard
    errors, the fit minimises ``Σ (y_i - a x_i - c)² / s_i²``; the slope's
    variance is the ``(a, a)`` entry of ``(Xᵀ W X)^{-1}``, ``W = diag(1/s_i²)``.

    Examples
    --------
    >>> fit = escape_slope([100, 1000], [[1.0, 1.2], [3.0, 3.4]])
    >>> round(fit.slope * math.log(10), 6)
    2.1
    """
    if not isinstance(on_censored, str) or on_censored not in _ON_CENSORED:
        raise ValueError(f"on_censored must be one of {_ON_CENSORED}, got {on_censored!r}")
    d_arr = np.asarray(d_values)
    if d_arr.ndim != 1 or not np.issubdtype(d_arr.dtype, np.integer):
        raise TypeError(f"d_values must be a sequence of integers, got {d_values!r}")
    escape_times = list(escape_times)
    n_diverged = [r.diverged if isinstance(r, SGDResult) else 0 for r in escape_times]
    escape_times = [r.escape_time if isinstance(r, SGDResult) else r for r in escape_times]
    if len(escape_times) != d_arr.size:
        raise ValueError(f"got {d_arr.size} values of d but {len(escape_times)} sets of escape times")
    if d_arr.size < 2:
        raise ValueError("need at least two values of d to fit a slope")
    if np.any(d_arr < 2):
        raise ValueError(f"every d must be at least 2, got {d_arr.tolist()}")
    n = d_arr.size
    mean, sem = np.full(n, np.nan), np.full(n, np.nan)
    n_runs, censored = np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    diverged = np.array(n_diverged, dtype=int)
    for i, times in enumerate(escape_times):
        times = np.asarray(times, dtype=float).ravel()
        if times.size == 0:
            raise ValueError(f"no runs at d = {d_arr[i]}")
        if np.any(np.isnan(times)) or np.any(times < 0):
            raise ValueError(f"escape times at d = {d_arr[i]} must be >= 0 or inf (censored)")
        ok = np.isfinite(times)
        n_runs[i], censored[i] = times.size, int(np.sum(~ok)) - diverged[i]
        if ok.sum() >= 2:
            mean[i] = np.mean(times[ok])
            sem[i] = np.std(times[ok], ddof=1) / math.sqrt(ok.sum())
    notes = []
    if diverged.any():
        listed = ", ".join(f"d={d}: {c}/{r}" for d, c, r in zip(d_arr, diverged, n_runs) if c)
        notes.append(f"diverged runs ({listed}) did not escape: treated like censored runs below")
    missing = censored + diverged
    if missing.any():
        listed = ", ".join(f"d={d}: {c}/{r}" for d, c, r in zip(d_arr, missing, n_runs) if c)
        if on_censored == "raise":
            raise ValueError(f"censored runs ({listed}); lengthen the horizon or choose on_censored")
        if on_censored == "exclude":
            notes.append(f"excluded d with runs that did not escape ({listed}): their mean escape time is unknown")
        else:
            notes.append(f"censored runs dropped ({listed}): those means are biased low")
    used = np.isfinite(mean) & np.isfinite(sem) & (sem > 0)
    if on_censored == "exclude":
        used &= missing == 0
    if np.any(np.isfinite(mean) & ~(sem > 0)):
        notes.append("d with zero spread of escape times excluded (no error estimate)")
    slope = slope_sem = intercept = chi2 = float("nan")
    if used.sum() >= 2:
        x, y, w = np.log(d_arr[used].astype(float)), mean[used], 1 / sem[used] ** 2
        X = np.stack([x, np.ones_like(x)], axis=1)
        cov = np.linalg.inv(X.T @ (w[:, None] * X))
        coef = cov @ (X.T @ (w * y))
        slope, intercept, slope_sem = float(coef[0]), float(coef[1]), float(math.sqrt(cov[0, 0]))
        dof = int(used.sum()) - 2
        if dof > 0:
            chi2 = float(np.sum(w * (y - X @ coef) ** 2) / dof)
    else:
        notes.append("fewer than two values of d with two or more escaped runs: no slope")
    return EscapeSlope(
        d=frozen(d_arr.copy()), mean=frozen(mean), sem=frozen(sem), n_runs=frozen(n_runs),
        censored=frozen(censored), diverged=frozen(diverged), used=frozen(used), slope=slope, slope_sem=slope_sem,
        intercept=intercept, reduced_chi2=chi2, message="; ".join(notes),
    )
