"""``symlora law`` and ``symlora derive --format``: content agrees with the library, text stays narrow."""

import json
import math

import pytest
import sympy as sp

from symlora import _symbols as S

from symlora import LoRAModel
from symlora.cli import main


def parse(text):
    """Our own printed output back to SymPy, with the package's symbols (test-only parsing)."""
    return sp.sympify(text, locals={"mu": S.mu})


def _run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_law_json_matches_the_model(capsys):
    code, out, _ = _run(capsys, ["law", "--student", "x", "--teacher", "x**2", "--mu", "0.2,0.5", "--format", "json"])
    assert code == 0
    payload = json.loads(out)
    assert parse(payload["a"]) == -S.mu and payload["b"] == "1"
    assert [c["mu"] for c in payload["critical_mu"]] == ["0"]
    model = LoRAModel("x", "x**2")
    for entry in payload["laws"]:
        # t_esc ≈ (τ/(2η)) log d with τ from the generated code (an independent route)
        assert entry["kind"] == "log"
        assert entry["prefactor"] == pytest.approx(float(model.tau(entry["mu"])) / 2, rel=1e-12)
        assert entry["tau"] == pytest.approx(float(model.tau(entry["mu"])), rel=1e-12)
    # a = -mu, b = 1: tau = (1 + sqrt(1 + 4 mu^2)) / (2 mu^2) exactly
    exact = parse(payload["laws"][1]["prefactor_exact"])
    assert sp.simplify(exact - (1 + sp.sqrt(2))) == 0


def test_law_text_for_hermite_reports_the_critical_root(capsys):
    code, out, _ = _run(capsys, ["law", "--student", "He3"])
    assert code == 0
    # a(mu) of He3 vanishes at the real root of 5 mu^3 + 5 mu^2 + mu - 1 in (0, 1)
    root = [r for r in sp.Poly(5 * sp.Symbol("x") ** 3 + 5 * sp.Symbol("x") ** 2 + sp.Symbol("x") - 1).nroots()
            if r.is_real and 0 < r < 1][0]
    assert f"{float(root):.12g}" in out
    assert "finite-d heuristic" in out  # a law beyond the ODE is labelled as such
    assert max(len(line) for line in out.splitlines()) <= 100


def test_law_refuses_too_many_mu(capsys):
    code, _, err = _run(capsys, ["law", "--student", "x", "--mu", "0:1:50"])
    assert code == 2 and "at most" in err and err.count("\n") == 1


@pytest.mark.parametrize("student", ["tanh", "erf"])
def test_derive_text_is_narrow_and_names_every_node(capsys, student):
    code, out, _ = _run(capsys, ["derive", "--student", student])
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    used = {name for line in lines for name in __import__("re").findall(r"\bE\d+\b", line)}
    defined = {line.split("=")[0].strip() for line in lines if line.lstrip().startswith("E") and " = E[" in line}
    assert used == defined
    assert (student == "tanh") == bool(defined)


def test_derive_json_round_trips_to_the_linearisation(capsys):
    code, out, _ = _run(capsys, ["derive", "--student", "relu", "--format", "json"])
    assert code == 0
    payload = json.loads(out)
    lin = LoRAModel("relu").linearization()
    assert sp.simplify(parse(payload["linearization"]["a"]) - lin.a) == 0
    assert sp.simplify(parse(payload["linearization"]["b"]) - lin.b) == 0
    assert payload["exact"] is True and payload["nodes"] == {}
    assert payload["states"] == ["m", "u"]
    assert payload["critical_mu"] == ["1"]


def test_derive_json_lists_quadrature_nodes(capsys):
    code, out, _ = _run(capsys, ["derive", "--student", "tanh", "--format", "json"])
    payload = json.loads(out)
    assert payload["exact"] is False
    for name, node in payload["nodes"].items():
        assert node["variables"] and len(node["covariance"]) == len(node["variables"])
    assert any(name in payload["linearization"]["a"] for name in payload["nodes"])


def test_derive_latex_is_a_document(capsys):
    code, out, _ = _run(capsys, ["derive", "--student", "x", "--format", "latex"])
    assert code == 0 and out.startswith("\\documentclass") and "\\end{document}" in out


def test_escape_json_two_points_has_no_fake_error(capsys):
    code, out, _ = _run(capsys, ["escape", "--student", "x", "--mu", "0.5", "--eps", "1e-3,1e-4", "--format", "json"])
    assert code == 0
    payload = json.loads(out)
    assert payload["slope_stderr"] is None and "two points" in payload["slope_note"]
    assert payload["slope"] == pytest.approx(payload["predicted_slope"], rel=0.02)
    code, out, _ = _run(capsys, ["escape", "--student", "x", "--mu", "0.5", "--eps", "1e-3,1e-4,1e-5",
                                 "--format", "json"])
    payload = json.loads(out)
    assert payload["slope_stderr"] is not None and math.isfinite(payload["slope_stderr"])
