r"""Distribution of the SGD escape time at finite ``d`` (aligned pre-training, rank 1).

Where ``a(μ) ≠ 0`` (the linear law)
-----------------------------------
Near ``m = u = 0`` the statistics obey, to leading order in ``d^{-1/2}``, the
linear SDE ``dX = η J X dt + (D_0/d)^{1/2} dW`` with ``J = [[0, a], [a, -b]]``
and the diffusion at the fixed point ``D_0 = diag(0, η² V/B)``,
``V = E[e_0(ν)² σ'(μν)²] + Δ E[σ'(μν)²]`` (:func:`symlora._diffusion`).  The
coordinate along the unstable eigenvector, ``ξ = m + (λ_+/a) u`` (left
eigenvector of ``J``; ``λ_+² + bλ_+ = a²``), is a one-dimensional
Ornstein–Uhlenbeck process run backwards:

.. math::

    dξ = η λ_+ ξ\,dt + \frac{λ_+}{a}\sqrt{\frac{η^2 V}{B d}}\,dW
    \;\Rightarrow\;
    ξ(t) e^{-ηλ_+ t} \to ξ_0 + \mathcal N\!\left(0, \frac{F - 1}{d}\right),\quad
    F = 1 + \frac{η λ_+ V}{2 a^2 B}.

The stable coordinate decays, so after a time ``O(1/η)`` the run follows the
``d → ∞`` ODE started at ``(m, u) = (ξ_eff, 0)`` (which has the same unstable
coordinate).  With ``v_0`` uniform on the sphere ``ξ_0 = m_0`` has variance
exactly ``1/d`` (its law is Gaussian up to ``O(1/d)``), so
``ξ_eff ~ N(0, F/d)``; with a given ``m_0``, ``ξ_eff ~ N(m_0, (F-1)/d)``.

The escape time is ``T(|ξ_eff|)``, where ``T(ε)`` is the ODE escape time from
``(ε, 0)`` (the ODE is odd under ``(m, u) → (-m, -u)``), computed once on a
grid of ``ε`` by the package's integrator and extended below the grid by its
exact linear-regime form ``T(ε) = T(ε_min) + (τ/η) log(ε_min/ε)``.  Mean,
standard deviation, quantiles and the distribution function follow by
quadrature in ``y = log|ξ_eff|`` (no sampling).

The noise acting after the start is kept to first order in ``1/d``
(:mod:`symlora._path_noise`): given ``ξ_eff`` the escape time has mean
``T + C_1(ξ_eff)/d`` and an extra variance ``C_2(ξ_eff)/d`` (Itô's formula
for ``T(X_t)`` along the deterministic path: the drag of the transverse
fluctuations on a curved drift, e.g. the renormalisation term ``∝ u²m``
averaged over the noise of ``u``, and the multiplicative ``m``-noise
``∝ u²``).  These grow like ``log(1/ξ)``, so their effect is of order
``(log d)/d`` but with a large prefactor where ``λ_+`` is small or ``V``
large (e.g. ``x`` against ``x²`` at ``μ = 0.2``: +10 time units at
``d = 500``, 6 % of the mean).  Neglected: ``O(d^{-2})`` terms, the
non-Gaussian tail of ``m_0``.  For drifts with a kink at ``u = 0`` (ReLU's
``u|u|``) the first-order expansion is not uniform and is left out (the
effective start alone, validated for ReLU at ``d = 250 … 4000``).
The fixed-point escape time scale is ``(τ/(2η)) log d``; the spread is
``O(τ/η)`` and independent of ``d``.

Where ``a(μ) = 0`` see :mod:`symlora._critical`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.special import ndtr

__all__ = ["EscapePrediction", "predict_escape", "effective_start_factor"]

#: Quadrature grid in y = log|ξ| relative to log of the spread (trapezoid; the
#: density decays like e^y below and like exp(-e^{2y}/2) above).
_Y = np.linspace(-40.0, 4.0, 8001)
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class EscapePrediction:
    """Predicted distribution of the SGD escape time, per dimension ``d``.

    Attributes
    ----------
    d : numpy.ndarray of int
    mean, std : numpy.ndarray
        Mean and standard deviation of the escape time (``t = steps/d``);
        ``inf`` where there is no escape.
    quantiles : dict
        ``{q: array over d}`` for ``q`` in 0.05, 0.25, 0.5, 0.75, 0.95.
    law : str
        The law used, in words (e.g. ``"log: t ≈ 0.5·log d + 3.1"``).
    status : {"asymptotic", "heuristic", "exact", "no escape"}
        ``"asymptotic"``: leading order of a derivation, corrections
        ``O(d^{-1/2})`` relative; ``"heuristic"``: an averaging argument
        verified by simulation only where stated; ``"no escape"``: derived
        absence of escape (``mean = inf``).
    derivation : str
    settings : dict
        ``mu``, ``threshold``, ``lr``, ``batch``, ``noise``, ``m0`` and the
        constants of the law (``tau``, ``F``, ...).
    """

    d: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    quantiles: dict
    law: str
    status: str
    derivation: str
    settings: dict = field(default_factory=dict)
    _cdf: object = field(default=None, repr=False, compare=False)

    def cdf(self, t, d):
        """``P(T <= t)`` at one of the predicted ``d`` (vectorised over ``t``)."""
        if self._cdf is None:
            raise ValueError(f"no distribution function for status {self.status!r}")
        if int(d) not in set(self.d.tolist()):
            raise ValueError(f"d must be one of the predicted dimensions {self.d.tolist()}, got {d}")
        return self._cdf(np.asarray(t, dtype=float), int(d))

    def __repr__(self):
        rows = [f"EscapePrediction({self.status}; {self.law})"]
        rows.append(f"  {'d':>8} {'mean':>11} {'std':>10} {'median':>11}")
        for k, d in enumerate(self.d):
            rows.append(f"  {int(d):>8} {self.mean[k]:>11.5g} {self.std[k]:>10.4g} {self.quantiles[0.5][k]:>11.5g}")
        return "\n".join(rows)

    def as_dict(self) -> dict:
        """Plain-Python form (lists and numbers) for JSON."""

        def clean(values):
            return [float(v) if math.isfinite(v) else (None if math.isnan(v) else str(v)) for v in np.ravel(values)]

        return {
            "d": [int(v) for v in self.d],
            "mean": clean(self.mean),
            "std": clean(self.std),
            "quantiles": {str(q): clean(v) for q, v in self.quantiles.items()},
            "law": self.law,
            "status": self.status,
            "derivation": self.derivation,
            "settings": {k: (float(v) if isinstance(v, (float, np.floating, int)) and not isinstance(v, bool) else v)
                         for k, v in self.settings.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)


def effective_start_factor(a, b, V, eta, batch):
    """``F = 1 + η λ_+ V / (2 a² B)`` (``λ_+`` in units of ``η``), vectorised."""
    a, b, V = (np.asarray(v, dtype=float) for v in (a, b, V))
    lam = (np.sqrt(b * b + 4 * a * a) - b) / 2
    return 1 + eta * lam * V / (2 * a * a * batch)


def _check_d(d):
    if isinstance(d, (str, bytes)):
        raise TypeError(f"d must be an integer or a list of integers, got {d!r}")
    values = np.atleast_1d(np.asarray(d))
    if values.dtype.kind not in "iu" and not (values.dtype.kind == "f" and np.all(values == np.round(values))):
        raise TypeError(f"d must be an integer or a list of integers, got {d!r}")
    values = values.astype(int)
    if values.ndim != 1 or np.any(values < 3):
        raise ValueError(f"d must be integers >= 3, got {values.tolist()}")
    return values


def _numbers(model):
    out = {}
    for name in ("lr", "batch", "noise"):
        value = getattr(model, name)
        if getattr(value, "free_symbols", None):
            raise ValueError(f"{name} is symbolic in the model ({value}); build the model with a number")
        out[name] = float(value)
    return out


def fixed_point_noise(model, mu) -> float:
    """``V = E[e_0² σ'(μν)²] + Δ E[σ'(μν)²]`` at ``mu`` (so that ``D_uu = η² V/B``)."""
    import sympy as sp

    from . import _symbols as S
    from ._asymptotics import _high_precision

    D0 = model.diffusion_at_fixed_point()
    entry = D0[-1, -1] * model.batch / model.lr**2
    return _high_precision(sp.sympify(entry).subs(S.mu, sp.nsimplify(mu)), 20)[0]


def _escape_map(model, mu, threshold, tau_eta):
    """ODE escape time ``T(ε)`` from ``(ε, 0)`` and the ``1/d`` corrections ``C_1``, ``C_2``, as functions of ``log ε``.

    ``T`` comes from the package's integrator on a log grid; ``C_1``, ``C_2``
    (:func:`symlora._path_noise.escape_path_corrections`) are smooth in
    ``log ε`` and need fewer points.  Below the grids all three are
    extended by their linear-regime form, linear in ``log ε`` (slope
    ``τ/η`` for ``T``; for ``C_1``, ``C_2`` the slope of the last interval).
    """
    eps = np.geomspace(1e-9, 0.6 * threshold, 40)
    result = model.escape_time(mu, eps, threshold=threshold)
    if not np.all(result.escaped):
        return None, eps, result
    from ._path_noise import drift_has_kink, escape_path_corrections

    # the adjoint integration loses accuracy like 1/ε² (its growing mode): start at 1e-3, extend linearly
    eps_c = np.geomspace(1e-3, 0.6 * threshold, 7)
    if drift_has_kink(model, mu):
        # the first-order path noise is not uniform across a kink (see _path_noise): effective start only
        C1 = C2 = np.zeros_like(eps_c)
    else:
        C1, C2 = escape_path_corrections(model, mu, threshold, eps_c)
    if not (np.all(np.isfinite(C1)) and np.all(np.isfinite(C2))):
        return None, eps, result

    def extended(x, values, slope):
        spline = CubicSpline(np.log(x), values)
        lo, hi = math.log(x[0]), math.log(x[-1])

        def function(log_eps):
            log_eps = np.asarray(log_eps, dtype=float)
            inside = spline(np.clip(log_eps, lo, hi))
            return np.where(log_eps < lo, values[0] + slope * (lo - log_eps), inside)

        return function

    log_c = np.log(eps_c)
    T_inner = extended(eps, result.time, tau_eta)
    C1_of = extended(eps_c, C1, (C1[0] - C1[1]) / (log_c[1] - log_c[0]))
    C2_of = extended(eps_c, C2, (C2[0] - C2[1]) / (log_c[1] - log_c[0]))
    top = math.log(eps[-1])

    def T(log_eps, d):
        """Mean escape time given the effective start, and the variance the later noise adds."""
        log_eps = np.asarray(log_eps, dtype=float)
        # above the grid (|ξ| ~ threshold, probability ~ exp(-d)): the escape is immediate
        mean = np.where(log_eps > top, 0.0, T_inner(log_eps) + C1_of(log_eps) / d)
        return np.maximum(mean, 0.0), np.maximum(C2_of(log_eps) / d, 0.0)

    return T, eps, result


def _log_abs_density(scale, m0):
    """Density of ``y = log|ξ|`` on ``log(scale) + _Y`` for ``ξ ~ N(m0, scale²)``."""
    y = math.log(scale) + _Y
    r = np.exp(y)
    z0 = 0.0 if m0 is None else m0 / scale
    dens = (np.exp(-0.5 * (r / scale - z0) ** 2) + np.exp(-0.5 * (r / scale + z0) ** 2)) / math.sqrt(2 * math.pi)
    return y, dens * r / scale


def _moments(T, y, dens, d):
    """Mean, standard deviation and distribution function of ``T(|ξ|) + C_1/d + N(0, C_2/d)``."""
    w = dens * np.gradient(y)
    w /= w.sum()
    t, extra = T(y, d)
    mean = float(np.sum(w * t))
    std = float(math.sqrt(max(np.sum(w * ((t - mean) ** 2 + extra)), 0.0)))
    keep = w > 1e-14 * w.max()
    t, sd, w = t[keep], np.sqrt(extra[keep]), w[keep] / w[keep].sum()
    # the distribution function as a mixture of normals, on a coarser set of starts (memory: grid × starts)
    if t.size > 2000:
        size = t.size // 4 * 4
        w4 = w[:size].reshape(-1, 4)
        t = (w4 * t[:size].reshape(-1, 4)).sum(axis=1) / np.maximum(w4.sum(axis=1), 1e-300)
        sd = sd[:size].reshape(-1, 4).max(axis=1)
        w = w4.sum(axis=1) / w4.sum()
    grid = np.linspace(max(t.min() - 8 * sd.max(), 0.0), t.max() + 8 * sd.max(), 2001)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (grid[:, None] - t[None, :]) / sd[None, :]
    cdf = np.where(sd[None, :] > 0, ndtr(z), (grid[:, None] >= t[None, :]).astype(float)) @ w
    return mean, std, grid, np.clip(cdf, 0.0, 1.0)


def predict_escape(model, mu, d, threshold=0.5, m0=None):
    """Distribution of the SGD escape time of ``model`` at pre-training ``mu``, per ``d``.

    Parameters
    ----------
    model : LoRAModel
        Aligned pre-training, rank 1, numeric ``lr``, ``batch``, ``noise``.
    mu : float
        Pre-training strength (``>= 0``).
    d : int or sequence of int
        Input dimensions (``>= 3``).
    threshold : float
        Escape when ``|m|`` first reaches it, in ``(0, 1)``.
    m0 : float, optional
        A fixed initial overlap (default: ``v_0`` uniform on the sphere); ``u_0 = 0``.

    Returns
    -------
    EscapePrediction

    Raises
    ------
    TypeError
        ``d`` not integers, ``mu``/``threshold``/``m0`` not numbers.
    ValueError
        Bad values, general pre-training or rank 2, symbolic ``lr``/``batch``/``noise``.

    Notes
    -----
    See the module notes: the effective start ``ξ_eff ~ N(m_0, (F-1)/d)``
    (``N(0, F/d)`` for a uniform ``v_0``) with ``F = 1 + ηλ_+V/(2a²B)``,
    then the ODE escape time ``T(|ξ_eff|)``.  Where ``a(μ) = 0`` the law of
    :func:`symlora._critical.critical_prediction` is used.

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> p = LoRAModel("x", lr=0.5).predict_escape(0.3, [1000, 10000])
    >>> p.status
    'asymptotic'
    >>> bool(abs((p.mean[1] - p.mean[0]) / np.log(10) - p.settings["tau"] / (2 * 0.5)) < 1e-3)
    True
    """
    from ._model import LoRAModel

    if not isinstance(model, LoRAModel):
        raise TypeError(f"model must be a LoRAModel, got {type(model).__name__}")
    if model.rank != 1 or model.pretraining != "aligned":
        raise ValueError("predict_escape is derived for aligned pre-training, rank 1")
    for name, value in (("mu", mu), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number, got {value!r}")
    mu, threshold = float(mu), float(threshold)
    if not (math.isfinite(mu) and mu >= 0):
        raise ValueError(f"mu must be finite and >= 0, got {mu}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    if m0 is not None:
        if isinstance(m0, bool) or not isinstance(m0, (int, float, np.integer, np.floating)):
            raise TypeError(f"m0 must be a number, got {m0!r}")
        m0 = float(m0)
        if not abs(m0) < threshold:
            raise ValueError(f"m0 must satisfy |m0| < threshold = {threshold}, got {m0}")
    ds = _check_d(d)
    numbers = _numbers(model)
    eta, B = numbers["lr"], numbers["batch"]
    coeffs = model.coefficients(mu)
    a, b = float(coeffs["a"]), float(coeffs["b"])
    V = fixed_point_noise(model, mu)
    settings = {"mu": mu, "threshold": threshold, "m0": m0, **numbers, "a": a, "b": b, "V": V}
    lin_values = model.linearization().values(mu)
    if abs(lin_values["a"]) <= max(lin_values["a_error"], 1e-12):
        from ._critical import critical_prediction

        return critical_prediction(model, mu, ds, threshold, m0, settings)
    tau = float(coeffs["tau"])
    F = float(effective_start_factor(a, b, V, eta, B))
    settings.update({"tau": tau, "F": F})
    T, eps, result = _escape_map(model, mu, threshold, tau / eta)
    if T is None:
        from ._plateau import plateau_prediction

        return plateau_prediction(model, mu, ds, threshold, settings, result)
    means, stds, quants, cdfs = [], [], {q: [] for q in _QUANTILES}, {}
    for dim in ds:
        var = (F - 1) / dim if m0 is not None else F / dim
        y, dens = _log_abs_density(math.sqrt(var), m0)
        mean, std, grid, cdf_values = _moments(T, y, dens, int(dim))
        means.append(mean)
        stds.append(std)
        for q in _QUANTILES:
            quants[q].append(float(np.interp(q, cdf_values, grid)))
        cdfs[int(dim)] = (grid, cdf_values)

    def cdf(t, dim):
        t_sorted, p_sorted = cdfs[dim]
        return np.interp(t, t_sorted, p_sorted, left=0.0, right=1.0)

    means = np.array(means)
    slope = tau / (2 * eta)
    constant = float(np.median(means - slope * np.log(ds)))
    start = "v0 uniform on the sphere, m0 ~ N(0, 1/d)" if m0 is None else f"m0 = {m0:g}"
    law = f"log: mean t_esc ≈ {slope:.6g} log d + {constant:.4g}" if m0 is None else (
        f"log: ODE from the effective start (m0 = {m0:g} plus u-noise)")
    derivation = (
        f"a = {a:.6g} ≠ 0: linear escape. {start}, u0 = 0. The noise of u (D_uu = η²V/B, V = {V:.6g}) projected "
        f"on the unstable direction ξ = m + (λ+/a) u shifts the start: ξ_eff = m0 + N(0, (F-1)/d), "
        f"F = 1 + ηλ+V/(2a²B) = {F:.6g}; then the ODE from (ξ_eff, 0): t_esc = T(|ξ_eff|), τ/η = {tau / eta:.6g}. "
        "Leading order in d^(-1/2)."
    )
    return EscapePrediction(
        d=ds, mean=means, std=np.array(stds), quantiles={q: np.array(v) for q, v in quants.items()},
        law=law, status="asymptotic", derivation=derivation, settings=settings, _cdf=cdf,
    )
