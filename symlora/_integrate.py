"""The single integrator layer: batched ODE integration.

A batch of initial conditions and parameters (any broadcast shape) is
integrated as *one* system by ``scipy.integrate.solve_ivp``, calling the
generated, vectorised right-hand side once per stage for the whole batch.
Implicit solvers (``Radau``, ``BDF``, ``LSODA``) get the generated Jacobian,
block-diagonal over the batch.  Nothing here calls SymPy: the ODE arrives
compiled.  Escape times live in :mod:`symlora._escape_time` (re-exported
here), input checks in :mod:`symlora._integration_inputs`.

Results are data: a solver failure is reported in ``status``/``message``,
never raised.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from ._display import OneLineDisplay
from ._escape_time import EscapeResult, escape_time, fit_escape_slope  # noqa: F401 (importable here, as before)
from ._integration_inputs import _check_eps, _check_t_max, _prepare  # noqa: F401 (_check_eps: likewise)
from ._validate import as_float_array

__all__ = [
    "IntegrationResult",
    "EscapeResult",
    "integrate",
    "escape_time",
    "fit_escape_slope",
]


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
