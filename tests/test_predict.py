"""Finite-d escape-time prediction against the reduced SGD simulator (small sizes;
the large validation lives in benchmarks/bench_predict.py)."""

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from symlora import LoRAModel, simulate_sgd
from symlora.cli import main


def _simulated(model, mu, d, seeds, seed, **kwargs):
    run = simulate_sgd(model, mu, d, seeds=seeds, seed=seed, method="reduced", record_every=10**9, **kwargs)
    assert run.censored == 0
    return run.escape_time


@pytest.mark.parametrize("student,teacher,mu,d", [("x", None, 0.3, 250), ("x", "x**2", 0.5, 500)])
def test_mean_and_distribution_match_reduced_sgd(student, teacher, mu, d):
    # (x / x**2 has a larger u-noise, F = 1.67: its O(d^-1/2) corrections need d = 500 at 400 runs)
    model = LoRAModel(student, teacher, lr=0.5)
    prediction = model.predict_escape(mu, [d])
    assert prediction.status == "asymptotic"
    times = _simulated(model, mu, d, seeds=400, seed=21)
    se = times.std(ddof=1) / math.sqrt(times.size)
    assert abs(times.mean() - prediction.mean[0]) < 3 * se
    assert stats.kstest(times, lambda t: prediction.cdf(t, d)).pvalue > 0.01
    assert prediction.std[0] == pytest.approx(times.std(ddof=1), rel=0.15)


def test_tanh_matches_its_stored_simulation():
    """tanh has no closed form: its path noise (C1, C2) needs the diffusion all along the path, fast only since
    ζ is removed by integration by parts.  Checked against the 1000 reduced-chain runs at d = 2500 that
    benchmarks/validate_predict.py stored (no simulation here)."""
    from pathlib import Path

    store = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "validate_predict_times.npz"
    d, steps = 2500, np.load(store)["tanh-0.3|2500|1000|4524"][:-1]
    assert steps.size == 1000 and np.all(steps >= 0)
    times = steps / d
    prediction = LoRAModel("tanh", lr=0.5).predict_escape(0.3, [d])
    se = times.std(ddof=1) / math.sqrt(times.size)
    assert abs(times.mean() - prediction.mean[0]) < 3 * se
    assert prediction.std[0] == pytest.approx(times.std(ddof=1), rel=0.1)
    assert stats.kstest(times, lambda t: prediction.cdf(t, d)).pvalue > 0.01


def test_spread_from_a_fixed_start_is_the_noise_of_u():
    """With m0 fixed, all the spread comes from the u-noise (F - 1): a prediction without it would be a point."""
    model = LoRAModel("x", lr=0.5)
    d, mu = 400, 0.3
    m0 = 1 / math.sqrt(d)
    prediction = model.predict_escape(mu, [d], m0=m0)
    F = prediction.settings["F"]
    assert F == pytest.approx(1 + 0.5 * (1 / prediction.settings["tau"]) * 0.49 / (2 * 0.49), rel=1e-9)
    times = _simulated(model, mu, d, seeds=300, seed=5, m0=m0)
    se = times.std(ddof=1) / math.sqrt(times.size)
    assert abs(times.mean() - prediction.mean[0]) < 3 * se
    assert prediction.std[0] == pytest.approx(times.std(ddof=1), rel=0.2)
    # the ODE from (m0, 0) alone has no spread at all, and on average the noise delays a fixed start
    ode_time = float(model.escape_time(mu, m0).time)
    assert prediction.mean[0] > ode_time and times.std() > 10 * abs(prediction.mean[0] - ode_time) / 3


def test_mean_grows_like_tau_log_d():
    model = LoRAModel("relu", lr=0.5)
    prediction = model.predict_escape(0.5, [1000, 10_000, 100_000])
    slope = np.diff(prediction.mean) / np.log(10)
    # O(d^-1/2) nonlinear corrections fade: 0.6 % between 1e3 and 1e4, 0.2 % between 1e4 and 1e5
    assert np.allclose(slope, prediction.settings["tau"] / (2 * 0.5), rtol=1e-2)
    assert abs(slope[1] / (prediction.settings["tau"] / (2 * 0.5)) - 1) < 5e-3
    # the spread tends to a limit independent of d (the 1/d path noise of _path_noise fades)
    assert prediction.std[1] == pytest.approx(prediction.std[2], rel=0.01)


def test_exact_no_escape_where_every_gradient_vanishes():
    # He2 at mu = 0: sigma'(0) = 0, so g = 0 for every sample while u = 0
    model = LoRAModel("x**2 - 1")
    prediction = model.predict_escape(0.0, [200])
    assert prediction.status == "exact" and math.isinf(prediction.mean[0])
    run = simulate_sgd(model, 0.0, 200, seeds=8, seed=1, method="reduced", t_max=20.0)
    assert np.all(run.u == 0) and np.all(run.status == "censored")
    assert np.allclose(run.m, run.m[:, :1])


def test_plateau_is_reported_and_seen_in_simulation():
    model = LoRAModel("x**3 - 3*x", lr=1)
    prediction = model.predict_escape(0.5, [2000])
    assert prediction.status == "no escape" and "plateau" in prediction.law
    plateau = prediction.settings["plateau"]
    assert 0.05 < plateau < 0.5
    # the ODE at the plateau is stationary
    run_ode = model.integrate(0.5, plateau, prediction.settings["plateau_u"], 50.0, t_eval=np.array([50.0]))
    assert abs(float(np.ravel(run_ode["m"])[-1]) - plateau) < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run = simulate_sgd(model, 0.5, 2000, seeds=16, seed=3, method="reduced", t_max=15.0)
    settled = np.abs(run.m[run.status == "censored", -1])
    assert settled.size >= 12  # censored, not slow
    assert np.median(settled) < 0.35


def test_critical_law_constants_match_the_independent_heuristic():
    model = LoRAModel("x**3 - 3*x")
    mu_c = model.critical_mu()[1]
    prediction = model.predict_escape(float(mu_c), [10_000, 100_000])
    law = model.escape_law(mu_c)
    assert prediction.settings["prefactor"] == pytest.approx(float(law.prefactor), rel=1e-6)
    # t ~ C d log d: the local exponent of d between 1e4 and 1e5 is near 1 + 1/log d
    exponent = np.log(prediction.mean[1] / prediction.mean[0]) / np.log(10)
    assert 1.0 < exponent < 1.35


def test_predict_cli_json_and_errors(capsys):
    assert main(["predict", "--student", "x", "--mu", "0.3", "--d", "250,1000", "--lr", "0.5",
                 "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["d"] == [250, 1000] and len(payload["mean"]) == 2 and payload["status"] == "asymptotic"
    assert payload["std"][0] > 0 and "log" in payload["law"]
    assert main(["predict", "--student", "x", "--mu", "0.3", "--d", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "d must be" in err


def test_bad_input():
    model = LoRAModel("x")
    with pytest.raises(TypeError, match="d must be"):
        model.predict_escape(0.3, "100")
    with pytest.raises(ValueError, match="threshold"):
        model.predict_escape(0.3, [100], threshold=1.5)
    with pytest.raises(ValueError, match="rank 1"):
        LoRAModel("x", rank=2).predict_escape(0.3, [100])


def test_noise_along_the_path_corrects_a_weakly_coupled_mismatched_pair():
    """x against x**2 at μ = 0.2: small λ+, large u-noise (V = 3.04); the 1/d path noise adds ~10 time units at d = 500.

    Without it (the effective start alone) the prediction was 160.2 against a simulated 171.1 ± 1.5 (2000 runs).
    """
    model = LoRAModel("x", "x**2", lr=0.5)
    d = 500
    prediction = model.predict_escape(0.2, [d])
    times = _simulated(model, 0.2, d, seeds=800, seed=8)
    se = times.std(ddof=1) / math.sqrt(times.size)
    assert abs(times.mean() - prediction.mean[0]) < 3 * se
    assert prediction.mean[0] - 160.2 > 3 * se  # the correction is resolved by this many runs
    assert prediction.std[0] == pytest.approx(times.std(ddof=1), rel=0.1)
