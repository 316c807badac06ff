r"""SGD of the two-layer student with a LoRA adapter at finite ``d`` (numpy, vectorised over seeds).

The network of :class:`~symlora.TwoLayerLoRAModel` is simulated as written,
in ``R^d``: teacher rows ``w*_j = e_j`` (the first ``K*`` coordinates; the
input law is rotation invariant, so nothing is lost), ``W0 = D W*``, ``U``
starts at 0 and the LoRA directions ``v_a`` uniformly on the sphere, so that
``M``, ``q`` start at order ``d^{-1/2}``.  Each step draws ``B`` fresh
inputs per run, takes one gradient step of ``lr = η/d`` on ``U`` and ``V``
with the batch-mean loss ``½ (ŷ - y)²`` (both gradients at the old point)
and renormalises every ``v_a``.  Conventions follow :mod:`symlora.simulate`:
seeds through :class:`numpy.random.SeedSequence`, time ``t = steps/d``,
a run that never reaches the threshold is *censored* (``inf``), a run whose
state stops being finite is *diverged* (and frozen there).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import sympy as sp

from .._validate import as_float
from ..simulate._result import RunOutcomes

__all__ = ["TwoLayerSGDResult", "simulate_two_layer_sgd"]


@dataclass(frozen=True)
class TwoLayerSGDResult(RunOutcomes):
    """Recorded statistics of a batch of two-layer SGD runs.

    Attributes
    ----------
    t : numpy.ndarray
        Record times ``steps/d``, shape ``(nt,)``.
    stats : mapping
        State name (``"M11"``, ``"U21"``, ``"q12"``, as in ``model.states``)
        -> array ``(seeds, nt)``.
    escape_time : numpy.ndarray
        First record time with ``|M|_F >= threshold`` (Frobenius norm of
        the overlaps); ``inf`` if never.
    status : numpy.ndarray of str
        ``"escaped"``, ``"censored"`` or ``"diverged"``.
    seed : int
        Entropy of the seed sequence (pass back to reproduce).
    d : int
    threshold : float
    settings : mapping
        ``lr``, ``batch``, ``noise``, ``pretraining`` (nested lists), ``record_every``.
    """

    t: np.ndarray
    stats: MappingProxyType
    escape_time: np.ndarray
    status: np.ndarray
    seed: int
    d: int
    threshold: float
    settings: MappingProxyType

    @property
    def overlap_norm(self) -> np.ndarray:
        """``|M|_F`` per run and record, shape ``(seeds, nt)``."""
        return np.sqrt(sum(v**2 for k, v in self.stats.items() if k.startswith("M")))

    def __repr__(self):
        counts = ", ".join(f"{int(np.sum(self.status == s))} {s}" for s in ("escaped", "censored", "diverged"))
        return f"TwoLayerSGDResult(d={self.d}, {self.status.size} runs: {counts}; t up to {self.t[-1]:.4g})"


def _numeric(expr, name, values):
    value = sp.sympify(expr, strict=True).xreplace({sp.Symbol(k, **a): sp.Float(v) for k, v in values.items()
                                       for a in ({}, {"positive": True}, {"real": True}, {"nonnegative": True})})
    if value.free_symbols:
        raise ValueError(f"{name} needs values for {', '.join(sorted(map(str, value.free_symbols)))} (parameters=...)")
    return float(value)


def simulate_two_layer_sgd(model, d, t_max, *, seeds=8, seed=None, parameters=None, threshold=0.5,
                           record_every=None) -> TwoLayerSGDResult:
    """Run ``seeds`` independent SGD runs of ``model``'s network in dimension ``d``.

    Parameters
    ----------
    model : TwoLayerLoRAModel
    d : int
        Input dimension (``>= K* + 2``).
    t_max : float
        Horizon in ``t = steps/d``.
    seeds : int
        Number of runs (vectorised together).
    seed : int, optional
        Entropy of the :class:`numpy.random.SeedSequence`.
    parameters : dict, optional
        Values of the model's free symbols (``{"mu": 0.5}``).
    threshold : float
        Escape level of ``|M|_F``.
    record_every : int, optional
        Steps between records (default ``d/20``).

    Returns
    -------
    TwoLayerSGDResult
    """
    from ._model import TwoLayerLoRAModel

    if not isinstance(model, TwoLayerLoRAModel):
        raise TypeError(f"model must be a TwoLayerLoRAModel, got {type(model).__name__}")
    for value, name in ((d, "d"), (seeds, "seeds")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
    if d < model.teacher_hidden + 2 or d > 10**6:
        raise ValueError(f"d must lie in [{model.teacher_hidden + 2}, 1e6], got {d}")
    if not 1 <= seeds <= 10**4:
        raise ValueError(f"seeds must lie in [1, 10000], got {seeds}")
    t_max = as_float(t_max, "t_max", positive=True, high=1e6)
    threshold = as_float(threshold, "threshold", positive=True)
    if parameters is not None and not isinstance(parameters, dict):
        raise TypeError(f"parameters must be a dict of numbers, got {type(parameters).__name__}")
    values = {str(k): as_float(v, f"parameters[{k!r}]") for k, v in (parameters or {}).items()}
    D = np.array([[_numeric(e, "pretraining", values) for e in row] for row in model.pretraining.tolist()])
    lr, noise = _numeric(model.lr, "lr", values), _numeric(model.noise, "noise", values)
    batch = int(_numeric(model.batch, "batch", values))
    c, ct = (float(v) for v in model.readouts)
    sigma, dsigma = model.student.numpy(0), model.student.numpy(1)
    teacher = model.teacher.numpy(0)
    K, Kt, r, S = model.hidden, model.teacher_hidden, model.rank, seeds
    record_every = max(1, d // 20) if record_every is None else int(record_every)
    steps = int(np.ceil(t_max * d))
    sequence = np.random.SeedSequence(seed)
    rng = np.random.default_rng(sequence)
    step = lr / d

    V = rng.standard_normal((S, r, d))
    V /= np.linalg.norm(V, axis=2, keepdims=True)
    U = np.zeros((S, K, r))
    alive = np.ones(S, dtype=bool)
    records, times = [], []

    def record(n):
        M = V[:, :, :Kt]
        q = np.einsum("sad,sbd->sab", V, V)
        stats = [M[:, a, j] for a in range(r) for j in range(Kt)] + [U[:, k, a] for k in range(K) for a in range(r)]
        stats += [q[:, a, b] for a in range(r) for b in range(a + 1, r)]
        records.append(np.stack(stats, axis=1))
        times.append(n / d)

    record(0)
    noise_sd = np.sqrt(noise)
    for n in range(1, steps + 1):
        x = rng.standard_normal((S, batch, d))
        nu = x[:, :, :Kt]
        zeta = np.einsum("sbd,sad->sba", x, V)
        lam = nu @ D.T + np.einsum("sba,ska->sbk", zeta, U)
        y = ct * teacher(nu).sum(axis=2) + (noise_sd * rng.standard_normal((S, batch)) if noise else 0.0)
        error = c * sigma(lam).sum(axis=2) - y  # (S, B)
        slopes = c * dsigma(lam) * error[:, :, None]  # dloss/dλ_k
        grad_U = np.einsum("sbk,sba->ska", slopes, zeta) / batch
        g = np.einsum("sbk,ska->sba", slopes, U)  # dloss/d(v_a·x)
        grad_V = np.einsum("sba,sbd->sad", g, x) / batch
        U_new = U - step * grad_U
        V_new = V - step * grad_V
        V_new /= np.linalg.norm(V_new, axis=2, keepdims=True)
        finite = np.isfinite(U_new).all(axis=(1, 2)) & np.isfinite(V_new).all(axis=(1, 2))
        alive &= finite  # a diverged run stays frozen at its last finite state
        U = np.where(alive[:, None, None], U_new, U)
        V = np.where(alive[:, None, None], V_new, V)
        if n % record_every == 0 or n == steps:
            record(n)
    data = np.stack(records, axis=2)  # (S, n_states, nt)
    names = [s.name for s in model.states]
    stats = MappingProxyType({name: data[:, i, :] for i, name in enumerate(names)})
    t = np.array(times)
    norm = np.sqrt(sum(stats[k] ** 2 for k in names if k.startswith("M")))
    reached = norm >= threshold
    first = np.where(reached.any(axis=1), reached.argmax(axis=1), -1)
    escape = np.where(first >= 0, t[np.maximum(first, 0)], np.inf)
    status = np.where(first >= 0, "escaped", np.where(alive, "censored", "diverged"))
    settings = MappingProxyType(dict(lr=lr, batch=batch, noise=noise, pretraining=D.tolist(),
                                     record_every=record_every, parameters=values))
    return TwoLayerSGDResult(t, stats, escape, status, int(sequence.entropy), int(d), threshold, settings)
