"""Finite-d one-pass SGD: invariants, agreement with the ODE, the log d law."""

import json
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp

from symlora import LoRAModel, activation
from symlora.simulate import ODEComparison, SGDResult, compare_with_ode, escape_slope, simulate_sgd
from symlora.cli import main

METHODS = ["full", "reduced"]


@pytest.fixture(scope="module")
def linear():
    return LoRAModel("x")


@pytest.fixture(scope="module")
def relu():
    return LoRAModel("relu")


# ------------------------------------------------------------- invariants


@pytest.mark.parametrize("method", METHODS)
def test_reproducible_and_seed_dependent(linear, method):
    a = simulate_sgd(linear, 0.5, 64, t_max=3.0, seeds=4, seed=7, method=method)
    b = simulate_sgd(linear, 0.5, 64, t_max=3.0, seeds=4, seed=7, method=method)
    c = simulate_sgd(linear, 0.5, 64, t_max=3.0, seeds=4, seed=8, method=method)
    np.testing.assert_array_equal(a.m, b.m)
    np.testing.assert_array_equal(a.escape_time, b.escape_time)
    assert not np.allclose(a.m, c.m)
    # the runs of one call differ from each other
    assert len({tuple(row) for row in a.m[:, 1:].round(12)}) == 4
    assert a.m.shape == (4, a.t.size) and a.t[0] == 0 and a.seed == 7
    assert isinstance(a, SGDResult) and a.method == method


@pytest.mark.parametrize("method", METHODS)
def test_run_does_not_depend_on_its_companions_or_threads(linear, method):
    # every run has its own stream and one thread: run k is bit for bit the same
    # with more runs or threads
    few = simulate_sgd(linear, 0.5, 300, t_max=2.0, seeds=2, seed=3, threads=1, method=method)
    many = simulate_sgd(linear, 0.5, 300, t_max=2.0, seeds=5, seed=3, threads=2, method=method)
    np.testing.assert_array_equal(many.m[:2], few.m)
    np.testing.assert_array_equal(many.u[:2], few.u)
    np.testing.assert_array_equal(many.escape_time[:2], few.escape_time)


@pytest.mark.parametrize("method", METHODS)
def test_blown_up_runs_are_diverged_not_censored(method, recwarn):
    # He3 at mu = 0.5, eta = 1: u overflows in some runs (issue: they used to count as censored)
    res = simulate_sgd(LoRAModel("He3"), 0.5, 1000, seeds=6, seed=0, lr=1.0, method=method)
    diverged = res.status == "diverged"
    assert res.diverged == diverged.sum() >= 1
    assert res.censored + res.diverged + res.escaped.sum() == 6
    # the step is recorded, within the horizon; escape times stay inf for these runs
    assert np.all(np.isfinite(res.diverge_time[diverged])) and np.all(res.diverge_time[diverged] <= res.horizon / res.d)
    assert np.all(np.isinf(res.diverge_time[~diverged])) and np.all(np.isinf(res.escape_time[diverged]))
    # the run's last records are its blown-up state; the others stayed on the sphere
    assert not np.all(np.isfinite(res.u[diverged][:, -1]))
    assert res.v_norm_error < 1e-9
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    fit = escape_slope([1000, 2000], [res, res])
    assert fit.diverged.tolist() == [res.diverged] * 2 and fit.censored.tolist() == [res.censored] * 2
    assert "diverged runs" in fit.message


def test_cli_reports_diverged_runs(capsys):
    code = main(["simulate", "--student", "He3", "--mu", "0.5", "--d", "1000", "--seeds", "6",
                 "--method", "reduced", "--format", "json"])
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert code == 0 and payload["diverged"][0] >= 1
    assert payload["censored"][0] + payload["diverged"][0] <= 6
    assert "Warning" not in captured.err


def test_seed_none_is_recorded_and_reproduces(linear):
    first = simulate_sgd(linear, 0.5, 50, steps=200, seeds=2, seed=None)
    again = simulate_sgd(linear, 0.5, 50, steps=200, seeds=2, seed=first.seed)
    np.testing.assert_array_equal(first.m, again.m)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["aligned", "general", "rank2", "rank3general"])
def test_unit_directions_after_every_step(method, kind):
    model = {"aligned": LoRAModel("relu", batch=3, noise=0.5), "general": LoRAModel("x", pretraining="general"),
             "rank2": LoRAModel("x", rank=2), "rank3general": LoRAModel("x", pretraining="general", rank=3, batch=2)}[kind]
    kwargs = {"mu_perp": 0.3} if kind in ("general", "rank3general") else {}
    res = simulate_sgd(model, 0.5, 120, t_max=6.0, seeds=3, seed=1, record_every=1, method=method,
                       stop_at_escape=False, **kwargs)
    assert res.stats["v_norm"].shape == (3, 6 * 120 + 1)
    assert res.v_norm_error < 1e-12
    expected = {"aligned": {"m", "u"}, "general": {"m", "s", "u"}, "rank2": {"m1", "m2", "u1", "u2", "q12"},
                "rank3general": {f"{k}{a}" for k in "msu" for a in (1, 2, 3)} | {"q12", "q13", "q23"}}[kind]
    assert set(res.stats) == expected | {"v_norm"}
    if kind == "rank3general":
        # the Gram matrix of (w*, w_perp, v_1, v_2, v_3) stays positive semi-definite at every record
        m = [res.stats[f"m{a}"] for a in (1, 2, 3)]
        s_ = [res.stats[f"s{a}"] for a in (1, 2, 3)]
        q = {(0, 1): res.stats["q12"], (0, 2): res.stats["q13"], (1, 2): res.stats["q23"]}
        gram = np.zeros(res.stats["m1"].shape + (5, 5))
        gram[..., 0, 0] = gram[..., 1, 1] = 1
        for a in range(3):
            gram[..., 2 + a, 2 + a] = 1
            gram[..., 0, 2 + a] = gram[..., 2 + a, 0] = m[a]
            gram[..., 1, 2 + a] = gram[..., 2 + a, 1] = s_[a]
        for (a, b), values in q.items():
            gram[..., 2 + a, 2 + b] = gram[..., 2 + b, 2 + a] = values
        assert np.linalg.eigvalsh(gram).min() > -1e-10
    if kind == "rank2":
        assert np.all(np.abs(res.stats["q12"]) <= 1 + 1e-12)
    if kind == "general":
        assert np.all(res.stats["m"] ** 2 + res.stats["s"] ** 2 <= 1 + 1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_given_initial_overlap_and_censoring(relu, method):
    res = simulate_sgd(relu, 0.5, 400, t_max=0.5, seeds=3, seed=0, m0=0.05, method=method)
    np.testing.assert_allclose(res.m[:, 0], 0.05)
    np.testing.assert_allclose(res.u[:, 0], 0.0)
    # far too short a horizon: nobody escapes, and the result says so
    assert np.all(np.isinf(res.escape_time))
    assert res.status.tolist() == ["censored"] * 3
    assert res.censored == 3 and res.steps == res.horizon == 200


@pytest.mark.parametrize("method", METHODS)
def test_random_start_is_uniform_on_the_sphere(linear, method):
    res = simulate_sgd(linear, 0.5, 2500, steps=1, seeds=400, seed=3, method=method)
    # sqrt(d) m0 is close to a standard normal
    z = np.sqrt(2500) * res.m[:, 0]
    assert abs(np.mean(z)) < 0.2 and 0.85 < np.std(z) < 1.15


@pytest.mark.parametrize("method", METHODS)
def test_rank3_start_law(method):
    res = simulate_sgd(LoRAModel("x", rank=3), 0.5, 900, steps=1, seeds=400, seed=5, method=method)
    # three independent uniform directions: every m_a sqrt(d) and q_ab sqrt(d) is close to a standard normal
    # (400 draws: the mean within 0.2 and the spread within 15 % fail with probability below 1e-4 each)
    for name in ("m1", "m2", "m3", "q12", "q13", "q23"):
        z = np.sqrt(900) * res.stats[name][:, 0]
        assert abs(np.mean(z)) < 0.2 and 0.85 < np.std(z) < 1.15, name


def test_label_noise_changes_the_run():
    quiet = simulate_sgd(LoRAModel("x"), 0.5, 100, t_max=2.0, seeds=2, seed=1)
    noisy = simulate_sgd(LoRAModel("x", noise=1), 0.5, 100, t_max=2.0, seeds=2, seed=1)
    assert not np.allclose(quiet.u, noisy.u)


def test_escape_time_is_first_record_crossing(linear):
    res = simulate_sgd(linear, 0.5, 200, seeds=4, seed=2, record_every=1)
    assert res.status.tolist() == ["escaped"] * 4
    for k in range(4):
        first = res.t[np.argmax(np.abs(res.m[k]) >= 0.5)]
        assert res.escape_time[k] == pytest.approx(first)


def test_memory_does_not_grow_with_steps(linear):
    def peak(steps):
        tracemalloc.start()
        simulate_sgd(linear, 0.5, 2000, steps=steps, seeds=4, seed=0, record_every=10**9,
                     stop_at_escape=False, threads=1)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top

    short, long = peak(500), peak(5000)
    # inputs are drawn into one reused chunk buffer, never kept
    assert long < 1.2 * short + 2**20


def test_result_is_frozen(linear):
    res = simulate_sgd(linear, 0.5, 50, steps=20, seeds=2)
    with pytest.raises(AttributeError):
        res.d = 3
    with pytest.raises(ValueError):
        res.escape_time[0] = 1.0
    with pytest.raises(TypeError):
        res.stats["m"] = None


def test_symbolic_rates_need_numbers():
    model = LoRAModel("x", lr=sp.Symbol("eta", positive=True))
    res = simulate_sgd(model, 0.5, 50, steps=20, seeds=2, lr=0.5)
    assert res.lr == 0.5


@pytest.mark.parametrize("method", METHODS)
def test_float32(linear, method):
    res = simulate_sgd(linear, 0.5, 300, seeds=4, seed=1, dtype=np.float32)
    assert res.status.tolist() == ["escaped"] * 4
    assert res.v_norm_error < 1e-5


# ------------------------------------------------- full and reduced agree


@pytest.mark.slow
def test_full_and_reduced_simulate_the_same_process(relu):
    full = simulate_sgd(relu, 0.5, 300, seeds=96, seed=11, method="full")
    reduced = simulate_sgd(relu, 0.5, 300, seeds=96, seed=12, method="reduced")
    assert full.censored == reduced.censored == 0
    a, b = full.escape_time, reduced.escape_time
    se = np.hypot(np.std(a, ddof=1) / np.sqrt(a.size), np.std(b, ddof=1) / np.sqrt(b.size))
    assert abs(np.mean(a) - np.mean(b)) < 3 * se
    # the spreads agree too (ratio of standard deviations)
    assert 0.75 < np.std(a) / np.std(b) < 1.33
    # and the whole laws: two-sample Kolmogorov-Smirnov
    from scipy import stats

    assert stats.ks_2samp(a, b).pvalue > 1e-3


@pytest.mark.parametrize("kind", ["general", "rank2"])
def test_full_and_reduced_agree_for_general_pretraining_and_rank_two(kind):
    # the reduced chain's fixed directions (w⊥) and its two-vector frame against the literal SGD,
    # with a batch and label noise on the way
    if kind == "general":
        model, kwargs = LoRAModel("x", pretraining="general", batch=2, noise=0.5), {"mu_perp": 0.3}
    else:
        model, kwargs = LoRAModel("x", rank=2), {}
    full = simulate_sgd(model, 0.5, 80, seeds=160, seed=21, method="full", **kwargs)
    reduced = simulate_sgd(model, 0.5, 80, seeds=160, seed=22, method="reduced", **kwargs)
    from scipy import stats

    # escape times with inf for runs censored at the common horizon (rank 2: about a third of the
    # runs stay on the plateau in |m1|, in both simulators): the laws, and the censored fractions
    a, b = full.escape_time, reduced.escape_time
    assert stats.ks_2samp(a, b).pvalue > 1e-3
    p = (full.censored + reduced.censored) / (2 * 160)
    assert abs(full.censored - reduced.censored) / 160 <= 3.5 * np.sqrt(2 * p * (1 - p) / 160) + 1e-12
    assert full.diverged == reduced.diverged == 0


# --------------------------------------------------------------- the ODE


def _exact_linear_ode(m0, u0, t, mu, eta=1.0, B=1, delta=0.0):
    """docs/theory.md §3 for σ = σ* = x, aligned rank 1, by scipy."""
    from scipy.integrate import solve_ivp

    def rhs(_, y):
        m, u = y
        Q, R = mu**2 + u**2 + 2 * mu * u * m, mu + u * m
        G2 = Q - 2 * R + 1
        return [-eta * u * (mu - 1) * (1 - m**2) - eta**2 / (2 * B) * u**2 * m * (G2 + delta),
                -eta * (u + (mu - 1) * m)]

    sol = solve_ivp(rhs, (0, t[-1]), [m0, u0], t_eval=t, rtol=1e-10, atol=1e-12)
    return sol.y


def test_model_ode_matches_the_exact_linear_ode(linear):
    # guards the comparison below: model.integrate is the ODE of docs/theory.md §3
    t = np.linspace(0, 5, 11)
    sol = linear.integrate(0.5, 0.1, 0.2, 5.0, t_eval=t)
    exact = _exact_linear_ode(0.1, 0.2, t, 0.5)
    np.testing.assert_allclose(sol.states["m"], exact[0], atol=1e-7)
    np.testing.assert_allclose(sol.states["u"], exact[1], atol=1e-7)


@pytest.mark.slow
def test_trajectories_follow_ode_after_alignment(linear):
    res = simulate_sgd(linear, 0.5, 3000, seeds=8, seed=2, stop_at_escape=False, t_max=24.0)
    comparison = compare_with_ode(linear, res, align=0.1)
    assert isinstance(comparison, ODEComparison)
    assert comparison.aligned.all()
    # the seed-to-seed spread of the SGD trajectories on the common clock (0.2 here)
    spread = float(np.max(np.std(np.abs(res.m), axis=0)))
    assert comparison.max_deviation < 0.1
    assert comparison.max_deviation < 0.35 * spread
    # run to run, the deviation is O(d^-1/2) and of the size of the spread left after
    # alignment (same noise source): root-mean-square over runs at every time
    deviation = comparison.sgd["m"] - comparison.ode["m"]
    counted = np.sum(~np.isnan(deviation), axis=0) >= 4
    rms = np.sqrt(np.nanmean(deviation[:, counted] ** 2, axis=0))
    assert np.max(rms) < 2 * comparison.spread
    assert np.max(rms) < 3 / np.sqrt(res.d)
    # independent check of one run against the exact ODE of σ = σ* = x
    k = 0
    ok = ~np.isnan(comparison.sgd["m"][k])
    exact = _exact_linear_ode(comparison.sgd["m"][k, 0], comparison.sgd["u"][k, 0], comparison.t[ok], 0.5)
    np.testing.assert_allclose(comparison.ode["m"][k, ok], exact[0], atol=1e-6)
    assert np.max(np.abs(comparison.sgd["m"][k, ok] - exact[0])) < 0.1


def test_compare_with_ode_uses_the_runs_rates():
    # the runs used lr = 0.5 on a model with lr = 1: the ODE must use 0.5
    model = LoRAModel("x")
    res = simulate_sgd(model, 0.5, 400, seeds=2, seed=4, lr=0.5, stop_at_escape=False, t_max=40.0,
                       method="reduced")
    comparison = compare_with_ode(model, res, align=0.1, horizon=10.0)
    k = int(np.argmax(comparison.aligned))
    ok = ~np.isnan(comparison.ode["m"][k])
    exact = _exact_linear_ode(comparison.sgd["m"][k, 0], comparison.sgd["u"][k, 0], comparison.t[ok], 0.5,
                              eta=0.5)
    np.testing.assert_allclose(comparison.ode["m"][k, ok], exact[0], atol=1e-6)
    assert comparison.t[-1] == pytest.approx(10.0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["general", "rank2"])
def test_compare_with_ode_other_models(kind):
    if kind == "general":
        model, kwargs = LoRAModel("x", pretraining="general"), {"mu_perp": 0.2}
    else:
        model, kwargs = LoRAModel("x", rank=2), {}
    res = simulate_sgd(model, 0.5, 4000, seeds=3, seed=6, t_max=20.0, method="reduced", stop_at_escape=False,
                       **kwargs)
    comparison = compare_with_ode(model, res, align=0.1)
    assert comparison.aligned.any()
    assert comparison.max_deviation < 0.15


# ------------------------------------------------------------ the log d law


@pytest.mark.slow
@pytest.mark.parametrize("student, mu, ds, seeds", [
    ("x", 0.5, [100, 1000, 10000], 96),
    ("relu", 0.5, [100, 600, 3600], 128),
])
def test_escape_time_grows_like_tau_over_two_eta_log_d(student, mu, ds, seeds):
    model = LoRAModel(student)
    runs = [simulate_sgd(model, mu, d, seeds=seeds, seed=100 + i, method="reduced") for i, d in enumerate(ds)]
    fit = escape_slope(ds, runs)
    assert fit.censored.sum() == 0 and fit.used.all()
    predicted = float(model.tau(mu)) / (2 * float(model.lr))
    assert fit.slope == pytest.approx(predicted, rel=0.2)
    assert abs(fit.slope - predicted) < 3 * fit.slope_sem


def test_relu_escapes_twice_as_slowly_as_linear(linear, relu):
    # τ_ReLU = 2 τ_x exactly (docs/theory.md §4), so at equal d the log d part doubles
    assert float(relu.tau(0.5)) == pytest.approx(2 * float(linear.tau(0.5)))


# ------------------------------------------------------------ escape_slope


def test_escape_slope_exact_line():
    ds = [10, 100, 1000]
    times = [np.array([1.0, 1.2]), np.array([3.0, 3.4]), np.array([5.0, 5.8])]
    fit = escape_slope(ds, times)
    # means 1.1, 3.2, 5.4 with sems 0.1, 0.2, 0.4: weighted fit by hand
    x, y, w = np.log(ds), np.array([1.1, 3.2, 5.4]), 1 / np.array([0.1, 0.2, 0.4]) ** 2
    X = np.stack([x, np.ones(3)], axis=1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    coef = cov @ X.T @ (w * y)
    assert fit.slope == pytest.approx(coef[0])
    assert fit.slope_sem == pytest.approx(np.sqrt(cov[0, 0]))
    assert fit.intercept == pytest.approx(coef[1])
    np.testing.assert_allclose(fit.sem, [0.1, 0.2, 0.4])
    assert fit.success and fit.message == ""


def test_escape_slope_censored_runs_are_reported_not_averaged():
    ds = [10, 100, 1000]
    times = [np.array([1.0, 1.2, np.inf]), np.array([3.0, 3.4]), np.array([5.0, 5.8])]
    excluded = escape_slope(ds, times)
    assert excluded.censored.tolist() == [1, 0, 0]
    assert excluded.used.tolist() == [False, True, True]
    assert excluded.slope == pytest.approx(2.2 / np.log(10))
    assert "d=10: 1/3" in excluded.message
    dropped = escape_slope(ds, times, on_censored="drop")
    assert dropped.used.all() and "biased low" in dropped.message
    with pytest.raises(ValueError, match="censored runs"):
        escape_slope(ds, times, on_censored="raise")


def test_escape_slope_without_enough_data_says_so():
    fit = escape_slope([10, 100], [np.array([np.inf, np.inf]), np.array([1.0, 2.0])])
    assert not fit.success and np.isnan(fit.slope) and "no slope" in fit.message


def test_escape_slope_bad_input():
    with pytest.raises(ValueError, match="on_censored"):
        escape_slope([10, 100], [[1.0, 2.0], [3.0, 4.0]], on_censored="ignore")
    with pytest.raises(TypeError, match="integers"):
        escape_slope([10.5, 100], [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="sets of escape times"):
        escape_slope([10, 100], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="at least two"):
        escape_slope([10], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="at least 2"):
        escape_slope([1, 100], [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="no runs"):
        escape_slope([10, 100], [[], [3.0, 4.0]])
    with pytest.raises(ValueError, match=">= 0 or inf"):
        escape_slope([10, 100], [[np.nan, 2.0], [3.0, 4.0]])


# ------------------------------------------------------------- bad input


def test_simulate_bad_input(linear):
    model = linear
    with pytest.raises(TypeError, match="LoRAModel"):
        simulate_sgd("x", 0.5, 10)
    sign = SimpleNamespace(student=activation("sign"), teacher=activation("sign"), pretraining="aligned", rank=1,
                           lr=sp.S.One, batch=sp.S.One, noise=sp.S.Zero)
    with pytest.raises(ValueError, match="Dirac delta"):
        simulate_sgd(sign, 0.5, 10, steps=5)
    with pytest.raises(ValueError, match="d must be at least 2"):
        simulate_sgd(model, 0.5, 1)
    with pytest.raises(ValueError, match="at least 3"):
        simulate_sgd(LoRAModel("x", rank=2), 0.5, 2)
    with pytest.raises(TypeError, match="d must be an integer"):
        simulate_sgd(model, 0.5, 10.5)
    with pytest.raises(TypeError, match="seeds must be an integer"):
        simulate_sgd(model, 0.5, 10, seeds=2.0)
    with pytest.raises(ValueError, match="seeds"):
        simulate_sgd(model, 0.5, 10, seeds=0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        simulate_sgd(model, 0.5, 10, seed="0")
    with pytest.raises(ValueError, match="seed must be >= 0"):
        simulate_sgd(model, 0.5, 10, seed=-1)
    with pytest.raises(ValueError, match="method"):
        simulate_sgd(model, 0.5, 10, method="fast")
    with pytest.raises(ValueError, match="dtype"):
        simulate_sgd(model, 0.5, 10, dtype=np.int64)
    with pytest.raises(ValueError, match="mu must be >= 0"):
        simulate_sgd(model, -0.5, 10)
    with pytest.raises(ValueError, match="mu must be finite"):
        simulate_sgd(model, float("nan"), 10)
    with pytest.raises(TypeError, match="mu must be a real number"):
        simulate_sgd(model, "0.5", 10)
    with pytest.raises(ValueError, match="is symbolic"):
        simulate_sgd(model, sp.Symbol("mu"), 10)
    with pytest.raises(ValueError, match="mu_perp is only used"):
        simulate_sgd(model, 0.5, 10, mu_perp=0.3)
    with pytest.raises(ValueError, match="threshold"):
        simulate_sgd(model, 0.5, 10, threshold=1.5)
    with pytest.raises(ValueError, match="lr must be positive"):
        simulate_sgd(model, 0.5, 10, lr=0)
    with pytest.raises(ValueError, match="batch"):
        simulate_sgd(model, 0.5, 10, batch=1.5)
    with pytest.raises(ValueError, match="batch"):
        simulate_sgd(model, 0.5, 10, batch=0)
    with pytest.raises(ValueError, match="noise"):
        simulate_sgd(model, 0.5, 10, noise=-1)
    with pytest.raises(ValueError, match="m0"):
        simulate_sgd(model, 0.5, 10, m0=1.0)
    with pytest.raises(ValueError, match="steps or t_max"):
        simulate_sgd(model, 0.5, 10, steps=5, t_max=1.0)
    with pytest.raises(ValueError, match="steps must be a positive"):
        simulate_sgd(model, 0.5, 10, steps=0)
    with pytest.raises(TypeError, match="steps must be an integer"):
        simulate_sgd(model, 0.5, 10, steps=5.0)
    with pytest.raises(ValueError, match="t_max"):
        simulate_sgd(model, 0.5, 10, t_max=-1.0)
    with pytest.raises(ValueError, match="record_every"):
        simulate_sgd(model, 0.5, 10, steps=5, record_every=0)
    with pytest.raises(TypeError, match="record_every"):
        simulate_sgd(model, 0.5, 10, steps=5, record_every=1.5)
    with pytest.raises(ValueError, match="threads"):
        simulate_sgd(model, 0.5, 10, steps=5, threads=0)
    with pytest.raises(ValueError, match="no finite escape time"):
        simulate_sgd(model, 1.0, 10)  # tau is infinite at mu = 1 for σ = σ*
    with pytest.raises(ValueError, match="lr is symbolic in the model"):
        simulate_sgd(LoRAModel("x", lr=sp.Symbol("eta", positive=True)), 0.5, 10, steps=5)


def test_compare_with_ode_bad_input(linear):
    res = simulate_sgd(LoRAModel("x", rank=2), 0.5, 10, steps=5)
    with pytest.raises(ValueError, match="pass the model that was simulated"):
        compare_with_ode(linear, res)
    with pytest.raises(TypeError, match="SGDResult"):
        compare_with_ode(linear, {"m": 1})
    good = simulate_sgd(linear, 0.5, 10, steps=5)
    with pytest.raises(ValueError, match="align"):
        compare_with_ode(linear, good, align=1.0)
    with pytest.raises(ValueError, match="horizon"):
        compare_with_ode(linear, good, horizon=0.0)


# ---------------------------------------------------------- command line


def test_cli_simulate_json(capsys):
    code = main(["simulate", "--student", "x", "--mu", "0.5", "--d", "100,400,1600", "--seeds", "24",
                 "--method", "reduced", "--format", "json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["d"] == [100, 400, 1600]
    assert payload["censored"] == [0, 0, 0]
    assert payload["predicted_slope"] == pytest.approx(float(LoRAModel("x").tau(0.5)) / 2)
    assert payload["escape_time_mean"][2] > payload["escape_time_mean"][0]
    assert payload["slope"] > 0 and payload["slope_sem"] > 0
    assert {"mu", "tau", "lr", "batch", "runs_per_d", "seed_per_d"} <= set(payload)


def test_cli_simulate_table_reports_censoring(capsys):
    code = main(["simulate", "--student", "x", "--mu", "0.5", "--d", "50,100", "--seeds", "3", "--t-max", "0.2",
                 "--format", "table"])
    out = capsys.readouterr().out
    assert code == 0 and "censored" in out and "no slope" in out


@pytest.mark.parametrize("argv, message", [
    (["--d", "1,100"], "at least 2"),
    (["--d", "10,abc"], "invalid d list"),
    (["--d", "100", "--threshold", "1.5"], "(0, 1)"),
    (["--d", "100", "--seeds", "0"], "at least 1"),
    (["--d", "100", "--mu", "-1"], "mu"),
    (["--d", "100", "--seed", "-3"], "seed"),
])
def test_cli_simulate_bad_arguments(capsys, argv, message):
    base = ["simulate", "--student", "x"] + ([] if "--mu" in argv else ["--mu", "0.5"])
    with pytest.raises(SystemExit) as info:
        main(base + argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_simulate_refuses_a_dirac_student(capsys):
    assert main(["simulate", "--student", "sign", "--mu", "0.5", "--d", "100"]) == 2
    err = capsys.readouterr().err
    assert "Dirac delta" in err and len(err.strip().splitlines()) == 1
