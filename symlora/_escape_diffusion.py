r"""The escape as a one-dimensional diffusion along the deterministic path, solved exactly.

Take the coordinate ``y = L e^{-κT(X)}`` (``T`` the ODE time-to-go of
:mod:`symlora._path_noise`, ``L`` chosen so that ``y = ξ`` near the saddle);
it runs from ``y ≈ m_0`` to ``y = L`` on the threshold and the deterministic
path obeys ``dy/dt = κy``.  Itô's formula for ``y(X_t)`` with the module
notes of :mod:`symlora._path_noise` (``dT = (-1 + c_1/d)dt + (c_2/d)^{1/2}dW``)
gives

.. math::

    dy = \Big[κy + \frac{κy}{2d}\,(κ i_2 - i_1)\Big] dt
         + \sqrt{\frac{κ^2y^2 i_2 + q\,(y/ξ)^2}{d}}\; dW ,

with the singular fixed-point parts of ``c_1`` and ``c_2`` cancelling in the
drift, so that the coefficients are finite at ``y = 0`` (there the
equation is the Ornstein–Uhlenbeck process of the effective start,
``dy = κy dt + (q/d)^{1/2}dW``).  Evaluating ``i_1``, ``i_2``, ``ξ`` on the
path at the same ``y`` closes the equation: exact to first order in
``1/d`` (the expansion of its solution reproduces ``T + C_1/d`` and the
variance ``C_2/d``), while the fluctuation *along* the path is kept to all
orders.  That matters where ``λ_+`` is small and the noise large: the run's
position along the path then wanders by an amount comparable to the path
itself, and the spread of escape times is not the sum of a start term and
a small-noise term (``x`` against ``x²`` at ``μ = 0.3``, ``η = 1``,
``d = 250``: standard deviation 19.9 from this equation, 17.5 from the
first-order expansion, 20.4 ± 0.2 simulated).

The first-passage problem is solved exactly for this diffusion (symmetric
in ``y``, absorbing at ``|y| = L``):

* moments: with ``Φ' = 2dA/B``, ``(e^{Φ}τ_k')' = -2d\,k\,τ_{k-1}e^{Φ}/B``
  gives ``τ_k'(y) = -∫_0^y (2d k τ_{k-1}/B)\, e^{Φ(z) - Φ(y)} dz``, integrated
  cell by cell with the exact exponential factor (stable for any ``d``);
* the distribution: the backward equation ``∂_t S = A S' + (B/2d) S''`` for
  the survival probability, on a stretched grid with exponentially fitted
  (Scharfetter–Gummel) differences, which keep it a Markov generator where
  drift dominates, stepped by Crank–Nicolson after four implicit Euler
  half-steps.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_banded
from scipy.special import expm1

__all__ = ["EscapeDiffusion"]

#: Grid sizes: moments by quadrature, survival by time stepping.
_MOMENT_POINTS = 20_001
_SURVIVAL_POINTS = 1_501
_TIME_STEPS = 1_500


def _bernoulli(x):
    """``x/(e^x - 1)`` with its limit 1 at 0 (Scharfetter–Gummel weight)."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-8
    safe = np.where(small, 1.0, x)
    with np.errstate(over="ignore"):
        return np.where(small, 1.0 - x / 2, safe / expm1(safe))


class EscapeDiffusion:
    """The one-dimensional escape diffusion of the module notes at one ``d``.

    Parameters
    ----------
    path : symlora._path_noise.EscapePath
    d : int

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> from symlora._path_noise import escape_path
    >>> path = escape_path(LoRAModel("x", lr=0.5), 0.3, 0.5)
    >>> diffusion = EscapeDiffusion(path, 10_000)
    >>> mean, second = diffusion.moments(np.array([1e-2]))
    >>> bool(abs(mean[0] - path.time_to_go[np.searchsorted(path.y, 1e-2)]) < 1.0)
    True
    """

    def __init__(self, path, d):
        self.path, self.d = path, float(d)
        #: noise scale of the saddle: sd of the effective-start shift (q/(2κd))^{1/2}
        self.scale = math.sqrt(path.q / (2 * path.kappa * self.d))

    def grid(self, points):
        """``points`` values of ``y`` in ``[0, L]``: uniform below ``scale/20``, geometric above."""
        a = self.scale / 20
        return a * np.sinh(np.linspace(0.0, math.asinh(self.path.L / a), points))

    def coefficients(self, y):
        """Drift ``A(y)`` and ``B(y)`` (the diffusion is ``B/d``), from the path (constant below its start)."""
        path = self.path
        i1 = np.interp(y, path.y, path.i1)
        i2 = np.interp(y, path.y, path.i2)
        ratio = np.interp(y, path.y, path.y / path.xi)
        kappa = path.kappa
        A = kappa * y * (1 + (kappa * i2 - i1) / (2 * self.d))
        B = kappa**2 * y**2 * i2 + path.q * ratio**2
        # κ²y²c_2 = κ²y²∇TᵀD∇T ≥ 0; rounding of the subtracted parts aside
        return A, np.maximum(B, 1e-12 * path.q)

    def moments(self, y0):
        """First and second moments of the escape time from the starts ``y0`` (by quadrature)."""
        y = self.grid(_MOMENT_POINTS)
        A, B = self.coefficients(y)
        weight = 2 * self.d / B
        mid = lambda v: 0.5 * (v[1:] + v[:-1])  # noqa: E731
        h = np.diff(y)
        decay = mid(A * weight) * h  # Φ(y_{k+1}) - Φ(y_k)
        with np.errstate(over="ignore"):
            factor = np.exp(-np.maximum(decay, -700.0))
        gain = np.where(np.abs(decay) > 1e-10, -expm1(-np.maximum(decay, -700.0)) / np.where(decay == 0, 1, decay), 1.0)

        def integrate(source):
            # I' = w s - Φ' I from I(0) = 0 (τ' = -I), then τ(y) = ∫_y^L I
            inflow = mid(weight * source) * h * gain
            out = np.zeros_like(y)
            for k in range(h.size):
                out[k + 1] = out[k] * factor[k] + inflow[k]
            partial = np.concatenate([[0.0], np.cumsum(mid(out) * h)])
            return partial[-1] - partial

        first = integrate(np.ones_like(y))
        second = integrate(2 * first)
        y0 = np.abs(np.asarray(y0, dtype=float))
        return np.interp(y0, y, first), np.interp(y0, y, second)

    def survival(self, y0, weights, t):
        """``Σ_j w_j P(τ > t | y_0 = y0_j)`` on the increasing times ``t`` (``t[0] = 0``, equal steps)."""
        # in x = asinh(y/a) (the grid's own coordinate, uniform): dx = (A x' + ½x''B/d) dt + x'(B/d)^{1/2} dW
        a = self.scale / 20
        x = np.linspace(0.0, math.asinh(self.path.L / a), _SURVIVAL_POINTS)
        y = a * np.sinh(x)
        A, B = self.coefficients(y)
        root = np.sqrt(a * a + y * y)
        drift = A / root - 0.5 * y / root**3 * B / self.d
        nu = B / root**2 / (2 * self.d)
        h = x[1] - x[0]
        # exponentially fitted jump rates out of each node (the backward operator b∂ + ν∂² is not in
        # divergence form: node values, not cell averages, or ν' would act as a spurious drift)
        n = y.size - 1  # unknowns x_0 … x_{n-1}; S = 0 at x_n (the threshold)
        peclet = drift[:n] * h / nu[:n]
        rate_up = nu[:n] / h**2 * _bernoulli(-peclet)
        rate_down = nu[:n] / h**2 * _bernoulli(peclet)
        # reflecting at x = 0 (symmetry, the drift vanishes there): the jump to the left lands on x_1
        rate_up[0], rate_down[0] = rate_up[0] + rate_down[0], 0.0

        def banded(theta, dt):
            # I - θ dt G in solve_banded's (1, 1) layout
            ab = np.zeros((3, n))
            ab[0, 1:] = -theta * dt * rate_up[: n - 1]
            ab[1] = 1 + theta * dt * (rate_up + rate_down)
            ab[2, :-1] = -theta * dt * rate_down[1:]
            return ab

        def apply(S, scale):
            # S + scale G S
            out = S * (1 - scale * (rate_up + rate_down))
            out[:-1] += scale * rate_up[:-1] * S[1:]
            out[1:] += scale * rate_down[1:] * S[:-1]
            return out

        starts = np.abs(np.asarray(y0, dtype=float))
        k = np.clip(np.searchsorted(y, starts) - 1, 0, n - 1)
        frac = np.clip((starts - y[k]) / (y[k + 1] - y[k]), 0.0, 1.0)
        mass = np.zeros(n + 1)
        np.add.at(mass, k, np.asarray(weights) * (1 - frac))
        np.add.at(mass, k + 1, np.asarray(weights) * frac)
        mass = mass[:n]
        dt = float(t[1] - t[0])
        euler, crank = banded(1.0, dt / 2), banded(0.5, dt)
        S = np.ones(n)
        out = [mass.sum()]
        for step in range(1, t.size):
            if step <= 2:  # Rannacher start: two implicit Euler half-steps per step (the data jump at y = L)
                S = solve_banded((1, 1), euler, solve_banded((1, 1), euler, S))
            else:
                S = solve_banded((1, 1), crank, apply(S, dt / 2))
            out.append(mass @ S)
        return np.array(out)
