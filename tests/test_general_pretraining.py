"""General pre-training w0 = μ w* + μ⊥ w⊥: linearisation, critical set, escape law (docs/theory.md §4).

References are independent of symlora: α, β, b are computed from their
definitions as two-dimensional Gaussian integrals over the pair (λ0, ν) with
``mpmath`` (``conftest.mp_expect_2d``), β without Stein's lemma through
``ξ = (λ0 - μν)/μ⊥``, and the Dirac term of ReLU's ``σ''`` on the line
``λ0 = 0`` (``conftest.mp_expect_on_line``).
"""

import json

import mpmath
import numpy as np
import pytest
import sympy as sp

from conftest import assert_close, mp_erf, mp_expect_2d, mp_expect_on_line, mp_heaviside, mp_relu
from symlora import LoRAModel
from symlora import _symbols as S
from symlora._general_pretraining import (
    critical_curve,
    critical_set,
    fixed_point_line,
    general_coefficients,
)
from symlora._integrate import fit_escape_slope
from symlora._linearization import ode_jacobian_at_fixed_point, tau_from
from symlora.simulate import compare_with_ode, simulate_sgd


def _derf(x):
    return 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x)


def _d2erf(x):
    return -4 * x / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x)


# student, its first and second derivative (None: a Dirac delta at 0, ReLU), teacher
PAIRS = {
    "x": (lambda x: x, lambda x: mpmath.mpf(1), lambda x: 0, lambda x: x),
    "erf": (mp_erf, _derf, _d2erf, mp_erf),
    "relu": (mp_relu, mp_heaviside, None, mp_relu),
    "relu/x^2": (mp_relu, mp_heaviside, None, lambda x: x * x),
}
MODELS = {"x": ("x",), "erf": ("erf",), "relu": ("relu",), "relu/x^2": ("relu", "x**2")}


def _reference(label, mu, mu_perp):
    sigma, d1, d2, teacher = PAIRS[label]
    mu, mu_perp = mpmath.mpf(mu), mpmath.mpf(mu_perp)
    Q0 = mu**2 + mu_perp**2

    def expect(func):  # over (λ0, ν): Var λ0 = Q0, Cov = μ, Var ν = 1
        return mp_expect_2d(func, Q0, mu, 1)

    alpha = -expect(lambda lam, nu: (sigma(lam) - teacher(nu)) * d1(lam) * nu)
    beta = -expect(lambda lam, nu: (sigma(lam) - teacher(nu)) * d1(lam) * (lam - mu * nu) / mu_perp)
    if d2 is None:  # σ'' = δ(λ0): E[e0 δ(λ0)] on the line λ0 = 0
        b = expect(lambda lam, nu: d1(lam) ** 2) + mp_expect_on_line(lambda nu: sigma(0) - teacher(nu), Q0, mu, 1)
    else:
        b = expect(lambda lam, nu: d1(lam) ** 2 + (sigma(lam) - teacher(nu)) * d2(lam))
    return alpha, beta, b


CASES = [("x", "1/2", "3/10"), ("x", "6/5", "7/10"), ("erf", "1/2", "3/10"), ("erf", "6/5", "7/10"),
         ("relu", "1/2", "3/10"), ("relu", "3/10", "4/5"), ("relu/x^2", "1/2", "3/10"), ("relu/x^2", "6/5", "7/10")]


@pytest.mark.parametrize("label, mu, mu_perp", CASES)
def test_alpha_beta_b_tau_against_independent_quadrature(label, mu, mu_perp):
    model = LoRAModel(*MODELS[label], pretraining="general")
    c = general_coefficients(model)
    at = {S.mu: sp.Rational(mu), S.mu_perp: sp.Rational(mu_perp)}
    alpha, beta, b = _reference(label, sp.Rational(mu), sp.Rational(mu_perp))
    for name, ref in (("alpha", alpha), ("beta", beta), ("b", b)):
        assert_close(c[name].subs(at), ref, digits=10)
    a_ref = mpmath.sqrt(alpha**2 + beta**2)
    assert_close(c["a"].subs(at), a_ref, digits=10)
    assert_close(c["tau"].subs(at), (b + mpmath.sqrt(b**2 + 4 * a_ref**2)) / (2 * a_ref**2), digits=10)
    # the generated code used for grids and figures agrees as well
    fast = model.coefficients(float(sp.Rational(mu)), float(sp.Rational(mu_perp)))
    assert fast["tau"] == pytest.approx(float(tau_from(float(a_ref), float(b))), rel=1e-10)


@pytest.mark.parametrize("spec", [("x",), ("erf",), ("relu",), ("x", "x**2"), ("He3",), ("relu", "x**2")])
def test_mu_perp_zero_is_aligned_exactly(spec):
    general, aligned = LoRAModel(*spec, pretraining="general"), LoRAModel(*spec)
    c = general_coefficients(general)
    lin = aligned.linearization()
    zero = {S.mu_perp: 0}
    assert sp.simplify(c["alpha"].subs(zero) - lin.a) == 0
    assert sp.simplify(c["b"].subs(zero) - lin.b) == 0
    assert c["beta"].subs(zero) == 0
    assert general.critical_mu((0, 2), mu_perp=0) == aligned.critical_mu((0, 2))
    law, aligned_law = general.escape_law(sp.Rational(1, 2), mu_perp=0), aligned.escape_law(sp.Rational(1, 2))
    assert (law.kind, law.prefactor) == (aligned_law.kind, aligned_law.prefactor)
    assert law.derivation.startswith("μ⊥ = 0")


@pytest.mark.parametrize("spec", [("x",), ("relu",)])
def test_line_of_fixed_points_and_jacobian(spec):
    model = LoRAModel(*spec, pretraining="general")
    c = general_coefficients(model)
    rhs = model.ode()
    mu, mu_perp = sp.Rational(1, 2), sp.Rational(3, 10)
    params = {S.mu: mu, S.mu_perp: mu_perp}
    alpha, beta = (c[k].subs(params) for k in ("alpha", "beta"))
    # on {u = 0, α m + β s = 0}: every right-hand side vanishes
    s = sp.Rational(1, 5)
    on_line = {**params, S.s: s, S.m: -beta * s / alpha, S.u: 0}
    for state in model.states:
        assert abs(float(sp.N(rhs[state].subs(on_line), 30))) < 1e-25
    # off the line at u = 0: du/dt = η (α m + β s) exactly, m and s frozen
    off = {**params, S.s: s, S.m: sp.Rational(1, 7), S.u: 0}
    assert float(sp.N(rhs[S.u].subs(off) - model.lr * (alpha * off[S.m] + beta * s), 30)) == pytest.approx(0, abs=1e-25)
    assert float(sp.N(rhs[S.m].subs(off), 30)) == 0 and float(sp.N(rhs[S.s].subs(off), 30)) == 0
    assert abs(float(sp.N(fixed_point_line(model)["equation"].lhs.subs(on_line), 30))) < 1e-25
    # the hand-assembled Jacobian equals the derivative of the derived ODE
    jac = np.array(model.linearization().jacobian.subs(params).evalf(30), dtype=float)
    np.testing.assert_allclose(ode_jacobian_at_fixed_point(model, mu, mu_perp=mu_perp), jac, atol=1e-12)


@pytest.mark.parametrize("label, mu, mu_perp", [("relu", 0.5, 0.3), ("erf", 1.2, 0.7)])
def test_escape_from_tiny_start_has_slope_tau(label, mu, mu_perp):
    # T(eps) = τ log(1/eps) + const: the slope against log(1/eps) is τ (η = 1)
    model = LoRAModel(*MODELS[label], pretraining="general")
    eps = np.array([1e-4, 1e-6, 1e-8, 1e-10])
    result = model.escape_time(mu, eps, threshold=0.02, mu_perp=mu_perp)
    assert np.all(result.status == "escaped")
    slope, _ = fit_escape_slope(eps, result.time)
    assert slope == pytest.approx(model.coefficients(mu, mu_perp)["tau"], rel=2e-3)


def test_sgd_follows_the_ode_after_alignment():
    # relu, (μ, μ⊥) = (0.5, 0.3), d = 2000: after |m| first reaches 0.1 the SGD statistics follow the ODE
    # started from each run's own state; the deviation is a fluctuation O(d^{-1/2}) (measured: max 0.038,
    # root mean square 0.009 at 6 seeds, d^{-1/2} = 0.022)
    model = LoRAModel("relu", pretraining="general")
    d = 2000
    run = simulate_sgd(model, 0.5, d, seeds=4, seed=3, mu_perp=0.3, method="reduced", stop_at_escape=False,
                       t_max=50.0)
    comparison = compare_with_ode(model, run, align=0.1)
    assert comparison.aligned.all()
    for name in ("m", "s", "u"):
        deviation = comparison.sgd[name] - comparison.ode[name]
        assert np.nanmax(np.abs(deviation)) < 4 / np.sqrt(d)
        assert np.sqrt(np.nanmean(deviation**2)) < 1 / np.sqrt(d)
    # and the runs did leave the fixed point: |m| ends far above its start ~ d^{-1/2}
    assert np.all(np.abs(run.m[:, -1]) > 0.5)


def test_critical_set():
    # σ = σ* = x: a² = (1 - μ)² + μ⊥², the only critical point is w0 = w*
    x = critical_set(LoRAModel("x", pretraining="general"))
    assert [(p.mu, p.mu_perp) for p in x.points] == [(1, 0)]
    # He2: α = -6μ(Q0 - 1), b = 2(3Q0 - 1): an exact critical point off the axis at (0, 1/√3)
    he2 = critical_set(LoRAModel("He2", pretraining="general"))
    assert {(p.mu, p.mu_perp) for p in he2.points} == {(0, 0), (1, 0), (0, sp.sqrt(3) / 3)}
    assert all(p.exact for p in he2.points)
    # ReLU: b = 0 is the circle π(μ² + μ⊥²) = μ⊥; monotone pair: nothing off the axis
    relu = critical_set(LoRAModel("relu", pretraining="general"))
    mu, mp = sp.Symbol("mu"), sp.Symbol("mu_perp")
    assert sp.expand(relu.b_curve.lhs - (sp.pi * mu**2 + sp.pi * mp**2 - mp)) == 0
    assert [(p.mu, p.mu_perp) for p in relu.points] == [(1, 0)]
    assert "non-decreasing" in relu.statement
    # ReLU / x²: α ≡ 0 on μ = 0 and b(0, μ⊥) = 1/2 - 1/(√(2π) μ⊥): certified zero at √(2/π)
    mixed = critical_set(LoRAModel("relu", "x**2", pretraining="general"))
    edge = [p for p in mixed.points if p.mu == 0]
    assert len(edge) == 1 and edge[0].certified
    assert float(edge[0].mu_perp) == pytest.approx(float(sp.sqrt(2 / sp.pi)), abs=1e-12)


def test_critical_curves_exact_and_certified():
    relu = LoRAModel("relu", pretraining="general")
    # b = 0: exact points of the circle π(μ² + μ⊥²) = μ⊥
    for mu_perp, zeros in critical_curve(relu, "b", [sp.Rational(1, 10), sp.Rational(3, 10)]):
        (zero,) = zeros
        assert zeros.exact and sp.simplify(sp.pi * (zero**2 + mu_perp**2) - mu_perp) == 0
    # α = 0 (asin closed form): a certified bracket, and α vanishes there by the independent quadrature
    ((mu_perp, zeros),) = critical_curve(relu, "alpha", [sp.Rational(1, 2)])
    (detail,) = zeros.details
    assert detail.certified and not detail.exact and detail.error <= 1e-13
    alpha = _reference("relu", sp.Float(zeros[0], 20), mu_perp)[0]
    assert abs(alpha) < 1e-10


def test_escape_law_general():
    model = LoRAModel("x", pretraining="general")
    law = model.escape_law(sp.Rational(1, 2), mu_perp=sp.Rational(3, 10))
    # a² = 1/4 + 9/100 = 17/50, b = 1: τ = (1 + sqrt(1 + 4a²)) / (2a²)
    a2 = sp.Rational(17, 50)
    assert law.kind == "log"
    assert sp.simplify(law.prefactor - (1 + sp.sqrt(1 + 4 * a2)) / (4 * a2)) == 0
    # α = 0 (μ = 1): the linear escape is along w⊥ only; the law of m is "not derived", never "no escape"
    blind = model.escape_law(1, mu_perp=sp.Rational(3, 10))
    assert blind.kind == "not derived" and "no escape" not in str(blind)
    # a = 0 off the axis (He2 at (0, 1/√3)): not derived
    he2 = LoRAModel("He2", pretraining="general").escape_law(0, mu_perp=sp.sqrt(3) / 3)
    assert he2.kind == "not derived" and "no escape" not in str(he2)
    assert LoRAModel("He2", pretraining="general").critical_mu((0, 1), mu_perp=sp.sqrt(3) / 3) == (0,)
    # off the critical points the general critical μ set is empty (a >= μ⊥ |b| > 0 away from b = 0)
    assert LoRAModel("relu", pretraining="general").critical_mu((0, 2), mu_perp=0.3) == ()


def test_cli_law_general(capsys):
    from symlora.cli import main

    args = ["law", "--student", "x", "--pretraining", "general", "--mu-perp", "0.3", "--mu", "0.5,1"]
    assert main([*args, "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["mu_perp"] == 0.3 and payload["critical_set"]["points"][0] == {
        "mu": "1", "mu_perp": "0", "exact": True, "certified": True}
    assert [law["kind"] for law in payload["laws"]] == ["log", "not derived"]
    assert payload["laws"][0]["tau"] == pytest.approx((25 + 5 * 59**0.5) / 17, rel=1e-12)  # a² = 17/50, b = 1
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "general, mu_perp = 0.3" in text and "no escape" not in text


def test_general_bad_input():
    with pytest.raises(ValueError, match="general"):
        LoRAModel("x").critical_mu((0, 1), mu_perp=0.3)
    with pytest.raises(TypeError, match="mu_perp"):
        LoRAModel("x", pretraining="general").escape_law(0.5, mu_perp="0.3")
    with pytest.raises(ValueError, match="mu_perp"):
        LoRAModel("x", pretraining="general").escape_law(0.5, mu_perp=-0.1)
    with pytest.raises(ValueError, match="general"):
        general_coefficients(LoRAModel("x"))
    with pytest.raises(ValueError, match="aligned"):
        LoRAModel("x", pretraining="general").tau_limits()
