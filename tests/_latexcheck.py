"""Compile LaTeX with pdflatex and collect overfull boxes (shared by the LaTeX tests)."""

import os
import re
import shutil
import subprocess

import pytest

PDFLATEX = shutil.which("pdflatex")

#: Widest tolerated overfull \hbox, in points.
MAX_OVERFULL_PT = 20.0


def require_pdflatex():
    if PDFLATEX is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing under CI: .ci/run must install texlive-latex-base")
        pytest.skip("pdflatex not installed")


def compile_tex(path):
    """Compile ``path`` in its folder; return the list of overfull widths (pt). Fails on errors."""
    require_pdflatex()
    out = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", path.name],
                         cwd=path.parent, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{path.name}: " + out.stdout[-2000:]
    assert path.with_suffix(".pdf").exists()
    log = path.with_suffix(".log").read_text(errors="replace")
    return [float(w) for w in re.findall(r"Overfull \\hbox \(([0-9.]+)pt too wide\)", log)]


def assert_fits(path):
    widths = compile_tex(path)
    assert max(widths, default=0.0) <= MAX_OVERFULL_PT, f"{path.name}: overfull lines of {widths} pt"
