"""The diffusion of the summary statistics: exact identities, the drift it must
reproduce, independent quadrature (mpmath, Gauss–Hermite) and Monte Carlo of
the real per-step SGD increments."""

import mpmath
import numpy as np
import pytest
import sympy as sp

from symlora import LoRAModel
from symlora import _symbols as S
from symlora._diffusion import field_values, increment_mean


def test_fixed_point_diffusion_of_x_is_exact():
    eta, B, Delta = sp.symbols("eta B Delta", positive=True)
    model = LoRAModel("x", lr=eta, batch=B, noise=Delta)
    D0 = model.diffusion_at_fixed_point()
    # e0 = (mu - 1) nu, sigma' = 1: V = (1 - mu)^2 + Delta
    assert sp.simplify(D0[1, 1] - eta**2 / B * ((1 - S.mu) ** 2 + Delta)) == 0
    assert D0[0, 0] == 0 and D0[0, 1] == 0


def test_full_diffusion_of_x_closed_form():
    # sigma = x: g = lambda - nu, h_u = g zeta, all Gaussian: Var[g zeta] by Isserlis
    model = LoRAModel("x")
    m, u, mu = S.m, S.u, S.mu
    var_g = (mu - 1) ** 2 + u**2 + 2 * (mu - 1) * u * m  # Var(lambda - nu)
    cov_gz = (mu - 1) * m + u  # Cov(lambda - nu, zeta)
    expected_uu = var_g + cov_gz**2  # E[g^2 z^2] - E[g z]^2 = Var g Var z + Cov^2
    assert sp.simplify(model.diffusion()[1, 1] - expected_uu) == 0


def test_fixed_point_is_limit_of_full_matrix():
    for name in ("relu", "x**3 - 3*x"):
        model = LoRAModel(name)
        f = model.diffusion_function()
        for mu in (0.2, 0.7):
            at_zero = f(1e-7, 1e-7, mu)
            expected = float(model.diffusion_at_fixed_point()[1, 1].subs(S.mu, sp.nsimplify(mu)))
            assert at_zero[1, 1] == pytest.approx(expected, rel=1e-6)
            assert abs(at_zero[0, 0]) < 1e-10 and abs(at_zero[0, 1]) < 1e-6
            # exactly at the fixed point the generated code takes the one-sided limit u -> 0+
            assert f(0.0, 0.0, mu)[1, 1] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "model",
    [
        LoRAModel("relu", lr=sp.Rational(1, 2), batch=2, noise=sp.Rational(1, 10)),
        LoRAModel("x**3 - 3*x", lr=sp.Rational(1, 3)),
        LoRAModel("x", pretraining="general"),
        LoRAModel("x**2 - 1", rank=2, lr=sp.Rational(1, 3)),
    ],
    ids=["relu-noise", "He3", "x-general", "He2-rank2"],
)
def test_increment_mean_is_the_ode_drift(model):
    """-η E[h_i] must be the drift: checks the forms L_i, K_i behind the covariance."""
    mean, values, ode = increment_mean(model), field_values(model), model.ode(in_terms_of_QR=True)
    point = {st: sp.Rational(k + 2, 11) for k, st in enumerate(model.states)}
    point.update({S.mu: sp.Rational(2, 5), S.mu_perp: sp.Rational(1, 3)})
    for st in model.states:
        lhs = float((-model.lr * mean[st]).xreplace(values).subs(point))
        rhs = float(ode[st].subs(model.overlaps()).subs(point))
        assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-14)


def test_diffusion_is_symmetric_and_positive_semidefinite():
    for model in (LoRAModel("relu"), LoRAModel("x", pretraining="general"), LoRAModel("x", rank=2)):
        f = model.diffusion_function()
        rng = np.random.default_rng(3)
        n = len(model.states)
        for _ in range(3):
            states = list(rng.uniform(-0.6, 0.6, n))
            params = [0.4] + ([0.3] if model.pretraining == "general" else [])
            if model.rank == 2:
                states[-1] = 0.2  # q12
            D = f(*states, *params)
            assert np.allclose(D, D.T)
            assert np.linalg.eigvalsh(D).min() > -1e-10


@pytest.mark.parametrize("name", ["relu", "tanh"])
def test_fixed_point_noise_against_mpmath_quadrature(name):
    """D_uu at m = u = 0 is η²/B E[(σ(μν) - σ*(ν))² σ'(μν)²]: a 1-D integral, checked with mpmath."""
    model = LoRAModel(name)
    mu = 0.4
    sig, dsig = model.student.numpy(0), model.student.numpy(1)
    mpmath.mp.dps = 20
    reference = mpmath.quad(lambda t: (sig(mu * float(t)) - sig(float(t))) ** 2 * dsig(mu * float(t)) ** 2
                            * mpmath.npdf(t), [-mpmath.inf, 0, mpmath.inf])
    from symlora._asymptotics import _high_precision

    value, error = _high_precision(model.diffusion_at_fixed_point()[1, 1].subs(S.mu, sp.Rational(2, 5)), 20)
    assert value == pytest.approx(float(reference), rel=1e-9, abs=max(error, 1e-14))


def test_polynomial_diffusion_against_gauss_hermite():
    """He3: every entry against tensor Gauss–Hermite in the independent pair (ν, ζ⊥) (exact for polynomials)."""
    model = LoRAModel("x**3 - 3*x", lr=sp.Rational(1, 2), batch=2)
    eta, B = 0.5, 2
    z, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()
    nu, zp = np.meshgrid(z, z, indexing="ij")
    W = np.outer(w, w)
    sig, dsig = model.student.numpy(0), model.student.numpy(1)
    for mu, m, u in [(0.3, 0.4, 0.5), (0.7, -0.2, 0.3)]:
        zeta = m * nu + np.sqrt(1 - m * m) * zp
        lam = mu * nu + u * zeta
        g = (sig(lam) - sig(nu)) * dsig(lam)
        h = [u * g * (nu - m * zeta) + eta / (2 * B) * m * u * u * g * g, g * zeta]
        expected = np.array([[eta**2 / B * ((W * a * b).sum() - (W * a).sum() * (W * b).sum()) for b in h] for a in h])
        assert np.allclose(model.diffusion_function()(m, u, mu), expected, rtol=1e-9)


def _one_step_increments(model, mu, m, u, d, n, seed, eta=1.0):
    """Exact one-step increments (Δm, Δu) of the d-dimensional SGD (B = 1) from v = m e1 + sqrt(1-m²) e2.

    The input's coordinates outside span(e1, e2) enter only through their squared
    norm, a chi-square with d - 2 degrees of freedom (same law as the full model).
    """
    rng = np.random.default_rng(seed)
    sig, dsig, teacher = model.student.numpy(0), model.student.numpy(1), model.teacher.numpy(0)
    y = rng.standard_normal((n, 2))
    rest = rng.chisquare(d - 2, size=n)
    s = np.sqrt(1 - m * m)
    nu, zeta = y[:, 0], m * y[:, 0] + s * y[:, 1]
    lam = mu * nu + u * zeta
    g = (sig(lam) - teacher(nu)) * dsig(lam)
    c = eta / d * u * g
    a1, a2 = m - c * y[:, 0], s - c * y[:, 1]
    m_new = a1 / np.sqrt(a1 * a1 + a2 * a2 + c * c * rest)
    return m_new - m, -eta / d * g * zeta


@pytest.mark.parametrize("name,mu,m,u", [("relu", 0.5, 0.3, 0.8), ("x", 0.3, 0.6, 1.0), ("tanh", 0.4, -0.4, 0.9)])
def test_diffusion_against_monte_carlo_of_sgd_steps(name, mu, m, u):
    model = LoRAModel(name)
    d, n = 4000, 200_000
    dm, du = _one_step_increments(model, mu, m, u, d, n, seed=12)
    X = np.vstack([dm - dm.mean(), du - du.mean()]) * d  # per-step covariance is D/d²
    D = model.diffusion_function()(m, u, mu)
    for i in range(2):
        for j in range(2):
            p = X[i] * X[j]
            z = (p.mean() - D[i, j]) / (p.std() / np.sqrt(n))
            assert abs(z) < 4.5, (i, j, p.mean(), D[i, j])


def test_diffusion_appears_in_latex_and_generated_code():
    model = LoRAModel("x")
    tex = model.to_latex(body_only=True)
    assert "Diffusion" in tex
    out = model.diffusion_function()(np.array([0.1, 0.2]), np.array([0.3, 0.4]), 0.5)
    assert out.shape == (2, 2, 2)


def _rank_r_step_increments(model, star, perp, V, u, mu, mu_perp, d, n, seed):
    """``n`` independent SGD steps of the rank-r learner from one state, written from the definition.

    The directions live in the first ``k`` coordinates (``star``, ``perp``, rows of ``V``); the other
    ``d - k`` coordinates of the ``B`` inputs enter only through their Gram matrix, a Wishart matrix
    with ``d - k`` degrees of freedom, so the step is exact without drawing ``d`` numbers per input.
    Returns the increments of the statistics in the order of ``model.states``.
    """
    from scipy.stats import wishart

    rng = np.random.default_rng(seed)
    r, k = V.shape
    B, eta = int(model.batch), float(model.lr)
    noise = float(model.noise)
    sig, dsig, teacher = model.student.numpy(0), model.student.numpy(1), model.teacher.numpy(0)
    X = rng.standard_normal((n, B, k))
    rest = wishart.rvs(df=d - k, scale=np.eye(B), size=n, random_state=rng).reshape(n, B, B)
    gram = X @ X.transpose(0, 2, 1) + rest  # x_b·x_c over all d coordinates
    w = mu * star + mu_perp * perp + u @ V
    lam, nu = X @ w, X @ star
    zeta = X @ V.T  # (n, B, r)
    labels = teacher(nu) + np.sqrt(noise) * rng.standard_normal((n, B))
    g = (sig(lam) - labels) * dsig(lam)
    c = -eta / d * u[None, None, :] * g[:, :, None] / B  # v_a <- v_a + Σ_b c_ba x_b (then normalised)
    low = V[None] + np.einsum("nba,nbk->nak", c, X)
    # |v_a + Σ c x|² and (v_a + Σ c x)·(v_b + Σ c x): the low part plus Σ_bc c_ba c_cb' <x_b, x_c>_rest
    inner = low @ low.transpose(0, 2, 1) + np.einsum("nba,nbc,nce->nae", c, rest, c)
    norms = np.sqrt(np.einsum("naa->na", inner))
    new = {"m": (low @ star) / norms, "s": (low @ perp) / norms,
           "u": u - eta / d * np.einsum("nb,nba->na", g, zeta) / B}
    old = {"m": V @ star, "s": V @ perp, "u": u}
    q_new = inner / norms[:, :, None] / norms[:, None, :]
    out = []
    for state in model.states:
        name = state.name
        if name.startswith("q"):
            a, b = int(name[1]) - 1, int(name[2]) - 1
            out.append(q_new[:, a, b] - V[a] @ V[b])
        else:
            a = int(name[1:]) - 1 if len(name) > 1 else 0
            out.append(new[name[0]][:, a] - old[name[0]][a])
    return np.array(out)


@pytest.mark.parametrize("pretraining", ["aligned", "general"])
def test_rank3_diffusion_against_monte_carlo_of_sgd_steps(pretraining):
    """Rank 3, batch 2, label noise: the covariance of one literal SGD step is D/d² (and its mean the drift/d)."""
    model = LoRAModel("x", teacher="x + x**3/3", pretraining=pretraining, rank=3, lr=sp.Rational(7, 10), batch=2,
                      noise=sp.Rational(1, 10))
    rng = np.random.default_rng(5)
    r, k = 3, 5
    star, perp = np.eye(k)[0], np.eye(k)[1]
    V = rng.standard_normal((r, k))
    if pretraining == "aligned":
        V[:, 1] = 0.0  # no w⊥ in the problem: keep the directions off it
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    u = np.array([0.8, -0.5, 0.3])
    mu, mu_perp = 0.5, (0.3 if pretraining == "general" else 0.0)
    d, n = 4000, 200_000
    steps = _rank_r_step_increments(model, star, perp, V, u, mu, mu_perp, d, n, seed=8)
    values = {"m": V @ star, "s": V @ perp, "u": u}
    state = []
    for st in model.states:
        name = st.name
        state.append(V[int(name[1]) - 1] @ V[int(name[2]) - 1] if name.startswith("q") else values[name[0]][int(name[1:]) - 1])
    params = [mu] + ([mu_perp] if pretraining == "general" else [])
    D = np.asarray(model.diffusion_function()(*state, *params), dtype=float)
    point = dict(zip(model.states, state))
    point.update(dict(zip(model.parameters, params)))
    X = (steps - steps.mean(axis=1, keepdims=True)) * d
    worst = 0.0
    for i in range(len(state)):
        for j in range(i, len(state)):
            p = X[i] * X[j]
            z = (p.mean() - D[i, j]) / (p.std() / np.sqrt(n))
            worst = max(worst, abs(z))
    assert worst < 4.5
    rhs = model.ode()
    for i, st in enumerate(model.states):  # the mean step is drift/d
        expected = float(rhs[st].subs(point))
        z = (steps[i].mean() * d - expected) / (steps[i].std() * d / np.sqrt(n))
        assert abs(z) < 4.5, (st, steps[i].mean() * d, expected)
    # a wrong D fails: halving the u-noise is many standard errors away
    iu = [i for i, st in enumerate(model.states) if st.name == "u1"][0]
    p = X[iu] ** 2
    assert abs(p.mean() - D[iu, iu] / 2) / (p.std() / np.sqrt(n)) > 10


@pytest.mark.parametrize("student,teacher,noise", [("tanh", None, 0), ("tanh", "relu", sp.Rational(1, 4))])
def test_integration_by_parts_equals_the_direct_three_field_quadrature(student, teacher, noise):
    """The fast route of the diffusion (ζ removed by Gaussian integration by parts, two-dimensional nodes
    evaluated like the drift's) against the direct three-dimensional quadrature over (λ, ν, ζ), at one state."""
    from symlora import GaussianExpectation
    from symlora._diffusion import _fields, _integrated_by_parts, _label_average, _XI
    from symlora._expectation import evaluate_with_error, gaussian_expectation

    model = LoRAModel(student, teacher, noise=noise)
    fields, cov, _ = _fields(model)
    lam, nu, zeta = fields
    g = (model.student(lam) - model.teacher(nu) - sp.sqrt(model.noise) * _XI) * model.student.derivative_at(lam)
    mu, m, u = sp.Rational(2, 5), sp.Rational(-3, 10), sp.Rational(7, 10)
    at = {S.Q: mu**2 + 2 * mu * m * u + u**2, S.R: mu + m * u, sp.Symbol("C", real=True): mu * m + u, S.m: m}
    for expr in (g**2 * zeta**2, g**2 * nu * zeta, g * zeta, g**3 * zeta):
        expr = _label_average(expr)
        direct = gaussian_expectation(expr, fields, cov)
        assert any(len(node.variables) == 3 for node in direct.atoms(GaussianExpectation))
        reduced = _integrated_by_parts(expr, fields, cov)
        assert all(len(node.variables) <= 2 for node in reduced.atoms(GaussianExpectation))
        (value, error), (reference, reference_error) = evaluate_with_error(reduced, at), evaluate_with_error(direct, at)
        # within both routes' error bounds, and far closer than the 3-D rule's loose bound (~1e-7) requires:
        # measured differences are ~1e-14
        assert abs(value - reference) <= min(error + reference_error, 1e-11), (expr, value, reference)
    # and the derived matrix uses only the two-dimensional nodes
    assert all(len(node.variables) <= 2 for entry in model.diffusion() for node in entry.atoms(GaussianExpectation))
