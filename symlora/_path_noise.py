r"""Order-``1/d`` corrections to the escape time along the deterministic escape path.

Let ``T(X)`` be the time the ``d → ∞`` ODE ``dX/dt = f(X)`` needs from the
state ``X = (m, u)`` to reach ``|m| = threshold``, so ``∇T·f = -1`` and
``T = 0`` on the threshold.  At finite ``d`` the statistics follow
``dX = f dt + (D/d)^{1/2} dW`` (:mod:`symlora._diffusion`).  Itô's formula
applied to ``T(X_t)`` gives, exactly,

.. math::

    τ = T(X_0) + \frac{1}{2d}\int_0^{τ} D : ∇^2 T \,dt + \int_0^{τ} ∇T\cdot (D/d)^{1/2} dW ,

so to first order in ``1/d`` (integrals along the deterministic path from
``X_0``) the escape time has mean ``T + C_1/d`` and an extra variance
``C_2/d`` with

.. math::

    C_1 = \tfrac12 \int D : H\, dt,\qquad C_2 = \int g^{\mathsf T} D g\, dt,\qquad
    g = ∇T,\ H = ∇^2 T .

``g`` and ``H`` are carried backwards along the path by the adjoint
equations ``ġ = -J^{\mathsf T} g`` and
``Ḣ = -J^{\mathsf T} H - H J - Σ_k g_k ∇^2 f_k`` (``J`` the Jacobian of
``f``), from their values on the threshold: ``g = (-1/f_m, 0)`` and, from
differentiating ``∇T·f = -1`` with ``H_uu = 0`` (``T`` vanishes on the line
``|m| = threshold``), ``H f = -J^{\mathsf T} g``.  ``C_1`` holds the drag of
the fluctuations transverse to the path (the curvature of the drift, e.g. the
renormalisation term ``∝ u² m`` averaged over the noise of ``u``) and the
Itô correction of the multiplicative noise along it (the ``m``-noise
``∝ u²``); ``C_2`` the spread that noise adds during the escape.

Near the saddle ``T ≈ (1/κ) log(L/ξ)`` with ``ξ = ℓ·X`` the unstable
coordinate (``ℓ = (1, λ_+/a)``, ``κ = ηλ_+``), and the fixed-point noise
``D_0`` makes both integrands diverge like ``ℓᵀD_0ℓ/(κξ²)``.  That part is
the random effective start of :mod:`symlora._prediction`, treated there
exactly (not perturbatively); it is subtracted here:

.. math::

    C_1 = \tfrac12\int \Big(D:H - \frac{ℓ^{\mathsf T} D_0 ℓ}{κ ξ^2}\Big) dt,\qquad
    C_2 = \int \Big(g^{\mathsf T} D g - \frac{ℓ^{\mathsf T} D_0 ℓ}{κ^2 ξ^2}\Big) dt .

What remains is finite and grows like ``log(1/ξ_0)`` (linear phase) plus a
constant (nonlinear phase).  Neglected: terms of order ``d^{-2}`` (and
``d^{-3/2}`` from the third moments of the noise).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

__all__ = ["escape_path_corrections", "drift_has_kink"]

#: Step of the central differences of the generated Jacobian that give ``∇² f``
#: (relative error ~ h² from truncation, ~ 1e-16/h from rounding).
_H = 1e-5


def drift_has_kink(model, mu) -> bool:
    """Whether ``∂²f/∂u²`` stays finite as ``u → 0`` at ``m = 0`` (a kink such as ReLU's ``u|u|``).

    For a smooth odd drift ``∇²f(0) = 0``, so the curvature at ``u = 10^-6`` is
    ``10^-3`` times that at ``u = 10^-3``; a kink keeps it of order one.  There
    the first-order expansion of the module notes is not uniform in ``ξ``
    (its transverse term grows like ``1/ξ``): the noise smooths the kink over
    the width of the ``u``-fluctuations, a non-perturbative effect of order
    ``d^{-1/2}`` that this module does not describe.
    """
    from ._codegen import compile_ode

    compiled = compile_ode(model.ode_system())

    def curvature(u, h):
        values = [np.asarray(compiled.rhs(np.array([0.0, u + k * h]), mu), dtype=float) for k in (-1, 0, 1)]
        return np.max(np.abs(values[0] - 2 * values[1] + values[2])) / h**2

    near, far = curvature(1e-6, 1e-7), curvature(1e-3, 1e-4)
    return bool(near > 0.1 * max(far, 1e-300) and near > 1e-8)


def escape_path_corrections(model, mu, threshold, eps, rtol=1e-7):
    r"""``(C_1, C_2)`` of the module notes for the paths starting at ``(ε, 0)``.

    Parameters
    ----------
    model : LoRAModel
        Aligned pre-training, rank 1, numeric ``lr``/``batch``/``noise``.
    mu : float
    threshold : float
    eps : array_like
        Starting overlaps ``0 < ε < threshold`` (``u_0 = 0``).
    rtol : float
        Relative tolerance of the forward and adjoint integrations.

    Returns
    -------
    C1, C2 : numpy.ndarray
        Mean shift ``C_1/d`` and extra variance ``C_2/d`` of the escape time.

    Notes
    -----
    Forward path and adjoint system are integrated by scipy's ``solve_ivp``
    directly: the adjoint system lives on one stored path, which the batched
    model integrator of :mod:`symlora._integrate` does not provide.

    Examples
    --------
    For the linear pair the only noise along the path is the fixed-point
    noise of ``u`` (subtracted) plus small state-dependent parts:

    >>> from symlora import LoRAModel
    >>> C1, C2 = escape_path_corrections(LoRAModel("x", lr=0.5), 0.3, 0.5, [1e-3])
    >>> bool(abs(C1[0]) < 50 and C2[0] > 0)
    True
    """
    from ._codegen import compile_ode

    compiled = compile_ode(model.ode_system())
    diffusion = model.diffusion_function()

    def f(X):
        return np.asarray(compiled.rhs(X, mu), dtype=float)

    def jac(X):
        return np.asarray(compiled.jacobian(X, mu), dtype=float)

    def jacobian_and_hessians(X):
        # J at X and ∂J_ki/∂X_j by central differences of the generated Jacobian: all five points in one call
        shifts = np.array([[0.0, _H, -_H, 0.0, 0.0], [0.0, 0.0, 0.0, _H, -_H]])
        Js = jac(X[:, None] + shifts)  # (2, 2, 5)
        out = np.stack([(Js[..., 1] - Js[..., 2]), (Js[..., 3] - Js[..., 4])], axis=-1) / (2 * _H)
        return Js[..., 0], 0.5 * (out + out.transpose(0, 2, 1))  # out[k, i, j] = ∂²f_k/∂X_i∂X_j

    def D(X):
        return np.asarray(diffusion(X[0], X[1], mu), dtype=float).reshape(2, 2)

    origin = np.zeros(2)
    J0 = jac(origin)
    values, vectors = np.linalg.eigh(0.5 * (J0 + J0.T))  # J is symmetric at the saddle
    kappa = values[-1]
    ell = vectors[:, -1] / vectors[0, -1]
    D0 = D(origin)
    outer = np.outer(ell, ell)

    def reached(t, X):
        return abs(X[0]) - threshold

    reached.terminal = True

    def adjoint(t, y, path):
        # g = -ℓ/(κξ) + k and H = ℓℓᵀ/(κξ²) + K: the linear-regime parts are removed analytically, so that
        # nothing cancels numerically (k = O(ξ), K = O(1) since f is odd: ∇²f(0) = 0, J - J0 = O(X²))
        X = path(t)
        k, K = y[:2], y[2:6].reshape(2, 2)
        J, hessians = jacobian_and_hessians(X)
        dJ = J - J0
        xi = ell @ X
        df = ell @ (f(X) - J0 @ X)
        g = -ell / (kappa * xi) + k
        source = (dJ.T @ outer + outer @ dJ) / (kappa * xi**2) - 2 * outer * df / (kappa * xi**3)
        dK = -J.T @ K - K @ J - source - np.einsum("k,kij->ij", g, hessians)
        dk = -J.T @ k + dJ.T @ ell / (kappa * xi) - ell * df / (kappa * xi**2)
        DX = D(X)
        extra_along = ell @ (DX - D0) @ ell / (kappa * xi) ** 2
        i1 = np.sum(DX * K) + extra_along * kappa  # D:H minus the fixed-point part ℓᵀD0ℓ/(κξ²)
        i2 = extra_along - 2 * (k @ DX @ ell) / (kappa * xi) + k @ DX @ k
        return np.concatenate([dk, dK.ravel(), [i1, i2]])

    C1, C2 = [], []
    for x in np.atleast_1d(np.asarray(eps, dtype=float)):
        forward = solve_ivp(lambda t, X: f(X), (0.0, np.inf), [x, 0.0], events=reached, rtol=rtol,
                            atol=1e-14, dense_output=True, method="DOP853")
        if not forward.t_events[0].size:
            C1.append(np.nan)
            C2.append(np.nan)
            continue
        t_end, X_end = forward.t_events[0][0], forward.y_events[0][0]
        f_end = f(X_end)
        g = np.array([-1.0 / f_end[0], 0.0])
        r = -jac(X_end).T @ g
        h_mu = r[1] / f_end[0]
        H = np.array([[(r[0] - h_mu * f_end[1]) / f_end[0], h_mu], [h_mu, 0.0]])
        xi = ell @ X_end
        start = np.concatenate([g + ell / (kappa * xi), (H - outer / (kappa * xi**2)).ravel(), [0.0, 0.0]])
        backward = solve_ivp(adjoint, (t_end, 0.0), start, rtol=rtol, atol=1e-12, method="RK45",
                             args=(forward.sol,))
        # integrated from t_end down to 0: the accumulated integrals carry a minus sign
        C1.append(-0.5 * backward.y[6, -1])
        C2.append(-backward.y[7, -1])
    return np.array(C1), np.array(C2)
