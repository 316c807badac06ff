"""The theory document ships, is cited by existing sections, and objects read well."""

import pydoc
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symlora
from symlora import LoRAModel
from symlora._theory import THEORY_FILE, copy_theory, section_anchor, section_link, theory_text

ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"
OLD_NAME = "MODEL" + ".md"  # the contract outside the repository that docs/theory.md replaces


def _headings(text):
    return [line for line in text.splitlines() if line.startswith("## ")]


def _subsections(text):
    return set(re.findall(r"^\*\*(\d+\.\d+) ", text, flags=re.M))


def test_theory_has_numbered_sections_and_the_conventions():
    text = THEORY.read_text(encoding="utf-8")
    numbers = [int(re.match(r"## (\d+)\. ", h).group(1)) for h in _headings(text)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 7
    # every convention the package relies on is stated
    for phrase in ("E[He_j(Z) He_k(Z)] = k! δ_jk", "low to high degree", "t = steps/d", "lr = η/d",
                   "units of `1/η`", "Mehler", "Stein", "critical", "b ≤ 0", "plateau", "m0_eff"):
        assert phrase in text, phrase


def test_packaged_theory_is_docs_theory():
    assert theory_text() == THEORY.read_text(encoding="utf-8")


def test_every_citation_names_an_existing_section():
    text = THEORY.read_text(encoding="utf-8")
    sections = {str(n) for n in range(1, len(_headings(text)) + 1)} | _subsections(text)
    cited = set()
    for path in [*ROOT.glob("symlora/**/*.py"), *ROOT.glob("derivations/*.py"), *ROOT.glob("notebooks/*.ipynb"),
                 *ROOT.glob("benchmarks/*.py"), *ROOT.glob("tests/*.py"), ROOT / "README.md"]:
        for match in re.finditer(r"(?:theory\.md|theory) §(\d+(?:\.\d+)?)(?:-(\d+))?", path.read_text("utf-8")):
            cited.update(g for g in match.groups() if g)
    assert cited, "no citations found"
    assert cited <= sections, f"cited but missing: {sorted(cited - sections)}"


def test_no_citation_of_the_external_contract():
    offenders = []
    for path in [*ROOT.glob("symlora/**/*.py"), *ROOT.glob("derivations/*"), *ROOT.glob("notebooks/*.ipynb"),
                 *ROOT.glob("benchmarks/*.py"), *ROOT.glob("docs/*"), *ROOT.glob("tests/*.py"), ROOT / "README.md"]:
        if path.is_file() and OLD_NAME in path.read_text("utf-8"):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_section_links_point_at_headings(tmp_path):
    copied = copy_theory(tmp_path)
    assert copied.name == THEORY_FILE and copied.read_text("utf-8") == theory_text()
    anchors = {re.sub(r"[^\w\- ]", "", h[3:].strip().lower()).replace(" ", "-") for h in _headings(theory_text())}
    for number in range(1, 8):
        assert section_anchor(number) in anchors
        assert section_link(number).endswith(f"({THEORY_FILE}#{section_anchor(number)})")
    with pytest.raises(ValueError, match="no section"):
        section_anchor(99)


def test_non_editable_build_ships_the_theory(tmp_path):
    """``pip install .`` copies package data through setuptools' build_py: run it on a copy."""
    pytest.importorskip("setuptools")
    source = tmp_path / "src"
    for name in ("symlora", "docs"):
        shutil.copytree(ROOT / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = tmp_path / "build"
    subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
                    "--build-lib", str(build)], cwd=source, check=True, capture_output=True)
    shipped = build / "symlora" / THEORY_FILE
    assert shipped.is_file() and not shipped.is_symlink()
    assert shipped.read_text("utf-8") == THEORY.read_text("utf-8")


def test_readme_points_to_the_theory():
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "docs/theory.md" in readme


# ------------------------------------------------------------------ objects


def test_help_of_lora_model_shows_no_internals():
    text = pydoc.render_doc(LoRAModel, renderer=pydoc.plaintext)
    assert "in module symlora\n" in text
    for internal in (r"\b_cache\b", r"\b_structure\b", r"symlora\._", "dataclass"):
        assert not re.search(internal, text), internal
    for public in ("linearization", "critical_mu", "escape_law", "Parameters", "Examples"):
        assert public in text


def test_lora_model_is_immutable_and_hashable():
    model = LoRAModel("x", teacher="x**2", lr=0.5)
    with pytest.raises(AttributeError, match="immutable"):
        model.lr = 2
    assert model == LoRAModel("x", "x**2", lr=0.5) and hash(model) == hash(LoRAModel("x", "x**2", lr=0.5))
    assert model != LoRAModel("x", "x**2")
    assert repr(model) == "LoRAModel('x', teacher='x**2', lr=1/2)"
    assert repr(LoRAModel("relu")) == "LoRAModel('relu')"


def test_latex_reprs_are_short_and_balanced():
    model = LoRAModel("erf")
    law = model.escape_law(0.5)
    lin = model.linearization()
    result = LoRAModel("x").escape_time(0.5, [1e-3, 1e-4])
    for text in (model._repr_latex_(), law._repr_latex_(), lin._repr_latex_(), result._repr_latex_()):
        assert text.startswith("$") and text.endswith("$")
        assert text.count("{") == text.count("}")
    # the erf prefactor is hundreds of characters exactly: shown rounded
    assert len(law._repr_latex_()) < 80 and len(repr(law)) < 80
    assert f"{float(model.tau(0.5)) / 2:.6g}" in repr(law)
    # short exact prefactors stay exact, with their value
    assert str(LoRAModel("x").escape_law(0.5)) == "t_esc ≈ (1 + sqrt(2)) · log d ≈ 2.41421 · log d"
    assert len(repr(lin)) < 200


def test_result_reprs_summarise():
    model = LoRAModel("x")
    escape = model.escape_time(0.5, [1e-3, 1e-4], t_max=30.0)
    assert repr(escape).startswith("EscapeResult(2 runs: ")
    assert f"{int(np.sum(escape.status == 'escaped'))} escaped" in repr(escape) or "censored" in repr(escape)
    run = model.integrate(0.5, [0.01, 0.02], 0.0, 5.0, t_eval=np.linspace(0, 5, 6))
    assert repr(run) == "IntegrationResult(success; batch (2,), 6 times in [0, 5]; states m, u)"


def test_public_names_resolve_lazily():
    code = ("import sys, symlora; heavy = [m for m in ('sympy', 'scipy', 'matplotlib', 'numba', 'dask') "
            "if m in sys.modules]; print(heavy); from symlora import LoRAModel; print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"
    assert sorted(symlora.__all__) == sorted(set(symlora.__all__))
    for name in symlora.__all__:
        assert getattr(symlora, name) is not None
    with pytest.raises(AttributeError, match="no attribute"):
        symlora.not_a_name  # noqa: B018


def test_simulation_results_read_in_one_line():
    from symlora import compare_with_ode, escape_slope, simulate_sgd

    model = LoRAModel("x")
    runs = [simulate_sgd(model, 0.5, d, seeds=4, method="reduced", progress=False) for d in (100, 400)]
    fit = escape_slope([100, 400], runs)
    comparison = compare_with_ode(model, runs[1])
    for obj in (runs[0], fit, comparison):
        text = repr(obj)
        assert "\n" not in text and "array(" not in text and len(text) < 250, text
        assert obj._repr_latex_().startswith("$\\text{")
    assert f"slope {fit.slope:.4g}" in repr(fit)
    assert f"{int(comparison.aligned.sum())}/4 runs aligned" in repr(comparison)
