"""Finite-d one-pass SGD: invariants, agreement with the ODE, the log d law."""

import numpy as np
import pytest

from symlora import LoRAModel
from symlora._sgd import compare_with_ode, escape_slope, simulate_sgd


def test_reproducible_and_seed_dependent():
    model = LoRAModel("x")
    a = simulate_sgd(model, 0.5, 64, t_max=3.0, seeds=4, seed=7)
    b = simulate_sgd(model, 0.5, 64, t_max=3.0, seeds=4, seed=7)
    c = simulate_sgd(model, 0.5, 64, t_max=3.0, seeds=4, seed=8)
    np.testing.assert_array_equal(a.m, b.m)
    assert not np.allclose(a.m, c.m)
    assert a.v_norm_error < 1e-12
    assert a.m.shape == (4, a.t.size) and a.t[0] == 0


def test_initial_overlap_and_censoring():
    model = LoRAModel("relu")
    res = simulate_sgd(model, 0.5, 400, t_max=0.5, seeds=3, seed=0, m0=0.05)
    np.testing.assert_allclose(res.m[:, 0], 0.05)
    np.testing.assert_allclose(res.u[:, 0], 0.0)
    # far too short a horizon: nobody escapes, the result says so
    assert np.all(np.isinf(res.escape_time)) and list(res.status) == ["censored"] * 3
    assert res.censored == 3


def test_random_start_overlap_scale():
    res = simulate_sgd(LoRAModel("x"), 0.5, 2500, steps=1, seeds=64, seed=3)
    # v0 uniform on the sphere: sqrt(d) m0 is close to standard normal
    z = np.sqrt(2500) * res.m[:, 0]
    assert 0.7 < np.std(z) < 1.3


def test_general_and_rank2_run():
    general = simulate_sgd(LoRAModel("x", pretraining="general"), 0.5, 100, t_max=1.0, seeds=2, mu_perp=0.3)
    assert set(general.stats) == {"m", "s", "u"}
    rank2 = simulate_sgd(LoRAModel("x", rank=2), 0.5, 100, t_max=1.0, seeds=2)
    assert set(rank2.stats) == {"m1", "m2", "u1", "u2", "q12"}
    assert np.all(np.abs(rank2.stats["q12"]) <= 1 + 1e-12)


def test_label_noise_changes_the_run():
    quiet = simulate_sgd(LoRAModel("x"), 0.5, 100, t_max=2.0, seeds=2, seed=1)
    noisy = simulate_sgd(LoRAModel("x", noise=1), 0.5, 100, t_max=2.0, seeds=2, seed=1)
    assert not np.allclose(quiet.u, noisy.u)


@pytest.mark.slow
def test_trajectories_follow_ode_after_alignment():
    model = LoRAModel("x")
    res = simulate_sgd(model, 0.5, 2000, seeds=8, seed=2, stop_at_escape=False, t_max=30.0)
    comparison = compare_with_ode(model, res, align=0.1)
    assert comparison["aligned"].all()
    # after alignment the runs agree with the ODE to O(d^-1/2), far inside the
    # seed-to-seed spread of the unaligned trajectories
    spread = np.max(np.std(np.abs(res.m), axis=0))
    assert comparison["max_deviation"] < 0.1
    assert comparison["max_deviation"] < 0.5 * spread


@pytest.mark.slow
@pytest.mark.parametrize("student, mu", [("x", 0.5), ("relu", 0.2)])
def test_escape_time_grows_like_tau_over_two_eta_log_d(student, mu):
    # m0 = d^(-1/2) keeps the law (log(1/m0) = log(d)/2) and removes the spread of |m0|
    model = LoRAModel(student)
    ds = [125, 250, 500, 1000]
    runs = [simulate_sgd(model, mu, d, seeds=48, seed=10 + i, m0=d**-0.5) for i, d in enumerate(ds)]
    fit = escape_slope(ds, [r.escape_time for r in runs])
    assert fit.censored.sum() == 0
    predicted = float(model.tau(mu)) / (2 * float(model.lr))
    assert fit.slope == pytest.approx(predicted, rel=0.2)


def test_escape_slope_fit():
    ds = [100, 1000]
    fit = escape_slope(ds, [np.array([1.0, 1.2, np.inf]), np.array([3.0, 3.4])])
    assert fit.slope == pytest.approx((3.2 - 1.1) / np.log(10))
    assert fit.censored.tolist() == [1, 0]
    with pytest.raises(ValueError, match="two values of d"):
        escape_slope(ds, [np.array([np.inf]), np.array([1.0, 2.0])])


def test_bad_input():
    model = LoRAModel("x")
    with pytest.raises(ValueError, match="d must be at least 2"):
        simulate_sgd(model, 0.5, 1)
    with pytest.raises(ValueError, match="at least 3"):
        simulate_sgd(LoRAModel("x", rank=2), 0.5, 2)
    with pytest.raises(TypeError, match="d must be an integer"):
        simulate_sgd(model, 0.5, 10.5)
    with pytest.raises(ValueError, match="seeds"):
        simulate_sgd(model, 0.5, 10, seeds=0)
    with pytest.raises(ValueError, match="mu"):
        simulate_sgd(model, -0.5, 10)
    with pytest.raises(ValueError, match="threshold"):
        simulate_sgd(model, 0.5, 10, threshold=1.5)
    with pytest.raises(ValueError, match="lr"):
        simulate_sgd(model, 0.5, 10, lr=0)
    with pytest.raises(ValueError, match="batch"):
        simulate_sgd(model, 0.5, 10, batch=1.5)
    with pytest.raises(ValueError, match="noise"):
        simulate_sgd(model, 0.5, 10, noise=-1)
    with pytest.raises(ValueError, match="m0"):
        simulate_sgd(model, 0.5, 10, m0=1.0)
    with pytest.raises(ValueError, match="steps or t_max"):
        simulate_sgd(model, 0.5, 10, steps=5, t_max=1.0)
    with pytest.raises(ValueError, match="steps"):
        simulate_sgd(model, 0.5, 10, steps=0)
    with pytest.raises(ValueError, match="t_max"):
        simulate_sgd(model, 0.5, 10, t_max=-1.0)
    with pytest.raises(ValueError, match="record_every"):
        simulate_sgd(model, 0.5, 10, steps=5, record_every=0)
    with pytest.raises(ValueError, match="symbolic"):
        import sympy as sp

        simulate_sgd(LoRAModel("x", lr=sp.Symbol("eta", positive=True)), 0.5, 10, steps=5)
    with pytest.raises(ValueError, match="aligned rank-1"):
        res = simulate_sgd(LoRAModel("x", rank=2), 0.5, 10, steps=5)
        compare_with_ode(LoRAModel("x", rank=2), res)
