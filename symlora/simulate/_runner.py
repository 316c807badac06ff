"""The entry point of the simulators: checks, streams, threads, results."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType

import numpy as np

from .._validate import check_budget
from ._arguments import check_model, default_t_max, from_model, frozen, integer, real
from ._compile import chain_kernels
from ._result import SGDResult

__all__ = ["simulate_sgd"]

_METHODS = ("full", "reduced")


def _statistic_names(model):
    """Recorded statistics, in the order the chains store them: the model's states, then ``v_norm``."""
    return tuple(state.name for state in model.states) + ("v_norm",)


def simulate_sgd(
    model,
    mu,
    d,
    steps=None,
    t_max=None,
    seeds=16,
    seed=0,
    lr=None,
    batch=None,
    noise=None,
    threshold=0.5,
    record_every=None,
    m0=None,
    mu_perp=0.0,
    stop_at_escape=True,
    method="full",
    progress=None,
    threads=None,
    dtype=np.float64,
) -> SGDResult:
    r"""Run one-pass SGD of ``model`` for ``seeds`` independent runs at once.

    Parameters
    ----------
    model : LoRAModel
        Student, teacher, pre-training kind and rank (and default ``lr``,
        ``batch``, ``noise``).
    mu : float
        Pre-training strength ``μ >= 0``.
    d : int
        Input dimension, at least ``r + 1`` (general pre-training ``r + 2``).
    steps : int, optional
        Horizon in steps.
    t_max : float, optional
        Horizon in time ``t = steps/d`` (give ``steps`` or ``t_max``; default
        ``3 (τ/η) log d + 10 τ/η`` from the linear theory).
    seeds : int
        Number of independent runs.
    seed : int or None
        Seed of :class:`numpy.random.SeedSequence`; ``None`` draws fresh
        entropy (recorded in the result, so the runs can be reproduced).
    lr, batch, noise : float, int, float, optional
        ``η``, ``B``, ``Δ``; default: the model's (required if it left them
        symbolic).
    threshold : float
        A run escapes when its best-aligned direction does: when
        ``max_a |m_a|`` (rank 1: ``|m|``) first reaches it; in ``(0, 1)``.
    record_every : int, optional
        Steps between records (default ``d // 10``: ten records per unit time).
    m0 : float, optional
        Initial overlap ``v0·w*`` (default: ``v0`` uniform on the sphere, so
        ``m0`` is of order ``d^{-1/2}``); the rest of ``v0`` is uniform.
    mu_perp : float
        ``μ⊥`` of general pre-training.
    stop_at_escape : bool
        Stop each run at its escape (its later records repeat its last
        state).  Diverged runs always stop.
    method : {"full", "reduced"}
        The literal ``d``-dimensional simulation, or the exact-in-law
        low-dimensional one (see :mod:`symlora.simulate`); same law.
    progress : bool, optional
        A tqdm progress bar over runs on stderr (default: only when stderr
        is a terminal).
    threads : int, optional
        Threads advancing runs (default: CPU count, at most ``seeds``).
        Every run has its own stream, so results do not depend on it.
    dtype : {numpy.float64, numpy.float32}
        Precision of the inputs and of ``v`` in the full method (the
        reduced method always uses float64).

    Returns
    -------
    SGDResult

    Raises
    ------
    TypeError
        ``model`` is not a model; ``d``, ``seeds``, ``steps``,
        ``record_every``, ``threads`` not integers; ``seed`` neither an
        integer nor ``None``; real parameters not numbers.
    ValueError
        ``d`` too small, non-positive ``seeds``/``steps``/``t_max``/``lr``/
        ``batch``/``record_every``/``threads``, a non-integer batch, negative
        ``mu``/``noise``, ``threshold`` outside ``(0, 1)``, ``m0`` outside
        ``(-1, 1)``, ``steps`` together with ``t_max``, a symbolic
        ``lr``/``batch``/``noise`` left unset, a student whose derivative is
        a Dirac delta (``sign``), an unknown ``method`` or ``dtype``.

    Notes
    -----
    One step with batch inputs ``x_b``, ``λ_b = w·x_b``,
    ``g_b = (σ(λ_b) - y_b) σ'(λ_b)``, ``ζ_b = v·x_b``:

    .. math::

        u \leftarrow u - \frac{η}{d} \frac1B \sum_b g_b ζ_b, \qquad
        v \leftarrow \frac{v - \frac{η}{d} \frac{u}{B} \sum_b g_b x_b}
                          {\left|v - \frac{η}{d} \frac{u}{B} \sum_b g_b x_b\right|},

    with both gradients taken at the old ``(u, v)``.

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> res = simulate_sgd(LoRAModel("x"), 0.5, 200, seeds=4, seed=1)
    >>> res.status.tolist()
    ['escaped', 'escaped', 'escaped', 'escaped']
    >>> bool(res.v_norm_error < 1e-12)
    True

    A blown-up run is reported as diverged, with its time, not as censored:

    >>> res = simulate_sgd(LoRAModel("He3"), 0.5, 1000, seeds=4, seed=0, lr=1.0, method="reduced")
    >>> res.diverged >= 1 and bool(np.all(np.isfinite(res.diverge_time[res.status == "diverged"])))
    True
    """
    check_model(model)
    d = integer(d, "d")
    seeds = integer(seeds, "seeds")
    general = model.pretraining == "general"
    rank = int(model.rank)
    min_d = rank + (2 if general else 1)  # the fixed directions and r moving ones
    if d < min_d:
        raise ValueError(f"d must be at least {min_d} for this model, got {d}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    # before any allocation (seeds = 10**9 would hang in SeedSequence.spawn)
    check_budget(8.0 * seeds * d * (1 if method == "reduced" else 2), 0.0, f"simulate_sgd with d = {d}, "
                 f"seeds = {seeds}", "use fewer seeds or a smaller d")
    if seed is not None:
        seed = integer(seed, "seed")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dtype}")
    mu = real(mu, "mu")
    if mu < 0:
        raise ValueError(f"mu must be >= 0, got {mu}")
    mu_perp = real(mu_perp, "mu_perp")
    if mu_perp != 0 and not general:
        raise ValueError("mu_perp is only used with pretraining='general'")
    threshold = real(threshold, "threshold")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    eta = real(from_model(lr, model.lr, "lr"), "lr")
    if eta <= 0:
        raise ValueError(f"lr must be positive, got {eta}")
    B = real(from_model(batch, model.batch, "batch"), "batch")
    if B < 1 or B != int(B):
        raise ValueError(f"batch must be a positive integer, got {B}")
    B = int(B)
    delta = real(from_model(noise, model.noise, "noise"), "noise")
    if delta < 0:
        raise ValueError(f"noise must be >= 0, got {delta}")
    if m0 is not None:
        m0 = real(m0, "m0")
        if not -1 < m0 < 1:
            raise ValueError(f"m0 must lie in (-1, 1), got {m0}")
    if steps is not None and t_max is not None:
        raise ValueError("give steps or t_max, not both")
    if steps is None:
        t_max = default_t_max(model, mu, eta, d) if t_max is None else real(t_max, "t_max")
        if not t_max > 0:
            raise ValueError(f"t_max must be positive, got {t_max}")
        steps = int(math.ceil(t_max * d))
    steps = integer(steps, "steps")
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    record_every = max(d // 10, 1) if record_every is None else integer(record_every, "record_every")
    if record_every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every}")
    if threads is None:
        threads = min(os.cpu_count() or 1, seeds)
    threads = integer(threads, "threads")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    n_stats = len(model.states) + 1
    per_step = 30.0 * rank * B * d if method == "full" else 200.0
    check_budget(8.0 * seeds * (n_stats * (steps // record_every + 2) + (rank + B) * d),
                 float(seeds) * steps * per_step, f"simulate_sgd with d = {d}, seeds = {seeds}, steps = {steps:.3g}",
                 "use fewer seeds, a smaller d, a shorter t_max/steps, a larger record_every or method='reduced'")


    root = np.random.SeedSequence(seed)
    children = root.spawn(seeds)
    kernels = chain_kernels(model.student, model.teacher)
    names = _statistic_names(model)
    n_records = steps // record_every + 1
    # one argument list for both chains; exact Python types, so numba compiles one specialisation
    common = (int(d), float(mu), float(mu_perp), bool(general), int(rank), int(B), float(eta / d),
              float(math.sqrt(delta)), float(threshold), float(m0 or 0.0), m0 is not None, int(steps),
              int(record_every), bool(stop_at_escape))

    # the reduced chain takes r, F and B as tuple lengths and no noise as None: compile-time constants
    sizes = ((0,) * int(rank), (0,) * (2 if general else 1), (0,) * int(B))
    reduced_args = (int(d), float(mu), float(mu_perp), sizes, float(eta / d),
                    float(math.sqrt(delta)) if delta > 0 else None, *common[8:])

    def one_run(s):
        rng = np.random.default_rng(children[s])
        records = np.empty((n_records, len(names)))
        final = np.empty(len(names))
        if method == "reduced":
            events = kernels.run_reduced(rng, *reduced_args, records, final)
        else:
            work_v, work_x = np.empty((rank, d), dtype=dtype), np.empty((B, d), dtype=dtype)
            events = kernels.run_full(rng, *common, work_v, work_x, records, final)
        return events, records, final

    outcomes = _map_runs(one_run, seeds, threads, progress, f"sgd {method} d={d}")
    escape_step = np.array([o[0][0] for o in outcomes])
    diverge_step = np.array([o[0][1] for o in outcomes])
    stop_step = np.array([o[0][2] for o in outcomes])
    taken = int(stop_step.max())
    record_steps = list(range(0, taken + 1, record_every))
    if record_steps[-1] != taken:
        record_steps.append(taken)
    record_steps = np.array(record_steps)
    table = np.empty((seeds, record_steps.size, len(names)))
    n_even = min(taken // record_every + 1, n_records)
    for s, (_, records, final) in enumerate(outcomes):
        table[s, :n_even] = records[:n_even]
        # after its stop a run keeps its last state
        table[s, record_steps > stop_step[s]] = final
        table[s, record_steps == stop_step[s]] = final
    status = np.where(escape_step >= 0, "escaped", np.where(diverge_step >= 0, "diverged", "censored"))
    return SGDResult(
        t=frozen(record_steps / d),
        stats=MappingProxyType({n: frozen(table[:, :, i]) for i, n in enumerate(names)}),
        escape_time=frozen(np.where(escape_step >= 0, escape_step / d, np.inf)),
        status=frozen(status.astype(str)),
        diverge_time=frozen(np.where(diverge_step >= 0, diverge_step / d, np.inf)),
        seed=int(root.entropy),
        d=d,
        mu=mu,
        mu_perp=mu_perp,
        lr=eta,
        batch=B,
        noise=delta,
        threshold=threshold,
        steps=taken,
        horizon=steps,
        method=method,
        record_every=record_every,
        settings=MappingProxyType({"m0": m0, "dtype": dtype.name, "stop_at_escape": bool(stop_at_escape)}),
    )


def _map_runs(func, n, threads, progress, label):
    """``[func(0), ..., func(n - 1)]`` on ``threads`` threads, with a tqdm bar over runs."""
    from tqdm.auto import tqdm

    with tqdm(total=n, desc=label, unit="run", disable=None if progress is None else not progress,
              leave=False) as bar:
        if threads == 1:
            outcomes = []
            for s in range(n):
                outcomes.append(func(s))
                bar.update()
            return outcomes
        with ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(func, s) for s in range(n)]
            for future in futures:
                future.result()
                bar.update()
            return [f.result() for f in futures]
