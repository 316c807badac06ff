r"""The noise at the saddle beyond its value at the fixed point: a first-order-in-``1/d`` term of the mean.

Near ``m = u = 0`` the statistics obey ``dX = J X dt + (D(X)/d)^{1/2} dW`` with
``J`` symmetric (eigenpairs ``(κ, e_+)``, ``(κ_-, e_-)``, ``κ_- < 0 < κ``).  The
unstable coordinate ``ξ = ℓ·X`` (``ℓ = e_+/e_{+,m}``) has the limit

.. math::

    ξ_{\rm eff} = \lim_{t→∞} e^{-κ t} ξ_t = ξ_0 + \int_0^∞ e^{-κ s}\, ℓ·σ(X_s)\, dW_s ,
    \qquad σσ^{\mathsf T} = D/d .

:mod:`symlora._prediction` starts the run from the law of ``ξ_eff`` (the
effective start).  With the fixed-point noise ``D_0`` alone it is Gaussian.
But ``D`` depends on the state: the noise of ``m`` is ``∝ u²``, and ``u``
fluctuates at the saddle with variance of order ``1/d``, so ``ℓᵀDℓ`` is
``q = ℓᵀD_0ℓ`` plus a quadratic form ``XᵀQX`` (``Q = ½∇²(ℓᵀDℓ)`` at 0) of
order ``1/d``.  Write ``X = ξ p + η e_-`` (``p = e_+/(ℓ·e_+)``).  The part
``ξ² pᵀQp`` is the noise along the path, which the escape diffusion
(:mod:`symlora._escape_diffusion`) carries; the transverse part

.. math::

    v = \frac1d\int_0^∞ e^{-2κs}\big(2 ξ_s η_s\, p^{\mathsf T}Q e_- + η_s^2\, e_-^{\mathsf T} Q e_-\big)\, ds

is the extra conditional variance of ``ξ_eff``.  It is of order ``1/d²``,
but the escape time depends on ``log|ξ_eff|`` with ``ξ_eff`` of order
``d^{-1/2}``, so it moves the mean by order ``1/d`` (``∇²T ∼ 1/ξ² ∼ d``):
the same order as the path corrections, and with a large prefactor where the
``m``-noise per ``u²`` is large (``x`` against ``x²``: ``E[g²ν²] ≈ 15``).

To first order in ``Q`` the law of ``ξ_eff`` is the Gaussian one with two
changed cumulants: the variance grows by ``Δ = E v`` and the fourth cumulant
becomes ``κ_4 = 6 Cov(G², v)`` (``G`` the Gaussian part; ``v`` is correlated
with ``G`` because both are driven by the noise of ``u``, so ``κ_4`` is of
the same order as ``Δ``; ``Var v`` is of second order).  With the linear
solution (Wick's theorem for the Gaussian ``G``, ``ξ_s``, ``η_s``)

.. math::

    E[ξ_sη_s] = \frac{c_{-+}}{d}\frac{1 - e^{-Ss}}{S},\quad
    E[η_s^2] = \frac{c_{--}}{d}\frac{1 - e^{2κ_-s}}{-2κ_-},

    Cov(G, ξ_s) = \frac{q}{d}\frac{e^{κs} - e^{-κs}}{2κ},\quad
    Cov(G, η_s) = \frac{c_{-+}}{d}\frac{e^{-κs} - e^{κ_-s}}{S},

``S = -(κ + κ_-) > 0``, ``c_{-+} = e_-ᵀD_0ℓ``, ``c_{--} = e_-ᵀD_0e_-``, for
the noise started at the saddle with ``u_0 = 0``.  The time integrals are
sums of exponentials, done in closed form below.

Left out: the couplings of ``v`` with the start itself (terms with ``ξ_0``,
e.g. ``2ξ_0e^{κs}η_s`` correlated with ``G``).  They act while the path
leaves the linear regime, where this linear computation does not hold.
Without them a fixed start two noise scales from the saddle (``m_0 = 0.15``,
``x`` against ``x²``, ``μ = 0.3``, ``η = 1``, ``d = 250``, threshold 0.3) is
predicted at 16.34 against 16.38 ± 0.23 from the drift + diffusion SDE.

Checked against Euler–Maruyama of the drift + diffusion SDE (``x`` against
``x²``, ``μ = 0.3``, ``η = 1``, ``d = 250``: the variance of
``e^{-κt}ξ_t`` at ``t = 2.5, 5`` rises by 3.8 % and 3.6 % over the
fixed-point value at ``d = 2000``, against 3.7 % and 3.6 % from ``Δ`` with
its finite-time transient and the drag); the mean escape times in
docs/theory.md §6.3c.
"""

from __future__ import annotations

import numpy as np

__all__ = ["saddle_cumulants"]

#: Step of the central second differences of the diffusion matrix at the saddle.
_STEP = 1e-3


def _half_hessian(scalar):
    """``½∇²s(0)`` of a function ``s(X)`` of two variables, by central second differences."""
    basis = np.eye(2)
    out = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            a, b = basis[i], basis[j]
            out[i, j] = (scalar(_STEP * (a + b)) - scalar(_STEP * (a - b)) - scalar(_STEP * (b - a))
                         + scalar(-_STEP * (a + b))) / (8 * _STEP**2)
    return out


def _integral(terms, kappa):
    """``∫_0^∞ e^{-2κs} Σ c e^{r s} ds = Σ c/(2κ - r)`` for a sum of exponentials given as ``[(c, r), ...]``."""
    return sum(c / (2 * kappa - r) for c, r in terms)


def _product(first, second):
    return [(c1 * c2, r1 + r2) for c1, r1 in first for c2, r2 in second]


def _scaled(terms, factor):
    return [(factor * c, r) for c, r in terms]


def saddle_cumulants(jacobian_at_saddle, diffusion, d):
    r"""``(Δ, κ_4)``: extra variance and fourth cumulant of ``ξ_eff`` from the transverse noise (module notes).

    Parameters
    ----------
    jacobian_at_saddle : array_like
        The (symmetric) Jacobian of the drift at ``m = u = 0``.
    diffusion : callable
        ``D(X)`` for ``X = (m, u)``, a 2×2 array.
    d : int or float

    Returns
    -------
    Delta, kappa4 : float

    Examples
    --------
    Noise of ``m`` proportional to ``u²`` (``D_mm = 15 u²``), noise 3 of ``u``:

    >>> J = np.array([[0.0, -0.3], [-0.3, -1.0]])
    >>> D = lambda X: np.array([[15 * X[1] ** 2, 0.0], [0.0, 3.0]])
    >>> Delta, kappa4 = saddle_cumulants(J, D, 250)
    >>> bool(Delta > 0 and kappa4 > 0)
    True
    """
    from ._path_noise import saddle_directions

    kappa, ell, kappa_minus, e_minus = saddle_directions(jacobian_at_saddle)
    e_plus = ell / np.linalg.norm(ell)
    p = e_plus / (ell @ e_plus)
    D0 = np.asarray(diffusion(np.zeros(2)), dtype=float)
    q, c_mp, c_mm = ell @ D0 @ ell / d, e_minus @ D0 @ ell / d, e_minus @ D0 @ e_minus / d
    Q = _half_hessian(lambda X: ell @ np.asarray(diffusion(X), dtype=float) @ ell)
    pQe, eQe = p @ Q @ e_minus, e_minus @ Q @ e_minus
    S = -(kappa + kappa_minus)
    # the moments below are sums of exponentials in s, as [(coefficient, rate), ...]
    cov_G_xi = [(q / (2 * kappa), kappa), (-q / (2 * kappa), -kappa)]
    cov_G_eta = [(c_mp / S, -kappa), (-c_mp / S, kappa_minus)]
    cov_xi_eta = [(c_mp / S, 0.0), (-c_mp / S, -S)]
    var_eta = [(c_mm / (-2 * kappa_minus), 0.0), (-c_mm / (-2 * kappa_minus), 2 * kappa_minus)]
    # v = (1/d) ∫ e^{-2κs} (2 ξ_s η_s pᵀQe_- + η_s² e_-ᵀQe_-) ds: its mean, and Cov(G², ·) by Wick's theorem
    mean_v = _scaled(cov_xi_eta, 2 * pQe) + _scaled(var_eta, eQe)
    cov_G2_v = _scaled(_product(cov_G_xi, cov_G_eta), 4 * pQe) + _scaled(_product(cov_G_eta, cov_G_eta), 2 * eQe)
    return float(_integral(mean_v, kappa) / d), float(6 * _integral(cov_G2_v, kappa) / d)
