"""LaTeX export: compiles with pdflatex and fits the page (no overfull line wider than 20 pt)."""

import subprocess
import sys
from pathlib import Path

import pytest
from _latexcheck import assert_fits, compile_tex, require_pdflatex

from symlora import LoRAModel
from symlora._latex import _escape, _split, _width, latex_lines

ROOT = Path(__file__).resolve().parents[1]

PAIRS = [
    ("erf", None, {}),
    ("x**3-3*x", "relu", {}),
    ("tanh", None, {}),
    ("sigmoid", None, {}),
    ("relu", None, {"pretraining": "general"}),
    ("x", None, {"pretraining": "general"}),
    ("He3", None, {"rank": 2}),
    ("He6", None, {}),  # its G line was 1342 pt too wide
    ("x", "relu(x)**2", {}),
    ("He2(x) + He4(x)", None, {}),
]


@pytest.mark.parametrize("student, teacher, kwargs", PAIRS)
def test_latex_compiles_and_fits(tmp_path, student, teacher, kwargs):
    require_pdflatex()
    model = LoRAModel(student, teacher, **kwargs)
    (tmp_path / "doc.tex").write_text(model.to_latex())
    assert_fits(tmp_path / "doc.tex")
    body = model.to_latex(body_only=True)
    assert "\\documentclass" not in body
    wrapper = "\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n\\input{body}\n\\end{document}\n"
    (tmp_path / "body.tex").write_text(body)
    (tmp_path / "wrapper.tex").write_text(wrapper)
    compile_tex(tmp_path / "wrapper.tex")


def test_cli_latex_output_fits(tmp_path):
    require_pdflatex()
    path = tmp_path / "relu_sq.tex"
    out = subprocess.run([sys.executable, "-m", "symlora.cli", "latex", "--student", "relu", "--teacher",
                          "relu(x)**2", "-o", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert_fits(path)


@pytest.mark.slow
def test_derivation_documents_fit(tmp_path):
    """Every derivations/ script writes a document that compiles and fits."""
    require_pdflatex()
    env = {"SYMLORA_DERIVATIONS_OUT": str(tmp_path), "PYTHONPATH": str(ROOT)}
    import os

    env = {**os.environ, **env}
    for script in sorted((ROOT / "derivations").glob("derive_*.py")):
        out = subprocess.run([sys.executable, script.name], cwd=script.parent, env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
    documents = sorted(tmp_path.glob("*.tex"))
    assert len(documents) == 5
    for document in documents:
        assert_fits(document)
    critical = (tmp_path / "hermite_critical_mu.md").read_text()
    assert "CRootOf" not in critical and "root of 5μ³ + 5μ² + μ − 1 ≈ 0.3207" in critical


def test_latex_content():
    text = LoRAModel("erf").to_latex()
    for needle in ("Q &=", "R &=", "\\frac{dm}{dt}", "\\frac{du}{dt}", "a(\\mu)", "b(\\mu)", "\\tau(\\mu)",
                   "critical $\\mu$", "exact closed forms", "m = v\\cdot w^*"):
        assert needle in text
    approx = LoRAModel("tanh").to_latex()
    assert "approximate" in approx and "\\mathbb{E}" in approx
    assert "a(1/2) = " in approx and "\\pm" in approx  # the quadrature's error estimate is printed
    # a quadrature node and the constants next to it read as one expectation, not "E[... - 1] + 1"
    assert "\\right] + 1" not in approx and "\\right] - 1" not in approx
    general = LoRAModel("x", pretraining="general").to_latex()
    assert "s = v\\cdot w_\\perp" in general  # every symbol is defined
    he3 = LoRAModel("He3").to_latex()
    assert "CRootOf" not in he3 and "\\text{root of }" in he3 and "0.3207243473" in he3
    assert "1 \\approx 1" not in he3
    # the diffusion matrix is written out where it fits (x) and referred to where it would not (He3)
    x_document = LoRAModel("x").to_latex()
    assert "The full matrix (entries" in x_document and "D_{uu} &=" in x_document
    assert "The full matrix is long" in he3 and "D_{mm} &=" not in he3


def test_titles_are_escaped():
    assert _escape("relu(x)**2") == "relu(x)\\textsuperscript{2}"
    assert "\\_" in _escape("a_b") and "\\$" in _escape("$")


def test_long_sums_are_split_within_width():
    import sympy as sp

    Q, R = sp.symbols("Q R")
    expr = sp.pi * sum((k + 1000) * Q**k * R ** (k % 3) for k in range(30))
    lines = _split(expr, 60)
    assert len(lines) > 3
    assert all(_width(line) <= 60 for line in lines)
    # the pieces put back together are the expression (up to the \Bigl( \Bigr) markup)
    joined = " ".join(lines)
    assert joined.startswith("\\pi\\,\\Bigl(") and joined.endswith("\\Bigr)") and joined.count("Q^{") == 28
    assert latex_lines("f", Q).startswith("f &= Q")
