"""An independent 30-digit reference for the LoRA ODE and its linearisation.

Nothing here calls symlora: the activations are written out in mpmath with
their first derivatives (by hand, never by numerical differentiation, which
would straddle the kinks), and every expectation is a nested ``mpmath.quad``
(tanh-sinh) split at the kinks of the integrand.  The formulas are those of
docs/theory.md:

* aligned pre-training, states ``(m, u)``: ``ν = z1``, ``ζ = m z1 + √(1-m²) z2``,
  ``λ = μν + uζ``, ``G = (σ(λ) - σ*(ν)) σ'(λ)``,
  ``du/dt = -η E[G ζ]``,
  ``dm/dt = -η u E[G (ν - mζ)] - η²/(2B) u² m (E[G²] + Δ E[σ'(λ)²])``;
* the linearisation at ``m = u = 0``: ``η [[0, a], [a, -b]]`` with
  ``a = -E[e0 σ'(μν) ν]`` and ``b = E[σ'²] + E[e0 σ''(μν)]``; the second
  term is integrated by parts (``σ''`` is a distribution for kinked ``σ``):
  ``b = E[σ'(μν) (ν e0(ν) + σ*'(ν))] / μ``;
* general pre-training, ``λ0 = μν + μ⊥ξ``: ``A_λ = E[σ'(λ0)² + e0 σ''(λ0)]
  = E[ξ e0 σ'(λ0)] / μ⊥`` (Stein in ξ), ``A_ν = -E[σ*'(ν) σ'(λ0)]``,
  ``α = -(μ A_λ + A_ν)``, ``β = -μ⊥ A_λ``; Jacobian in ``(m, s, u)``
  ``η [[0, 0, α], [0, 0, β], [α, β, -A_λ]]``, ``τ`` from ``a = √(α² + β²)``, ``b = A_λ``.

Each function returns the value with mpmath's own error estimate (summed
over the nested integrals' outer estimate), so a test can tell a bad
reference from a bad engine.
"""

from __future__ import annotations

import mpmath

DPS = 30


def _mp(value):
    return mpmath.mpf(value) if not isinstance(value, str) else mpmath.mpf(value)


def _sigmoid(t):
    return 1 / (1 + mpmath.exp(-t))


def _step(t):
    return mpmath.mpf(1) if t > 0 else (mpmath.mpf(0) if t < 0 else mpmath.mpf(1) / 2)


class Act:
    """An activation: value, first derivative, kink locations (all in mpmath)."""

    def __init__(self, value, slope, kinks=()):
        self.value, self.slope, self.kinks = value, slope, tuple(kinks)

    def __call__(self, t):
        return self.value(t)


def leaky(alpha):
    alpha = mpmath.mpf(alpha)
    return Act(lambda t: t if t > 0 else alpha * t, lambda t: 1 if t > 0 else alpha, (0,))


def shifted_relu(b):
    b = mpmath.mpf(b)
    return Act(lambda t: t - b if t > b else mpmath.mpf(0), lambda t: _step(t - b), (b,))


def scaled_erf(c):
    c = mpmath.mpf(c)
    return Act(lambda t: mpmath.erf(c * t), lambda t: 2 * c / mpmath.sqrt(mpmath.pi) * mpmath.exp(-c * c * t * t))


def _gelu(t):
    return t * mpmath.ncdf(t)


#: activation text (as symlora's parser reads it) -> independent definition
ACTIVATIONS = {
    "x": Act(lambda t: t, lambda t: mpmath.mpf(1)),
    "relu": Act(lambda t: max(t, mpmath.mpf(0)), _step, (0,)),
    "erf": scaled_erf(1),
    "tanh": Act(mpmath.tanh, lambda t: mpmath.sech(t) ** 2),
    "sigmoid": Act(_sigmoid, lambda t: _sigmoid(t) * (1 - _sigmoid(t))),
    "softplus": Act(lambda t: mpmath.log1p(mpmath.exp(t)), _sigmoid),
    "silu": Act(lambda t: t * _sigmoid(t), lambda t: _sigmoid(t) * (1 + t * (1 - _sigmoid(t)))),
    "swish": Act(lambda t: t * _sigmoid(t), lambda t: _sigmoid(t) * (1 + t * (1 - _sigmoid(t)))),
    "gelu": Act(_gelu, lambda t: mpmath.ncdf(t) + t * mpmath.npdf(t)),
    "elu": Act(lambda t: t if t > 0 else mpmath.expm1(t), lambda t: 1 if t > 0 else mpmath.exp(t), (0,)),
    "softsign": Act(lambda t: t / (1 + abs(t)), lambda t: 1 / (1 + abs(t)) ** 2, (0,)),
    "abs": Act(abs, lambda t: mpmath.sign(t), (0,)),
    "leaky_relu(x, 0.1)": leaky("0.1"),
    "leaky_relu(x, 0.25)": leaky("0.25"),
    "relu(x - 0.5)": shifted_relu("0.5"),
    "relu(x + 0.3)": shifted_relu("-0.3"),
    "erf(2*x)": scaled_erf(2),
    "erf(x/2)": scaled_erf("0.5"),
    "He2": Act(lambda t: t * t - 1, lambda t: 2 * t),
    "He3": Act(lambda t: t**3 - 3 * t, lambda t: 3 * t * t - 3),
    "x**2": Act(lambda t: t * t, lambda t: 2 * t),
    "x + x**3/3": Act(lambda t: t + t**3 / 3, lambda t: 1 + t * t),
    "tanh(x) + relu(x)": Act(lambda t: mpmath.tanh(t) + max(t, 0), lambda t: mpmath.sech(t) ** 2 + _step(t), (0,)),
    "x*tanh(x)": Act(lambda t: t * mpmath.tanh(t), lambda t: mpmath.tanh(t) + t * mpmath.sech(t) ** 2),
}


#: Panel edges in standard deviations.  Beyond ±12 the normal density is
#: below 1e-32, so that for integrands of polynomial growth the tails are
#: below the 30-digit working precision's concern at the tolerances tested
#: (1e-12); short panels near the centre keep Gauss–Legendre's convergence
#: fast next to the complex poles of tanh and sigmoid (at ±iπ/2, ±iπ).
_PANELS = (-12, -9, -7, -5, -3.5, -2.25, -1, 0, 1, 2.25, 3.5, 5, 7, 9, 12)
HALF_WIDTH = 12


def _edges(points):
    """Panel edges plus the kinks inside ``[-12, 12]``, sorted, without duplicates."""
    inner = {mpmath.mpf(p) for p in _PANELS}
    inner |= {mpmath.mpf(p) for p in points if mpmath.isfinite(p) and abs(p) < HALF_WIDTH}
    return sorted(inner)


def _normal_1d(func, kinks=()):
    """E[func(Z)], Z ~ N(0, 1), split at the kinks (value, error): adaptive Gauss–Legendre ``mpmath.quad``."""
    return mpmath.quad(lambda z: func(z) * mpmath.npdf(z), _edges(kinks), error=True, method="gauss-legendre")


def _normal_2d(func, outer_kinks, inner_kinks):
    """E[func(z1, z2)] over independent standard normals; ``inner_kinks(z1)`` lists kinks in z2.

    The inner integral's error is folded into the outer integrand's value, so
    the returned estimate is the outer one plus the largest inner one seen.
    """
    worst = [mpmath.mpf(0)]

    def inner(z1):
        value, error = _normal_1d(lambda z2: func(z1, z2), inner_kinks(z1))
        worst[0] = max(worst[0], abs(error))
        return value

    value, error = _normal_1d(inner, outer_kinks)
    return value, abs(error) + worst[0]


def _act(name):
    return ACTIVATIONS[name]


# -------------------------------------------------------------------- aligned


def ab(student, teacher, mu, dps=DPS):
    """``(a, b, tau, error)`` of the aligned linearisation at ``mu > 0``."""
    s, t = _act(student), _act(teacher)
    with mpmath.workdps(dps):
        mu = _mp(mu)
        kinks = [k / mu for k in s.kinks] + list(t.kinks)

        def e0(n):
            return s(mu * n) - t(n)

        a, ea = _normal_1d(lambda n: -e0(n) * s.slope(mu * n) * n, kinks)
        b, eb = _normal_1d(lambda n: s.slope(mu * n) * (n * e0(n) + t.slope(n)), kinks)
        b, eb = b / mu, eb / mu
        tau = (b + mpmath.sqrt(b * b + 4 * a * a)) / (2 * a * a) if a != 0 else mpmath.inf
        return a, b, tau, max(abs(ea), abs(eb))


def aligned_jacobian(student, teacher, mu, lr=1, dps=DPS):
    a, b, _, _ = ab(student, teacher, mu, dps)
    lr = _mp(lr)
    return [[0, lr * a], [lr * a, -lr * b]]


def aligned_rhs(student, teacher, m, u, mu, lr=1, batch=1, noise=0, dps=DPS):
    """``((dm/dt, du/dt), error)`` at one state (``|m| < 1``)."""
    s, t = _act(student), _act(teacher)
    with mpmath.workdps(dps):
        m, u, mu, lr, batch, noise = map(_mp, (m, u, mu, lr, batch, noise))
        c = mpmath.sqrt(1 - m * m)

        def fields(z1, z2):
            nu, zeta = z1, m * z1 + c * z2
            lam = mu * nu + u * zeta
            slope = s.slope(lam)
            g = (s(lam) - t(nu)) * slope
            return nu, zeta, g, slope

        def inner_kinks(z1):
            # λ = (μ + u m) z1 + u c z2 = k
            return [(k - (mu + u * m) * z1) / (u * c) for k in s.kinks] if u * c != 0 else []

        def du(z1, z2):
            _, zeta, g, _ = fields(z1, z2)
            return -lr * g * zeta

        def dm(z1, z2):
            nu, zeta, g, slope = fields(z1, z2)
            return -lr * u * g * (nu - m * zeta) - lr * lr / (2 * batch) * u * u * m * (g * g + noise * slope * slope)

        # at u c = 0 the student's field λ = (μ + u m) z1 no longer depends on z2: its kinks are in z1.
        # (For small u c != 0 a break at z1 = k/(μ + u m) is no cure: the inner integral then changes over a
        # width ~|u c| there, which a break at its centre hides from the error estimate without resolving.)
        outer_kinks = list(t.kinks)
        if u * c == 0 and mu + u * m != 0:
            outer_kinks += [k / (mu + u * m) for k in s.kinks]
        vu, eu = _normal_2d(du, outer_kinks, inner_kinks)
        vm, em = _normal_2d(dm, outer_kinks, inner_kinks)
        return (vm, vu), max(eu, em)


# -------------------------------------------------------------------- general


def general_coefficients(student, teacher, mu, mu_perp, dps=DPS):
    """``(alpha, beta, b, tau, error)`` of general pre-training (``mu_perp > 0``)."""
    s, t = _act(student), _act(teacher)
    with mpmath.workdps(dps):
        mu, mu_perp = _mp(mu), _mp(mu_perp)

        def inner_kinks(nu):  # λ0 = μν + μ⊥ξ = k  in the inner variable ξ
            return [(k - mu * nu) / mu_perp for k in s.kinks]

        def a_lam(nu, xi):
            lam = mu * nu + mu_perp * xi
            return xi * (s(lam) - t(nu)) * s.slope(lam)

        def a_nu(nu, xi):
            lam = mu * nu + mu_perp * xi
            return -t.slope(nu) * s.slope(lam)

        A_lam, e1 = _normal_2d(a_lam, t.kinks, inner_kinks)
        A_lam, e1 = A_lam / mu_perp, e1 / mu_perp
        A_nu, e2 = _normal_2d(a_nu, t.kinks, inner_kinks)
        alpha, beta, b = -(mu * A_lam + A_nu), -mu_perp * A_lam, A_lam
        a2 = alpha * alpha + beta * beta
        tau = (b + mpmath.sqrt(b * b + 4 * a2)) / (2 * a2)
        return alpha, beta, b, tau, max(e1, e2)


def general_jacobian(student, teacher, mu, mu_perp, lr=1, dps=DPS):
    alpha, beta, b, _, _ = general_coefficients(student, teacher, mu, mu_perp, dps)
    lr = _mp(lr)
    return [[0, 0, lr * alpha], [0, 0, lr * beta], [lr * alpha, lr * beta, -lr * b]]
