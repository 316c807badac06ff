"""LoRA of rank r (issue 11 item 1): one derivation for every rank, checked by independent routes.

* the structure of the ODE reproduces the rank-1, general and rank-2
  formulas written out by hand (the previous special-cased code);
* it is symmetric under permutations of the adapters;
* its right-hand side at random rank-3 states equals an independent
  computation with explicit vectors and nested two-dimensional quadrature;
* its linearisation equals the derivative of the ODE at the fixed point for
  any overlaps of the directions;
* finite-d SGD of rank 3 follows the ODE after alignment.
"""

import itertools
import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate

from symlora import LoRAModel
from symlora import _symbols as S
from symlora._ode_derivation import EXPECTATION_SYMBOLS, ode_structure
from symlora._statistics import MAX_RANK, geometry, orthogonal_norm2, overlaps, state_symbols

AL, AN, G2 = EXPECTATION_SYMBOLS
ETA, BATCH = sp.symbols("eta B", positive=True)


def _hand_written(pretraining, rank):
    """The formulas of the rank-1, general rank-1 and rank-2 code before rank r (docs/theory.md §3)."""
    mu, mp = S.mu, S.mu_perp
    drag = ETA**2 / (2 * BATCH) * G2
    if rank == 2:
        m1, m2, u1, u2, q = S.m1, S.m2, S.u1, S.u2, S.q12
        gz1 = (mu * m1 + u1 + u2 * q) * AL + m1 * AN
        gz2 = (mu * m2 + u2 + u1 * q) * AL + m2 * AN
        gnu = (mu + u1 * m1 + u2 * m2) * AL + AN
        return {
            m1: -ETA * u1 * (gnu - m1 * gz1) - drag * u1**2 * m1,
            m2: -ETA * u2 * (gnu - m2 * gz2) - drag * u2**2 * m2,
            u1: -ETA * gz1,
            u2: -ETA * gz2,
            q: -ETA * (u2 * gz1 + u1 * gz2 - q * (u1 * gz1 + u2 * gz2)) + 2 * drag * (u1 * u2 - q * (u1**2 + u2**2) / 2),
        }
    m, s, u = S.m, S.s, S.u
    if pretraining == "general":
        gz = (mu * m + mp * s + u) * AL + m * AN
        return {
            m: -ETA * u * (((mu + u * m) * AL + AN) - m * gz) - drag * u**2 * m,
            s: -ETA * u * ((mp + u * s) * AL - s * gz) - drag * u**2 * s,
            u: -ETA * gz,
        }
    return {m: -ETA * u * (1 - m**2) * (mu * AL + AN) - drag * u**2 * m, u: -ETA * ((mu * m + u) * AL + m * AN)}


@pytest.mark.parametrize("pretraining, rank", [("aligned", 1), ("general", 1), ("aligned", 2)])
def test_one_code_path_reproduces_the_hand_written_formulas(pretraining, rank):
    derived = ode_structure(pretraining, rank, ETA, BATCH)
    expected = _hand_written(pretraining, rank)
    assert list(derived) == list(expected)
    for state in expected:
        assert sp.expand(derived[state] - expected[state]) == 0, state


def test_general_rank2_reduces_to_aligned_and_to_rank1():
    general = ode_structure("general", 2, ETA, BATCH)
    aligned = ode_structure("aligned", 2, ETA, BATCH)
    to_aligned = {S.mu_perp: 0, sp.Symbol("s1", real=True): 0, sp.Symbol("s2", real=True): 0}
    for state, rhs in aligned.items():
        assert sp.expand(general[state].subs(to_aligned) - rhs) == 0
    # the second adapter switched off (u2 = 0, v2 = v1 irrelevant): direction 1 moves as rank 1
    rank1 = ode_structure("general", 1, ETA, BATCH)
    off = {S.u2: 0, S.m1: S.m, sp.Symbol("s1", real=True): S.s, S.u1: S.u}
    for old, new in ((S.m1, S.m), (sp.Symbol("s1", real=True), S.s), (S.u1, S.u)):
        assert sp.expand(general[old].subs(off) - rank1[new]) == 0


def _permutation(geo, perm):
    """Substitution relabelling adapter a as perm[a] in every statistic."""
    sub = {}
    for per_direction in (geo.m, geo.s, geo.u):
        sub.update({per_direction[a]: per_direction[perm[a]] for a in range(len(per_direction))})
    for (a, b), q in geo.q.items():
        sub[q] = geo.q[tuple(sorted((perm[a], perm[b])))]
    return sub


@pytest.mark.parametrize("pretraining", ["aligned", "general"])
def test_ode_is_symmetric_under_permutations_of_the_adapters(pretraining):
    rank = 3
    geo = geometry(pretraining, rank)
    rhs = ode_structure(pretraining, rank, ETA, BATCH)
    for perm in itertools.permutations(range(rank)):
        sub = _permutation(geo, perm)
        for key in (S.Q, S.R):
            assert sp.expand(overlaps(pretraining, rank)[key].xreplace(sub) - overlaps(pretraining, rank)[key]) == 0
        assert sp.expand(orthogonal_norm2(pretraining, rank).xreplace(sub) - orthogonal_norm2(pretraining, rank)) == 0
        for state, value in rhs.items():
            assert sp.expand(rhs[sub[state]] - value.xreplace(sub)) == 0, (perm, state)


def test_state_names_and_rank_bounds():
    assert state_symbols("aligned", 1) == (S.m, S.u)
    assert state_symbols("general", 1) == (S.m, S.s, S.u)
    assert [str(s) for s in state_symbols("general", 2)] == ["m1", "m2", "s1", "s2", "u1", "u2", "q12"]
    assert len(state_symbols("aligned", MAX_RANK)) == 2 * MAX_RANK + MAX_RANK * (MAX_RANK - 1) // 2
    with pytest.raises(ValueError, match="rank"):
        LoRAModel("x", rank=MAX_RANK + 1)


# ---------------------------------------------------------------------------
# independent route: explicit vectors and nested quadrature

PAIRS = [("erf", "erf"), ("relu", "relu"), ("x**2/2 + x", "x**3")]
FUNCTIONS = {
    "erf": (lambda x: math.erf(x), lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x)),
    "relu": (lambda x: max(x, 0.0), lambda x: 1.0 if x > 0 else 0.0),
    "x**2/2 + x": (lambda x: x * x / 2 + x, lambda x: x + 1),
    "x**3": (lambda x: x**3, lambda x: 3 * x * x),
}


def _gaussian_2d(f, Q, R):
    """``E[f(λ, ν)]`` for ``(λ, ν) ~ N(0, [[Q, R], [R, 1]])`` by nested adaptive quadrature.

    Whitened: ``λ = √Q z1``, ``ν = ρ z1 + √(1 - ρ²) z2``; every kink of the
    ReLU pair (``λ = 0``, ``ν = 0``) is a break point of its integral.
    """
    sq, rho = math.sqrt(Q), R / math.sqrt(Q)
    c = math.sqrt(1 - rho * rho)
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    L = 12.0

    def inner(z1):
        kink = -rho * z1 / c
        value, _ = integrate.quad(lambda z2: f(sq * z1, rho * z1 + c * z2) * phi(z2), -L, L,
                                  points=[kink] if -L < kink < L else None, epsabs=1e-14, epsrel=1e-13, limit=200)
        return value * phi(z1)

    value, _ = integrate.quad(inner, -L, L, points=[0.0], epsabs=1e-14, epsrel=1e-13, limit=200)
    return value


def _random_state(rng, rank, general):
    """Explicit unit vectors with random overlaps, and random adapter scales."""
    n = rank + 2
    star = np.eye(n)[0]
    perp = np.eye(n)[1]
    V = rng.normal(size=(rank, n)) + 0.8 * star
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    u = rng.uniform(-0.6, 0.6, size=rank)
    return star, perp, V, u


def _independent_drift(pair, star, perp, V, u, mu, mu_perp, eta, batch, noise):
    """docs/theory.md §2 from the vectors: E[G x] by regression on (λ, ν), then the step of each v_a."""
    sigma, dsigma = FUNCTIONS[pair[0]]
    teacher = FUNCTIONS[pair[1]][0]
    w = mu * star + mu_perp * perp + u @ V
    Q, R = w @ w, w @ star
    G = lambda lam, nu: (sigma(lam) - teacher(nu)) * dsigma(lam)  # noqa: E731
    e_g_lam = _gaussian_2d(lambda lam, nu: G(lam, nu) * lam, Q, R)
    e_g_nu = _gaussian_2d(lambda lam, nu: G(lam, nu) * nu, Q, R)
    g2 = _gaussian_2d(lambda lam, nu: G(lam, nu) ** 2, Q, R) + noise * _gaussian_2d(lambda lam, nu: dsigma(lam) ** 2, Q, R)
    # E[G x] = E[G E[x | λ, ν]] = [w, w*] Σ^{-1} (E[G λ], E[G ν])
    coeffs = np.linalg.solve([[Q, R], [R, 1.0]], [e_g_lam, e_g_nu])
    e_gx = coeffs[0] * w + coeffs[1] * star
    drag = eta**2 / (2 * batch) * g2
    dV = np.array([-eta * u[a] * (e_gx - (V[a] @ e_gx) * V[a]) - drag * u[a] ** 2 * V[a] for a in range(len(u))])
    drift = {}
    for a in range(len(u)):
        suffix = str(a + 1)
        drift["m" + suffix] = star @ dV[a]
        drift["s" + suffix] = perp @ dV[a]
        drift["u" + suffix] = -eta * V[a] @ e_gx
        for b in range(a + 1, len(u)):
            drift[f"q{a + 1}{b + 1}"] = V[a] @ dV[b] + V[b] @ dV[a] + 2 * drag * u[a] * u[b]
    return drift


@pytest.mark.parametrize("pair", PAIRS, ids=["erf", "relu", "polynomial"])
def test_rank3_rhs_equals_independent_quadrature(pair):
    rng = np.random.default_rng(sum(map(ord, pair[0])))
    rank, mu, mu_perp = 3, 0.6, 0.35
    eta, batch, noise = sp.Rational(7, 10), 2, sp.Rational(1, 10)
    model = LoRAModel(*pair, pretraining="general", rank=rank, lr=eta, batch=batch, noise=noise)
    assert model.exact
    rhs = model.ode()
    geo = geometry("general", rank)
    for _ in range(2):
        star, perp, V, u = _random_state(rng, rank, general=True)
        point = {S.mu: sp.Float(mu, 30), S.mu_perp: sp.Float(mu_perp, 30)}
        point.update({geo.m[a]: sp.Float(V[a] @ star, 30) for a in range(rank)})
        point.update({geo.s[a]: sp.Float(V[a] @ perp, 30) for a in range(rank)})
        point.update({geo.u[a]: sp.Float(u[a], 30) for a in range(rank)})
        point.update({q: sp.Float(V[a] @ V[b], 30) for (a, b), q in geo.q.items()})
        expected = _independent_drift(pair, star, perp, V, u, mu, mu_perp, float(eta), batch, float(noise))
        for state, value in rhs.items():
            derived = float(sp.N(value.xreplace(point), 20))
            assert derived == pytest.approx(expected[state.name], abs=1e-10, rel=1e-10), state


def test_linearisation_is_the_derivative_of_the_ode_for_any_overlaps():
    rng = np.random.default_rng(3)
    for pretraining in ("aligned", "general"):
        model = LoRAModel("x", teacher="x + x**2/2", pretraining=pretraining, rank=3)
        lin = model.linearization()
        states = model.states
        rhs = model.ode()
        geo = geometry(pretraining, 3)
        point = {q: sp.Rational(int(rng.integers(-40, 40)), 100) for q in geo.q.values()}
        point.update({st: 0 for st in lin.fixed_point})
        point.update({S.mu: sp.Rational(2, 5), S.mu_perp: sp.Rational(3, 10)})
        jac = sp.Matrix([[sp.diff(rhs[i], j) for j in states] for i in states]).xreplace(point)
        assert sp.simplify(jac - lin.jacobian.xreplace(point)) == sp.zeros(len(states), len(states))
        # every mode at the random start (K = I) has the rank-1 rate
        rank1 = LoRAModel("x", teacher="x + x**2/2", pretraining=pretraining).linearization()
        assert sp.simplify(lin.tau - rank1.tau) == 0


def test_modes_follow_the_gram_spectrum():
    # sigma = sigma* = x: a = 1 - mu, b = 1; a mode of Gram eigenvalue k grows at (-b k + sqrt(b² k² + 4a²))/2
    lin = LoRAModel("x", rank=3).linearization()
    mu, a, b = sp.Rational(1, 2), 0.5, 1.0
    gram = np.array([[1.0, 0.5, 0.1], [0.5, 1.0, -0.3], [0.1, -0.3, 1.0]])
    names = {sp.Symbol("q12", real=True): 0.5, sp.Symbol("q13", real=True): 0.1, sp.Symbol("q23", real=True): -0.3}
    jac = np.array(lin.jacobian.xreplace({S.mu: mu, **names}), dtype=float)
    rates = np.sort(np.linalg.eigvals(jac).real)
    expected = [(-b * k + s * math.sqrt(b * b * k * k + 4 * a * a)) / 2 for k in np.linalg.eigvalsh(gram) for s in (-1, 1)]
    np.testing.assert_allclose(rates[rates != 0], np.sort(expected), rtol=1e-12)
    assert lin.tau_q is None  # no real-radical spectrum from rank 3 on: the numbers above instead
    assert float(lin.tau_fastest.subs(S.mu, mu)) == pytest.approx(2.0)  # 1/|a| (b > 0, dependent directions)
    assert float(LoRAModel("x", rank=2).linearization().tau_q.subs({S.mu: mu, S.q12: 0})) == pytest.approx(
        float(lin.tau.subs(S.mu, mu)))


# ---------------------------------------------------------------------------
# finite d


def test_rank3_sgd_follows_the_ode_after_alignment():
    from symlora.simulate import compare_with_ode, simulate_sgd

    model = LoRAModel("x", rank=3, lr=sp.Rational(1, 2))
    deviations = []
    for d in (500, 4000):
        runs = simulate_sgd(model, 0.5, d, seeds=12, seed=7, method="reduced", stop_at_escape=False, t_max=45)
        comparison = compare_with_ode(model, runs, align=0.1, horizon=4.0)
        assert comparison.aligned.all()
        # per run, the largest |m_SGD - m_ODE| over the three directions and 4 time units after alignment;
        # its mean over runs with the standard error of that mean
        gap = np.abs(np.stack([comparison.sgd[n] - comparison.ode[n] for n in ("m1", "m2", "m3")]))
        per_run = np.nanmax(gap, axis=(0, 2))
        deviations.append((per_run.mean(), per_run.std(ddof=1) / math.sqrt(per_run.size)))
    (small_d, small_err), (large_d, large_err) = deviations
    # fluctuations of O(d^{-1/2}): eight times d shrinks the gap by about sqrt(8) ≈ 2.8 (measured: 0.011 -> 0.0030)
    assert large_d < small_d / 2 + 3 * math.hypot(small_err / 2, large_err)
    assert large_d * math.sqrt(4000) < 0.5
