"""Integrators against exact solutions, against scipy, and the escape-time law."""

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from symlora import LoRAModel, ODESystem
from symlora import _symbols as S
from symlora._integrate import escape_time, fit_escape_slope, integrate


def _linear_system():
    a, b = sp.symbols("a b", real=True)
    return ODESystem((S.m, S.u), (a, b), (a * S.u, a * S.m - b * S.u), name="linear"), a, b


def test_integrate_linear_system_exact():
    system, a, b = _linear_system()
    a_vals = np.array([0.3, 0.7, -0.5])
    b_vals = np.array([1.0, 0.2, 0.5])
    t = np.linspace(0, 5, 11)
    res = integrate(system, {"m": 1e-2, "u": 0.0}, {"a": a_vals, "b": b_vals}, 5.0, t_eval=t, rtol=1e-11, atol=1e-14)
    assert res.success and res.states["m"].shape == (3, 11)
    for k in range(3):
        J = np.array([[0, a_vals[k]], [a_vals[k], -b_vals[k]]])
        exact = np.array([expm(J * ti) @ np.array([1e-2, 0.0]) for ti in t])
        np.testing.assert_allclose(res.states["m"][k], exact[:, 0], rtol=1e-8, atol=1e-13)
        np.testing.assert_allclose(res.states["u"][k], exact[:, 1], rtol=1e-8, atol=1e-13)


def test_escape_time_linear_exact():
    # the unstable mode grows like exp(lambda_+ t); from (eps, 0) the exact m(t) is known
    system, a, b = _linear_system()
    a_val, b_val, eps, thr = 0.5, 1.0, 1e-4, 0.5
    res = escape_time(system, {"a": a_val, "b": b_val}, eps, thr, t_max=200.0)
    J = np.array([[0, a_val], [a_val, -b_val]])
    sol = solve_ivp(lambda t, y: J @ y, (0, 200), [eps, 0.0], rtol=1e-12, atol=1e-16, dense_output=True,
                    events=lambda t, y: abs(y[0]) - thr)
    assert res.status.item() == "escaped"
    assert float(res.time) == pytest.approx(sol.t_events[0][0], rel=1e-7)


def test_escape_time_censored_returns_inf():
    system, a, b = _linear_system()
    res = escape_time(system, {"a": [0.0, 0.5], "b": 1.0}, 1e-3, 0.5, t_max=50.0)
    assert res.status.tolist() == ["censored", "escaped"]
    assert np.isinf(res.time[0]) and np.isfinite(res.time[1])


def test_batched_matches_solve_ivp_loop():
    model = LoRAModel("erf")
    mu = np.array([0.2, 0.4, 0.6])
    batched = model.escape_time(mu, 1e-4)
    rhs = model.ode_system()
    from symlora._codegen import compile_ode

    compiled = compile_ode(rhs)
    for k, value in enumerate(mu):
        event = lambda t, y: abs(y[0]) - 0.5  # noqa: E731
        event.terminal = True
        sol = solve_ivp(lambda t, y: compiled.rhs(y, value), (0, batched.t_max), [1e-4, 0.0], events=event,
                        method="DOP853", rtol=1e-10, atol=1e-14)
        assert batched.time[k] == pytest.approx(sol.t_events[0][0], rel=1e-6)


@pytest.mark.parametrize("student, mus", [("x", [0.2, 0.5, 0.8]), ("erf", [0.2, 0.5]), ("relu", [0.2, 0.5, 0.8]),
                                          ("tanh", [0.2, 0.5])])
def test_escape_slope_equals_tau(student, mus):
    model = LoRAModel(student)
    eps = np.array([1e-3, 1e-6])  # the slope between the ends of the range of the issue
    mu = np.array(mus)[:, None]
    res = model.escape_time(mu, eps[None, :])
    assert np.all(res.status == "escaped")
    tau = model.tau(np.array(mus))
    for k in range(len(mus)):
        slope, _ = fit_escape_slope(eps, res.time[k])
        assert slope == pytest.approx(tau[k], rel=0.01)


def test_integrate_model_general_and_rank2():
    general = LoRAModel("x", pretraining="general")
    res = general.integrate(0.5, 1e-3, 0.0, 20.0, mu_perp=0.0)
    aligned = LoRAModel("x").integrate(0.5, 1e-3, 0.0, 20.0)
    np.testing.assert_allclose(res.states["m"], aligned.states["m"], rtol=1e-7, atol=1e-12)
    rank2 = LoRAModel("x", rank=2).integrate(0.5, 1e-3, 0.0, 20.0)
    np.testing.assert_allclose(rank2.states["m1"], aligned.states["m"], rtol=1e-7, atol=1e-12)


def test_bad_integration_input():
    system, a, b = _linear_system()
    with pytest.raises(ValueError, match="missing parameter"):
        integrate(system, {"m": 1.0}, {"a": 1.0}, 1.0)
    with pytest.raises(ValueError, match="unknown initial state"):
        integrate(system, {"z": 1.0}, {"a": 1.0, "b": 1.0}, 1.0)
    with pytest.raises(ValueError, match="t_max"):
        integrate(system, {}, {"a": 1.0, "b": 1.0}, -1.0)
    with pytest.raises(ValueError, match="t_eval"):
        integrate(system, {}, {"a": 1.0, "b": 1.0}, 1.0, t_eval=[0.5, 0.1])
    with pytest.raises(ValueError, match="finite"):
        integrate(system, {"m": np.nan}, {"a": 1.0, "b": 1.0}, 1.0)
    with pytest.raises(TypeError, match="ODESystem"):
        integrate("not a system", {}, {}, 1.0)
    with pytest.raises(ValueError, match="eps"):
        escape_time(system, {"a": 1.0, "b": 1.0}, 0.7, 0.5)
    with pytest.raises(ValueError, match="threshold"):
        escape_time(system, {"a": 1.0, "b": 1.0}, 0.1, 1.5)
    with pytest.raises(ValueError, match="observed"):
        escape_time(system, {"a": 1.0, "b": 1.0}, 0.1, 0.5, observed="q")
    with pytest.raises(ValueError, match="method"):
        escape_time(system, {"a": 1.0, "b": 1.0}, 0.1, 0.5, method="Euler")
    with pytest.raises(ValueError, match="two finite"):
        fit_escape_slope([1e-3, 1e-4], [np.inf, 3.0])
    model = LoRAModel("x")
    with pytest.raises(ValueError, match="mu_perp"):
        model.integrate(0.5, 0.1, 0.0, 1.0, mu_perp=0.3)
    with pytest.raises(ValueError, match=">= 0"):
        model.escape_time(-0.5, 1e-3)
    with pytest.raises(ValueError, match="symbolic"):
        LoRAModel("x", lr=S.eta).integrate(0.5, 0.1, 0.0, 1.0)
