"""Error bounds of quadrature-based results: above the true error, and shown in JSON and LaTeX.

The truth is the 30-digit route of :meth:`Linearization.values` (adaptive
mpmath quadrature, independent of the generated code and its Gauss-Legendre
rules).
"""

import json

import numpy as np
import pytest

from symlora import LoRAModel
from symlora._codegen import coefficients_function, tau_error_bound
from symlora.cli import main

MU = np.array([0.3, 0.9, 1.2])


@pytest.mark.parametrize("student, teacher", [("tanh", "tanh"), ("sigmoid", "relu")])
def test_generated_coefficient_bounds_cover_the_true_error(student, teacher):
    model = LoRAModel(student, teacher)
    fast = coefficients_function(model, with_error=True)(MU)
    for i, mu in enumerate(MU):
        truth = model.linearization().values(float(mu))
        for key in ("a", "b", "tau"):
            bound = fast[key + "_error_bound"][i]
            assert 0 < bound < 1e-9 * max(1.0, abs(truth[key]))
            assert abs(fast[key][i] - truth[key]) <= bound, (key, mu)


def test_tau_bound_is_the_first_order_propagation():
    a, b, h = 0.3, -0.4, 1e-6
    from symlora._asymptotics import tau_from

    slope_a = (tau_from(a + h, b) - tau_from(a - h, b)) / (2 * h)
    slope_b = (tau_from(a, b + h) - tau_from(a, b - h)) / (2 * h)
    assert float(tau_error_bound(a, b, 1e-8, 2e-8)) == pytest.approx(abs(slope_a) * 1e-8 + abs(slope_b) * 2e-8,
                                                                    rel=1e-6)
    assert float(tau_error_bound(0.0, 1.0, 1e-12, 0.0)) == np.inf


def _cli_json(capsys, *args):
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_tau_json_shows_bounds_or_says_why_not(capsys):
    approximate = _cli_json(capsys, "tau", "--student", "tanh", "--mu", "0.3,0.9", "--format", "json")
    precise = _cli_json(capsys, "tau", "--student", "tanh", "--mu", "0.3,0.9", "--format", "json", "--precise")
    for key in ("a", "b", "tau"):
        bound = np.array(approximate[key + "_error_bound"])
        error = np.abs(np.array(approximate[key]) - np.array(precise[key]))
        assert np.all(error <= bound + np.array(precise[key + "_error_bound"]))
    assert "quadrature" in approximate["error_bound_note"]
    exact = _cli_json(capsys, "tau", "--student", "relu", "--mu", "0.5", "--format", "json")
    assert exact["tau_error_bound"] is None and "exact" in exact["error_bound_note"]


def test_derive_json_and_latex_show_bounds(capsys):
    payload = _cli_json(capsys, "derive", "--student", "tanh", "--format", "json")
    bounds = payload["error_bounds"]
    assert set(bounds["ode_error_bound"]) == set(payload["states"])
    assert all(0 < e < 1e-8 for e in bounds["ode_error_bound"].values())
    truth = LoRAModel("tanh").linearization().values(bounds["point"]["mu"])
    assert abs(bounds["tau"] - truth["tau"]) <= bounds["tau_error_bound"]
    exact = _cli_json(capsys, "derive", "--student", "erf", "--format", "json")
    assert exact["error_bounds"] is None and "exact" in exact["error_bounds_note"]
    latex = LoRAModel("tanh").to_latex()
    assert r"\tau(1/2) = " in latex and r"\pm" in latex and "e-" not in latex.split("For example")[1]
