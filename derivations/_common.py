"""Shared writer for the derivation scripts (public API only)."""

import os
import re
from pathlib import Path

import sympy as sp

# SYMLORA_DERIVATIONS_OUT redirects the output (the tests compile it in a temporary folder)
OUT = Path(os.environ.get("SYMLORA_DERIVATIONS_OUT") or Path(__file__).resolve().parent / "out")


def write(name, models, title, notes=""):
    """Write ``out/<name>.tex`` (one document) and ``out/<name>.md`` for ``models`` ({label: LoRAModel})."""
    OUT.mkdir(exist_ok=True)
    bodies, lines = [], [f"# {title}", "", notes, ""]
    for label, model in models.items():
        lin = model.linearization()
        heading = re.sub(r"\^(\d+)", r"\\textsuperscript{\1}", label).replace("_", r"\_")
        bodies.append("\\section{" + heading + "}\n" + model.to_latex(body_only=True))
        lines += [f"## {label}", "", f"- student `{model.student.name}`, teacher `{model.teacher.name}`, "
                  f"{model.pretraining} pre-training, rank {model.rank}",
                  f"- expectations: {'exact closed forms' if model.exact else 'numeric quadrature nodes'}",
                  f"- a(mu) = `{sp.sstr(lin.a)}`", f"- b(mu) = `{sp.sstr(lin.b)}`", ""]
        for state, rhs in model.ode(in_terms_of_QR=True).items():
            lines.append(f"- d{state}/dt = `{sp.sstr(rhs)}`")
        lines.append("")
    document = ("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\usepackage[margin=2cm]{geometry}\n"
                "\\allowdisplaybreaks\n\\begin{document}\n" f"\\title{{{title}}}\\date{{}}\\maketitle\n"
                + "\n".join(bodies) + "\n\\end{document}\n")
    (OUT / f"{name}.tex").write_text(document)
    (OUT / f"{name}.md").write_text("\n".join(lines))
    print(f"wrote {OUT / name}.tex and .md")
