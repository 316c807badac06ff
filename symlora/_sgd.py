r"""One-pass SGD of the real LoRA model at finite ``d`` (docs/theory.md §2).

By rotational invariance the teacher direction is ``w* = e_1`` and, for
general pre-training, ``w⊥ = e_2``.  Two simulators of the same process:

``method="full"``
    The literal model: every step draws fresh inputs ``x ~ N(0, I_d)`` for
    every seed and batch sample, computes ``λ = w·x`` and the gradient of the
    batch-mean loss, updates ``u`` and the ``d``-vector ``v`` and renormalises
    ``v``.  All seeds advance together (arrays of shape ``(seeds, batch, d)``);
    inputs are drawn in chunks of steps into one reused buffer (memory
    ``O(seeds·batch·d)``, bounded by :data:`_CHUNK_BYTES`) and never kept.
    Drawing the inputs dominates the cost, so the chunk is filled by several
    threads (numpy's generators release the GIL).

``method="reduced"``
    The same Markov chain, exact in law, at a cost independent of ``d``.
    Given the state, the input's coordinates along any orthonormal frame
    built from the state (``w*``, ``w⊥``, the unit directions of the parts
    of the ``v_a`` orthogonal to them) are i.i.d. ``N(0, 1)`` and independent
    of the remaining ``d - k`` coordinates.  Those enter a step only through
    the new direction ``Σ_b g_b x_b`` they add to every ``v_a``, whose squared
    norm is ``|g|² χ²_{d-k}``.  So a step needs ``batch·k`` normals and one
    chi-square per seed.  Agreement of both simulators is tested.

Randomness: ``numpy.random.SeedSequence(seed).spawn(seeds)`` gives every run
its own ``numpy.random.default_rng`` stream, so run ``k`` does not depend on
how many runs advance with it nor on the number of threads.

Only :meth:`Activation.numpy` is used from the symbolic side; the ODE
comparison goes through :meth:`LoRAModel.integrate`.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import sympy as sp

__all__ = ["SGDResult", "simulate_sgd", "ODEComparison", "compare_with_ode", "EscapeSlope", "escape_slope"]

#: Bytes of Gaussian inputs drawn at once by the full simulator.  Small enough
#: that a chunk stays in the last-level cache between drawing and using it.
_CHUNK_BYTES = 8 * 2**20

#: Steps of low-dimensional draws at once in the reduced simulator.
_REDUCED_CHUNK = 2048

_METHODS = ("full", "reduced")


def _frozen(array):
    array = np.asarray(array)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class SGDResult:
    """Recorded trajectories and escape times of a batch of SGD runs.

    Attributes
    ----------
    t : numpy.ndarray
        Recorded times ``steps/d``, shape ``(nt,)``.
    stats : mapping
        ``"m"``, ``"u"`` (general pre-training: also ``"s" = v·w⊥``; rank 2:
        ``"m1", "m2", "u1", "u2", "q12"``) and ``"v_norm"`` (``|v|``, rank 2
        the larger deviation of ``|v_1|``, ``|v_2|`` from 1) -> arrays of shape
        ``(seeds, nt)``.  After a run stops (escaped, ``stop_at_escape``) its
        values are frozen at its last state.
    escape_time : numpy.ndarray
        Per run, the first time ``|m|`` (rank 2: ``|m1|``) reaches
        ``threshold``; ``inf`` when not reached.
    status : numpy.ndarray of str
        Per run: ``"escaped"``, ``"censored"`` (the horizon came first: a run
        stuck on a plateau below the threshold is censored, not slow) or
        ``"diverged"`` (non-finite state).
    seed : int
        Entropy of the :class:`numpy.random.SeedSequence` (pass it back as
        ``seed`` to reproduce the runs).
    d, mu, mu_perp, lr, batch, noise, threshold : numbers
        The settings of the runs (``lr`` is ``η``; the step size is ``η/d``).
    steps : int
        Steps actually taken (fewer than the horizon when every run escaped).
    horizon : int
        Steps allowed.
    method : str
        ``"full"`` or ``"reduced"``.
    record_every : int
        Steps between records.
    """

    t: np.ndarray
    stats: MappingProxyType
    escape_time: np.ndarray
    status: np.ndarray
    seed: int
    d: int
    mu: float
    mu_perp: float
    lr: float
    batch: int
    noise: float
    threshold: float
    steps: int
    horizon: int
    method: str
    record_every: int
    settings: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def m(self) -> np.ndarray:
        """Overlap ``v·w*`` (rank 2: ``m1``), shape ``(seeds, nt)``."""
        return self.stats["m1"] if "m1" in self.stats else self.stats["m"]

    @property
    def u(self) -> np.ndarray:
        """Adapter scale ``u`` (rank 2: ``u1``), shape ``(seeds, nt)``."""
        return self.stats["u1"] if "u1" in self.stats else self.stats["u"]

    @property
    def n_seeds(self) -> int:
        """Number of runs."""
        return int(self.escape_time.size)

    @property
    def escaped(self) -> np.ndarray:
        """Boolean mask of the runs that escaped."""
        return self.status == "escaped"

    @property
    def censored(self) -> int:
        """Number of runs that did not escape (censored or diverged)."""
        return int(np.sum(~self.escaped))

    @property
    def v_norm_error(self) -> float:
        """``max | |v| - 1 |`` over runs and records."""
        return float(np.max(np.abs(self.stats["v_norm"] - 1)))

    def __repr__(self):
        return (
            f"SGDResult(method={self.method!r}, d={self.d}, mu={self.mu}, lr={self.lr}, batch={self.batch}, "
            f"seeds={self.n_seeds}, escaped={int(self.escaped.sum())}, censored={self.censored}, "
            f"steps={self.steps})"
        )


class _Progress:
    """A plain-text progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, total, label, enabled):
        self.total, self.label = total, label
        self.enabled = _stderr_is_terminal() if enabled is None else bool(enabled)
        self.last = -1
        self.start = time.perf_counter()

    def update(self, done):
        if not self.enabled:
            return
        percent = int(100 * done / max(self.total, 1))
        if percent != self.last:
            self.last = percent
            bar = "#" * (percent // 4)
            elapsed = time.perf_counter() - self.start
            sys.stderr.write(f"\r{self.label} [{bar:<25}] {percent:3d}% {elapsed:6.1f}s")
            sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _stderr_is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


# ---------------------------------------------------------------- checking


def _integer(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _real(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating, sp.Expr)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, sp.Expr):
        if value.free_symbols:
            raise ValueError(f"{name} is symbolic ({value}); pass a number")
        value = float(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _from_model(value, model_value, name):
    """An explicit argument, or the model's value if it is a number."""
    if value is not None:
        return value
    if isinstance(model_value, sp.Expr) and model_value.free_symbols:
        raise ValueError(
            f"{name} is symbolic in the model ({model_value}); pass a number, e.g. simulate_sgd(..., {name}=1)"
        )
    return model_value


def _check_model(model):
    for attribute in ("student", "teacher", "pretraining", "rank", "lr", "batch", "noise"):
        if not hasattr(model, attribute):
            raise TypeError(f"model must be a LoRAModel (it has no {attribute!r}), got {type(model).__name__}")
    if model.student.derivative(1).has(sp.DiracDelta):
        raise ValueError(
            f"student {model.student.name!r} has a Dirac delta as derivative: SGD gradients vanish almost "
            "everywhere; use a continuous student"
        )


def _default_t_max(model, mu, eta, d):
    """Horizon from the linear theory: three times the predicted escape plus margin."""
    tau = float(np.asarray(model.tau(mu)))
    if not math.isfinite(tau) or tau <= 0:
        raise ValueError(
            f"the linear theory gives no finite escape time at mu = {mu} (tau = {tau}); pass t_max or steps"
        )
    return 3 * tau / eta * math.log(d) + 10 * tau / eta


# --------------------------------------------------------------- simulator


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
        Input dimension, ``>= 2`` (``>= 3`` for general pre-training and rank 2).
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
        A run escapes when ``|m|`` (rank 2: ``|m1|``) first reaches it; in
        ``(0, 1)``.
    record_every : int, optional
        Steps between records (default ``d // 10``: ten records per unit time).
    m0 : float, optional
        Initial overlap ``v0·w*`` (default: ``v0`` uniform on the sphere, so
        ``m0`` is of order ``d^{-1/2}``); the rest of ``v0`` is uniform.
    mu_perp : float
        ``μ⊥`` of general pre-training.
    stop_at_escape : bool
        Stop early once every run has escaped or diverged.
    method : {"full", "reduced"}
        The literal ``d``-dimensional simulation, or the exact-in-law
        low-dimensional one (see the module notes); same statistics.
    progress : bool, optional
        Progress bar on stderr (default: only when stderr is a terminal).
    threads : int, optional
        Threads drawing inputs (full method; default: CPU count, at most
        ``seeds``).  Results do not depend on it.
    dtype : {numpy.float64, numpy.float32}
        Precision of the inputs and of ``v`` in the full method.

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
    """
    _check_model(model)
    d = _integer(d, "d")
    seeds = _integer(seeds, "seeds")
    general = model.pretraining == "general"
    rank = int(model.rank)
    min_d = 3 if (general or rank == 2) else 2
    if d < min_d:
        raise ValueError(f"d must be at least {min_d} for this model, got {d}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    if seed is not None:
        seed = _integer(seed, "seed")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dtype}")
    mu = _real(mu, "mu")
    if mu < 0:
        raise ValueError(f"mu must be >= 0, got {mu}")
    mu_perp = _real(mu_perp, "mu_perp")
    if mu_perp != 0 and not general:
        raise ValueError("mu_perp is only used with pretraining='general'")
    threshold = _real(threshold, "threshold")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    eta = _real(_from_model(lr, model.lr, "lr"), "lr")
    if eta <= 0:
        raise ValueError(f"lr must be positive, got {eta}")
    B = _real(_from_model(batch, model.batch, "batch"), "batch")
    if B < 1 or B != int(B):
        raise ValueError(f"batch must be a positive integer, got {B}")
    B = int(B)
    delta = _real(_from_model(noise, model.noise, "noise"), "noise")
    if delta < 0:
        raise ValueError(f"noise must be >= 0, got {delta}")
    if m0 is not None:
        m0 = _real(m0, "m0")
        if not -1 < m0 < 1:
            raise ValueError(f"m0 must lie in (-1, 1), got {m0}")
    if steps is not None and t_max is not None:
        raise ValueError("give steps or t_max, not both")
    if steps is None:
        t_max = _default_t_max(model, mu, eta, d) if t_max is None else _real(t_max, "t_max")
        if not t_max > 0:
            raise ValueError(f"t_max must be positive, got {t_max}")
        steps = int(math.ceil(t_max * d))
    steps = _integer(steps, "steps")
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    record_every = max(d // 10, 1) if record_every is None else _integer(record_every, "record_every")
    if record_every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every}")
    if threads is None:
        threads = min(os.cpu_count() or 1, seeds)
    threads = _integer(threads, "threads")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")

    root = np.random.SeedSequence(seed)
    generators = [np.random.default_rng(child) for child in root.spawn(seeds)]
    sim = _Simulation(
        model=model, general=general, rank=rank, d=d, seeds=seeds, mu=mu, mu_perp=mu_perp, eta=eta, B=B,
        delta=delta, threshold=threshold, m0=m0, generators=generators,
    )
    runner = _FullRunner(sim, dtype, threads) if method == "full" else _ReducedRunner(sim)
    taken = sim.run(runner, steps, record_every, stop_at_escape, _Progress(steps, f"sgd d={d}", progress))
    return SGDResult(
        t=_frozen(np.array(sim.times)),
        stats=MappingProxyType({n: _frozen(np.stack(v, axis=1)) for n, v in sim.records.items()}),
        escape_time=_frozen(sim.escape),
        status=_frozen(sim.status.astype(str)),
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


class _Simulation:
    """Shared bookkeeping of both simulators: escape detection and records."""

    def __init__(self, *, model, general, rank, d, seeds, mu, mu_perp, eta, B, delta, threshold, m0, generators):
        self.general, self.rank, self.d, self.S = general, rank, d, seeds
        self.mu, self.mu_perp, self.eta, self.B = mu, mu_perp, eta, B
        self.noise_sd = math.sqrt(delta)
        self.threshold, self.m0 = threshold, m0
        self.generators = generators
        self.lr_step = eta / d
        self.sigma = model.student.numpy(0)
        self.dsigma = model.student.numpy(1)
        self.teacher = model.teacher.numpy(0)
        if rank == 2:
            self.names = ["m1", "m2", "u1", "u2", "q12"]
        else:
            self.names = ["m", "s", "u"] if general else ["m", "u"]
        self.records = {n: [] for n in [*self.names, "v_norm"]}
        self.times = []
        self.escape = np.full(seeds, np.inf)
        self.status = np.full(seeds, "censored", dtype=object)
        self.active = np.ones(seeds, dtype=bool)

    def gradient_factor(self, lam, nu, xi):
        """``g = (σ(λ) - y) σ'(λ)``, ``dloss/dλ`` per sample."""
        y = self.teacher(nu)
        if xi is not None:
            y = y + self.noise_sd * xi
        return (self.sigma(lam) - y) * self.dsigma(lam)

    def record(self, step, values):
        self.times.append(step / self.d)
        for name, value in values.items():
            self.records[name].append(np.array(value, dtype=float))

    def run(self, runner, steps, record_every, stop_at_escape, progress):
        self.record(0, runner.statistics())
        step = 0
        try:
            while step < steps:
                n_now = runner.draw(min(runner.chunk, steps - step))
                for k in range(n_now):
                    runner.step(k)
                    step += 1
                    m_now = np.abs(runner.overlap())
                    hit = self.active & (m_now >= self.threshold)
                    if hit.any():
                        self.escape[hit] = step / self.d
                        self.status[hit] = "escaped"
                        self.active &= ~hit
                    bad = self.active & ~runner.finite()
                    if bad.any():
                        self.status[bad] = "diverged"
                        self.active &= ~bad
                    if step % record_every == 0:
                        self.record(step, runner.statistics())
                    if stop_at_escape and not self.active.any():
                        break
                progress.update(step)
                if stop_at_escape and not self.active.any():
                    break
        finally:
            progress.close()
            runner.close()
        if step % record_every:
            self.record(step, runner.statistics())
        return step


def _initial_direction(rng, d, m0, dtype):
    """A unit vector uniform on the sphere, or uniform given ``v·e_1 = m0``."""
    v = rng.standard_normal(d).astype(dtype)
    if m0 is not None:
        v[0] = 0
        v *= math.sqrt(1 - m0 * m0) / np.linalg.norm(v)
        v[0] = m0
    return v / np.linalg.norm(v)


class _FullRunner:
    """The literal ``d``-dimensional simulation (see the module notes)."""

    def __init__(self, sim, dtype, threads):
        self.sim = sim
        S, d, B = sim.S, sim.d, sim.B
        self.r = sim.rank
        # V[s, a] = v_a of run s; directions of one run come from its own stream
        self.V = np.stack(
            [np.stack([_initial_direction(g, d, sim.m0, dtype) for _ in range(self.r)]) for g in sim.generators]
        )
        self.U = np.zeros((S, self.r))
        self.chunk = max(1, _CHUNK_BYTES // (S * B * d * dtype.itemsize))
        # one reused buffer: run s draws its chunk of inputs into X[s]
        self.X = np.empty((S, self.chunk, B, d), dtype=dtype)
        self.xi = np.empty((S, self.chunk, B)) if sim.noise_sd > 0 else None
        self.dtype = dtype
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def _fill(self, s, n):
        g = self.sim.generators[s]
        g.standard_normal(out=self.X[s, :n], dtype=self.dtype)
        if self.xi is not None:
            g.standard_normal(out=self.xi[s, :n])

    def draw(self, n):
        if self.pool is None:
            for s in range(self.sim.S):
                self._fill(s, n)
        else:
            list(self.pool.map(lambda s: self._fill(s, n), range(self.sim.S)))
        return n

    def step(self, k):
        # einsum rather than matmul: these are S·B·r dot products of length d, and
        # OpenBLAS threads them for large d, which stalls badly on a loaded machine
        sim = self.sim
        Xk = self.X[:, k]  # (S, B, d)
        Z = np.einsum("sbd,srd->sbr", Xk, self.V)  # ζ_a = v_a·x, (S, B, r)
        nu = Xk[:, :, 0].astype(float)
        lam = sim.mu * nu + np.einsum("sbr,sr->sb", Z, self.U)
        if sim.general:
            lam += sim.mu_perp * Xk[:, :, 1]
        g = sim.gradient_factor(lam, nu, None if self.xi is None else self.xi[:, k])  # (S, B)
        grad_u = np.einsum("sb,sbr->sr", g, Z) / sim.B
        # v_a -= lr u_a (1/B) Σ_b g_b x_b, all directions in one pass over the inputs
        coef = ((-sim.lr_step / sim.B) * self.U[:, :, None] * g[:, None, :]).astype(self.dtype)  # (S, r, B)
        self.V += np.einsum("srb,sbd->srd", coef, Xk)
        self.V *= (1 / np.sqrt(np.einsum("srd,srd->sr", self.V, self.V)))[:, :, None]
        self.U -= sim.lr_step * grad_u

    def overlap(self):
        return self.V[:, 0, 0]

    def finite(self):
        return np.isfinite(self.U).all(axis=1) & np.isfinite(self.V[:, :, 0]).all(axis=1)

    def statistics(self):
        V, U = self.V, self.U
        norms = np.sqrt(np.einsum("srd,srd->sr", V, V, dtype=float))
        v_norm = norms[np.arange(self.sim.S), np.argmax(np.abs(norms - 1), axis=1)]
        if self.r == 2:
            return {"m1": V[:, 0, 0], "m2": V[:, 1, 0], "u1": U[:, 0], "u2": U[:, 1],
                    "q12": np.einsum("sd,sd->s", V[:, 0], V[:, 1], dtype=float), "v_norm": v_norm}
        values = {"m": V[:, 0, 0], "u": U[:, 0], "v_norm": v_norm}
        if self.sim.general:
            values["s"] = V[:, 0, 1]
        return values

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()


class _ReducedRunner:
    """The exact-in-law simulation in the frame of the state (module notes).

    Coordinates: ``F`` fixed directions (``w*``, and ``w⊥`` for general
    pre-training) and an ``r``-dimensional moving orthonormal frame spanning
    the parts of ``v_1 .. v_r`` orthogonal to them; ``C[s, a]`` holds the
    ``F + r`` coordinates of ``v_a`` (lower-triangular in the moving part).
    """

    def __init__(self, sim):
        self.sim = sim
        S, d = sim.S, sim.d
        self.r = sim.rank
        self.F = 2 if sim.general else 1
        self.k = self.F + self.r
        # hidden coordinates left after the frame: their contribution has norm² |g|² χ²_{dof}
        self.dof = d - self.k
        self.C = np.zeros((S, self.r, self.k))
        for s, g in enumerate(sim.generators):
            self.C[s] = self._initial_coordinates(g)
        self.U = np.zeros((S, self.r))
        self.chunk = _REDUCED_CHUNK
        self.Y = np.empty((S, self.chunk, sim.B, self.k))
        self.chi2 = np.zeros((S, self.chunk))
        self.xi = np.empty((S, self.chunk, sim.B)) if sim.noise_sd > 0 else None

    def _initial_coordinates(self, g):
        """Uniform directions drawn in the same law as the full simulator's."""
        sim, F, r = self.sim, self.F, self.r
        hidden = sim.d - F  # dimension of the complement of the fixed directions
        # v_a ∝ a standard normal vector: its fixed coordinates are normals and the
        # complement parts of the r vectors have the Gram matrix built below
        fixed = g.standard_normal((r, F))
        if sim.m0 is not None:
            fixed[:, 0] = 0.0
        # the complement parts of r isotropic vectors in R^hidden: Bartlett-style
        # factor of their Gram matrix (r <= 2)
        L = np.zeros((r, r))
        L[0, 0] = math.sqrt(g.chisquare(hidden))
        if r == 2:
            L[1, 0] = g.standard_normal()
            L[1, 1] = math.sqrt(g.chisquare(hidden - 1)) if hidden > 1 else 0.0
        C = np.concatenate([fixed, L], axis=1)
        C /= np.linalg.norm(C, axis=1, keepdims=True)
        if sim.m0 is not None:
            C[:, 1:] *= math.sqrt(1 - sim.m0**2)
            C[:, 0] = sim.m0
        return C

    def draw(self, n):
        sim = self.sim
        for s, g in enumerate(sim.generators):
            g.standard_normal(out=self.Y[s, :n])
            if self.dof > 0:
                self.chi2[s, :n] = g.chisquare(self.dof, size=n)
            if self.xi is not None:
                g.standard_normal(out=self.xi[s, :n])
        return n

    def step(self, k):
        sim, F, r = self.sim, self.F, self.r
        Yk = self.Y[:, k]  # (S, B, F + r): coordinates of x in the frame, i.i.d. N(0, 1)
        Z = Yk @ self.C.transpose(0, 2, 1)  # ζ_a, (S, B, r)
        nu = Yk[:, :, 0]
        lam = sim.mu * nu + (Z @ self.U[:, :, None])[:, :, 0]
        if sim.general:
            lam += sim.mu_perp * Yk[:, :, 1]
        g = sim.gradient_factor(lam, nu, None if self.xi is None else self.xi[:, k])
        grad_u = (g[:, None, :] @ Z)[:, 0, :] / sim.B
        coef = (-sim.lr_step / sim.B) * self.U  # (S, r)
        gy = (g[:, None, :] @ Yk)[:, 0, :]  # Σ_b g_b x_b in the frame, (S, F + r)
        # the hidden part of Σ_b g_b x_b: a new direction of norm |g| sqrt(χ²)
        hidden = np.sqrt(np.einsum("sb,sb->s", g, g) * self.chi2[:, k])
        new = np.empty((sim.S, r, F + r + 1))
        new[:, :, : F + r] = self.C + coef[:, :, None] * gy[:, None, :]
        new[:, :, F + r] = coef * hidden[:, None]
        new /= np.linalg.norm(new, axis=2, keepdims=True)
        self.C[:, :, :F] = new[:, :, :F]
        moving = new[:, :, F:]  # (S, r, r + 1): re-express in a new r-frame
        if r == 1:
            self.C[:, 0, F] = np.linalg.norm(moving[:, 0], axis=1)
        else:
            # moving = L Q^T with L lower-triangular: QR of its transpose
            R = np.linalg.qr(moving.transpose(0, 2, 1), mode="r")
            self.C[:, :, F:] = R.transpose(0, 2, 1)
        self.U -= sim.lr_step * grad_u

    def overlap(self):
        return self.C[:, 0, 0]

    def finite(self):
        return np.isfinite(self.U).all(axis=1) & np.isfinite(self.C[:, :, 0]).all(axis=1)

    def statistics(self):
        C, U = self.C, self.U
        norms = np.linalg.norm(C, axis=2)
        v_norm = norms[np.arange(self.sim.S), np.argmax(np.abs(norms - 1), axis=1)]
        if self.r == 2:
            return {"m1": C[:, 0, 0], "m2": C[:, 1, 0], "u1": U[:, 0], "u2": U[:, 1],
                    "q12": np.einsum("sk,sk->s", C[:, 0], C[:, 1]), "v_norm": v_norm}
        values = {"m": C[:, 0, 0], "u": U[:, 0], "v_norm": v_norm}
        if self.sim.general:
            values["s"] = C[:, 0, 1]
        return values

    def close(self):
        pass


# ------------------------------------------------------- ODE after alignment


@dataclass(frozen=True)
class ODEComparison:
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
        from ._model import LoRAModel

        settings = {"lr": model.lr, "batch": model.batch, "noise": model.noise, **mismatch}
        settings = {k: sp.nsimplify(v, rational=True) if isinstance(v, float) else v for k, v in settings.items()}
        model = LoRAModel(model.student, model.teacher, pretraining=model.pretraining, rank=model.rank, **settings)
        return _ode_model_and_parameters(model, result)
    return model, parameters


def compare_with_ode(model, result, align=0.1, horizon=None) -> ODEComparison:
    r"""Integrate the ODE from each run's state when ``|m|`` first reaches ``align``.

    docs/theory.md §7: the ODE started from a run's own ``m0`` with
    ``u0 = 0`` over-predicts its escape time by an ``O(1)`` constant (``u``
    fluctuates at order ``d^{-1/2}`` at ``t = 0``, a random shift of the
    starting overlap); after alignment the trajectories agree to
    ``O(d^{-1/2})``.  So each run's recorded state at its first record with
    ``|m| >= align`` (rank 2: ``|m1|``) starts an ODE solution, compared on
    the run's own later records.

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
    _check_model(model)
    align = _real(align, "align")
    if not 0 < align < 1:
        raise ValueError(f"align must lie in (0, 1), got {align}")
    if horizon is not None and not _real(horizon, "horizon") > 0:
        raise ValueError(f"horizon must be positive, got {horizon}")
    expected = {"m", "u", "v_norm"} | ({"s"} if model.pretraining == "general" else set())
    if model.rank == 2:
        expected = {"m1", "m2", "u1", "u2", "q12", "v_norm"}
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
    m = result.m[:, :n_even]
    sgd = {n: np.full((S, n_after), np.nan) for n in names}
    ode = {n: np.full((S, n_after), np.nan) for n in names}
    aligned = np.zeros(S, dtype=bool)
    align_time = np.full(S, np.inf)
    initial = {n: np.zeros(S) for n in names}
    for k in range(S):
        idx = np.flatnonzero(np.abs(m[k]) >= align)
        if idx.size == 0:
            continue
        i = idx[0]
        aligned[k] = True
        align_time[k] = result.t[i]
        # (u_1, v_1) -> (-u_1, -v_1) is a symmetry: map every run to m > 0
        flip = np.sign(m[k, i])
        count = min(n_even - i, n_after)
        for n in names:
            sign = flip if n in ("m", "m1", "u", "u1", "s", "q12") else 1.0
            values = sign * result.stats[n][k, i : i + count]
            sgd[n][k, :count] = values
            initial[n][k] = values[0]
    if aligned.any() and n_after > 1:
        sel = aligned
        kwargs = {"parameters": parameters} if parameters else {}
        if model.rank == 2:
            kwargs.update(m2=initial["m2"][sel], u2=initial["u2"][sel], q12=initial["q12"][sel])
            m_init, u_init = initial["m1"][sel], initial["u1"][sel]
        else:
            m_init, u_init = initial["m"][sel], initial["u"][sel]
            if model.pretraining == "general":
                kwargs.update(s0=initial["s"][sel], mu_perp=result.mu_perp)
        sol = ode_model.integrate(result.mu, m_init, u_init, float(grid[-1]), t_eval=grid, **kwargs)
        for n in names:
            ode[n][sel] = np.asarray(sol.states[n])[..., : n_after]
    for n in names:
        ode[n] = np.where(np.isnan(sgd[n]), np.nan, ode[n])
    key = "m1" if model.rank == 2 else "m"
    if aligned.any() and n_after > 1:
        deviation = float(np.nanmax(np.abs(ode[key] - sgd[key])))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # columns with fewer than 2 runs
            spread = float(np.nanmax(np.nanstd(sgd[key], axis=0))) if aligned.sum() > 1 else float("nan")
    else:
        deviation = spread = float("nan")
    return ODEComparison(
        t=_frozen(grid),
        sgd=MappingProxyType({n: _frozen(v) for n, v in sgd.items()}),
        ode=MappingProxyType({n: _frozen(v) for n, v in ode.items()}),
        aligned=_frozen(aligned),
        align_time=_frozen(align_time),
        align=align,
        max_deviation=deviation,
        spread=spread,
    )


# ----------------------------------------------------------- log d slope


@dataclass(frozen=True)
class EscapeSlope:
    """Mean escape time per ``d`` and its weighted least-squares slope in ``log d``.

    Attributes
    ----------
    d : numpy.ndarray
    mean, sem : numpy.ndarray
        Per ``d``: mean escape time and its standard error, over the runs
        that escaped (NaN when fewer than two escaped).
    n_runs, censored : numpy.ndarray of int
        Per ``d``: runs, and runs that did not escape (``inf`` times).
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
    for i, times in enumerate(escape_times):
        times = np.asarray(times, dtype=float).ravel()
        if times.size == 0:
            raise ValueError(f"no runs at d = {d_arr[i]}")
        if np.any(np.isnan(times)) or np.any(times < 0):
            raise ValueError(f"escape times at d = {d_arr[i]} must be >= 0 or inf (censored)")
        ok = np.isfinite(times)
        n_runs[i], censored[i] = times.size, int(np.sum(~ok))
        if ok.sum() >= 2:
            mean[i] = np.mean(times[ok])
            sem[i] = np.std(times[ok], ddof=1) / math.sqrt(ok.sum())
    notes = []
    if censored.any():
        listed = ", ".join(f"d={d}: {c}/{r}" for d, c, r in zip(d_arr, censored, n_runs) if c)
        if on_censored == "raise":
            raise ValueError(f"censored runs ({listed}); lengthen the horizon or choose on_censored")
        if on_censored == "exclude":
            notes.append(f"excluded d with censored runs ({listed}): their mean escape time is unknown")
        else:
            notes.append(f"censored runs dropped ({listed}): those means are biased low")
    used = np.isfinite(mean) & np.isfinite(sem) & (sem > 0)
    if on_censored == "exclude":
        used &= censored == 0
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
        d=_frozen(d_arr.copy()), mean=_frozen(mean), sem=_frozen(sem), n_runs=_frozen(n_runs),
        censored=_frozen(censored), used=_frozen(used), slope=slope, slope_sem=slope_sem,
        intercept=intercept, reduced_chi2=chi2, message="; ".join(notes),
    )
