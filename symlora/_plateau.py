r"""Escape where the ODE stalls: plateaus below the threshold (``a ≠ 0``), and the finite-d law table.

When the ODE from small ``m`` converges to a fixed point with ``|m*|`` below
the threshold (renormalisation noise ``η²u²m V/(2B)`` balancing the gradient,
large ``η/B``), the finite-``d`` dynamics is the ODE plus noise of variance
``O(1/d)`` around a *stable* fixed point: leaving it is a large deviation
whose time grows like ``exp(c d)``.  So: no escape on any polynomial horizon,
plateau at ``|m| = m*``.  The largest ``η`` (at the model's ``B``) that
still escapes follows from the ODE alone, which depends on ``η/B`` only
(:func:`largest_escaping_lr`, a grid search over a symbolic ``η``).

:func:`finite_d_law` decides, for a table row, between the linear law, the
fluctuation-driven law at ``a = 0`` (:mod:`symlora._critical`) and a plateau.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ._critical import _no_escape, _not_derived, critical_prediction

__all__ = ["plateau_prediction", "largest_escaping_lr", "ode_plateau", "finite_d_law"]


def ode_plateau(model, mu, threshold, t_max):
    """The stable fixed point ``(m*, u*)`` the ODE from ``(1e-6, 0)`` settles on below ``threshold``, or None.

    Integrated to ``t_max``, then refined by a root search of the generated
    right-hand side; returns ``{"m", "u", "jacobian", "diffusion"}`` (numbers
    at the fixed point, ``m > 0`` by the symmetry ``(m, u) -> (-m, -u)``).
    """
    from scipy.optimize import fsolve

    from ._codegen import compile_ode

    res = model.integrate(mu, 1e-6, 0.0, t_max, t_eval=np.array([t_max]))
    start = np.array([float(np.ravel(res["m"])[-1]), float(np.ravel(res["u"])[-1])])
    if not np.all(np.isfinite(start)) or abs(start[0]) >= threshold:
        return None
    compiled = compile_ode(model.ode_system())
    point, info, ok, _ = fsolve(lambda y: compiled.rhs(y, mu), start, fprime=lambda y: compiled.jacobian(y, mu),
                                full_output=True, xtol=1e-13)
    if ok != 1 or abs(point[0]) >= threshold:
        return None
    point = point * np.sign(point[0])
    J = compiled.jacobian(point, mu)
    if np.max(np.linalg.eigvals(J).real) >= 0:
        return None  # not a stable plateau
    return {"m": float(point[0]), "u": float(point[1]), "jacobian": J,
            "diffusion": model.diffusion_function()(point[0], point[1], mu)}


def largest_escaping_lr(model, mu, threshold=0.5):
    """Largest ``η`` (model's ``B``, ``Δ``) for which the ODE from ``(1e-6, 0)`` reaches ``threshold``.

    In the time ``s = ηt`` the ODE depends on ``η`` and ``B`` only through
    ``η/B`` (the renormalisation term is ``(η/B)``-proportional), so the
    answer at another ``B`` is ``B`` times this one over ``model.batch``.
    One model with a symbolic ``η`` is integrated for a batch of ``η``:
    a geometric grid below the model's ``η`` (which must stall), then a
    linear grid inside the bracket found (relative width ~1 %).

    Returns
    -------
    (escapes, stalls) : tuple of float
        The ODE escapes at ``escapes`` and stalls at ``stalls`` (``escapes = 0``
        if it stalls on the whole grid down to ``η/100``).

    Raises
    ------
    ValueError
        If the model's own ``η`` escapes.
    """
    from ._model import LoRAModel

    eta = sp.Symbol("eta", positive=True)
    trial = LoRAModel(model.student, model.teacher, lr=eta, batch=model.batch, noise=model.noise)
    tau = float(model.tau(mu))
    top = float(model.lr)

    def escapes(etas):
        t_max = 6 * tau / etas.min() * math.log(threshold / 1e-6) + 100 / etas.min()
        result = trial.escape_time(mu, 1e-6, threshold=threshold, parameters={"eta": etas}, t_max=t_max,
                                   time_scale=tau / etas)
        return np.asarray(result.escaped)

    coarse = top * np.geomspace(1e-2, 1.0, 25)
    ok = escapes(coarse)
    if ok[-1]:
        raise ValueError(f"the ODE escapes at the model's own lr = {top:g}: nothing stalls")
    if not ok[0]:
        return 0.0, float(coarse[0])
    i = int(np.argmin(ok))  # first stalling point (the ODE escapes below a single η/B, see the notes)
    fine = np.linspace(coarse[i - 1], coarse[i], 21)
    ok_fine = escapes(fine)
    j = int(np.argmin(ok_fine)) if not ok_fine.all() else fine.size - 1
    return float(fine[j - 1]), float(fine[j])


def plateau_prediction(model, mu, ds, threshold, settings, result):
    """No escape where the ODE stalls below the threshold (module notes, plateaus).

    Around the plateau the linear noise approximation gives a Gaussian of
    covariance ``Σ/d`` with ``JΣ + ΣJᵀ + D = 0``; reaching the threshold is a
    large deviation whose rate is estimated (Gaussian tail, heuristic) by
    ``ΔΦ ≈ (threshold - m*)² / (2 Σ_mm)``: time ``~ exp(d ΔΦ)``.
    """
    from scipy.linalg import solve_continuous_lyapunov

    t_max = float(result.t_max)
    plateau = ode_plateau(model, mu, threshold, t_max)
    if plateau is None:
        return _not_derived(ds, settings, f"the ODE escape search was censored at t = {t_max:.4g} without a "
                            "stable plateau below the threshold; not derived.")
    sigma = solve_continuous_lyapunov(plateau["jacobian"], -plateau["diffusion"])
    barrier = (threshold - plateau["m"]) ** 2 / (2 * sigma[0, 0])
    lr_escapes, lr_stalls = largest_escaping_lr(model, mu, threshold)
    batch = settings["batch"]
    if lr_escapes > 0:
        short_bound = f"the ODE escapes for η/B < {lr_escapes / batch:.4g} (d → ∞)"
        long_bound = (f"escapes for η/B <= {lr_escapes / batch:.6g} and stalls from {lr_stalls / batch:.6g} on (grid "
                      "search of the ODE escape over η)")
    else:
        short_bound = f"the ODE stalls for every η/B searched, down to {lr_stalls / batch:.4g}"
        long_bound = (f"stalls for every η/B searched, down to {lr_stalls / batch:.6g} (a geometric grid from the "
                      "model's η/B down to 1 % of it); whether a smaller η/B escapes is not derived")
    settings = {**settings, "plateau": plateau["m"], "plateau_u": plateau["u"],
                "plateau_sd_times_sqrt_d": float(math.sqrt(sigma[0, 0])), "barrier_rate": float(barrier),
                "largest_escaping_lr": lr_escapes, "smallest_stalling_lr": lr_stalls}
    return _no_escape(
        ds, settings, f"no escape: plateau at |m| = {plateau['m']:.4g} (leaving it is a large deviation, "
        f"t ~ exp(d ΔΦ), ΔΦ ≈ {barrier:.2g} by a Gaussian estimate); {short_bound}",
        f"The ODE from a small overlap settles at the stable fixed point |m| = {plateau['m']:.6g}, "
        f"u = {plateau['u']:.6g} < threshold {threshold}: the renormalisation term η²u²mV/(2B) balances the "
        f"gradient. At finite d the runs fluctuate around it with sd ≈ {math.sqrt(sigma[0, 0]):.3g}/sqrt(d) "
        "(linear noise approximation: JΣ + ΣJᵀ + D = 0); reaching the threshold is a large deviation, time "
        f"~ exp(d ΔΦ) with ΔΦ ≈ (threshold - m*)²/(2Σ_mm) = {barrier:.4g} (Gaussian-tail estimate, heuristic): "
        "no escape on any polynomial horizon; simulations report such runs as censored (small d can still "
        "cross, and a large step can make SGD diverge). The ODE depends on η and B through η/B only: it "
        f"{long_bound}. This bound is a d → ∞ statement: just above it the plateau "
        "is shallow and finite-d runs can still cross the threshold (He3 at μ = 0.5, d = 2000, twice the bound: "
        "the ODE settles at |m| = 0.33, all of 12 SGD runs escaped).")


def finite_d_law(model, mu, threshold=0.5):
    """``(status, law)`` of the finite-d escape at ``mu`` without computing the distribution.

    The same decision as :func:`symlora.predict_escape` (linear law, fluctuation-driven law at ``a = 0``,
    exact or derived absence of escape, or "not derived"), for tables such as ``symlora reproduce``'s.
    """
    from ._prediction import _numbers

    numbers = _numbers(model)
    values = model.linearization().values(float(mu))
    settings = {"mu": float(mu), "threshold": threshold, "m0": None, **numbers}
    if abs(values["a"]) > max(values["a_error"], 1e-12):
        result = model.escape_time(float(mu), 1e-6, threshold=threshold)
        if not bool(np.all(result.escaped)):
            prediction = plateau_prediction(model, float(mu), np.array([], dtype=int), threshold,
                                            {**settings, "a": values["a"]}, result)
            return prediction.status, prediction.law
        return "asymptotic", f"log: t_esc ≈ (τ/(2η)) log d + O(1), τ/(2η) = {values['tau'] / (2 * numbers['lr']):.6g}"
    prediction = critical_prediction(model, float(mu), np.array([], dtype=int), threshold, None, settings)
    return prediction.status, prediction.law
