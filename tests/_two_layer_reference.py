"""Independent numerical right-hand side of the two-layer LoRA ODE, for the tests.

No Stein's lemma and no expectation engine: the drift of every statistic is
written with the raw fields of one SGD step (``ζ_a`` kept explicit) and
integrated over the Gaussian vector ``X = (ν_1..ν_K*, ζ_1..ζ_r)`` with
covariance ``[[I, Mᵀ], [M, q]]`` (``λ = D ν + U ζ``):

* smooth activations (erf): tensor Gauss–Hermite quadrature in whitened
  coordinates ``X = L z`` (exponentially convergent);
* ReLU with ``dim X = 2``: every integrand is positively homogeneous of
  degree 2, so ``E[f(X)] = E|z|² · mean over the circle of f(L ω)``; the
  circle is cut at the kinks and each smooth arc integrated by high-order
  Gauss–Legendre (exact to rounding).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import erf

from symlora._codegen import compile_ode

ACTIVATIONS = {
    "erf": (erf, lambda x: 2 / np.sqrt(np.pi) * np.exp(-x**2)),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "x": (lambda x: x, np.ones_like),
}


def _integrands(points, sigma, dsigma, D, U, c, ct, noise):
    """Per-point ``e0 σ'(λ_k) ζ_a``, ``g_a ν_j``, ``g_a ζ_b``, ``g_a g_b`` (g without noise, noise added analytically)."""
    Kt = D.shape[1]
    nu, zeta = points[:, :Kt], points[:, Kt:]
    lam = nu @ D.T + zeta @ U.T
    e0 = c * sigma(lam).sum(axis=1) - ct * sigma(nu).sum(axis=1)
    slopes = dsigma(lam)  # (n, K)
    F = e0[:, None] * slopes  # F_k
    h = c * slopes @ U  # g_a / e0 (n, r)
    g = e0[:, None] * h
    return {
        "F_zeta": F[:, :, None] * zeta[:, None, :],  # (n, K, r)
        "g_nu": g[:, :, None] * nu[:, None, :],  # (n, r, K*)
        "g_zeta": g[:, :, None] * zeta[:, None, :],  # (n, r, r)
        "g_g": g[:, :, None] * g[:, None, :] + noise * h[:, :, None] * h[:, None, :],
    }


def _gauss_hermite(cov, n_nodes):
    z, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / w.sum()
    dim = cov.shape[0]
    grid = np.array(list(itertools.product(z, repeat=dim)))
    weights = np.prod(np.array(list(itertools.product(w, repeat=dim))), axis=1)
    L = np.linalg.cholesky(cov)
    return grid @ L.T, weights


def _circle(cov, kink_forms, n_nodes=60):
    """Points ``L ω`` on arcs between kinks and weights ``E|z|²/(2π) dφ`` (dim 2 only)."""
    L = np.linalg.cholesky(cov)
    cuts = [0.0, 2 * np.pi]
    for a in kink_forms:  # a·(L ω) = 0 at two angles
        b = L.T @ a
        if np.hypot(*b) > 0:
            phi = np.arctan2(b[1], b[0]) + np.pi / 2
            cuts += [phi % (2 * np.pi), (phi + np.pi) % (2 * np.pi)]
    cuts = np.unique(cuts)
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    angles, weights = [], []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        angles.append((hi - lo) / 2 * x + (hi + lo) / 2)
        weights.append((hi - lo) / 2 * w)
    angles, weights = np.concatenate(angles), np.concatenate(weights)
    omega = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return omega @ L.T, weights * 2 / (2 * np.pi)  # E|z|^2 = 2 in two dimensions


def reference_rhs(act, D, M, U, q, readouts, lr, batch, noise, n_nodes=80):
    """``{"M": dM/dt, "U": dU/dt, "q": dq/dt}`` by direct quadrature (see module docstring)."""
    sigma, dsigma = ACTIVATIONS[act]
    D, M, U, q = (np.asarray(v, dtype=float) for v in (D, M, U, q))
    K, Kt = D.shape
    r = U.shape[1]
    c, ct = readouts
    cov = np.block([[np.eye(Kt), M.T], [M, q]])
    if act == "relu":
        if Kt + r != 2 or noise != 0:
            raise ValueError("the homogeneous circle rule needs dim X = 2 and no noise term")
        forms = [np.concatenate([D[k], U[k]]) for k in range(K)] + [np.eye(Kt + r)[j] for j in range(Kt)]
        points, weights = _circle(cov, forms)
    else:
        points, weights = _gauss_hermite(cov, n_nodes)
    E = {name: np.tensordot(weights, value, axes=(0, 0))
         for name, value in _integrands(points, sigma, dsigma, D, U, c, ct, noise).items()}
    eta, drag = lr, lr**2 / (2 * batch)
    dU = -eta * c * E["F_zeta"]
    diag_z, diag_g = np.diag(E["g_zeta"]), np.diag(E["g_g"])
    dM = -eta * E["g_nu"] + eta * M * diag_z[:, None] - drag * M * diag_g[:, None]
    dq = (-eta * (E["g_zeta"] + E["g_zeta"].T) + eta * q * (diag_z[:, None] + diag_z[None, :])
          + 2 * drag * E["g_g"] - drag * q * (diag_g[:, None] + diag_g[None, :]))
    return {"M": dM, "U": dU, "q": dq}


def random_state(rng, model, scale=0.6):
    """A random admissible state ``(M, U, q)`` of ``model`` (directions realised in six dimensions)."""
    K, Kt, r = model.hidden, model.teacher_hidden, model.rank
    while True:
        V = rng.standard_normal((r, 6))
        V /= np.linalg.norm(V, axis=1, keepdims=True)
        Wt = np.linalg.qr(rng.standard_normal((6, Kt)))[0].T  # orthonormal teacher rows
        M, q = V @ Wt.T, V @ V.T
        if np.linalg.eigvalsh(np.block([[np.eye(Kt), M.T], [M, q]]))[0] > 0.05:
            return M, scale * rng.standard_normal((K, r)), q


def derived_rhs(model, D, M, U, q, parameter_values):
    """``{state: value}`` of the generated right-hand side of ``model`` at ``(M, U, q)``."""
    compiled = compile_ode(model.ode_system())
    values = {s: v for s, v in zip(model.geometry.M, M.ravel())}
    values.update({s: v for s, v in zip(model.geometry.U, U.ravel())})
    values.update({s: q[a, b] for a in range(q.shape[0]) for b in range(a + 1, q.shape[0])
                   for s in [model.geometry.q[a, b]]})
    state = np.array([values[s] for s in model.states])
    params = [parameter_values[p.name] for p in model.parameters]
    return dict(zip(model.states, compiled.rhs(state, *params)))


def compare_with_reference(model, act, D, lr, batch, noise, seeds, tol, nodes=80):
    """Assert that the generated right-hand side equals :func:`reference_rhs` within ``tol`` at random states."""
    c, ct = (float(v) for v in model.readouts)
    geometry = model.geometry
    for seed in seeds:
        rng = np.random.default_rng(seed)
        M, U, q = random_state(rng, model)
        mus = {"mu": D[0, 0]} if model.parameters and model.parameters[0].name == "mu" else {}
        derived = derived_rhs(model, D, M, U, q, {**mus, "eta": lr, "B": batch, "Delta": noise})
        reference = reference_rhs(act, D, M, U, q, (c, ct), lr, batch, noise, n_nodes=nodes)
        for name, matrix in (("M", geometry.M), ("U", geometry.U)):
            for index, symbol in np.ndenumerate(np.array(matrix.tolist(), dtype=object)):
                assert derived[symbol] == pytest.approx(reference[name][index], abs=tol), (seed, symbol)
        for a in range(model.rank):
            for b in range(a + 1, model.rank):
                assert derived[geometry.q[a, b]] == pytest.approx(reference["q"][a, b], abs=tol), (seed, a, b)
