"""SGD runs against the ODE started from their own state at alignment (docs/theory.md §7)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import sympy as sp

from .._display import OneLineDisplay
from .._statistics import geometry
from ._arguments import check_model, frozen, real
from ._result import SGDResult

__all__ = ["ODEComparison", "compare_with_ode"]



@dataclass(frozen=True, repr=False)  # repr from OneLineDisplay: no walls of arrays
class ODEComparison(OneLineDisplay):
    """SGD runs against the ODE started from their own state at alignment.

    Attributes
    ----------
    t : numpy.ndarray
        Times since alignment, shape ``(nt,)``.
    sgd, ode : mapping
        State name -> arrays of shape ``(seeds, nt)`` (runs mapped to
        ``m > 0`` by the symmetry ``(u, v) -> (-u, -v)``); NaN where a run
        had not aligned or its record ended.
    aligned : numpy.ndarray of bool
        Runs whose ``|m|`` reached ``align``.
    align_time : numpy.ndarray
        Per run, the recorded time of alignment (``inf`` if never).
    align : float
        The alignment level.
    max_deviation : float
        ``max |m_SGD - m_ODE|`` over aligned runs and times.
    spread : float
        Largest seed-to-seed standard deviation of ``m_SGD`` (after
        alignment) over time; the scale against which the deviation is read.
    """

    t: np.ndarray
    sgd: MappingProxyType
    ode: MappingProxyType
    aligned: np.ndarray
    align_time: np.ndarray
    align: float
    max_deviation: float
    spread: float

    def _summary(self) -> str:
        aligned = int(np.sum(self.aligned))
        span = f"{self.t.size} times up to {self.t[-1]:.4g}" if self.t.size else "no times"
        return (f"{aligned}/{self.aligned.size} runs aligned at |m| = {self.align:g}; {span}; "
                f"max |m_SGD - m_ODE| = {self.max_deviation:.3g} (seed spread {self.spread:.3g})")


def _ode_model_and_parameters(model, result):
    """The model whose ODE has the run's ``η``, ``B``, ``Δ``, and symbol values."""
    parameters, mismatch = {}, {}
    for name, value in (("lr", result.lr), ("batch", result.batch), ("noise", result.noise)):
        model_value = getattr(model, name)
        if isinstance(model_value, sp.Expr) and model_value.free_symbols:
            if model_value.is_Symbol:
                parameters[model_value.name] = value
            else:
                mismatch[name] = value
        elif not math.isclose(float(model_value), value, rel_tol=1e-12, abs_tol=1e-15):
            mismatch[name] = value
    if mismatch:
        from .._model import LoRAModel

        settings = {"lr": model.lr, "batch": model.batch, "noise": model.noise, **mismatch}
        settings = {k: sp.nsimplify(v, rational=True) if isinstance(v, float) else v for k, v in settings.items()}
        model = LoRAModel(model.student, model.teacher, pretraining=model.pretraining, rank=model.rank, **settings)
        return _ode_model_and_parameters(model, result)
    return model, parameters


def _direction_signs(model, overlaps_now) -> dict:
    """``{state: ±1}`` flipping each direction ``a`` with ``m_a < 0`` by ``(u_a, v_a) -> (-u_a, -v_a)``.

    The flip changes the sign of ``m_a``, ``s_a``, ``u_a`` and of every
    ``q_ab`` with one flipped index; the ODE is invariant under it.
    """
    geo = geometry(model.pretraining, model.rank)
    flip = [-1.0 if overlaps_now[geo.m[a].name] < 0 else 1.0 for a in range(geo.rank)]
    signs = {}
    for a in range(geo.rank):
        for per_direction in (geo.m, geo.s, geo.u):
            if per_direction:
                signs[per_direction[a].name] = flip[a]
    signs.update({q.name: flip[a] * flip[b] for (a, b), q in geo.q.items()})
    return signs


def compare_with_ode(model, result, align=0.1, horizon=None) -> ODEComparison:
    r"""Integrate the ODE from each run's state when ``|m|`` first reaches ``align``.

    docs/theory.md §7: the ODE started from a run's own ``m0`` with
    ``u0 = 0`` over-predicts its escape time by an ``O(1)`` constant (``u``
    fluctuates at order ``d^{-1/2}`` at ``t = 0``, a random shift of the
    starting overlap); after alignment the trajectories agree to
    ``O(d^{-1/2})``.  So each run's recorded state at its first record with
    ``max_a |m_a| >= align`` (rank 1: ``|m|``) starts an ODE solution,
    compared on the run's own later records.

    Parameters
    ----------
    model : LoRAModel
        The model the runs simulated (its ODE is re-derived with the runs'
        ``lr``, ``batch``, ``noise`` if they differ from the model's).
    result : SGDResult
    align : float
        Alignment level in ``(0, 1)``.
    horizon : float, optional
        Time after alignment to compare over (default: all records).

    Returns
    -------
    ODEComparison

    Raises
    ------
    TypeError
        ``result`` is not an :class:`SGDResult`.
    ValueError
        ``align`` outside ``(0, 1)``, a non-positive ``horizon``, or a
        model whose pre-training or rank differs from the runs'.
    """
    if not isinstance(result, SGDResult):
        raise TypeError(f"result must be an SGDResult, got {type(result).__name__}")
    check_model(model)
    align = real(align, "align")
    if not 0 < align < 1:
        raise ValueError(f"align must lie in (0, 1), got {align}")
    if horizon is not None and not real(horizon, "horizon") > 0:
        raise ValueError(f"horizon must be positive, got {horizon}")
    expected = {state.name for state in model.states} | {"v_norm"}
    if set(result.stats) != expected:
        raise ValueError(
            f"the runs recorded {sorted(result.stats)} but the model ({model.pretraining}, rank {model.rank}) "
            f"has states {sorted(expected - {'v_norm'})}: pass the model that was simulated"
        )
    ode_model, parameters = _ode_model_and_parameters(model, result)
    names = [n for n in result.stats if n != "v_norm"]
    # records are evenly spaced except possibly the last one: compare on the even part
    dt = result.record_every / result.d
    n_even = int(np.sum(np.isclose(result.t / dt, np.round(result.t / dt))))
    n_after = n_even if horizon is None else min(n_even, int(math.floor(horizon / dt + 1e-9)) + 1)
    grid = np.arange(n_after) * dt
    S = result.n_seeds
    largest = result.largest_overlap[:, :n_even]
    overlaps = [state.name for state in geometry(model.pretraining, model.rank).m]
    sgd = {n: np.full((S, n_after), np.nan) for n in names}
    ode = {n: np.full((S, n_after), np.nan) for n in names}
    aligned = np.zeros(S, dtype=bool)
    align_time = np.full(S, np.inf)
    initial = {n: np.zeros(S) for n in names}
    for k in range(S):
        idx = np.flatnonzero(largest[k] >= align)
        if idx.size == 0:
            continue
        i = idx[0]
        aligned[k] = True
        align_time[k] = result.t[i]
        # every (u_a, v_a) -> (-u_a, -v_a) is a symmetry: map every run to m_a >= 0
        count = min(n_even - i, n_after)
        signs = _direction_signs(model, {n: result.stats[n][k, i] for n in overlaps})
        for n in names:
            values = signs.get(n, 1.0) * result.stats[n][k, i : i + count]
            sgd[n][k, :count] = values
            initial[n][k] = values[0]
    if aligned.any() and n_after > 1:
        sel = aligned
        kwargs = {"parameters": parameters} if parameters else {}
        if model.pretraining == "general":
            kwargs["mu_perp"] = result.mu_perp
        first_m, first_u = overlaps[0], geometry(model.pretraining, model.rank).u[0].name
        rest = {n: initial[n][sel] for n in names if n not in (first_m, first_u)}
        sol = ode_model.integrate(result.mu, initial[first_m][sel], initial[first_u][sel], float(grid[-1]), t_eval=grid,
                                  initial=rest, **kwargs)
        for n in names:
            ode[n][sel] = np.asarray(sol.states[n])[..., : n_after]
    for n in names:
        ode[n] = np.where(np.isnan(sgd[n]), np.nan, ode[n])
    if aligned.any() and n_after > 1:
        # over every overlap m_a: the statistics the escape is read from
        deviation = float(max(np.nanmax(np.abs(ode[n] - sgd[n])) for n in overlaps))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # columns with fewer than 2 runs
            spread = (float(max(np.nanmax(np.nanstd(sgd[n], axis=0)) for n in overlaps)) if aligned.sum() > 1
                      else float("nan"))
    else:
        deviation = spread = float("nan")
    return ODEComparison(
        t=frozen(grid),
        sgd=MappingProxyType({n: frozen(v) for n, v in sgd.items()}),
        ode=MappingProxyType({n: frozen(v) for n, v in ode.items()}),
        aligned=frozen(aligned),
        align_time=frozen(align_time),
        align=align,
        max_deviation=deviation,
        spread=spread,
    )
