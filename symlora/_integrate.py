"""The single integrator layer: batched ODE integration and escape times.

A batch of initial conditions and parameters (any broadcast shape) is
integrated as *one* system by scipy's explicit Runge–Kutta solvers
(``DOP853`` by default), calling the generated, vectorised right-hand side
once per stage for the whole batch.  Escape times are located on the
solver's dense output by vectorised bisection, to far better than the
step size.  Implicit solvers (``Radau``, ``BDF``, ``LSODA``) get the generated
Jacobian.  Nothing here calls SymPy: the ODE arrives compiled.

Results are data: a run that does not escape within its horizon returns
``inf`` with the status ``"censored"``; a solver failure is reported in
``status``/``message``, never raised.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import DOP853, RK45, solve_ivp

from ._codegen import compile_ode
from ._display import OneLineDisplay
from ._ode_system import ODESystem
from ._validate import MAX_ARRAY_SIZE, as_float, as_float_array

__all__ = [
    "IntegrationResult",
    "EscapeResult",
    "integrate",
    "escape_time",
    "fit_escape_slope",
]

_SOLVERS = {"DOP853": DOP853, "RK45": RK45}


@dataclass(frozen=True, repr=False)  # repr from OneLineDisplay: no walls of arrays
class IntegrationResult(OneLineDisplay):
    """Trajectories of a batch of ODE solutions.

    Attributes
    ----------
    t : numpy.ndarray
        Times, shape ``(nt,)``.
    states : dict
        State name -> array of shape ``batch_shape + (nt,)``.
    status : int
        0 on success, -1 if the solver failed.
    message : str
    success : bool
    rhs_error : dict or None
        Approximate systems only (quadrature nodes): state name -> estimated
        quadrature error of its right-hand side at each output time (shape
        like ``states``); ``None`` for exact systems.
    rhs_error_max : float
        The largest of them, relative to ``atol + rtol max_t |rhs|`` of the
        same state and member (``> 1``: the right-hand side is less accurate
        than the requested tolerance, and a warning was issued); 0 for exact
        systems.
    """

    t: np.ndarray
    states: dict
    status: int
    message: str
    success: bool
    rhs_error: dict = None
    rhs_error_max: float = 0.0

    def __getitem__(self, name):
        return self.states[name]

    def _summary(self) -> str:
        shape = next(iter(self.states.values())).shape[:-1] if self.states else ()
        batch = f"batch {shape}, " if shape else ""
        span = f"{self.t.size} times in [{self.t[0]:.4g}, {self.t[-1]:.4g}]" if self.t.size else "no times"
        outcome = "success" if self.success else f"failed: {self.message}"
        return f"{outcome}; {batch}{span}; states {', '.join(self.states)}"


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



def _named(mapping, symbols, what, required):
    """Map ``{symbol or name: value}`` onto ``symbols`` (order preserved)."""
    by_name = {}
    for key, value in (mapping or {}).items():
        by_name[getattr(key, "name", key)] = value
    names = [s.name for s in symbols]
    unknown = set(by_name) - set(names)
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(sorted(unknown))}; expected {', '.join(names)}")
    if required:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValueError(f"missing {what} {', '.join(missing)}")
    return [by_name.get(n, 0.0) for n in names]


def _check_eps(eps, threshold):
    threshold = as_float(threshold, "threshold")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    eps_arr, _ = as_float_array(eps, "eps")
    if np.any(eps_arr <= 0) or np.any(eps_arr >= threshold):
        raise ValueError(f"eps must satisfy 0 < eps < threshold = {threshold}")
    if np.any(eps_arr < 1e-300):
        raise ValueError("eps must be >= 1e-300 (log(1/eps) sets the time scale)")
    return eps_arr


def _check_t_max(t_max):
    t_max = as_float(t_max, "t_max")
    if not 0 < t_max <= 1e12:
        raise ValueError(f"t_max must lie in (0, 1e12], got {t_max:g}")
    return t_max


def _prepare(system, initial, parameters):
    if not isinstance(system, ODESystem):
        raise TypeError(f"system must be an ODESystem, got {type(system).__name__}")
    y0 = _named(initial, system.states, "initial state", required=False)
    params = _named(parameters, system.parameters, "parameter", required=True)
    names = [s.name for s in system.states] + [p.name for p in system.parameters]
    checked = [as_float_array(v, name)[0] for v, name in zip(y0 + params, names)]
    try:
        arrays = np.broadcast_arrays(*checked)
    except ValueError as exc:
        raise ValueError(f"initial states and parameters do not broadcast together: {exc}") from None
    if arrays[0].size > MAX_ARRAY_SIZE // 10:
        raise ValueError(f"batch of {arrays[0].size} members is too large (at most {MAX_ARRAY_SIZE // 10})")
    shape = arrays[0].shape
    n = len(system.states)
    y0 = np.stack([a.ravel() for a in arrays[:n]])
    params = [a.ravel() for a in arrays[n:]]
    if not (np.all(np.isfinite(y0)) and all(np.all(np.isfinite(p)) for p in params)):
        raise ValueError("initial states and parameters must be finite")
    return compile_ode(system), y0, params, shape


def integrate(system, initial, parameters, t_max, t_eval=None, *, rtol=1e-9, atol=1e-12, method="DOP853"):
    """Integrate a batch of initial conditions and parameters together.

    Parameters
    ----------
    system : ODESystem
    initial : dict
        State (symbol or name) -> array_like; missing states start at 0.
    parameters : dict
        Parameter (symbol or name) -> array_like; all are required.
    t_max : float
        Final time (``t = steps/d``).
    t_eval : array_like, optional
        Output times (default: 201 equally spaced points in ``[0, t_max]``).
    rtol, atol : float
        Tolerances of the scipy solver.
    method : str
        Any ``scipy.integrate.solve_ivp`` method.  The implicit ones
        (``Radau``, ``BDF``, ``LSODA``) get the generated Jacobian, block-diagonal
        over the batch.

    Returns
    -------
    IntegrationResult
    """
    t_max = _check_t_max(t_max)
    compiled, y0, params, shape = _prepare(system, initial, parameters)
    n, batch = y0.shape
    t_eval = np.linspace(0.0, t_max, 201) if t_eval is None else as_float_array(t_eval, "t_eval")[0]
    if t_eval.ndim != 1 or t_eval.size == 0 or np.any(np.diff(t_eval) < 0) or t_eval[0] < 0 or t_eval[-1] > t_max:
        raise ValueError("t_eval must be increasing and lie in [0, t_max]")

    def fun(t, y):
        return compiled.rhs(y.reshape(n, batch), *params).ravel()

    options = {"jac": _batch_jacobian(compiled, n, batch, params)} if method in _IMPLICIT else {}
    sol = solve_ivp(fun, (0.0, float(t_max)), y0.ravel(), t_eval=t_eval, method=method, rtol=rtol, atol=atol,
                    **options)
    nt = sol.y.shape[1]
    ys = sol.y.reshape(n, batch, nt)
    states = {s.name: ys[i].reshape(shape + (nt,)) for i, s in enumerate(system.states)}
    rhs_error, worst = None, 0.0
    if not system.exact and nt:
        rhs_error, worst = _rhs_error_along(compiled, ys, params, rtol, atol)
        rhs_error = {s.name: rhs_error[i].reshape(shape + (nt,)) for i, s in enumerate(system.states)}
    return IntegrationResult(sol.t, states, int(sol.status if sol.status >= 0 else -1), sol.message, bool(sol.success),
                             rhs_error, worst)


#: solve_ivp methods that solve linear systems with the Jacobian
_IMPLICIT = ("Radau", "BDF", "LSODA")


def _batch_jacobian(compiled, n, batch, params):
    """``jac(t, y)`` of the flattened batch: block-diagonal, one ``n × n`` block per member (sparse)."""
    from scipy.sparse import csr_matrix

    # y is (n, batch) flattened row-major: entry (i, b) sits at i * batch + b
    rows, cols, member = np.meshgrid(np.arange(n) * batch, np.arange(n) * batch, np.arange(batch), indexing="ij")
    rows, cols = rows + member, cols + member

    def jac(t, y):
        blocks = np.broadcast_to(compiled.jacobian(y.reshape(n, batch), *params), (n, n, batch))
        return csr_matrix((blocks.ravel(), (rows.ravel(), cols.ravel())), shape=(n * batch, n * batch))

    return jac


def _rhs_error_along(compiled, ys, params, rtol, atol):
    """Quadrature error of the right-hand side at trajectory points; warns above the tolerance.

    Returns the error array (shape of ``ys``) and its largest ratio to
    ``atol + rtol |rhs|``.
    """
    finite = np.isfinite(ys).all(axis=0)
    safe = np.where(finite, ys, 0.0)
    columns = [np.asarray(p, dtype=float)[:, None] for p in params]
    value = compiled.rhs(safe, *columns)
    error = np.where(finite, compiled.rhs_error(safe, *columns), np.nan)
    # per state and member, against the solver's tolerance at the scale that state's rate reaches
    scale = np.nanmax(np.abs(value), axis=-1, keepdims=True)
    ratio = error / (atol + rtol * scale)
    worst = float(np.nanmax(ratio)) if np.any(np.isfinite(ratio)) else 0.0
    if worst > 1:
        warnings.warn(
            f"the right-hand side of this approximate system (quadrature nodes) has an estimated error up to "
            f"{float(np.nanmax(error)):.2g} along the trajectory, {worst:.2g} times the requested tolerance "
            f"(rtol={rtol:g}, atol={atol:g}); the trajectory is no more accurate than that. "
            "See IntegrationResult.rhs_error.",
            stacklevel=3,
        )
    return error, worst


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
