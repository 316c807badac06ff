"""Checks and flattening of the inputs of the integrator layer (:mod:`symlora._integrate`, :mod:`symlora._escape_time`).

Initial states and parameters arrive as ``{symbol or name: array_like}``;
they are checked (finite numbers, sizes, names), broadcast together and
flattened into the ``(n_states, batch)`` layout the generated right-hand
side takes.
"""

from __future__ import annotations

import numpy as np

from ._codegen import compile_ode
from ._ode_system import ODESystem
from ._validate import MAX_ARRAY_SIZE, as_float, as_float_array


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
