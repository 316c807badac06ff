"""Plateaus of the ODE at large η/B: the largest η that still escapes, checked against the reduced SGD simulator."""

import numpy as np
import pytest

from symlora import LoRAModel, simulate_sgd
from symlora._plateau import finite_d_law, largest_escaping_lr


def test_largest_escaping_lr_separates_escape_from_stall_in_sgd():
    model = LoRAModel("x**3 - 3*x", lr=1)
    escapes, stalls = largest_escaping_lr(model, 0.5)
    assert 0 < escapes < stalls < 1 and stalls - escapes < 0.015 * stalls
    # the ODE depends on η/B only: twice the batch doubles the largest η
    wide = largest_escaping_lr(LoRAModel("x**3 - 3*x", lr=1, batch=2), 0.5)
    assert wide[0] == pytest.approx(2 * escapes, rel=0.02)
    # SGD at d = 2000. 25 % below the bound every run escapes. The bound is a d -> infinity statement: just
    # above it the plateau is shallow (at 2x the bound the ODE settles at |m| = 0.33 while the runs spread
    # with sd ~ 0.09 and do cross 0.5), so the stall is checked far above it: at eta = 1 the ODE plateau is
    # |m| = 0.135 and no run reaches the threshold (large steps may diverge; those are reported as diverged)
    d = 2000
    horizon = 3 * float(LoRAModel("x**3 - 3*x", lr=0.75 * escapes).escape_time(0.5, d**-0.5).time)
    below = simulate_sgd(LoRAModel("x**3 - 3*x", lr=0.75 * escapes), 0.5, d, seeds=12, seed=3, method="reduced",
                         record_every=10**9, t_max=horizon)
    above = simulate_sgd(LoRAModel("x**3 - 3*x", lr=1), 0.5, d, seeds=12, seed=3, method="reduced",
                         record_every=10**9, t_max=horizon)
    assert np.all(below.escaped)
    assert not np.any(above.escaped)
    assert np.all(np.isinf(above.escape_time))
    assert above.censored + above.diverged == above.n_seeds


def test_finite_d_law_reports_the_plateau_and_the_escaping_ratio():
    status, law = finite_d_law(LoRAModel("x**3 - 3*x", lr=1), 0.5)
    assert status == "no escape" and "plateau" in law and "η/B <" in law
    assert finite_d_law(LoRAModel("x", lr=1), 0.5)[0] == "asymptotic"


def test_plateau_law_never_prints_a_zero_bound():
    # He4 at mu = 0.5 stalls for every eta/B on the searched grid: the law says so instead of "η/B < 0"
    status, law = finite_d_law(LoRAModel("He4", lr=1), 0.5)
    assert status == "no escape" and "plateau" in law
    assert "η/B < 0 " not in law + " " and "stalls for every η/B searched" in law


def test_escape_at_the_critical_mu_grows_like_a_power_of_d():
    # He3 at its critical mu (a = 0): the ODE from u0 = 0 never moves, escape is driven by the O(d^-1/2)
    # fluctuations of u and takes a time of order d (log d), not (τ/2η) log d; the local exponent of d
    # measured with 200 runs per d at eta = 0.5 is about 1.0 between d = 300 and 3000 (notebook 04)
    model = LoRAModel("x**3 - 3*x", lr=0.5)
    mu_c = float(model.critical_mu()[1])
    means = []
    for d in (400, 1600):
        run = simulate_sgd(model, mu_c, d, seeds=40, seed=d, method="reduced", record_every=10**9,
                           t_max=6 * d)
        assert run.censored == 0 and run.diverged <= 4
        means.append(float(np.mean(run.escape_time[run.escaped])))
    exponent = np.log(means[1] / means[0]) / np.log(4)
    assert 0.7 < exponent < 1.5, means


def test_kick_kurtosis_at_the_critical_mu_against_quadrature():
    # the excess kurtosis of one sample's g ζ at m = u = 0 sets where SGD reaches the drift-diffusion picture;
    # independent check: E[g^4] and E[g^2] by mpmath quadrature, with label noise Δ (g = (e0 - √Δ ξ) σ')
    import mpmath as mp

    from symlora._critical import critical_constants, u_excess_kurtosis

    model = LoRAModel("x**3 - 3*x", lr=0.5, noise=0.25)
    mu_c = float(model.critical_mu()[1])
    c = critical_constants(model, mu_c)
    he3 = lambda x: x**3 - 3 * x  # noqa: E731
    slope = lambda x: 3 * x**2 - 3  # noqa: E731

    def gauss(f):
        return mp.quad(lambda x: f(x) * mp.exp(-x * x / 2), [-mp.inf, 0, mp.inf]) / mp.sqrt(2 * mp.pi)

    e0 = lambda x: he3(mu_c * x) - he3(x)  # noqa: E731
    second = gauss(lambda x: (e0(x) ** 2 + 0.25) * slope(mu_c * x) ** 2)
    fourth = gauss(lambda x: (e0(x) ** 4 + 6 * 0.25 * e0(x) ** 2 + 3 * 0.25**2) * slope(mu_c * x) ** 4)
    assert abs(c["V"] - float(second)) < 1e-10 * float(second)
    assert abs(c["kick_kurtosis"] - float(3 * fourth / second**2 - 3)) < 1e-9 * c["kick_kurtosis"]
    # one relaxation time of u sums ~d/(ηb) steps; a batch of B divides the kurtosis of a step by B
    assert np.allclose(u_excess_kurtosis(c, 0.5, 4, [100, 1000]), c["kick_kurtosis"] * 0.5 * c["b"] / (4 * np.array([100, 1000])))


def test_critical_prediction_says_where_sgd_leaves_the_diffusion_picture():
    model = LoRAModel("x**3 - 3*x", lr=0.5)
    mu_c = float(model.critical_mu()[1])
    prediction = model.predict_escape(mu_c, [1000, 30000])
    kurtosis = prediction.settings["u_excess_kurtosis"]
    assert kurtosis[0] > 10 > kurtosis[1]
    assert "at d = [1000] it exceeds 10" in prediction.derivation


def test_killed_first_passage_against_closed_forms():
    # D T'' + f T' - k T = -1, T'(0) = 0, T(1) = 0 on a non-uniform grid, including a steep drift (f/D = 200)
    from scipy.integrate import cumulative_trapezoid

    from symlora._critical import _killed_first_passage

    m = np.unique(np.concatenate([np.linspace(0, 1, 600), np.geomspace(1e-4, 1, 600)]))
    D = np.full(m.size, 0.01)
    for f, k in [(0.0, 0.0), (0.0, 3.0), (2.0, 0.0), (-0.05, 0.0)]:
        T = _killed_first_passage(m, D, f / D[0] * np.diff(m), np.full(m.size, k), np.ones_like(m))
        if k:
            exact = (1 - np.cosh(m * np.sqrt(k / D)) / np.cosh(np.sqrt(k / D))) / k
        elif f == 0:
            exact = (1 - m**2) / (2 * D)
        else:
            slope = cumulative_trapezoid((1 - np.exp(-f * m / D)) / f, m, initial=0)
            exact = slope[-1] - slope
        assert np.max(np.abs(T - exact)) < 1e-4 * np.max(np.abs(exact)), (f, k)
