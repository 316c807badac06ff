"""LoRAModel: ODE derivation and small-overlap asymptotics (docs/theory.md §3-4)."""

import mpmath
import numpy as np
import pytest
import sympy as sp

from symlora import LoRAModel, is_exact
from symlora import _symbols as S
from symlora._asymptotics import ode_jacobian_at_fixed_point, tau_from

mu, m, u = S.mu, S.m, S.u


# --------------------------------------------------------------------------
# exact linearisations


@pytest.mark.parametrize(
    "student, teacher, a, b",
    [
        ("x", None, 1 - mu, 1),
        ("relu", None, (1 - mu) / 2, sp.Rational(1, 2)),
        ("x", "x**2", -mu, 1),
        # He2: a = -E[(He2(mu nu) - He2(nu)) 2 mu nu * nu] and b = E[4 mu^2 nu^2] + E[e0 * 2]
        ("He2", None, -6 * mu * (mu**2 - 1), 2 * (3 * mu**2 - 1)),
    ],
)
def test_exact_linearisation(student, teacher, a, b):
    lin = LoRAModel(student, teacher).linearization()
    assert lin.exact
    assert sp.simplify(lin.a - a) == 0
    assert sp.simplify(lin.b - b) == 0


def test_relu_tau_is_twice_linear_tau():
    ratio = LoRAModel("relu").linearization().tau / LoRAModel("x").linearization().tau
    assert sp.simplify(ratio) == 2


def test_hermite_pairs_exact_and_critical_mu():
    he3 = LoRAModel("He3")
    roots = he3.critical_mu((0, 1))
    # a(mu) = -9 mu (mu - 1)(5 mu^3 + 5 mu^2 + mu - 1): roots 0, 1 and one in between
    assert roots[0] == 0 and roots[-1] == 1
    inner = [r for r in roots if 0 < r < 1]
    assert len(inner) == 1
    assert sp.N(5 * inner[0] ** 3 + 5 * inner[0] ** 2 + inner[0] - 1, 30) == pytest.approx(0, abs=1e-25)
    assert float(inner[0]) == pytest.approx(0.320724347323, rel=1e-10)
    he5 = LoRAModel("He5").critical_mu((0, 1))
    assert [float(r) for r in he5] == pytest.approx([0.0, 0.42530573386, 1.0], abs=1e-10)


# --------------------------------------------------------------------------
# against independent quadrature


def _reference_ab(sigma, dsigma, d2sigma, teacher, mu_value):
    """a, b of docs/theory.md §4 by mpmath.quad with hand-written derivatives."""
    mpmath.mp.dps = 30
    mu_value = mpmath.mpf(mu_value)

    def expect(f):
        return mpmath.quad(lambda t: f(t) * mpmath.npdf(t), [-mpmath.inf, 0, mpmath.inf])

    def e0(t):
        return sigma(mu_value * t) - teacher(t)

    a = -expect(lambda t: e0(t) * dsigma(mu_value * t) * t)
    b = expect(lambda t: dsigma(mu_value * t) ** 2 + e0(t) * d2sigma(mu_value * t))
    return float(a), float(b)


_tanh = (mpmath.tanh, lambda t: 1 - mpmath.tanh(t) ** 2, lambda t: -2 * mpmath.tanh(t) * (1 - mpmath.tanh(t) ** 2))
_sig = lambda t: 1 / (1 + mpmath.exp(-t))  # noqa: E731
_sigmoid = (_sig, lambda t: _sig(t) * (1 - _sig(t)), lambda t: _sig(t) * (1 - _sig(t)) * (1 - 2 * _sig(t)))
_erf = (
    mpmath.erf,
    lambda t: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-t * t),
    lambda t: -4 * t / mpmath.sqrt(mpmath.pi) * mpmath.exp(-t * t),
)


@pytest.mark.parametrize("name, funcs", [("tanh", _tanh), ("sigmoid", _sigmoid), ("erf", _erf)])
@pytest.mark.parametrize("mu_value", [0.1, 0.5, 0.9, 1.7])
def test_linearisation_against_mpmath(name, funcs, mu_value):
    sigma, dsigma, d2sigma = funcs
    a_ref, b_ref = _reference_ab(sigma, dsigma, d2sigma, sigma, mu_value)
    values = LoRAModel(name).linearization().values(mu_value)
    assert values["a"] == pytest.approx(a_ref, rel=1e-10, abs=1e-14)
    assert values["b"] == pytest.approx(b_ref, rel=1e-10, abs=1e-14)
    assert values["tau"] == pytest.approx(tau_from(a_ref, b_ref), rel=1e-9)


def test_mixed_pair_against_mpmath():
    # tanh student, ReLU teacher: the teacher's kink at 0 is where quad splits
    a_ref, b_ref = _reference_ab(*_tanh, lambda t: max(t, 0), 0.6)
    values = LoRAModel("tanh", "relu").linearization().values(0.6)
    assert values["a"] == pytest.approx(a_ref, rel=1e-10)
    assert values["b"] == pytest.approx(b_ref, rel=1e-10)


def test_erf_closed_form_is_exact():
    lin = LoRAModel("erf").linearization()
    assert lin.exact and is_exact(lin.a) and not lin.a.has(sp.Integral)


# --------------------------------------------------------------------------
# the ODE


@pytest.mark.parametrize("pair", [("x", None), ("relu", None), ("erf", None), ("He3", None), ("x", "x**2"), ("tanh", None)])
@pytest.mark.parametrize("mu_value", [0.3, 0.8])
def test_jacobian_of_ode_equals_direct_integrals(pair, mu_value):
    model = LoRAModel(*pair)
    from_ode = ode_jacobian_at_fixed_point(model, mu_value)
    lin = model.linearization()
    values = lin.values(mu_value)
    direct = np.array([[0, values["a"]], [values["a"], -values["b"]]])
    tolerance = 1e-12 if model.exact else 1e-8  # quadrature nodes: 2-D Gauss-Hermite
    np.testing.assert_allclose(from_ode, direct, atol=tolerance, rtol=tolerance)


def test_linear_ode_closed_form():
    # sigma = sigma* = x: du/dt = -eta(u + (mu - 1) m), projected drift (mu - 1)(1 - m^2)
    model = LoRAModel("x", lr=S.eta, batch=S.B, noise=S.Delta)
    ode = model.ode()
    Q = mu**2 + u**2 + 2 * mu * u * m
    R = mu + u * m
    expected_m = -S.eta * u * (mu - 1) * (1 - m**2) - S.eta**2 / (2 * S.B) * u**2 * m * (Q - 2 * R + 1 + S.Delta)
    expected_u = -S.eta * (u + (mu - 1) * m)
    assert sp.simplify(ode[m] - expected_m) == 0
    assert sp.simplify(ode[u] - expected_u) == 0


@pytest.mark.parametrize("pair", [("x", None), ("He3", None), ("erf", None), ("x", "x**2"), ("He2", "He2(x)**2")])
def test_symmetry_u_v_sign_flip(pair):
    # (u, v) -> (-u, -v) leaves w unchanged: m -> -m, u -> -u, both right-hand sides odd
    ode = LoRAModel(*pair).ode()
    flip = {m: -m, u: -u}
    for state in (m, u):
        assert sp.simplify(ode[state].xreplace(flip) + ode[state]) == 0


def test_symmetry_relu_numeric():
    ode = LoRAModel("relu").ode()
    rng = np.random.default_rng(0)
    for _ in range(5):
        point = {mu: sp.Float(rng.uniform(0.1, 1.5)), m: sp.Float(rng.uniform(-0.9, 0.9)), u: sp.Float(rng.uniform(-1, 1))}
        flipped = {**point, m: -point[m], u: -point[u]}
        for state in (m, u):
            assert float(ode[state].subs(point)) == pytest.approx(-float(ode[state].subs(flipped)), abs=1e-12)


def test_ode_agrees_with_monte_carlo():
    # E[G zeta] and the projected drift by seeded Monte Carlo on the real fields
    model = LoRAModel("relu")
    ode = model.ode()
    point = {mu: sp.Rational(1, 2), m: sp.Rational(3, 10), u: sp.Rational(2, 5)}
    rng = np.random.default_rng(1)
    n = 2_000_000
    nu = rng.standard_normal(n)
    zeta = 0.3 * nu + np.sqrt(1 - 0.09) * rng.standard_normal(n)
    lam = 0.5 * nu + 0.4 * zeta
    G = (np.maximum(lam, 0) - np.maximum(nu, 0)) * (lam > 0)
    du_mc = -np.mean(G * zeta)
    du_err = 4 * np.std(G * zeta) / np.sqrt(n)
    assert float(ode[u].subs(point)) == pytest.approx(du_mc, abs=du_err)


def test_general_pretraining_reduces_to_aligned():
    general = LoRAModel("erf", pretraining="general")
    aligned = LoRAModel("erf")
    g = general.ode()
    a = aligned.ode()
    at_zero = {S.mu_perp: 0, S.s: 0}
    for state in (m, u):
        point = {mu: sp.Rational(1, 2), m: sp.Rational(1, 5), u: sp.Rational(1, 3)}
        assert float(g[state].subs(at_zero).subs(point)) == pytest.approx(float(a[state].subs(point)), rel=1e-12)
    lin = general.linearization()
    assert float(lin.tau.subs({mu: sp.Rational(1, 2), S.mu_perp: sp.Rational(1, 10**6)})) == pytest.approx(
        float(aligned.linearization().tau.subs(mu, sp.Rational(1, 2))), rel=1e-4
    )


def test_rank2_reduces_to_rank1():
    r2 = LoRAModel("x", rank=2).ode()
    r1 = LoRAModel("x").ode()
    point = {mu: sp.Rational(1, 2), S.m1: sp.Rational(1, 5), S.u1: sp.Rational(1, 3), S.u2: 0, S.m2: sp.Rational(1, 7), S.q12: sp.Rational(1, 4)}
    assert float(r2[S.m1].subs(point)) == pytest.approx(float(r1[m].subs({mu: sp.Rational(1, 2), m: sp.Rational(1, 5), u: sp.Rational(1, 3)})))
    assert float(r2[S.u1].subs(point)) == pytest.approx(float(r1[u].subs({mu: sp.Rational(1, 2), m: sp.Rational(1, 5), u: sp.Rational(1, 3)})))
    # with u2 = 0 the second direction only moves through u2's own drift
    assert float(r2[S.m2].subs(point)) == 0


def test_series_of_linear_model():
    series = LoRAModel("x").series(2)
    assert sp.expand(series[u] - (-(u + (mu - 1) * m))) == 0
    assert sp.expand(series[m] - (-(mu - 1) * u)) == 0


# --------------------------------------------------------------------------
# asymptotic laws


def test_tau_blows_up_like_inverse_square_for_linear():
    limits = LoRAModel("x").tau_limits()
    assert limits["mu->1"]["exponent"] == -2
    assert limits["mu->1"]["coefficient"] == 1
    assert sp.simplify(limits["mu->0"]["coefficient"] - (1 + sp.sqrt(5)) / 2) == 0


def test_escape_law_log_d_prefactor():
    law = LoRAModel("x").escape_law(sp.Rational(1, 2))
    assert law.kind == "log"
    # tau(1/2) = (1 + sqrt(2)) / (2 * 1/4) = 2 (1 + sqrt 2); prefactor tau / 2
    assert sp.simplify(law.prefactor - (1 + sp.sqrt(2))) == 0


def test_escape_law_at_critical_mu():
    model = LoRAModel("He3")
    inner = [r for r in model.critical_mu((0, 1)) if 0 < r < 1][0]
    law = model.escape_law(inner)
    # the ODE line u = 0 is invariant at a = 0: the law is the finite-d, fluctuation-driven d log d
    assert "invariant" in law.derivation
    assert law.kind == "power" and law.exponent == 1 and law.log_factor
    assert float(law.prefactor) > 0
    # at mu = 1 the student fits the teacher: nothing drives the escape
    assert model.escape_law(1).kind == "none"


def test_ode_is_frozen_on_u_zero_at_critical_mu():
    model = LoRAModel("He3")
    inner = [r for r in model.critical_mu((0, 1)) if 0 < r < 1][0]
    ode = model.ode()
    for m_value in (sp.Rational(1, 10), sp.Rational(1, 2)):
        point = {mu: inner, m: m_value, u: 0}
        assert abs(sp.N(ode[u].subs(point), 40)) < 1e-30
        assert ode[m].subs(point) == 0


# --------------------------------------------------------------------------
# bad input


def test_bad_model_input():
    with pytest.raises(ValueError, match="pretraining"):
        LoRAModel("x", pretraining="weird")
    for rank in (0, 9, -1):
        with pytest.raises(ValueError, match="rank"):
            LoRAModel("x", rank=rank)
    with pytest.raises(TypeError, match="rank"):
        LoRAModel("x", rank=1.5)
    with pytest.raises(ValueError, match="lr"):
        LoRAModel("x", lr=-1)
    with pytest.raises(ValueError, match="batch"):
        LoRAModel("x", batch=2.5)
    with pytest.raises(ValueError, match="noise"):
        LoRAModel("x", noise=-0.1)
    with pytest.raises(TypeError, match="lr"):
        LoRAModel("x", lr="fast")
    with pytest.raises(ValueError, match="Dirac"):
        LoRAModel("sign")
    with pytest.raises(ValueError, match="unknown name"):
        LoRAModel("mish")
    with pytest.raises(ValueError, match="order"):
        LoRAModel("x").series(0)
    with pytest.raises(ValueError, match="interval"):
        LoRAModel("x").critical_mu((1, 0))
    with pytest.raises(ValueError, match="general"):
        LoRAModel("x").escape_law(sp.Rational(1, 2), mu_perp=sp.Rational(1, 3))


def test_models_are_cached_and_frozen():
    model = LoRAModel("erf")
    assert model.ode() is model.ode()
    assert model.linearization() is model.linearization()
    with pytest.raises(AttributeError):
        model.rank = 2
    assert LoRAModel("erf") == model and hash(LoRAModel("erf")) == hash(model)
