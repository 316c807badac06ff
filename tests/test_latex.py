"""LaTeX export compiles with pdflatex as written."""

import os
import shutil
import subprocess

import pytest

from symlora import LoRAModel

PDFLATEX = shutil.which("pdflatex")


def _compile(tmp_path, name, text):
    path = tmp_path / f"{name}.tex"
    path.write_text(text)
    out = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", path.name],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:]
    assert (tmp_path / f"{name}.pdf").exists()


@pytest.mark.parametrize("student, teacher, kwargs", [
    ("erf", None, {}),
    ("x**3-3*x", "relu", {}),
    ("tanh", None, {}),
    ("relu", None, {"pretraining": "general"}),
    ("He3", None, {"rank": 2}),
])
def test_latex_compiles(tmp_path, student, teacher, kwargs):
    if PDFLATEX is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing under CI: .ci/run must install texlive-latex-base")
        pytest.skip("pdflatex not installed")
    model = LoRAModel(student, teacher, **kwargs)
    _compile(tmp_path, "doc", model.to_latex())
    body = model.to_latex(body_only=True)
    assert "\\documentclass" not in body
    wrapper = "\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n\\input{body}\n\\end{document}\n"
    (tmp_path / "body.tex").write_text(body)
    _compile(tmp_path, "wrapper", wrapper)


def test_latex_content():
    text = LoRAModel("erf").to_latex()
    for needle in ("Q &=", "R &=", "\\frac{dm}{dt}", "\\frac{du}{dt}", "a(\\mu)", "b(\\mu)", "\\tau(\\mu)",
                   "critical $\\mu$", "exact closed forms"):
        assert needle in text
    approx = LoRAModel("tanh").to_latex()
    assert "approximate" in approx and "\\mathbb{E}" in approx
