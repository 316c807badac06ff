"""One-pass SGD of the real LoRA model at finite ``d`` (MODEL.md section 1).

Many seeds advance together: every step is a handful of array operations on
arrays of shape ``(seeds, batch, d)``; inputs are drawn in chunks of steps
(bounded memory) and never stored.  By rotational invariance the teacher
direction is ``w* = e_1`` and, for general pre-training, ``w⊥ = e_2``.

Only :meth:`Activation.numpy` is used from the symbolic side.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SGDResult", "simulate_sgd", "compare_with_ode", "escape_slope", "EscapeSlope"]

#: Bytes of Gaussian inputs drawn at once.
_CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class SGDResult:
    """Recorded trajectories and escape times of a batch of SGD runs.

    Attributes
    ----------
    t : numpy.ndarray
        Recorded times ``steps/d``, shape ``(nt,)``.
    stats : dict
        ``"m"``, ``"u"`` (rank 2: ``"m1", "m2", "u1", "u2", "q12"``; general:
        also ``"s"``) -> arrays of shape ``(seeds, nt)``.
    escape_time : numpy.ndarray
        Per seed, first time ``|m| >= threshold`` (``inf`` if not reached).
    status : numpy.ndarray of str
        Per seed: ``"escaped"``, ``"censored"`` (horizon reached first: a
        plateau below the threshold is censored, not slow) or ``"diverged"``.
    seed : int
        Seed of ``numpy.random.default_rng`` (reproducible).
    d, mu, lr, batch, noise, threshold, steps : numbers
        The run's settings (``steps`` actually taken).
    v_norm_error : float
        ``max | |v| - 1 |`` over seeds after the last step.
    """

    t: np.ndarray
    stats: dict
    escape_time: np.ndarray
    status: np.ndarray
    seed: int
    d: int
    mu: float
    lr: float
    batch: int
    noise: float
    threshold: float
    steps: int
    v_norm_error: float
    settings: dict = field(default_factory=dict)

    @property
    def m(self):
        return self.stats["m1"] if "m1" in self.stats else self.stats["m"]

    @property
    def u(self):
        return self.stats["u1"] if "u1" in self.stats else self.stats["u"]

    @property
    def n_seeds(self) -> int:
        return self.escape_time.size

    @property
    def censored(self) -> int:
        return int(np.sum(self.status != "escaped"))


def _number(value, name):
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} is symbolic in the model ({value}); pass a number, e.g. {name}=1"
        ) from exc


class _Progress:
    def __init__(self, total, label, enabled):
        self.total, self.label = total, label
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
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
    progress=None,
    dtype=np.float64,
):
    r"""Run one-pass SGD of ``model`` for ``seeds`` independent runs at once.

    Parameters
    ----------
    model : LoRAModel
        Student, teacher, pre-training kind and rank (and default ``lr``,
        ``batch``, ``noise``).
    mu : float
        Pre-training strength, ``>= 0``.
    d : int
        Input dimension, ``>= 2`` (``>= 3`` for general pre-training and rank 2).
    steps, t_max : int, float, optional
        Horizon in steps or in time ``t = steps/d`` (one of them; default
        from the linear theory: ``t_max = 3 (τ/η) log d + 10 τ/η``).
    seeds : int
        Number of independent runs.
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    lr, batch, noise : float, int, float, optional
        ``η``, ``B``, ``Δ``; default: the model's.
    threshold : float
        Escape when ``|m|`` first reaches it, in ``(0, 1)``.
    record_every : int, optional
        Steps between records (default ``d // 10``: ten records per unit time).
    m0 : float, optional
        Initial overlap (default: ``v0`` uniform on the sphere, ``m0 ~ d^{-1/2}``).
    mu_perp : float
        Orthogonal pre-training strength (general pre-training).
    stop_at_escape : bool
        Stop when every seed has escaped (or diverged).
    progress : bool, optional
        Progress bar on stderr (default: only when stderr is a terminal).
    dtype : numpy dtype
        ``float64`` (default) or ``float32`` for inputs and weights.

    Returns
    -------
    SGDResult

    Raises
    ------
    ValueError
        Bad sizes or rates, a threshold outside ``(0, 1)``, symbolic
        ``lr``/``batch``/``noise`` left unset.  (Students with a Dirac-delta
        derivative are already refused by :class:`LoRAModel`.)
    TypeError
        ``d``, ``seeds``, ``steps`` or ``record_every`` not integers.
    """
    for name, value in (("d", d), ("seeds", seeds), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
    general = model.pretraining == "general"
    rank = model.rank
    min_d = 3 if (general or rank == 2) else 2
    if d < min_d:
        raise ValueError(f"d must be at least {min_d}, got {d}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    if not math.isfinite(float(mu)) or mu < 0:
        raise ValueError(f"mu must be finite and >= 0, got {mu}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    eta = _number(model.lr if lr is None else lr, "lr")
    B = _number(model.batch if batch is None else batch, "batch")
    delta = _number(model.noise if noise is None else noise, "noise")
    if eta <= 0:
        raise ValueError(f"lr must be positive, got {eta}")
    if B < 1 or B != int(B):
        raise ValueError(f"batch must be a positive integer, got {B}")
    B = int(B)
    if delta < 0:
        raise ValueError(f"noise must be >= 0, got {delta}")
    if m0 is not None and not -1 < m0 < 1:
        raise ValueError(f"m0 must lie in (-1, 1), got {m0}")
    if steps is not None and t_max is not None:
        raise ValueError("give steps or t_max, not both")
    if steps is None:
        if t_max is None:
            tau = float(model.tau(mu)) if model.pretraining == "aligned" else float(
                model.coefficients(mu, mu_perp)["tau"])
            tau = tau if math.isfinite(tau) else 1e3
            t_max = 3 * tau / eta * math.log(d) + 10 * tau / eta
        if not t_max > 0:
            raise ValueError(f"t_max must be positive, got {t_max}")
        steps = int(math.ceil(t_max * d))
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if record_every is None:
        record_every = max(d // 10, 1)
    if isinstance(record_every, bool) or not isinstance(record_every, (int, np.integer)) or record_every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every!r}")

    sigma = model.student.numpy(0)
    dsigma = model.student.numpy(1)
    teacher = model.teacher.numpy(0)
    rng = np.random.default_rng(seed)
    lr_step = eta / d
    S = seeds

    def initial_direction():
        v = rng.standard_normal((S, d)).astype(dtype)
        if m0 is not None:
            v[:, 0] = 0
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            v *= math.sqrt(1 - m0 * m0)
            v[:, 0] = m0
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    n_dir = 2 if rank == 2 else 1
    V = [initial_direction() for _ in range(n_dir)]
    U = [np.zeros(S, dtype=dtype) for _ in range(n_dir)]

    names = ["m1", "m2", "u1", "u2", "q12"] if rank == 2 else (["m", "s", "u"] if general else ["m", "u"])
    records = {n: [] for n in names}
    times = []

    def record(step):
        times.append(step / d)
        if rank == 2:
            values = {"m1": V[0][:, 0], "m2": V[1][:, 0], "u1": U[0], "u2": U[1],
                      "q12": np.einsum("sd,sd->s", V[0], V[1])}
        else:
            values = {"m": V[0][:, 0], "u": U[0]}
            if general:
                values["s"] = V[0][:, 1]
        for n in names:
            records[n].append(np.array(values[n], dtype=float))

    escape = np.full(S, np.inf)
    status = np.full(S, "censored", dtype=object)
    active = np.ones(S, dtype=bool)
    record(0)
    chunk = max(1, min(steps, _CHUNK_BYTES // (S * B * d * np.dtype(dtype).itemsize)))
    progress_bar = _Progress(steps, f"sgd d={d}", progress)
    noise_sd = math.sqrt(delta)
    step = 0
    while step < steps:
        n_now = min(chunk, steps - step)
        X = rng.standard_normal((n_now, S, B, d), dtype=dtype)
        xi = rng.standard_normal((n_now, S, B)) if noise_sd > 0 else None
        for k in range(n_now):
            x = X[k]
            nu = x[:, :, 0]
            zetas = [np.einsum("sbd,sd->sb", x, v) for v in V]
            lam = mu * nu
            if general:
                lam = lam + mu_perp * x[:, :, 1]
            for uu, zz in zip(U, zetas):
                lam = lam + uu[:, None] * zz
            y = teacher(nu)
            if xi is not None:
                y = y + noise_sd * xi[k]
            g = (sigma(lam) - y) * dsigma(lam)  # (S, B): dloss/dlambda per sample
            gx = np.einsum("sb,sbd->sd", g, x) / B
            for a in range(n_dir):
                grad_u = np.mean(g * zetas[a], axis=1)
                V[a] = V[a] - (lr_step * U[a])[:, None] * gx
                U[a] = U[a] - lr_step * grad_u
                V[a] /= np.linalg.norm(V[a], axis=1, keepdims=True)
            step += 1
            m_now = np.abs(V[0][:, 0])
            hit = active & (m_now >= threshold)
            if hit.any():
                escape[hit] = step / d
                status[hit] = "escaped"
                active &= ~hit
            bad = active & ~np.isfinite(U[0])
            if bad.any():
                status[bad] = "diverged"
                active &= ~bad
            if step % record_every == 0:
                record(step)
            if stop_at_escape and not active.any():
                break
        progress_bar.update(step)
        if stop_at_escape and not active.any():
            break
    progress_bar.close()
    if step % record_every:
        record(step)
    norm_error = max(float(np.nanmax(np.abs(np.linalg.norm(v, axis=1) - 1))) for v in V)
    stats = {n: np.stack(records[n], axis=1) for n in names}
    return SGDResult(
        t=np.array(times),
        stats=stats,
        escape_time=escape,
        status=status.astype(str),
        seed=seed,
        d=d,
        mu=float(mu),
        lr=eta,
        batch=B,
        noise=delta,
        threshold=float(threshold),
        steps=step,
        v_norm_error=norm_error,
        settings={"mu_perp": mu_perp, "m0": m0, "record_every": record_every},
    )


def compare_with_ode(model, result: SGDResult, align=0.1, horizon=None):
    """Integrate the ODE from each run's state when ``|m|`` first reaches ``align``.

    MODEL.md section 4: the ODE started from a run's own ``m0`` with
    ``u0 = 0`` over-predicts its escape time by an ``O(1)`` constant
    (``u`` fluctuates at order ``d^{-1/2}`` at ``t = 0``); after alignment the
    trajectories agree to ``O(d^{-1/2})``.  Runs are mapped to ``m > 0`` by
    the symmetry ``(u, v) -> (-u, -v)``.

    Returns
    -------
    dict
        ``"t"`` (times after alignment, shape ``(nt,)``), ``"sgd_m"``,
        ``"ode_m"`` (shape ``(seeds, nt)``, NaN where a run had not aligned
        or had ended), ``"aligned"`` (bool per seed) and ``"max_deviation"``.
    """
    if model.rank != 1 or model.pretraining != "aligned":
        raise ValueError("compare_with_ode supports aligned rank-1 models")
    m, u, t = result.m, result.u, result.t
    span = t[-1] if horizon is None else horizon
    grid = t[t <= span]
    ode_m = np.full((m.shape[0], grid.size), np.nan)
    sgd_m = np.full((m.shape[0], grid.size), np.nan)
    aligned = np.zeros(m.shape[0], dtype=bool)
    starts, m_start, u_start = [], [], []
    for k in range(m.shape[0]):
        idx = np.flatnonzero(np.abs(m[k]) >= align)
        if idx.size == 0:
            continue
        i = idx[0]
        sign = np.sign(m[k, i])
        aligned[k] = True
        starts.append(i)
        m_start.append(sign * m[k, i])
        u_start.append(sign * u[k, i])
        n_after = min(m.shape[1] - i, grid.size)
        sgd_m[k, :n_after] = sign * m[k, i : i + n_after]
    if aligned.any():
        sol = model.integrate(result.mu, np.array(m_start), np.array(u_start), float(grid[-1]) if grid[-1] > 0 else 1.0,
                              t_eval=grid if grid[-1] > 0 else None)
        ode_m[aligned] = sol.states["m"][:, : grid.size]
    ode_m = np.where(np.isnan(sgd_m), np.nan, ode_m)
    deviation = float(np.nanmax(np.abs(ode_m - sgd_m))) if aligned.any() else float("nan")
    return {"t": grid, "sgd_m": sgd_m, "ode_m": ode_m, "aligned": aligned, "max_deviation": deviation}


@dataclass(frozen=True)
class EscapeSlope:
    """Mean escape time per ``d`` and its least-squares slope in ``log d``."""

    d: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    censored: np.ndarray
    slope: float
    slope_sem: float
    intercept: float


def escape_slope(d_values, escape_times) -> EscapeSlope:
    """Weighted least-squares slope of the mean escape time against ``log d``.

    Parameters
    ----------
    d_values : sequence of int
    escape_times : sequence of arrays
        Per ``d``, the escape times of its seeds (``inf`` = censored).
        Censored runs are counted and reported, never averaged in: a ``d``
        with censored runs gives a mean over its escaped runs only.

    Returns
    -------
    EscapeSlope
        The slope's standard error propagates the per-``d`` standard errors
        of the mean (and is inflated by the fit's reduced chi-square if it
        exceeds 1).
    """
    d_values = np.asarray(d_values, dtype=float)
    means, sems, censored = [], [], []
    for times in escape_times:
        times = np.asarray(times, dtype=float)
        ok = np.isfinite(times)
        censored.append(int(np.sum(~ok)))
        if ok.sum() >= 2:
            means.append(float(np.mean(times[ok])))
            sems.append(float(np.std(times[ok], ddof=1) / np.sqrt(ok.sum())))
        elif ok.sum() == 1:
            means.append(float(times[ok][0]))
            sems.append(float("inf"))
        else:
            means.append(float("inf"))
            sems.append(float("inf"))
    means, sems = np.array(means), np.array(sems)
    usable = np.isfinite(means) & np.isfinite(sems) & (sems > 0)
    if usable.sum() < 2:
        raise ValueError("need at least two values of d with two or more escaped runs to fit a slope")
    x = np.log(d_values[usable])
    y = means[usable]
    w = 1 / sems[usable] ** 2
    X = np.vstack([x, np.ones_like(x)]).T
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    coef = cov @ X.T @ (w * y)
    chi2 = float(np.sum(w * (y - X @ coef) ** 2))
    dof = usable.sum() - 2
    scale = max(chi2 / dof, 1.0) if dof > 0 else 1.0
    return EscapeSlope(d_values, means, sems, np.array(censored), float(coef[0]),
                       float(np.sqrt(cov[0, 0] * scale)), float(coef[1]))
