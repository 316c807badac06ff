r"""Escape where the linear law fails: ``a(μ) = 0`` and ODE plateaus (aligned, rank 1).

Critical ``μ`` (``a = 0``)
--------------------------
At ``u = 0`` Stein's lemma gives ``E[G ζ] = m (μA_λ + A_ν) = -a m`` for every
``m`` (``λ = μν`` does not involve ``v``), so with ``a = 0`` the line
``u = 0`` is invariant for the drift and the ODE from ``u_0 = 0`` never
moves.  Three regimes follow from drift + diffusion (:mod:`symlora._diffusion`):

1. ``V = E[g²] = 0`` at ``u = 0`` (``G = 0`` almost surely and ``Δ = 0``, e.g.
   the pre-trained student already fits the teacher, or ``He2`` at ``μ = 0``
   where ``σ'(0) = 0``): every per-sample gradient vanishes at ``u = 0``, so
   SGD started at ``u_0 = 0`` never moves: **no escape, exactly**; ``|m|``
   stays at ``|m_0|``.
2. ``b > 0``, ``V > 0``: ``u`` is a fast Ornstein–Uhlenbeck variable with
   damping ``η b(m)``, ``b(m) = b - κ_0 m²``, and noise ``D_uu(m) = η² V(m)/B``,
   ``V(m) = (1-m²)V + m² W`` (``W = E[g² ν²]`` at ``u = 0``), so
   ``⟨u²⟩ = η V(m) / (2 B b(m) d)``.  Expanding the drift of ``m`` to second
   order in ``u`` (``F = μA_λ + A_ν``, ``κ_0 = -(2μ∂_Q F + ∂_R F)`` at the fixed point)
   and averaging over ``u``:

   .. math::

       \frac{dm}{dt} = \frac{1}{d} A(m),\qquad
       A(m) = \frac{η^2 V(m)}{2 B\, b(m)}\, m \left[(1-m^2) κ_0 - \frac{η V}{2B}\right].

   The ``m``-noise (``D_mm = η² u² W/B`` near ``m = 0``) shifts the start as in
   the linear case: ``ξ_eff ~ N(m_0, ηW/(2Bκ)/d)``, ``κ = κ_0 - ηV/(2B)``.
   Then ``t_esc = d · H(|ξ_eff|)``, ``H(ε) = ∫_ε^{m_1} dm/A(m)`` with
   ``m_1 = min(threshold, sqrt(b/κ_0))`` (past ``sqrt(b/κ_0)`` the ``u``
   direction is linearly unstable and the rest takes ``O(log d)``), so
   ``t_esc ≈ (bB/(η²Vκ)) d log d + O(d)``: the law ``C d^p (log d)^q`` with
   ``p = q = 1``; for He3 at μc this is checked against the two-dimensional
   SDE of drift + diffusion over ``d = 10³…3·10⁵`` (``_SDE_CHECKED``,
   docs/theory.md §5.3).  If ``κ <= 0`` the averaged drift pulls ``m`` back to 0 and
   ``|m|`` stays ``O(d^{-1/2})``: no escape; if the bracket vanishes at
   ``m* < m_1``, ``m`` stalls at the plateau ``m*``.
3. ``b <= 0``, ``V > 0``: not derived here (reported as such).

Plateaus (``a ≠ 0``) are in :mod:`symlora._plateau`.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from . import _symbols as S
from ._expectation import gaussian_expectation, is_exact

__all__ = ["critical_prediction", "critical_constants", "u_excess_kurtosis"]


def _value(expr):
    from ._asymptotics import _high_precision

    return _high_precision(sp.sympify(expr), 25)[0]


def critical_constants(model, mu) -> dict:
    """``V``, ``W``, ``b``, ``κ_0`` of the module notes at ``mu`` (numbers).

    Raises
    ------
    ValueError
        If the expectations have no closed form (the derivatives in ``Q``,
        ``R`` at the degenerate fixed-point covariance are then not evaluated).
    """
    mu_s = sp.nsimplify(mu)
    nu = S.nu
    sigma, teacher = model.student, model.teacher
    slope = sigma.derivative_at(mu_s * nu)
    e0 = sigma(mu_s * nu) - teacher(nu)
    V = gaussian_expectation((e0**2 + model.noise) * slope**2, [nu], [[1]])
    W = gaussian_expectation((e0**2 + model.noise) * slope**2 * nu**2, [nu], [[1]])
    b = gaussian_expectation(slope**2 + e0 * sigma.derivative_at(mu_s * nu, 2), [nu], [[1]])
    if is_exact(V) and sp.simplify(V) == 0:
        # no gradient noise and no gradient at u = 0: the other constants are not needed
        return {"V": 0.0, "W": 0.0, "b": _value(b), "kappa0": float("nan"), "kick_kurtosis": float("nan")}
    # E[(g ζ)^4] = 3 E[g^4] with g = (e0 - sqrt(Δ) ξ) σ', ζ and ξ independent standard normals at u = 0
    fourth = gaussian_expectation((e0**4 + 6 * model.noise * e0**2 + 3 * model.noise**2) * slope**4, [nu], [[1]])
    exps = model.expectations()
    F = S.mu * exps["A_lambda"] + exps["A_nu"]
    if not (is_exact(F) and is_exact(V) and is_exact(W) and is_exact(fourth)):
        raise ValueError("the critical-mu constants need closed-form expectations (quadrature nodes found)")
    at = {S.Q: mu_s**2, S.R: mu_s, S.mu: mu_s}
    kappa0 = -(2 * S.mu * sp.diff(F, S.Q) + sp.diff(F, S.R))
    try:
        kappa0_value = _value(kappa0.subs(at))
    except (TypeError, ValueError):
        # closed forms such as sqrt(Q - R²) are only continuous at Q = R²: take the one-sided limit
        kappa0_value = _value(sp.limit(kappa0.subs({S.Q: S.P + S.R**2}).subs({S.R: mu_s, S.mu: mu_s}), S.P, 0, "+"))
    V_value = _value(V)
    return {"V": V_value, "W": _value(W), "b": _value(b), "kappa0": kappa0_value,
            "kick_kurtosis": 3 * _value(fourth) / V_value**2 - 3}


def u_excess_kurtosis(constants, lr, batch, d):
    """Excess kurtosis of the stationary ``u`` of SGD at ``m = 0`` to leading order: ``κ₄ η b / (B d)``.

    ``u`` is an autoregression with per-step factor ``1 - ηb/d`` driven by
    the batch mean of ``g ζ``, whose excess kurtosis is ``κ₄/B``
    (``κ₄ = constants["kick_kurtosis"]``, one sample); the stationary value of
    an autoregression with factor ``ρ`` carries the fraction
    ``(1 - ρ²)/(1 + ρ²) ≈ ηb/d`` of it.  The drift-diffusion description of
    :func:`critical_prediction` needs this to be small; nonlinear drift only
    adds to it (He3 at μc, η = 0.5, d = 1000: 18.7 from this formula, about
    100 measured in SGD).
    """
    return constants["kick_kurtosis"] * lr * constants["b"] / (batch * np.asarray(d, dtype=float))


#: Cases whose d log d law was checked against the two-dimensional SDE of the drift and diffusion
#: (benchmarks/critical_he3_diffusion.py, stored in notebooks/data/critical_he3_diffusion.csv and re-fitted by
#: tests/test_critical_law.py; docs/theory.md §5.3): (student, teacher, η, B, Δ) -> range of d.
_SDE_CHECKED = {
    ("x**3 - 3*x", "x**3 - 3*x", 0.5, 1.0, 0.0): "d = 10³…3·10⁵ (slope of t/d in log d 2.3 % below the prefactor)",
    ("x**3 - 3*x", "x**3 - 3*x", 1.0, 1.0, 0.0): "d = 10⁴…3·10⁵ (slope of t/d in log d 3 % above the prefactor; "
                                                 "below d = 10⁴ the finite-d terms are still large)",
}


def _evidence(model, eta, B):
    """What simulation says about the law of :func:`critical_prediction` for ``model`` (for its label)."""
    key = (str(model.student.expr), str(model.teacher.expr), float(eta), float(B), float(model.noise))
    span = _SDE_CHECKED.get(key) if model.pretraining == "aligned" and model.rank == 1 else None
    if span is None:
        return ("derived from drift + diffusion by averaging over the fast u; not simulated for this pair and "
                "η/B: a conjecture")
    return (f"derived from drift + diffusion by averaging over the fast u; verified against the drift-diffusion "
            f"SDE over {span}; SGD agrees with that "
            "SDE within 2.5 s.e. where its noise is near Gaussian (η = 0.5, d = 3000 and 10⁴), but SGD over two "
            "decades of d is not run: for SGD the law is a conjecture")


def _no_escape(ds, settings, law, derivation, status="no escape"):
    from ._prediction import _QUANTILES, EscapePrediction

    inf = np.full(ds.shape, np.inf)
    return EscapePrediction(d=ds, mean=inf, std=np.full(ds.shape, np.nan), quantiles={q: inf for q in _QUANTILES},
                            law=law, status=status, derivation=derivation, settings=settings)


def _not_derived(ds, settings, why):
    from ._prediction import _QUANTILES, EscapePrediction

    nan = np.full(ds.shape, np.nan)
    return EscapePrediction(d=ds, mean=nan, std=nan, quantiles={q: nan for q in _QUANTILES},
                            law="not derived", status="not derived", derivation=why, settings=settings)


def critical_prediction(model, mu, ds, threshold, m0, settings):
    """The escape-time distribution at a zero of ``a(μ)`` (module notes, regimes 1-3)."""
    from ._prediction import _QUANTILES, EscapePrediction

    eta, B = settings["lr"], settings["batch"]
    head = (f"a({mu:.12g}) = 0: the line u = 0 is invariant for the d → ∞ drift (Stein: E[Gζ] = -a m at u = 0), "
            "so the ODE from u0 = 0 never escapes; finite-d fluctuations decide. ")
    try:
        c = critical_constants(model, mu)
    except ValueError as exc:
        return _not_derived(ds, settings, head + str(exc) + ".")
    settings = {**settings, **c}
    V, W, b, kappa0 = c["V"], c["W"], c["b"], c["kappa0"]
    if V <= 1e-14 * max(1.0, abs(W)):
        return _no_escape(ds, settings, "no escape (exact): every SGD gradient vanishes at u = 0",
                          head + "At u = 0, G = 0 almost surely and there is no label noise (V = E[g²] = 0): every "
                          "per-sample gradient of u and v vanishes, so SGD from u0 = 0 never moves and |m| stays at "
                          "|m0| ~ d^(-1/2). Exact.", status="exact")
    if b <= 0:
        return _not_derived(ds, settings, head + f"b = {b:.6g} <= 0: u is unstable on its own; the finite-d law "
                            "of this regime is not derived here.")
    kappa = kappa0 - eta * V / (2 * B)
    settings.update({"kappa": kappa})
    if kappa <= 0:
        return _no_escape(
            ds, settings, f"no escape: |m| stays O(d^-1/2) (averaged drift restoring, κ = {kappa:.6g} <= 0)",
            head + f"u is an Ornstein–Uhlenbeck variable with <u²> = ηV/(2bBd) (V = {V:.6g}, b = {b:.6g}); "
            f"averaged over it dm/dt = η<u²> κ m with κ = κ0 - ηV/(2B) = {kappa:.6g} <= 0: the overlap is pulled "
            "back to 0 and fluctuates at O(d^(-1/2)); reaching the threshold is a large deviation. Averaging "
            "argument (heuristic in its rigour), plateau at |m| ~ d^(-1/2).")
    m_b = math.sqrt(b / kappa0) if kappa0 > 0 else math.inf
    m_end = min(threshold, m_b)
    grid = np.linspace(0.0, m_end, 4001)[1:]
    bracket = (1 - grid**2) * kappa0 - eta * V / (2 * B)
    if np.any(bracket <= 0):
        m_star = float(grid[np.argmax(bracket <= 0)])
        settings["plateau"] = m_star
        return _no_escape(ds, settings, f"no escape: plateau at |m| = {m_star:.4g}",
                          head + f"The averaged drift of m vanishes at |m| = {m_star:.6g} below the threshold "
                          "((1-m²)κ0 = ηV/(2B)): m stalls there.")

    prefactor = b * B / (eta**2 * V * kappa)
    law = f"power: t_esc ≈ {prefactor:.6g} d log d + O(d)  (p = 1, q = 1); " + _evidence(model, eta, B)
    kurtosis = u_excess_kurtosis(c, eta, B, ds)
    settings.update({"m_end": m_end, "prefactor": prefactor, "u_excess_kurtosis": kurtosis})
    # below this d the summed per-step noise of u is far from Gaussian and SGD leaves the drift-diffusion picture
    gaussian_from = c["kick_kurtosis"] * eta * b / B
    means, stds, quants, cdfs, notes, invalid = [], [], {q: [] for q in _QUANTILES}, {}, [], []
    for dim in ds:
        mean, std = adiabatic_first_passage(model, mu, int(dim), m_end, m0)
        means.append(mean)
        stds.append(std)
        shape = _log_shape(mean, std)
        for q in _QUANTILES:
            quants[q].append(shape.quantile(q))
        cdfs[int(dim)] = shape
        if math.isnan(mean):
            invalid.append(int(dim))
        elif not math.isfinite(mean):
            notes.append(int(dim))

    def cdf(t, dim):
        return cdfs[dim].cdf(t)

    derivation = head + (
        f"u is a fast variable (damping η b(m), b(m) = b - κ0 m², b = {b:.6g}, κ0 = {kappa0:.6g}; noise "
        f"D_uu = η²V/B, V = {V:.6g}) with <u²> = ηV(m)/(2B b(m) d); averaged over it, m is a slow diffusion with "
        "drift η<u²> m [(1-m²)κ0 - ηV/(2B)] and diffusion η²<u²>W/B (W = E[g²ν²] = "
        f"{W:.6g}); from m0 ~ d^(-1/2): t_esc ≈ (bB/(η²Vκ)) d log d (κ = κ0 - ηV/(2B) = {kappa:.6g}). "
        "Numbers: the same slow diffusion at the given d, with the u-average taken over the exact stationary "
        "density of u from the generated drift and diffusion (finite-d corrections of order <u²> kept), and "
        "the mean and second moment of the first-passage time of |m| to the threshold from the 1-D "
        "backward equation (reflecting at m = 0), averaged over m0; quantiles from the leading-order shape "
        "T = α + β(-log|Z|) matched to that mean and standard deviation. Adiabatic averaging: heuristic beyond "
        "leading order; verified by simulation where stated."
        + f" Validity: the picture is that of drift + Gaussian diffusion, which SGD reaches once its per-step " \
        f"noise has summed to a Gaussian over one relaxation time of u: the excess kurtosis of the stationary u " \
        f"is about κ4 η b/(B d) = {gaussian_from:.4g}/d (κ4 = {c['kick_kurtosis']:.6g}, that of one sample's g ζ), " \
        "(measured for He3 at μc, η = 0.5: SGD is 22 % slower than the drift-diffusion SDE where this is 19, " \
        "d = 1000, and within 2.5 standard errors of it (about 6 % faster) where it is 6 or less, d = 3000, 10⁴)" \
        + (f"; at d = {[int(x) for x in np.asarray(ds)[kurtosis > 10]]} it exceeds 10 and SGD may differ from "
           "these numbers" if np.any(kurtosis > 10) else "") + "."
        + (f" At d = {notes} the averaged drift has a barrier whose crossing time overflows: no escape on any "
           "practical horizon." if notes else "")
        + (f" At d = {invalid} u is not confined near the fixed point (the adiabatic averaging does not apply): "
           "not derived there (NaN)." if invalid else "")
    )
    return EscapePrediction(d=ds, mean=np.array(means), std=np.array(stds),
                            quantiles={q: np.array(v) for q, v in quants.items()}, law=law, status="heuristic",
                            derivation=derivation, settings=settings, _cdf=cdf)


class _log_shape:
    """``T = α + β(-log|Z|)``, ``Z ~ N(0, 1)``: the leading-order shape of a noise-started escape."""

    _MEAN = (np.euler_gamma + math.log(2)) / 2  # E[-log|Z|]
    _STD = math.pi / math.sqrt(8)  # sd of log|Z|

    def __init__(self, mean, std):
        self.mean = mean
        self.ok = math.isfinite(mean) and math.isfinite(std) and std > 0
        self.beta = std / self._STD if self.ok else float("nan")
        self.alpha = mean - self.beta * self._MEAN if self.ok else float("nan")

    def cdf(self, t):
        if not self.ok:
            return np.zeros_like(np.asarray(t, dtype=float))
        from scipy.special import ndtr

        z = np.exp(-(np.asarray(t, dtype=float) - self.alpha) / self.beta)
        return 2 * (1 - ndtr(z))

    def quantile(self, q):
        if not self.ok:
            return float("nan") if math.isnan(self.mean) else float("inf")
        from scipy.special import ndtri

        z = ndtri(1 - q / 2)
        return float(self.alpha - self.beta * math.log(z))


def _stationary_average(drift, diffusion, m, d, mu, scale, n_u=401, passes=2):
    """Averages of ``f_m``, ``D_mm`` over the stationary density of ``u`` at fixed ``m`` (vectorised in ``m``).

    The density of a one-dimensional diffusion with drift ``f_u`` and diffusion
    ``D_uu/d`` is ``p(u) ∝ exp(∫ 2 d f_u/D_uu du) / D_uu``.
    """
    grid = np.linspace(-1.0, 1.0, n_u)
    u = scale[:, None] * 12 * grid[None, :]
    mm = np.broadcast_to(m[:, None], u.shape)
    f = drift(np.array([mm, u]), mu)
    D = diffusion(mm, u, mu)
    integrand = 2 * d * f[1] / D[1, 1]
    du = np.diff(u, axis=1)
    phi = np.concatenate([np.zeros((u.shape[0], 1)),
                          np.cumsum((integrand[:, 1:] + integrand[:, :-1]) / 2 * du, axis=1)], axis=1)
    # keep the well of u = 0 only: beyond the first rise of the potential -φ on either side lies another
    # basin (the escaped state), which the quasi-stationary density does not include
    centre = n_u // 2
    rising_right = np.diff(phi[:, centre:], axis=1) > 0
    rising_left = np.diff(phi[:, centre::-1], axis=1) > 0
    right = np.where(rising_right.any(axis=1), np.argmax(rising_right, axis=1), n_u - 1 - centre)
    left = np.where(rising_left.any(axis=1), np.argmax(rising_left, axis=1), centre)
    index = np.arange(n_u)[None, :]
    inside = (index <= centre + right[:, None]) & (index >= centre - left[:, None])
    phi = np.where(inside, phi, -np.inf)
    phi -= phi.max(axis=1, keepdims=True)
    p = np.exp(phi) / D[1, 1]
    w = p * np.gradient(u, axis=1)
    w /= w.sum(axis=1, keepdims=True)
    if passes > 1:
        # second pass on a window fitted to the density actually found
        mean_u = (w * u).sum(axis=1)
        sd = np.sqrt(np.maximum((w * (u - mean_u[:, None]) ** 2).sum(axis=1), 1e-300))
        return _stationary_average(drift, diffusion, m, d, mu, sd, n_u, passes - 1)
    return (w * f[0]).sum(axis=1), (w * D[0, 0]).sum(axis=1), _exit_rate(phi, D[1, 1] / (2 * d), u, inside)


def _exit_rate(phi, spread, u, inside, deepest=300.0):
    """``1/E[exit time]`` of ``u`` from ``u = 0`` out of the kept well (rows: values of ``m``).

    For ``du = a dt + sqrt(2 D̃) dW`` with ``φ' = a/D̃`` the mean exit time
    from ``(L, R)`` is ``T(x) = ∫_L^x e^{-φ(y)} (C - M(y)) dy`` with
    ``M(y) = ∫_L^y e^{φ}/D̃`` and ``C`` fixed by ``T(R) = 0`` (Kramers' problem
    solved exactly on the grid).  Wells deeper than ``deepest`` (in ``φ``)
    give 0: their exit takes longer than ``e^300`` relaxation times.
    """
    rates = np.zeros(phi.shape[0])
    for row in range(phi.shape[0]):
        keep = inside[row]
        p, y, D = phi[row, keep], u[row, keep], spread[row, keep]
        depth = -min(p[0], p[-1])
        if p.size < 3 or depth > deepest:
            continue
        psi, dy = np.exp(-p), np.diff(y)
        M = np.concatenate([[0.0], np.cumsum(0.5 * (np.exp(p[1:]) / D[1:] + np.exp(p[:-1]) / D[:-1]) * dy)])
        def integral(values):
            return np.concatenate([[0.0], np.cumsum(0.5 * (values[1:] + values[:-1]) * dy)])
        Ipsi, IpsiM = integral(psi), integral(psi * M)
        C = IpsiM[-1] / Ipsi[-1]
        start = int(np.argmin(np.abs(y)))
        T = C * Ipsi[start] - IpsiM[start]
        rates[row] = 1.0 / T if T > 0 else np.inf
    return rates


def _bernoulli(x):
    """``x/(e^x - 1)`` (1 at 0), the exponentially fitted flux weight of a steep potential."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-10
    with np.errstate(over="ignore"):
        return np.where(small, 1.0 - x / 2, x / np.where(small, 1.0, np.expm1(x)))


def _killed_first_passage(m, Dh, jump, rate, source):
    """Solve ``D_h T'' + f T' - k T = -source`` on the grid ``m``, ``T'(0) = 0``, ``T(m[-1]) = 0``.

    ``jump`` is ``∫ f/D_h`` over each interval.  The potential is steep (its
    total change is ``O(d)``), so fluxes use the Scharfetter–Gummel weights
    (exact for ``f/D_h`` constant on an interval), which keep the scheme
    monotone at any ``d``.
    """
    from scipy.linalg import solve_banded

    n, h = m.size, np.diff(m)
    right = Dh[:-1] * _bernoulli(-jump) / h  # coefficient of T[i+1] - T[i] in the flux out of node i
    left = Dh[1:] * _bernoulli(jump) / h  # coefficient of T[i] - T[i-1] at node i
    cell = np.concatenate([[h[0] / 2], (h[1:] + h[:-1]) / 2])
    upper, diag, lower = np.zeros(n), np.zeros(n), np.zeros(n)
    upper[1:] = right / cell  # A[i, i+1]
    diag[:-1] = -right / cell - rate[:-1]
    diag[1:-1] -= left[:-1] / cell[1:]
    lower[:-2] = left[:-1] / cell[1:]  # A[i, i-1], stored at column i-1
    diag[-1], upper_last = 1.0, 0.0
    rhs = -np.asarray(source, dtype=float).copy()
    rhs[-1] = upper_last
    lower[-2] = 0.0  # the absorbing row has no lower entry
    return solve_banded((1, 1), np.array([upper, diag, lower]), rhs)


def adiabatic_first_passage(model, mu, d, m_end, m0=None):
    """Mean and standard deviation of the escape time of the averaged slow diffusion of ``|m|``.

    Drift ``⟨f_m⟩`` and diffusion ``⟨D_mm⟩/d`` of ``m`` averaged over the
    stationary ``u``; where the well of ``u`` is shallow, ``u`` leaves it at
    the Kramers rate ``k(m)`` (:func:`_exit_rate`) and the escape then
    completes on the fast time scale, so ``k`` kills the slow process.
    First-passage moments from ``L T_1 - k T_1 = -1``, ``L T_2 - k T_2 = -2 T_1``,
    ``L = D_h ∂² + ⟨f_m⟩ ∂``, ``D_h = ⟨D_mm⟩/(2d)``, with ``T(m_end) = 0`` and
    reflection at ``m = 0``.  The start ``m0`` (default: ``N(0, 1/d)``, the
    uniform ``v_0``) is averaged over.
    """
    from ._codegen import compile_ode

    drift = compile_ode(model.ode_system()).rhs
    diffusion = model.diffusion_function()
    eta, B = float(model.lr), float(model.batch)
    c = critical_constants(model, mu)
    spread = 1 / math.sqrt(d)
    m = np.unique(np.concatenate([np.linspace(0.0, m_end, 600), np.geomspace(1e-3 * spread, m_end, 600)]))
    bm = np.maximum(c["b"] - c["kappa0"] * m**2, 1e-3 * c["b"])
    scale = np.sqrt(eta * ((1 - m**2) * c["V"] + m**2 * c["W"]) / (2 * B * bm * d))
    with np.errstate(all="ignore"):
        f_m, D_mm, exit_rate = _stationary_average(drift, diffusion, m, d, mu, scale)
    # the quasi-stationary average needs u to stay in its well for many relaxation times (here 100); where it
    # leaves sooner, or the well has gone, the escape proceeds on the fast scale: that point is absorbing.
    # Between, the exit rate kills the slow diffusion.
    relaxation = eta * np.maximum(c["b"] - c["kappa0"] * m**2, 0.0)
    gone = ~(np.isfinite(f_m) & np.isfinite(D_mm) & (exit_rate < 0.01 * relaxation))
    if gone.any():
        cut = int(np.argmax(gone))
        if m[cut] < 0.5 * m_end:
            return float("nan"), float("nan")  # u is not a confined fast variable at this d
        m, f_m, D_mm, exit_rate = m[:cut], f_m[:cut], D_mm[:cut], exit_rate[:cut]
        m_end = float(m[-1])
    Dh = D_mm / (2 * d)
    Dh[0] = Dh[1]
    ratio = f_m / Dh
    jump = (ratio[1:] + ratio[:-1]) / 2 * np.diff(m)
    if not np.all(np.isfinite(jump)):
        return float("inf"), float("nan")
    T1 = _killed_first_passage(m, Dh, jump, exit_rate, np.ones_like(m))
    T2 = _killed_first_passage(m, Dh, jump, exit_rate, 2 * T1)
    if not (np.all(np.isfinite(T1)) and np.all(np.isfinite(T2))):
        return float("inf"), float("nan")
    # average over the start: |m0| with m0 ~ N(0, 1/d) (or N(m0, 0) given)
    if m0 is not None:
        t1, t2 = np.interp(abs(m0), m, T1), np.interp(abs(m0), m, T2)
    else:
        z = np.linspace(0, 10, 2001)
        w = np.exp(-z * z / 2)
        w /= w.sum()
        x = np.minimum(z * spread, m_end)
        t1, t2 = float(np.sum(w * np.interp(x, m, T1))), float(np.sum(w * np.interp(x, m, T2)))
    return float(t1), float(math.sqrt(max(t2 - t1 * t1, 0.0)))
