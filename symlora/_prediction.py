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
quadrature in ``y = log|ξ_eff|`` (no sampling).  Neglected: corrections of
relative order ``d^{-1/2}`` (noise during the nonlinear phase, the
``u``-dependent parts of the diffusion, the non-Gaussian tail of ``m_0``).
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
    """ODE escape time ``T(ε)`` from ``(ε, 0)`` on a log grid, as a spline in ``log ε``."""
    eps = np.geomspace(1e-9, 0.6 * threshold, 40)
    result = model.escape_time(mu, eps, threshold=threshold)
    if not np.all(result.escaped):
        return None, eps, result
    spline = CubicSpline(np.log(eps), result.time)
    lo = math.log(eps[0])
    t_lo = float(result.time[0])

    def T(log_eps):
        log_eps = np.asarray(log_eps, dtype=float)
        inside = np.clip(log_eps, lo, math.log(eps[-1]))
        values = spline(inside)
        # below the grid the linear regime is exact: slope tau/eta in log(1/eps)
        values = np.where(log_eps < lo, t_lo + tau_eta * (lo - log_eps), values)
        # above the grid (|ξ| ~ threshold, probability ~ exp(-d)): the escape is immediate
        return np.where(log_eps > math.log(eps[-1]), np.maximum(values, 0.0), values)

    return T, eps, result


def _log_abs_density(scale, m0):
    """Density of ``y = log|ξ|`` on ``log(scale) + _Y`` for ``ξ ~ N(m0, scale²)``."""
    y = math.log(scale) + _Y
    r = np.exp(y)
    z0 = 0.0 if m0 is None else m0 / scale
    dens = (np.exp(-0.5 * (r / scale - z0) ** 2) + np.exp(-0.5 * (r / scale + z0) ** 2)) / math.sqrt(2 * math.pi)
    return y, dens * r / scale


def _moments(T, y, dens):
    w = dens * np.gradient(y)
    w /= w.sum()
    t = T(y)
    mean = float(np.sum(w * t))
    std = float(math.sqrt(max(np.sum(w * (t - mean) ** 2), 0.0)))
    # T decreases with |ξ|: P(T <= t(y)) = P(log|ξ| >= y)
    tail = np.cumsum(w[::-1])[::-1]
    return mean, std, t, tail


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
        from ._critical import plateau_prediction

        return plateau_prediction(model, mu, ds, threshold, settings, result)
    means, stds, quants, cdfs = [], [], {q: [] for q in _QUANTILES}, {}
    for dim in ds:
        var = (F - 1) / dim if m0 is not None else F / dim
        y, dens = _log_abs_density(math.sqrt(var), m0)
        mean, std, t, tail = _moments(T, y, dens)
        means.append(mean)
        stds.append(std)
        order = np.argsort(t)
        t_sorted, p_sorted = t[order], tail[order]
        for q in _QUANTILES:
            quants[q].append(float(np.interp(q, p_sorted, t_sorted)))
        cdfs[int(dim)] = (t_sorted, p_sorted)

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
