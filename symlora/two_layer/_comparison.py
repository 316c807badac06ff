r"""Two-layer SGD runs against the ODE, after alignment (docs/theory.md §7).

As for the single-index model, the ODE started at ``t = 0`` from a run's own
``O(d^{-1/2})`` overlaps mispredicts the escape by an ``O(1)`` shift (the
scales ``U`` fluctuate at order ``d^{-1/2}`` from the first step), so each
run's recorded state when ``|M|_F`` first reaches ``align`` starts an ODE
solution, which is compared with the run's later records.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from .._validate import as_float
from ._sgd import TwoLayerSGDResult

__all__ = ["TwoLayerODEComparison", "compare_two_layer_with_ode"]


@dataclass(frozen=True)
class TwoLayerODEComparison:
    """SGD records and ODE solutions on a common grid of times after alignment.

    Attributes
    ----------
    t : numpy.ndarray
        Time since alignment, shape ``(nt,)``.
    sgd, ode : mapping
        State name -> ``(aligned runs, nt)``.
    align_time : numpy.ndarray
        Per aligned run, the time it reached ``|M|_F >= align``.
    max_deviation : float
        Largest ``|ODE - SGD|`` over the overlaps ``M`` and the times.
    """

    t: np.ndarray
    sgd: MappingProxyType
    ode: MappingProxyType
    align_time: np.ndarray
    align: float
    max_deviation: float

    def __repr__(self):
        return (f"TwoLayerODEComparison({self.align_time.size} aligned runs, {self.t.size} times up to "
                f"{self.t[-1]:.4g} after |M| = {self.align}: max |ODE - SGD| of M = {self.max_deviation:.3g})")


def _parameter_values(model, result):
    settings = result.settings
    known = {**settings["parameters"]}
    for value, name in ((model.lr, "lr"), (model.batch, "batch"), (model.noise, "noise")):
        for symbol in value.free_symbols:
            known.setdefault(symbol.name, settings[name])
    missing = [p.name for p in model.parameters if p.name not in known]
    if missing:
        raise ValueError(f"no value for {', '.join(missing)} in the runs' settings")
    return {p.name: known[p.name] for p in model.parameters}


def compare_two_layer_with_ode(model, result, align=0.1, horizon=None) -> TwoLayerODEComparison:
    """Start the ODE from each run's state at ``|M|_F = align`` and follow both.

    Parameters
    ----------
    model : TwoLayerLoRAModel
        The simulated model.
    result : TwoLayerSGDResult
    align : float
        Alignment level of ``|M|_F``, in ``(0, 1)``.
    horizon : float, optional
        Time after alignment to compare over; runs that align too late to
        have records that long are left out.  Default: as long as every
        aligned run has records.

    Returns
    -------
    TwoLayerODEComparison

    Raises
    ------
    TypeError
        ``result`` is not a :class:`TwoLayerSGDResult`.
    ValueError
        ``align`` outside ``(0, 1)``; no run reached it (or none early enough
        for ``horizon``); states that do not match the model.
    """
    if not isinstance(result, TwoLayerSGDResult):
        raise TypeError(f"result must be a TwoLayerSGDResult, got {type(result).__name__}")
    align = as_float(align, "align")
    if not 0 < align < 1:
        raise ValueError(f"align must lie in (0, 1), got {align}")
    names = [s.name for s in model.states]
    if list(result.stats) != names:
        raise ValueError(f"the runs recorded {list(result.stats)} but the model has states {names}")
    norm = result.overlap_norm
    first = [int(np.argmax(row >= align)) if np.any(row >= align) else None for row in norm]
    runs = [k for k, i in enumerate(first) if i is not None]
    if not runs:
        raise ValueError(f"no run reached |M| = {align}: run longer or align lower")
    dt = result.t[1] - result.t[0]
    if horizon is None:
        n = min(result.t.size - first[k] for k in runs)
    else:
        # runs aligned too late to be followed over the whole horizon are left out (not cut short)
        n = int(round(as_float(horizon, "horizon", positive=True) / dt)) + 1
        runs = [k for k in runs if result.t.size - first[k] >= n]
        if not runs:
            raise ValueError(f"no run has records for {horizon} time units after |M| = {align}: run longer")
    grid = result.t[:n] - result.t[0]
    sgd = {name: np.stack([result.stats[name][k, first[k]:first[k] + n] for k in runs]) for name in names}
    initial = {name: values[:, 0] for name, values in sgd.items()}
    solution = model.integrate(initial, float(grid[-1]), parameters=_parameter_values(model, result), t_eval=grid)
    ode = {name: np.asarray(solution.states[name]) for name in names}
    deviation = max(float(np.max(np.abs(ode[name] - sgd[name]))) for name in names if name.startswith("M"))
    return TwoLayerODEComparison(grid, MappingProxyType(sgd), MappingProxyType(ode),
                                 np.array([result.t[first[k]] for k in runs]), align, deviation)
