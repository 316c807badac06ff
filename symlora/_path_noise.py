r"""The escape path of the ``d → ∞`` ODE and the noise along it, to first order in ``1/d``.

Let ``T(X)`` be the time the ODE ``dX/dt = f(X)`` needs from the state
``X = (m, u)`` to reach ``|m| = threshold`` (``∇T·f = -1``, ``T = 0`` on the
threshold).  At finite ``d`` the statistics follow
``dX = f dt + (D/d)^{1/2} dW`` (:mod:`symlora._diffusion`), and Itô's formula
gives, exactly,

.. math::

    dT(X_t) = \Big(-1 + \frac{c_1(X_t)}{d}\Big) dt + \sqrt{\frac{c_2(X_t)}{d}}\, dW,
    \qquad c_1 = \tfrac12 D : ∇^2 T,\quad c_2 = ∇T^{\mathsf T} D ∇T .

:mod:`symlora._escape_diffusion` closes this equation by evaluating ``c_1``,
``c_2`` on the deterministic path at the same time-to-go (exact to first
order in ``1/d``; the transverse fluctuations are averaged, the one along
the path is kept whole).  This module computes them.

``g = ∇T`` and ``H = ∇^2 T`` are carried backwards along the path by the
adjoint equations ``ġ = -J^{\mathsf T} g`` and
``Ḣ = -J^{\mathsf T} H - H J - Σ_k g_k ∇^2 f_k`` (``J`` the Jacobian of
``f``), from their values on the threshold: ``g = (-1/f_m, 0)`` and, from
differentiating ``∇T·f = -1`` with ``H_uu = 0`` (``T`` vanishes on the line
``|m| = threshold``), ``H f = -J^{\mathsf T} g``.  ``c_1`` holds the drag of
the fluctuations transverse to the path on a curved drift (e.g. the
renormalisation term ``∝ u² m`` averaged over the noise of ``u``) and the
Itô correction of the multiplicative ``m``-noise ``∝ u²``; ``c_2`` the
spread the noise adds.

Near the saddle ``T ≈ (1/κ) log(L/ξ)`` with ``ξ = ℓ·X`` the unstable
coordinate (``ℓ = (1, λ_+/a)``, ``κ = ηλ_+``): ``c_1`` and ``c_2`` diverge like
``q/(2κξ²)`` and ``q/(κξ)²`` with ``q = ℓ^{\mathsf T} D_0 ℓ`` the fixed-point
noise.  These parts are removed analytically (``g = -ℓ/(κξ) + k``,
``H = ℓℓ^{\mathsf T}/(κξ²) + K``), so that nothing cancels numerically, and the
profile stores the finite remainders

.. math::

    i_1 = D : H - \frac{q}{κ ξ^2},\qquad i_2 = g^{\mathsf T} D g - \frac{q}{(κξ)^2}

(constant in the linear regime).  Their integrals along the path are the
mean shift ``C_1/d`` (``C_1 = ½∫ i_1 dt``) and extra variance ``C_2/d``
(``C_2 = ∫ i_2 dt``) of a first-order expansion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

__all__ = ["EscapePath", "escape_path", "drift_has_kink", "saddle_directions"]

#: Step of the central differences of the generated Jacobian that give ``∇² f``
#: (relative error ~ h² from truncation, ~ 1e-16/h from rounding).
_H = 1e-5
#: Unstable coordinate at which the path starts (on the unstable manifold).  The
#: adjoint loses accuracy like 1/ξ² (its growing mode); below this the remainders
#: i1, i2 are constant to O(ξ²) (f is odd: ∇²f(0) = 0, J - J0 = O(X²)).
_XI_START = 1e-3


def drift_has_kink(model, mu) -> bool:
    """Whether ``∂²f/∂u²`` stays finite as ``u → 0`` at ``m = 0`` (a kink such as ReLU's ``u|u|``).

    For a smooth odd drift ``∇²f(0) = 0``, so the curvature at ``u = 10^-6`` is
    ``10^-3`` times that at ``u = 10^-3``; a kink keeps it of order one.  There
    the first-order expansion of the module notes is not uniform in ``ξ``
    (the transverse term of ``H`` grows like ``1/ξ``): the noise smooths the
    kink over the width of the ``u``-fluctuations, a non-perturbative effect
    of order ``d^{-1/2}`` that this module does not describe.
    """
    from ._codegen import compile_ode

    compiled = compile_ode(model.ode_system())

    def curvature(u, h):
        values = [np.asarray(compiled.rhs(np.array([0.0, u + k * h]), mu), dtype=float) for k in (-1, 0, 1)]
        return np.max(np.abs(values[0] - 2 * values[1] + values[2])) / h**2

    near, far = curvature(1e-6, 1e-7), curvature(1e-3, 1e-4)
    return bool(near > 0.1 * max(far, 1e-300) and near > 1e-8)


def _numeric_model(model, mu):
    """Drift, its Jacobian and the diffusion matrix of ``model`` at ``mu`` as functions of ``X = (m, u)``."""
    from ._codegen import compile_ode

    compiled = compile_ode(model.ode_system())
    diffusion = model.diffusion_function()

    def f(X):
        return np.asarray(compiled.rhs(X, mu), dtype=float)

    def jac(X):
        return np.asarray(compiled.jacobian(X, mu), dtype=float)

    def D(X):
        X = np.asarray(X, dtype=float)
        return np.asarray(diffusion(X[0], X[1], mu), dtype=float).reshape((2, 2) + X.shape[1:])

    return f, jac, D


def saddle_directions(jacobian_at_saddle):
    """``(κ, ℓ, κ_-, e_-)``: unstable rate, left unstable vector with ``ℓ_m = 1``, stable rate and unit vector.

    The Jacobian at ``m = u = 0`` is symmetric (``[[0, ηa], [ηa, -ηb]]``), so its
    eigenvectors are orthogonal and left and right ones coincide.
    """
    J0 = np.asarray(jacobian_at_saddle, dtype=float)
    values, vectors = np.linalg.eigh(0.5 * (J0 + J0.T))
    return values[-1], vectors[:, -1] / vectors[0, -1], values[0], vectors[:, 0]


@dataclass(frozen=True)
class EscapePath:
    """The deterministic escape path and the first-order noise along it (module notes).

    Attributes
    ----------
    kappa : float
        ``κ = ηλ_+``, the growth rate at the saddle.
    ell : numpy.ndarray
        ``ℓ``, the unstable coordinate is ``ξ = ℓ·X``.
    q : float
        ``ℓᵀ D_0 ℓ``, the fixed-point noise along ``ℓ``.
    L : float
        ``y = L e^{-κT}`` equals ``ξ`` near the saddle and ``L`` on the threshold.
    y, xi, i1, i2, time_to_go : numpy.ndarray
        Along the path, increasing in ``y``: the coordinate ``y``, ``ξ = ℓ·X``,
        the remainders ``i_1``, ``i_2`` and ``T``.
    C1, C2 : float
        ``½∫ i_1 dt`` and ``∫ i_2 dt`` from ``ξ = 10^{-3}`` to the threshold.
    """

    kappa: float
    ell: np.ndarray
    q: float
    L: float
    y: np.ndarray
    xi: np.ndarray
    i1: np.ndarray
    i2: np.ndarray
    time_to_go: np.ndarray
    C1: float
    C2: float


def escape_path(model, mu, threshold, rtol=1e-8, with_noise=True, points=2000):
    r"""The escape path from the saddle and the remainders ``i_1``, ``i_2`` along it.

    Parameters
    ----------
    model : LoRAModel
        Aligned pre-training, rank 1, numeric ``lr``/``batch``/``noise``.
    mu, threshold : float
    rtol : float
        Relative tolerance of the forward and adjoint integrations.
    with_noise : bool
        ``False``: ``i_1 = i_2 = 0`` (only the fixed-point noise, e.g. for a
        drift with a kink, :func:`drift_has_kink`).
    points : int
        Number of stored points along the path.

    Returns
    -------
    EscapePath or None
        ``None`` if the path does not reach the threshold.

    Notes
    -----
    The path starts on the unstable manifold at ``ξ = 10^{-3}``; forward path
    and adjoint system are integrated by scipy's ``solve_ivp`` (the adjoint
    lives on one stored path, which the batched integrator of
    :mod:`symlora._integrate` does not provide).

    Examples
    --------
    For the linear pair the noise along the path is the fixed-point noise of
    ``u`` plus small state-dependent parts:

    >>> from symlora import LoRAModel
    >>> path = escape_path(LoRAModel("x", lr=0.5), 0.3, 0.5)
    >>> bool(abs(path.C1) < 50 and path.C2 > 0 and abs(path.y[0] - path.xi[0]) < 1e-12)
    True
    """
    f, jac, D = _numeric_model(model, mu)

    def jacobian_and_hessians(X):
        # J at X and ∂J_ki/∂X_j by central differences of the generated Jacobian: all five points in one call
        shifts = np.array([[0.0, _H, -_H, 0.0, 0.0], [0.0, 0.0, 0.0, _H, -_H]])
        Js = jac(X[:, None] + shifts)  # (2, 2, 5)
        out = np.stack([(Js[..., 1] - Js[..., 2]), (Js[..., 3] - Js[..., 4])], axis=-1) / (2 * _H)
        return Js[..., 0], 0.5 * (out + out.transpose(0, 2, 1))  # out[k, i, j] = ∂²f_k/∂X_i∂X_j

    origin = np.zeros(2)
    J0 = jac(origin)
    kappa, ell, _, _ = saddle_directions(J0)
    D0 = D(origin)
    q = float(ell @ D0 @ ell)
    outer = np.outer(ell, ell)

    def reached(t, X):
        return abs(X[0]) - threshold

    reached.terminal = True

    def adjoint(t, y, path, remainders=False):
        # g = -ℓ/(κξ) + k and H = ℓℓᵀ/(κξ²) + K: the linear-regime parts are removed analytically, so that
        # nothing cancels numerically (k = O(ξ), K = O(1) since f is odd: ∇²f(0) = 0, J - J0 = O(X²))
        X = path(t)
        k, K = y[:2], y[2:6].reshape(2, 2)
        J, hessians = jacobian_and_hessians(X)
        dJ = J - J0
        xi = ell @ X
        df = ell @ (f(X) - J0 @ X)
        g = -ell / (kappa * xi) + k
        DX = D(X)
        extra_along = ell @ (DX - D0) @ ell / (kappa * xi) ** 2
        i1 = np.sum(DX * K) + extra_along * kappa  # D:H minus the fixed-point part q/(κξ²)
        i2 = extra_along - 2 * (k @ DX @ ell) / (kappa * xi) + k @ DX @ k
        if remainders:
            return xi, i1, i2
        source = (dJ.T @ outer + outer @ dJ) / (kappa * xi**2) - 2 * outer * df / (kappa * xi**3)
        dK = -J.T @ K - K @ J - source - np.einsum("k,kij->ij", g, hessians)
        dk = -J.T @ k + dJ.T @ ell / (kappa * xi) - ell * df / (kappa * xi**2)
        return np.concatenate([dk, dK.ravel(), [i1, i2]])

    start = _XI_START * ell / (ell @ ell)  # on the unstable direction, ξ = 10^-3
    forward = solve_ivp(lambda t, X: f(X), (0.0, np.inf), start, events=reached, rtol=rtol, atol=1e-14,
                        dense_output=True, method="DOP853")
    if not forward.t_events[0].size:
        return None
    t_end, X_end = forward.t_events[0][0], forward.y_events[0][0]
    times = np.linspace(0.0, t_end, points)
    xi = np.array([ell @ forward.sol(t) for t in times])
    L = _XI_START * np.exp(kappa * t_end)
    y = L * np.exp(-kappa * (t_end - times))
    if not with_noise:
        zeros = np.zeros(points)
        return EscapePath(kappa, ell, q, L, y, xi, zeros, zeros, t_end - times, 0.0, 0.0)
    f_end = f(X_end)
    g = np.array([-1.0 / f_end[0], 0.0])
    r = -jac(X_end).T @ g
    h_mu = r[1] / f_end[0]
    H = np.array([[(r[0] - h_mu * f_end[1]) / f_end[0], h_mu], [h_mu, 0.0]])
    xi_end = ell @ X_end
    initial = np.concatenate([g + ell / (kappa * xi_end), (H - outer / (kappa * xi_end**2)).ravel(), [0.0, 0.0]])
    backward = solve_ivp(adjoint, (t_end, 0.0), initial, rtol=rtol, atol=1e-12, method="RK45",
                         args=(forward.sol,), dense_output=True)
    remainders = np.array([adjoint(t, backward.sol(t), forward.sol, True)[1:] for t in times])
    # integrated from t_end down to 0: the accumulated integrals carry a minus sign
    return EscapePath(kappa, ell, q, L, y, xi, remainders[:, 0], remainders[:, 1], t_end - times,
                      float(-0.5 * backward.y[6, -1]), float(-backward.y[7, -1]))
