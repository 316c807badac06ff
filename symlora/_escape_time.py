"""Escape times of a batch: first passage of ``|m|`` over a threshold, located on the dense output.

The batch is integrated as one system by scipy's explicit Runge–Kutta
solvers (``DOP853`` by default); members that have escaped are frozen so that
they cannot slow the rest down, and each crossing is found by vectorised
bisection on the solver's dense output, to far better than the step size.
A member that does not escape within its horizon is ``"censored"`` with
``inf``; a solver failure is reported in ``status``, never raised.
:func:`fit_escape_slope` fits the escape time against ``log(1/eps)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import DOP853, RK45

from ._display import OneLineDisplay
from ._integration_inputs import _check_eps, _check_t_max, _prepare
from ._validate import as_float_array

__all__ = ["EscapeResult", "escape_time", "fit_escape_slope"]

_SOLVERS = {"DOP853": DOP853, "RK45": RK45}


@dataclass(frozen=True, repr=False)  # repr from OneLineDisplay: no walls of arrays
class EscapeResult(OneLineDisplay):
    """Escape times of a batch.

    Attributes
    ----------
    time : numpy.ndarray
        First time ``|m| >= threshold``; ``inf`` where it did not happen.
    status : numpy.ndarray of str
        ``"escaped"``, ``"censored"`` (horizon reached) or ``"failed"``.
    t_max : float
        The horizon used.
    threshold : float
    message : str
    inputs : dict
        The broadcast inputs (e.g. ``mu``, ``eps``).
    rhs_error : numpy.ndarray or None
        Approximate systems only: per member, the largest estimated
        quadrature error of the right-hand side (over states) sampled along
        its trajectory (every few solver steps); ``None`` for exact systems.
        A warning is issued when it exceeds ``atol + rtol max |rhs|``.
    """

    time: np.ndarray
    status: np.ndarray
    t_max: float
    threshold: float
    message: str
    inputs: dict = field(default_factory=dict)
    rhs_error: np.ndarray = None

    @property
    def escaped(self) -> np.ndarray:
        return self.status == "escaped"

    def _summary(self) -> str:
        status = np.asarray(self.status).ravel()
        counts = ", ".join(f"{int(np.sum(status == s))} {s}" for s in dict.fromkeys(status.tolist()))
        times = np.asarray(self.time, dtype=float).ravel()
        finite = times[np.isfinite(times)]
        span = f"t_esc from {finite.min():.4g} to {finite.max():.4g}" if finite.size else "no escape"
        return (f"{status.size} run{'s' if status.size != 1 else ''}: {counts}; {span}; "
                f"threshold {self.threshold:g}, t_max {self.t_max:.4g}")


def escape_time(
    system,
    parameters,
    eps,
    threshold=0.5,
    t_max=100.0,
    *,
    observed="m",
    initial=None,
    rtol=1e-10,
    atol=1e-14,
    method="DOP853",
    max_steps=200_000,
    time_scale=None,
):
    """First time ``|observed| >= threshold`` from ``observed(0) = eps``, batched.

    Members that have escaped are frozen (their right-hand side is set to 0
    and not evaluated) so that they cannot slow the rest down.  The crossing is found on the
    solver's dense output by 60 steps of vectorised bisection.

    Parameters
    ----------
    system : ODESystem
    parameters : dict
        Parameter -> array_like (broadcast with ``eps``).
    eps : array_like
        Initial value of the observed state, ``0 < eps < threshold``.
    threshold : float
        In ``(0, 1)``.
    t_max : float
        Horizon; members not escaped by then are ``"censored"`` with ``inf``.
    observed : str or tuple of str
        Name of the state that must escape (``"m"``), or several names: the
        escape statistic is then the largest of their absolute values (rank
        ``r``: every ``m_a``, see :func:`escape_statistic`).  ``eps`` is the
        initial value of the first of them.
    initial : dict, optional
        Other initial states (default 0).
    time_scale : array_like, optional
        A characteristic time per member (e.g. ``τ/η``), broadcast with
        ``eps`` and the parameters.  Each member is integrated in its own
        scaled time ``s = t / time_scale`` so that one common step size
        suits the whole batch (members with very different ``τ`` no longer
        hold each other back); results are reported in ``t``.

    Returns
    -------
    EscapeResult
    """
    eps_arr = _check_eps(eps, threshold)
    t_max = _check_t_max(t_max)
    if not isinstance(method, str) or method not in _SOLVERS:
        raise ValueError(f"method must be one of {sorted(_SOLVERS)}, got {method!r}")
    names = [s.name for s in system.states]
    watched = (observed,) if isinstance(observed, str) else tuple(observed)
    if not watched or any(not isinstance(name, str) or name not in names for name in watched):
        raise ValueError(f"observed must name states among {names}, got {observed!r}")
    start = dict(initial or {})
    start[watched[0]] = eps_arr
    compiled, y0, params, shape = _prepare(system, start, parameters)
    n, batch = y0.shape
    if time_scale is None:
        scale = np.ones(batch)
    else:
        scale = np.broadcast_to(np.asarray(time_scale, dtype=float), shape).ravel().copy()
        if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
            raise ValueError("time_scale must be positive and finite")
    s_max = float(t_max) / scale  # per-member horizon in scaled time
    index = np.array([names.index(name) for name in watched])
    active = np.ones(batch, dtype=bool)
    times = np.full(batch, np.inf)
    status = np.full(batch, "censored", dtype=object)

    def fun(s, y):
        # only members still running are evaluated (the others are frozen: derivative 0); for
        # approximate systems each member costs a one-dimensional rule, so this is most of the work
        y = y.reshape(n, batch)
        if active.all():
            return (compiled.rhs(y, *params) * scale).ravel()
        live = np.flatnonzero(active)
        dy = np.zeros((n, batch))
        if live.size:
            dy[:, live] = compiled.rhs(y[:, live], *[p[live] for p in params]) * scale[live]
        return dy.ravel()

    solver = _SOLVERS[method](fun, 0.0, y0.ravel(), float(np.max(s_max)), rtol=rtol, atol=atol)
    message = "horizon reached"
    steps = 0
    approximate = not system.exact
    rhs_error = np.zeros(batch) if approximate else None
    rhs_scale = np.zeros(batch)
    while active.any() and solver.status == "running":
        t_old = solver.t
        if approximate and steps % 10 == 0:
            # the quadrature error of the right-hand side, sampled along the trajectories
            live = np.flatnonzero(active)
            y_now = solver.y.reshape(n, batch)[:, live]
            with np.errstate(all="ignore"):
                error = compiled.rhs_error(y_now, *[p[live] for p in params])
                value = compiled.rhs(y_now, *[p[live] for p in params])
            rhs_error[live] = np.fmax(rhs_error[live], np.nanmax(error, axis=0))
            rhs_scale[live] = np.fmax(rhs_scale[live], np.nanmax(np.abs(value), axis=0))
        result = solver.step()
        steps += 1
        if result is not None or solver.status == "failed":
            message = f"solver failed at t = {solver.t:.6g}: {result}"
            status[active] = "failed"
            break
        y = solver.y.reshape(n, batch)
        out_of_time = active & (solver.t > s_max)
        crossed = active & (np.max(np.abs(y[index]), axis=0) >= threshold)
        if not np.all(np.isfinite(y[:, active])):
            bad = active & ~np.all(np.isfinite(y), axis=0)
            status[bad] = "failed"
            active &= ~bad
        if crossed.any():
            dense = solver.dense_output()
            lo = np.full(crossed.sum(), t_old)
            hi = np.full(crossed.sum(), solver.t)
            members = np.flatnonzero(crossed)
            rows = index[:, None] * batch + members
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                values = dense(mid)[rows, np.arange(mid.size)]
                above = np.max(np.abs(values), axis=0) >= threshold
                hi = np.where(above, mid, hi)
                lo = np.where(above, lo, mid)
            times[members] = hi * scale[members]
            status[members] = "escaped"
            late = times > float(t_max)
            times[late & crossed] = np.inf
            status[late & crossed] = "censored"
            active &= ~crossed
        if out_of_time.any():
            active &= ~out_of_time  # beyond its own horizon: stays censored
        if crossed.any() or out_of_time.any():
            # the stored derivative (first-same-as-last) must see the frozen members
            # as frozen, or the error estimate rejects the next steps
            solver.f = fun(solver.t, solver.y)
        if steps >= max_steps:
            message = f"stopped after {max_steps} steps at t = {solver.t:.6g}"
            break
    if not active.any():
        message = "all members escaped" if np.all(status == "escaped") else "finished"
    if approximate:
        worst = float(np.max(rhs_error / (atol + rtol * rhs_scale)))
        if worst > 1:
            warnings.warn(
                f"the right-hand side of this approximate system (quadrature nodes) has an estimated error up to "
                f"{float(np.max(rhs_error)):.2g} along the trajectories, {worst:.2g} times the requested tolerance "
                f"(rtol={rtol:g}, atol={atol:g}); escape times are no more accurate than that allows. "
                "See EscapeResult.rhs_error.",
                stacklevel=2,
            )
        rhs_error = rhs_error.reshape(shape)
    return EscapeResult(
        time=times.reshape(shape),
        status=status.reshape(shape).astype(str),
        t_max=float(t_max),
        threshold=float(threshold),
        message=message,
        rhs_error=rhs_error,
    )


def fit_escape_slope(eps, times):
    """Least-squares slope of escape time against ``log(1/eps)``.

    Censored (infinite) times are left out of the fit.

    Parameters
    ----------
    eps : array_like
        Initial overlaps, finite, in ``(0, 1)``.
    times : array_like
        Escape times, one per ``eps`` (``inf`` for censored runs).

    Returns
    -------
    (float, float)
        Slope and its standard error; the error is ``nan`` with exactly two
        points (a line through two points has no residual to estimate it from).

    Raises
    ------
    TypeError
        Non-numeric input (strings are refused).
    ValueError
        ``eps`` and ``times`` of different sizes, ``eps`` outside ``(0, 1)``,
        negative or ``nan`` times, or fewer than two distinct ``eps`` with a
        finite time.

    Examples
    --------
    >>> slope, err = fit_escape_slope([1e-2, 1e-4, 1e-6], [10.0, 20.0, 30.0])
    >>> round(slope, 6)
    2.171472
    """
    eps, _ = as_float_array(eps, "eps")
    eps = eps.ravel()
    times = np.asarray(as_float_array(times, "times", allow_inf=True)[0], dtype=float).ravel()
    if eps.size != times.size:
        raise ValueError(f"eps has {eps.size} values but times has {times.size}; give one time per eps")
    if np.any(eps <= 0) or np.any(eps >= 1):
        raise ValueError("eps values must lie in (0, 1)")
    if np.any(np.isnan(times)) or np.any(times < 0):
        raise ValueError("times must be >= 0 (inf for censored runs), not nan")
    ok = np.isfinite(times)
    if np.unique(eps[ok]).size < 2:
        raise ValueError(
            "need two finite escape times (at two or more distinct eps) to fit a slope "
            f"(got {np.unique(eps[ok]).size} distinct eps with a finite time)"
        )
    x = np.log(1 / eps[ok])
    y = times[ok]
    design = np.vstack([x, np.ones_like(x)]).T
    coef, residual, *_ = np.linalg.lstsq(design, y, rcond=None)
    dof = x.size - 2
    if dof > 0:
        sigma2 = float(np.sum((y - design @ coef) ** 2)) / dof
        stderr = float(np.sqrt(sigma2 / np.sum((x - x.mean()) ** 2)))
    else:
        stderr = float("nan")
    return float(coef[0]), stderr
