"""Integrating a :class:`~symlora.LoRAModel`: its parameters, initial states, escape statistic, slope fits.

The model-facing side of the integrator layer (:mod:`symlora._integrate`
integrates any compiled :class:`~symlora.ODESystem`, :mod:`symlora._escape_time`
times its escapes): which statistic an
escape is read from at rank ``r``, where the other statistics start, a
and a horizon from the linear theory (docs/theory.md §4).
"""

from __future__ import annotations

import numpy as np

from ._escape_time import EscapeResult, escape_time
from ._integrate import integrate
from ._integration_inputs import _check_eps
from ._validate import MU_MAX, as_float_array, check_mu

__all__ = ["escape_statistic", "integrate_model", "escape_time_model", "default_horizon"]


def _parameter_values(model, mu, mu_perp, parameters):
    values = {"mu": mu}
    if model.pretraining == "general":
        values["mu_perp"] = mu_perp
    elif mu_perp not in (None, 0):
        raise ValueError("mu_perp is only used with pretraining='general'")
    extra = dict(parameters or {})
    for symbol in model.ode_system().parameters:
        if symbol.name not in values and symbol.name not in extra:
            raise ValueError(f"the model leaves {symbol.name} symbolic: pass parameters={{'{symbol.name}': value}}")
    values.update(extra)
    check_mu(mu)
    if model.pretraining == "general":
        as_float_array(mu_perp, "mu_perp", low=0.0, high=MU_MAX)
    return values


def escape_statistic(model) -> tuple:
    """Names of the states whose largest absolute value decides the escape: every ``m_a``.

    At the random start the directions are orthogonal up to ``O(d^{-1/2})``
    and every mode of the linearisation grows at the same rate ``1/τ``
    (docs/theory.md §4), so the adapter escapes when its best-aligned
    direction does: ``max_a |m_a|`` (``|m|`` at rank 1).  The statistic is
    symmetric under permutations of the adapters.
    """
    from ._statistics import geometry

    return tuple(m.name for m in geometry(model.pretraining, model.rank).m)


def integrate_model(model, mu, m0, u0, t_max, t_eval=None, *, mu_perp=0.0, s0=0.0, initial=None, parameters=None,
                    **kwargs):
    """Integrate ``model``'s ODE from ``(m0, u0)`` (batched over all array inputs).

    ``m0``, ``u0`` (and ``s0``, general pre-training) start the first
    direction (``m``, ``u``, ``s``; rank ``r``: ``m1``, ``u1``, ``s1``);
    ``initial`` gives any other statistic by name (``{"m2": 1e-3,
    "q12": 0.01}``); the rest start at 0.

    Returns
    -------
    IntegrationResult
        States keyed by name (``"m"``, ``"u"``, ...).
    """
    from ._statistics import geometry

    system = model.ode_system()
    geo = geometry(model.pretraining, model.rank)
    start = {geo.m[0].name: m0, geo.u[0].name: u0, **({geo.s[0].name: s0} if geo.s else {})}
    start.update(initial or {})
    values = _parameter_values(model, mu, mu_perp, parameters)
    return integrate(system, start, values, t_max, t_eval, **kwargs)


def default_horizon(model, mu, eps, threshold, mu_perp=0.0):
    """A generous horizon from the linear theory: ``10 (τ/η) log(threshold/eps) + 20/η``."""
    eta = float(model.lr)
    if model.pretraining == "general":
        tau = model.coefficients(mu, mu_perp)["tau"]
    else:
        tau = model.tau(mu)
    tau = np.where(np.isfinite(tau), tau, 1e3)
    horizon = 10 * tau / eta * np.log(threshold / np.asarray(eps, dtype=float)) + 20 / eta
    return float(min(np.max(horizon), 1e6))


def escape_time_model(model, mu, eps, threshold=0.5, t_max=None, *, mu_perp=0.0, parameters=None, **kwargs):
    """Escape time of ``|m|`` to ``threshold`` from ``m0 = eps``, ``u0 = 0``.

    Batched over ``mu`` and ``eps`` (they broadcast).  Other states start
    at 0 unless ``initial`` (a keyword, ``{name: value}``) says otherwise;
    the escape statistic is :func:`escape_statistic` (rank ``r``: the largest
    ``|m_a|``, starting from ``m1 = eps``; with the other directions idle
    this is the rank-1 escape).  Default horizon: :func:`default_horizon`.

    Returns
    -------
    EscapeResult
    """
    eps_arr = _check_eps(eps, threshold)
    values = _parameter_values(model, mu, mu_perp, parameters)
    if t_max is None:
        t_max = default_horizon(model, mu, eps_arr, threshold, mu_perp)
    observed = escape_statistic(model)
    if "time_scale" not in kwargs:
        tau = model.tau(mu) if model.pretraining == "aligned" else model.coefficients(mu, mu_perp)["tau"]
        eta = float(model.lr)
        # integrate each member in units of its own tau/eta (1 where tau is infinite)
        kwargs["time_scale"] = np.where(np.isfinite(tau) & (tau > 0), np.asarray(tau) / eta, 1.0)
    result = escape_time(model.ode_system(), values, eps_arr, threshold, t_max, observed=observed, **kwargs)
    mu_b, eps_b = np.broadcast_arrays(np.asarray(mu, dtype=float), eps_arr)
    return EscapeResult(result.time, result.status, result.t_max, result.threshold, result.message,
                        {"mu": mu_b, "eps": eps_b}, result.rhs_error)
