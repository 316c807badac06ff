"""The command line: output formats and one-line errors without tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "symlora.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def assert_clean_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert len(lines[0]) < 400
    assert result.stdout == ""


@pytest.mark.parametrize("args", [
    ["tau", "--student", "x", "--mu", "2x"],
    ["tau", "--student", "mish", "--mu", "0.5"],
    ["tau", "--student", "__import__('os')", "--mu", "0.5"],
    ["tau", "--student", "x", "--mu", "-0.5"],
    ["tau", "--student", "exp(x**2)", "--mu", "0.5"],
    ["tau", "--student", "x", "--mu", "0.5", "--lr", "0"],
    ["derive", "--student", "sign"],
    ["escape", "--student", "x", "--mu", "0.5", "--eps", "0.7"],
    ["escape", "--student", "x", "--mu", "0.5", "--eps", "1e-3,-1"],
    ["escape", "--student", "x", "--mu", "abc", "--eps", "1e-3"],
    ["simulate", "--student", "x", "--mu", "0.5", "--d", "1"],
    ["simulate", "--student", "x", "--mu", "0.5", "--d", "10,x"],
    ["simulate", "--student", "x", "--mu", "0.5", "--d", "100", "--threshold", "2"],
    ["latex", "--student", "erf", "-o", "/nonexistent-folder/x.tex"],
    ["latex", "--student", "lambda x: x", "-o", "out.tex"],
    ["reproduce", "--out", "/proc/forbidden/out"],
    ["nonsense"],
])
def test_bad_input_one_line(args):
    assert_clean_error(run(*args))


def test_tau_json_and_table():
    result = run("tau", "--student", "relu", "--mu", "0.1,0.5", "--format", "json")
    assert result.returncode == 0 and result.stderr == ""
    payload = json.loads(result.stdout)
    assert payload["mu"] == [0.1, 0.5]
    assert payload["a"] == pytest.approx([0.45, 0.25])
    assert payload["b"] == pytest.approx([0.5, 0.5])
    tau_x = run("tau", "--student", "x", "--mu", "0:0.5:3", "--format", "json")
    assert json.loads(tau_x.stdout)["mu"] == [0.0, 0.25, 0.5]
    table = run("tau", "--student", "x", "--teacher", "x**2", "--mu", "0.5")
    assert table.returncode == 0 and "tau" in table.stdout


def test_escape_and_simulate_json():
    escape = run("escape", "--student", "x", "--mu", "0.5", "--eps", "1e-3,1e-5", "--format", "json")
    payload = json.loads(escape.stdout)
    assert abs(payload["relative_error"]) < 0.01
    simulate = run("simulate", "--student", "x", "--mu", "0.5", "--d", "60,120", "--seeds", "4", "--format", "json")
    payload = json.loads(simulate.stdout)
    for key in ("d", "escape_time_mean", "escape_time_sem", "censored", "slope", "slope_sem", "predicted_slope"):
        assert key in payload
    assert payload["d"] == [60, 120]


def test_derive_and_help():
    derive = run("derive", "--student", "erf")
    assert derive.returncode == 0 and "dm/dt" in derive.stdout and "a(mu)" in derive.stdout
    for command in ("tau", "derive", "escape", "simulate", "latex", "reproduce"):
        help_text = run(command, "--help")
        assert help_text.returncode == 0 and "example" in help_text.stdout


def test_latex_command_writes(tmp_path):
    out = tmp_path / "erf.tex"
    result = run("latex", "--student", "erf", "-o", str(out))
    assert result.returncode == 0 and out.read_text().startswith("\\documentclass")
    body = tmp_path / "body.tex"
    run("latex", "--student", "erf", "-o", str(body), "--body-only")
    assert "\\documentclass" not in body.read_text()
