"""The main job: symlora reproduce --quick writes the report, tables, LaTeX and figures."""

import csv
import re

import pytest
from _latexcheck import PDFLATEX, assert_fits

from symlora._report import QUICK_PAIRS, reproduce


@pytest.mark.slow
def test_reproduce_quick(tmp_path):
    report = reproduce(tmp_path / "out", quick=True, progress=False)
    out = report.parent
    text = report.read_text()
    for figure in ("tau.png", "trajectories.png", "escape_log_d.png", "tau_plane.png"):
        assert (out / figure).stat().st_size > 10_000
        assert figure in text
    assert len(list((out / "tex").glob("*.tex"))) == len(QUICK_PAIRS)
    rows = list(csv.DictReader(open(out / "escape_ode.csv")))
    for row in rows:
        if row["status"] == "escaped":
            assert abs(float(row["relative_error"])) < 0.01
        else:  # a stalled ODE: the finite-d law names the plateau and the largest η/B that escapes
            assert "plateau" in row["finite_d_law"] and "η/B <" in row["finite_d_law"]
    crit = list(csv.DictReader(open(out / "critical_mu.csv")))
    he3 = [float(r["mu_c_numeric"]) for r in crit if r["pair"] == "He3"]
    assert any(abs(v - 0.320724347323) < 1e-9 for v in he3)
    # the theory document is copied beside the report and every section link resolves
    theory = (out / "theory.md").read_text()
    anchors = {h[3:].strip().lower() for h in theory.splitlines() if h.startswith("## ")}
    anchors = {"".join(c for c in a if c.isalnum() or c in " -_").replace(" ", "-") for a in anchors}
    links = re.findall(r"\(theory\.md#([\w-]+)\)", text)
    assert links and set(links) <= anchors
    # numbers for people: no CRootOf, no 20-digit floats, no "1 ≈ 1", no -0
    for name in ("critical_mu.csv", "tau.csv", "escape_sgd.csv", "escape_sgd_fit.csv", "report.md"):
        content = (out / name).read_text()
        assert "CRootOf" not in content and "1.0000000000000" not in content and "1 ≈ 1" not in content, name
        assert ",-0," not in content and ",-0\n" not in content, name
    assert "root of 5μ³ + 5μ² + μ − 1 ≈ 0.3207" in text
    # one value per row: the fitted slope lives in its own table
    fits = list(csv.DictReader(open(out / "escape_sgd_fit.csv")))
    assert len(fits) == len({r["pair"] for r in csv.DictReader(open(out / "escape_sgd.csv"))})
    if PDFLATEX:
        for document in sorted((out / "tex").glob("*.tex")):
            assert_fits(document)


def test_reproduce_rejects_unknown_pair(tmp_path):
    with pytest.raises(ValueError, match="unknown pair"):
        reproduce(tmp_path, pairs=["nope"])
