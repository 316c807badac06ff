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

The noise acting after the start, and the fixed-point noise itself, are
carried by the one-dimensional escape diffusion of
:mod:`symlora._escape_diffusion`: the coordinate ``y = L e^{-κT(X)}``
(``T`` the ODE time-to-go) obeys an SDE whose coefficients, evaluated on
the deterministic path, are exact to first order in ``1/d``
(:mod:`symlora._path_noise`: the drag of the transverse fluctuations on a
curved drift, the multiplicative ``m``-noise ``∝ u²``), and its first
passage to ``y = L`` is solved exactly.  Near the saddle it is the
Ornstein–Uhlenbeck process above, so it contains the effective start; the
fluctuation along the path is kept to all orders, which matters where
``λ_+`` is small and the noise large (``x`` against ``x²`` at ``μ = 0.3``,
``η = 1``, ``d = 250``: standard deviation 20.1 against 20.5 ± 0.2 simulated
with 5000 runs, where adding the first-order variance ``C_2/d`` to the
effective start gave 17.5).

The noise at the saddle also depends on the transverse fluctuation of
``u`` (the ``m``-noise ``∝ u²``): it adds a variance ``Δ`` and a fourth
cumulant ``κ_4`` to ``ξ_eff``, both of order ``1/d²``, which move the mean
by order ``1/d`` since ``ξ_eff ∼ d^{-1/2}``
(:mod:`symlora._saddle_noise`).  They enter through the start: ``m_0`` is
drawn from ``N(m_0, σ_0² + Δ)`` (``σ_0² = 1/d`` on the sphere, 0 for a fixed
``m_0``), reweighted by ``1 + κ_4 He_4(z)/(24 (σ_0² + Δ)²)`` (an Edgeworth
term).  To first order in ``Δ`` this is ``E[h] + (Δ/2)E[∂²h]`` for a
function ``h`` of the start; adding ``Δ`` to the Gaussian instead keeps that
part a distribution where ``Δ`` is not small against ``1/d`` (small ``d``, or
a fixed start), and is exact were the extra noise Gaussian.

Neglected: ``O(d^{-2})`` terms, the non-Gaussian tail of ``m_0``.  For
drifts with a kink at ``u = 0`` (ReLU's ``u|u|``) the first-order expansion
is not uniform and is left out: the diffusion then carries the fixed-point
noise alone (the effective start, validated for ReLU at ``d = 250 … 10^5``).
The fixed-point escape time scale is ``(τ/(2η)) log d``; the spread is
``O(τ/η)`` and independent of ``d``.  Where the first-order saddle terms are
not small against the start's variance (``Δ/s² > 0.25`` or excess kurtosis
``κ_4/s⁴ > 0.5``, ``s² = F/d``), ``settings["uncertain_d"]`` lists those
``d`` and the derivation says so.

Where ``a(μ) = 0`` see :mod:`symlora._critical`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["EscapePrediction", "predict_escape", "effective_start_factor"]

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


def _ode_escape_map(model, mu, threshold):
    """ODE escape time ``T(ε)`` from ``(ε, 0)`` on a log grid of ``ε`` (``None`` if some start does not escape)."""
    eps = np.geomspace(1e-9, 0.6 * threshold, 40)
    result = model.escape_time(mu, eps, threshold=threshold)
    return (eps if np.all(result.escaped) else None), result


def _starts(eps, times, path, m0, d, Delta, kappa4):
    """Starting points ``y_0`` of the escape diffusion and their (signed) weights.

    ``y_0 = L e^{-κT(m_0)}`` with ``T`` the ODE time from ``(m_0, 0)`` (below
    the grid ``T`` is extended by its linear-regime slope ``1/κ``, i.e.
    ``y_0 = m_0``).  The start law ``N(m_0, σ_0² + Δ)`` (``σ_0² = 1/d`` on the
    sphere, 0 for a fixed ``m_0``) carries the saddle's extra variance, and a
    Hermite reweighting its fourth cumulant ``κ_4`` (module notes).
    """
    log_eps = np.log(eps)

    def y_of(m):
        m = np.abs(np.asarray(m, dtype=float))
        log_m = np.log(np.maximum(m, 1e-300))
        T = np.interp(log_m, log_eps, times) + np.where(log_m < log_eps[0], (log_eps[0] - log_m) / path.kappa, 0.0)
        return np.where(m >= eps[-1] / 0.6, path.L, np.minimum(path.L * np.exp(-path.kappa * T), path.L))

    # the extra variance Δ is added to the start's Gaussian (exact were the extra noise Gaussian; its first-order
    # expansion, a Hermite reweighting by He2, turns negative once Δ is a few times 1/d), κ4 reweights by He4
    variance = (1.0 / d if m0 is None else 0.0) + max(Delta, 0.0)
    centre = 0.0 if m0 is None else m0
    if variance == 0.0:
        return y_of(np.array([centre])), np.array([1.0])
    z = np.linspace(-9.0, 9.0, 8001)
    weight = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    weight = weight * (1 + min(Delta, 0.0) / (2 * variance) * (z**2 - 1)
                       + kappa4 / (24 * variance**2) * (z**4 - 6 * z**2 + 3))
    return y_of(centre + z * math.sqrt(variance)), weight / weight.sum()


def _distribution(diffusion, y0, weight):
    """Mean, standard deviation, time grid and distribution function of the escape from the weighted starts."""
    first, second = diffusion.moments(y0)
    mean = float(weight @ first)
    std = math.sqrt(max(float(weight @ second) - mean**2, 0.0))
    t = np.linspace(0.0, mean + 12 * std, 1501)
    cdf = 1 - diffusion.survival(y0, weight, t)
    # the signed first-order weights can leave ripples of their own order: keep a distribution function
    return mean, std, t, np.clip(np.maximum.accumulate(cdf), 0.0, 1.0)


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
    See the module notes: the first passage of the escape diffusion along
    the ODE path (which contains the effective start
    ``ξ_eff ~ N(m_0, (F-1)/d)``, ``F = 1 + ηλ_+V/(2a²B)``, and the noise
    after it), from ``m_0`` (``N(0, 1/d)`` for a uniform ``v_0``) with the
    saddle's transverse-noise correction of the start.  ``settings`` holds
    ``saddle_variance_shift``, ``saddle_excess_kurtosis`` and ``uncertain_d``
    (the ``d`` where those first-order terms are large).  Where ``a(μ) = 0``
    the law of :func:`symlora._critical.critical_prediction` is used.

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
    eps, result = _ode_escape_map(model, mu, threshold)
    path = None
    if eps is not None:
        from ._path_noise import drift_has_kink, escape_path

        kinked = drift_has_kink(model, mu)
        path = escape_path(model, mu, threshold, with_noise=not kinked)
    if path is None:
        from ._plateau import plateau_prediction

        return plateau_prediction(model, mu, ds, threshold, settings, result)
    from ._escape_diffusion import EscapeDiffusion
    from ._path_noise import _numeric_model
    from ._saddle_noise import saddle_cumulants

    _, jacobian, diffusion_matrix = _numeric_model(model, mu)
    J0 = jacobian(np.zeros(2))
    settings.update({"L": path.L, "C1": path.C1, "C2": path.C2, "kinked": kinked})
    means, stds, quants, cdfs, shifts, kurtoses, large = [], [], {q: [] for q in _QUANTILES}, {}, [], [], []
    for dim in ds:
        dim = int(dim)
        # the transverse saddle noise needs the smooth expansion of D at 0, which a kink does not have
        Delta, kappa4 = (0.0, 0.0) if kinked else saddle_cumulants(J0, diffusion_matrix, dim)
        start_variance = F / dim
        shifts.append(Delta / start_variance)
        kurtoses.append(kappa4 / start_variance**2)
        y0, weight = _starts(eps, result.time, path, m0, dim, Delta, kappa4)
        mean, std, grid, cdf_values = _distribution(EscapeDiffusion(path, dim), y0, weight)
        means.append(mean)
        stds.append(std)
        for q in _QUANTILES:
            quants[q].append(float(np.interp(q, cdf_values, grid)))
        cdfs[dim] = (grid, cdf_values)
        large.append(shifts[-1] > 0.25 or abs(kurtoses[-1]) > 0.5)

    def cdf(t, dim):
        t_sorted, p_sorted = cdfs[dim]
        return np.interp(t, t_sorted, p_sorted, left=0.0, right=1.0)

    means = np.array(means)
    uncertain = [int(v) for v, flag in zip(ds, large) if flag]
    settings.update({"saddle_variance_shift": [float(v) for v in shifts],
                     "saddle_excess_kurtosis": [float(v) for v in kurtoses],
                     "uncertain_d": uncertain})
    slope = tau / (2 * eta)
    constant = float(np.median(means - slope * np.log(ds)))
    start = "v0 uniform on the sphere, m0 ~ N(0, 1/d)" if m0 is None else f"m0 = {m0:g}"
    law = f"log: mean t_esc ≈ {slope:.6g} log d + {constant:.4g}" if m0 is None else (
        f"log: escape diffusion from m0 = {m0:g} (u-noise at the saddle and along the path)")
    path_noise = ("the fixed-point noise alone (the drift has a kink at u = 0: the first-order path terms are not "
                  "uniform there)" if kinked else
                  f"the first-order noise along the path (C1 = {path.C1:.5g}, C2 = {path.C2:.5g} from ξ = 1e-3)")
    derivation = (
        f"a = {a:.6g} ≠ 0: linear escape. {start}, u0 = 0. The noise of u (D_uu = η²V/B, V = {V:.6g}) projected "
        f"on the unstable direction ξ = m + (λ+/a) u shifts the start: ξ_eff = m0 + N(0, (F-1)/d), "
        f"F = 1 + ηλ+V/(2a²B) = {F:.6g}, τ/η = {tau / eta:.6g}. The coordinate y = L exp(-κT(X)) of the ODE "
        f"time-to-go T follows a one-dimensional diffusion (L = {path.L:.5g}) carrying {path_noise}; its first "
        "passage to y = L is solved exactly. The transverse u-fluctuation at the saddle adds a variance Δ and a "
        "fourth cumulant κ4 to ξ_eff (first order in 1/d for the mean): the start m0 gets the extra variance Δ "
        "and an Edgeworth weight for κ4. Neglected: O(1/d²)."
    )
    if uncertain:
        derivation += (f" At d = {uncertain} the first-order saddle terms are large (Δ/s² > 0.25 or κ4/s⁴ > 0.5, "
                       "s² = F/d): the next order may matter, the prediction is uncertain there.")
    return EscapePrediction(
        d=ds, mean=means, std=np.array(stds), quantiles={q: np.array(v) for q, v in quants.items()},
        law=law, status="asymptotic", derivation=derivation, settings=settings, _cdf=cdf,
    )
