"""Shared writer for the derivation scripts (public API only)."""

from pathlib import Path

import sympy as sp

OUT = Path(__file__).resolve().parent / "out"


def write(name, models, title, notes=""):
    """Write ``out/<name>.tex`` (one document) and ``out/<name>.md`` for ``models`` ({label: LoRAModel})."""
    OUT.mkdir(exist_ok=True)
    bodies, lines = [], [f"# {title}", "", notes, ""]
    for label, model in models.items():
        lin = model.linearization()
        heading = label.replace("^", r"\^{}").replace("_", r"\_")
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
