"""The two-layer options of the command line (tau, derive, escape, simulate, latex; refused elsewhere)."""

import json

import pytest
import sympy

from symlora import TwoLayerLoRAModel
from symlora.cli import main


def _run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_tau_of_the_paper_committee_matches_the_api(capsys):
    code, out, _ = _run(capsys, "tau", "--student", "erf", "--hidden", "4", "--mus", "mu,mu,1,1", "--mu", "0,0.5",
                        "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["model"] == "two-layer" and payload["states"][:2] == ["M11", "M12"]
    expected = [TwoLayerLoRAModel("erf", hidden=4, pretraining=[m, m, 1, 1]).tau() for m in (0, 0.5)]
    assert payload["tau"] == pytest.approx(expected, rel=1e-12)


def test_derive_json_names_every_statistic(capsys):
    code, out, _ = _run(capsys, "derive", "--student", "relu", "--hidden", "2", "--teacher-hidden", "1",
                        "--mus", "mu,1", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert list(payload["ode"]) == payload["states"] == ["M11", "U11", "U21"]
    assert payload["covariances"]["R21"] == "M11*U21 + 1"


def test_derive_latex_is_the_document_body(capsys):
    code, out, _ = _run(capsys, "derive", "--student", "relu", "--hidden", "2", "--teacher-hidden", "1",
                        "--mus", "mu,1", "--format", "latex")
    assert code == 0
    model = TwoLayerLoRAModel("relu", hidden=2, teacher_hidden=1, pretraining=[sympy.Symbol("mu", positive=True), 1])
    assert out.strip() == model.to_latex(body_only=True).strip()
    assert "\\documentclass" not in out and "\\frac{dU_{21}}{dt}" in out


def test_escape_slope_is_tau_over_eta(capsys):
    # K = 2, single-index teacher, D = (0, 1): started on the unstable direction, T(eps) = (tau/eta) log(1/eps) + c
    code, out, _ = _run(capsys, "escape", "--student", "erf", "--hidden", "2", "--teacher-hidden", "1", "--mus",
                        "0,1", "--mu", "0", "--lr", "2", "--eps", "1e-4,1e-5,1e-6", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["model"] == "two-layer" and payload["status"] == ["escaped"] * 3
    tau = TwoLayerLoRAModel("erf", hidden=2, teacher_hidden=1, pretraining=[0, 1]).tau()
    assert payload["tau"] == pytest.approx(tau, rel=1e-12)
    assert payload["slope"] == pytest.approx(tau / 2, rel=1e-4)


def test_simulate_is_the_api_run(capsys):
    from symlora.two_layer import simulate_two_layer_sgd

    code, out, _ = _run(capsys, "simulate", "--student", "erf", "--hidden", "2", "--teacher-hidden", "1", "--mus",
                        "mu,1", "--mu", "0", "--lr", "2", "--d", "60,120", "--seeds", "3", "--seed", "5",
                        "--t-max", "80", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["states"] == ["M11", "U11", "U21"] and payload["d"] == [60, 120]
    model = TwoLayerLoRAModel("erf", hidden=2, teacher_hidden=1, pretraining=[sympy.Symbol("mu", positive=True), 1],
                              lr=2)
    for k, d in enumerate((60, 120)):
        runs = simulate_two_layer_sgd(model, d, 80, seeds=3, seed=5 + k, parameters={"mu": 0.0})
        assert payload["escape_time_mean"][k] == pytest.approx(runs.escape_time.mean(), rel=1e-12)


def test_latex_of_the_paper_committee_compiles(capsys, tmp_path):
    from _latexcheck import assert_fits

    path = tmp_path / "committee.tex"
    code, out, _ = _run(capsys, "latex", "--student", "erf", "--hidden", "4", "--mus", "mu,mu,1,1", "-o", str(path))
    assert code == 0 and "wrote" in out
    text = path.read_text()
    model = TwoLayerLoRAModel("erf", hidden=4, pretraining=[sympy.Symbol("mu", positive=True)] * 2 + [1, 1])
    for state in model.states:  # one equation per statistic, and the four-field drag named, not printed
        assert "\\frac{d" + sympy.latex(state) + "}{dt}" in text
    assert "H_{12}$ (" in text and "operations" in text
    assert_fits(path)


@pytest.mark.parametrize("args, message", [
    (["tau", "--student", "erf", "--hidden", "4", "--mus", "mu,1", "--mu", "0.5"], "--mus has 2 entries"),
    (["tau", "--student", "erf", "--hidden", "2", "--pretraining", "general", "--mu", "0.5"], "drop --pretraining"),
    (["law", "--student", "erf", "--hidden", "2"], "--hidden"),
    (["simulate", "--student", "erf", "--hidden", "2", "--mu", "0.5", "--d", "100", "--method", "reduced"],
     "--method reduced"),
    (["simulate", "--student", "erf", "--hidden", "2", "--mu", "0.5", "--d", "100", "--threads", "2"], "--threads"),
    (["tau", "--student", "erf", "--hidden", "9", "--mu", "0.5"], "--hidden"),
    (["tau", "--student", "erf", "--hidden", "2", "--mus", "mu,nu", "--mu", "0.5"], "--mus"),
])
def test_bad_two_layer_options_give_one_line(capsys, args, message):
    try:
        code = main(args)
    except SystemExit as exc:  # argparse errors exit 2
        code = exc.code
    err = capsys.readouterr().err
    assert code != 0
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
