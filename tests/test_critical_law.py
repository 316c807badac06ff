"""He3 at its critical μ: the d log d law against the drift + diffusion SDE (benchmarks/critical_he3_diffusion.py).

A short live SDE run at one d against ``predict_escape``, and the stored long runs (d = 10³ … 3·10⁵) against
the law's prefactor computed here.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from symlora import LoRAModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from critical_he3 import MU_C, fitted_exponent, log_slope  # noqa: E402
from critical_he3_diffusion import escape_times, read_rows, sde_kernel  # noqa: E402


def test_sde_kernel_evaluates_the_generated_drift_and_diffusion():
    # the numba kernel integrates the package's own drift and diffusion (printed by the one code generator)
    from symlora._codegen import compile_ode

    model = LoRAModel("He3", lr=0.5)
    kernel = sde_kernel(model)
    compiled = compile_ode(model.ode_system())
    diffusion = model.diffusion_function()
    rng = np.random.default_rng(3)
    for m, u in zip(rng.uniform(-0.6, 0.6, 20), rng.normal(0, 0.05, 20)):
        f = compiled.rhs(np.array([m, u]), MU_C)
        D = diffusion(m, u, MU_C)
        np.testing.assert_allclose(kernel.drift(m, u, MU_C), f, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(kernel.diffusion(m, u, MU_C), [D[0, 0], D[0, 1], D[1, 1]], rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(kernel.damping(m, u, MU_C), compiled.jacobian(np.array([m, u]), MU_C)[1, 1],
                                   rtol=1e-11, atol=1e-14)
    with pytest.raises(ValueError, match="polynomial"):
        sde_kernel(LoRAModel("relu", lr=0.5))


def test_sde_at_the_critical_mu_agrees_with_predict_escape():
    # 300 paths at d = 10^4 (exponential step, dt = 0.1; halving dt moves the mean by < 1 s.e., theory §5.3)
    model = LoRAModel("He3", lr=0.5)
    d = 10_000
    times = escape_times(model, d, 300, 0.1, 0.5, seed=2024)
    assert np.all(np.isfinite(times))
    mean, se = times.mean(), times.std(ddof=1) / np.sqrt(times.size)
    predicted = float(model.predict_escape(MU_C, [d]).mean[0])
    assert abs(mean - predicted) < 3 * se, (mean, se, predicted)
    # and not the leading law alone, which misses the O(d) term by ~35 % here
    law = model.predict_escape(MU_C, [d]).settings["prefactor"] * d * np.log(d)
    assert abs(mean - law) > 10 * se


@pytest.mark.parametrize("lr, dt, d_min, decades", [(0.5, 0.1, 1000, 2), (1.0, 0.05, 10_000, 1)])
def test_stored_sde_runs_follow_the_d_log_d_law(lr, dt, d_min, decades):
    # t ≈ C d log d + C' d: t/d is linear in log d with slope C = bB/(η²Vκ), derived from drift + diffusion;
    # the stored SDE rows (exponential step; rows at other dt are the step check) span two decades and more at
    # η = 0.5; at η = 1 the finite-d terms are larger and the line is reached from d = 10^4 on (theory §5.3)
    from symlora._critical import critical_constants

    rows = [r for r in read_rows(ROOT / "notebooks" / "data" / "critical_he3_diffusion.csv")
            if r["scheme"] == "exponential" and float(r["lr"]) == lr and float(r["dt"]) == dt and int(r["d"]) >= d_min]
    d = np.array([float(r["d"]) for r in rows])
    t, se = (np.array([float(r[k]) for r in rows]) for k in ("sde_mean", "sde_se"))
    assert d.max() / d.min() >= 10**decades and np.all(se < 0.025 * t)
    assert all(int(r["escaped"]) == int(r["runs"]) for r in rows)  # a censored path would bias the mean low
    c = critical_constants(LoRAModel("He3", lr=lr), MU_C)
    prefactor = c["b"] / (lr**2 * c["V"] * (c["kappa0"] - lr * c["V"] / 2))
    slope, slope_se = log_slope(d, t, se)
    assert abs(slope - prefactor) < max(3 * slope_se, 0.05 * prefactor), (slope, slope_se, prefactor)
    # the fitted exponent of d over the same range matches the law's (with its fitted O(d) term) within 10 %
    p_sde, _ = fitted_exponent(d, t, se)
    offset = np.average(t / d - prefactor * np.log(d), weights=(d / se) ** 2)
    p_law, _ = fitted_exponent(d, d * (prefactor * np.log(d) + offset))
    assert abs(p_sde - p_law) < 0.1 * p_law and 1 < p_sde < 1.3, (p_sde, p_law)


def test_the_law_label_says_what_was_simulated():
    from symlora._plateau import finite_d_law

    status, law = finite_d_law(LoRAModel("He3", lr=1), MU_C)
    assert status == "heuristic" and "d log d" in law and "drift-diffusion SDE" in law and "SGD" in law
    status, law = finite_d_law(LoRAModel("He3", lr=0.25), MU_C)
    assert "conjecture" in law and "drift-diffusion SDE" not in law
