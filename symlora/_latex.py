"""LaTeX export of a model's ODE system and linearisation.

The output compiles with plain ``pdflatex`` (``article`` + ``amsmath``):
long sums are broken over lines inside ``align*`` environments, and the
ODE is written in terms of four expectations defined separately, as in
docs/theory.md §3.
"""

from __future__ import annotations

import sympy as sp

from . import _symbols as S
from ._expectation import is_exact

__all__ = ["model_to_latex", "latex_lines"]

#: Characters of LaTeX source per displayed line before a sum is broken.
_LINE = 110

_NAMES = {
    sp.Symbol("A_lambda"): r"A_\lambda",
    sp.Symbol("A_nu"): r"A_\nu",
    sp.Symbol("G2"): r"\mathcal{G}",
    S.mu_perp: r"\mu_\perp",
    S.q12: r"q_{12}",
}


def _tex(expr) -> str:
    return sp.latex(expr, symbol_names=_NAMES)


def latex_lines(lhs: str, expr) -> str:
    """``lhs &= ...`` with the terms of a long sum spread over several lines."""
    terms = sp.Add.make_args(expr)
    if len(terms) == 1 or len(_tex(expr)) <= _LINE:
        return f"{lhs} &= {_tex(expr)}"
    lines, current = [], ""
    for term in terms:
        text = _tex(term)
        if current and not text.startswith("-"):
            text = "+ " + text
        if current and len(current) + len(text) > _LINE:
            lines.append(current)
            current = text
        else:
            current = f"{current} {text}".strip()
    lines.append(current)
    body = f" \\\\\n  &\\quad ".join(lines)
    return f"{lhs} &= {body}"


def _align(rows) -> str:
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}\n"


def model_to_latex(model, body_only: bool = False, critical_interval=(0, 1)) -> str:
    """LaTeX for ``model``: definitions, ODE, linearisation, critical ``μ``.

    Parameters
    ----------
    model : LoRAModel
    body_only : bool
        Only the equations (for ``\\input``), no preamble.
    critical_interval : tuple
        Where to look for zeros of ``a(μ)`` (aligned rank 1 only).

    Returns
    -------
    str
    """
    structure, definitions = model.ode_structure()
    overlaps = model.overlaps()
    lin = model.linearization()
    student, teacher = model.student, model.teacher
    parts = []
    parts.append("\\section*{Model}\n")
    pre = (r"w_0 = \mu w^*" if model.pretraining == "aligned"
           else r"w_0 = \mu w^* + \mu_\perp w_\perp,\ w_\perp \perp w^*")
    adapter = r"u v" if model.rank == 1 else r"u_1 v_1 + u_2 v_2"
    parts.append(
        "Inputs $x \\sim \\mathcal{N}(0, I_d)$, teacher $y = \\sigma^*(\\nu) + \\sqrt{\\Delta}\\,\\xi$ with "
        "$\\nu = w^*\\cdot x$; student $\\sigma(\\lambda)$, $\\lambda = w\\cdot x$, "
        f"$w = w_0 + {adapter}$, ${pre}$; one-pass SGD with learning rate $\\eta/d$, batch $B$, "
        "$v$ renormalised after each step; time $t = \\text{steps}/d$.\n"
    )
    parts.append(_align([
        f"\\sigma(x) &= {student.latex()}",
        f"\\sigma^*(x) &= {teacher.latex()}",
        f"\\eta &= {_tex(model.lr)},\\quad B = {_tex(model.batch)},\\quad \\Delta = {_tex(model.noise)}",
    ]))
    parts.append("\\section*{Overlaps}\n")
    parts.append(_align([latex_lines(_tex(k), v) for k, v in overlaps.items()]))
    parts.append(
        "With $G = (\\sigma(\\lambda) - \\sigma^*(\\nu))\\,\\sigma'(\\lambda)$ and $(\\lambda, \\nu)$ centred "
        "Gaussian with $\\operatorname{Var}\\lambda = Q$, $\\operatorname{Cov}(\\lambda,\\nu) = R$, "
        "$\\operatorname{Var}\\nu = 1$:\n"
    )
    labels = {sp.Symbol("A_lambda"): r"A_\lambda = \mathbb{E}[\partial_\lambda G]",
              sp.Symbol("A_nu"): r"A_\nu = \mathbb{E}[\partial_\nu G]",
              sp.Symbol("G2"): r"\mathcal{G} = \mathbb{E}[G^2] + \Delta\,\mathbb{E}[\sigma'(\lambda)^2]"}
    parts.append(_align([latex_lines(labels[k], v) for k, v in definitions.items()]))
    parts.append("\\section*{ODE of the summary statistics}\n")
    parts.append(_align([latex_lines(f"\\frac{{d{_tex(k)}}}{{dt}}", v) for k, v in structure.items()]))
    parts.append("\\section*{Linearisation at the uninformative fixed point}\n")
    fixed = ", ".join(f"{_tex(k)} = {_tex(v)}" for k, v in lin.fixed_point.items())
    parts.append(f"At ${fixed}$, in units of $\\eta$:\n")
    parts.append(_align([
        latex_lines("a(\\mu)", lin.a),
        latex_lines("b(\\mu)", lin.b),
        "\\tau(\\mu) &= \\frac{b + \\sqrt{b^2 + 4a^2}}{2a^2},\\qquad "
        "t_{\\mathrm{esc}} \\approx \\frac{\\tau}{2\\eta}\\log d",
    ]))
    if model.pretraining == "aligned" and model.rank == 1:
        try:
            roots = model.critical_mu(critical_interval)
        except ValueError as exc:
            parts.append(f"Critical $\\mu$: {exc}.\n\n")
        else:
            lo, hi = critical_interval
            listed = ", ".join(f"{_tex(r)} \\approx {float(sp.N(r)):.10g}" if not r.is_Float else f"{float(r):.10g}"
                               for r in roots) or "\\text{none}"
            parts.append(f"Zeros of $a(\\mu)$ in $[{lo}, {hi}]$ (critical $\\mu$): ${listed}$.\n\n")
    exact = model.exact and lin.exact
    if exact:
        parts.append("\\paragraph{Exactness.} All expressions above are exact closed forms.\n")
    else:
        parts.append(
            "\\paragraph{Exactness.} Expressions containing $\\mathbb{E}_{\\cdot}[\\cdots]$ have no closed form "
            "here; symlora evaluates them by Gaussian quadrature with an error estimate (approximate). "
            "All other expressions are exact.\n"
        )
    body = "\n".join(parts)
    if body_only:
        return body
    title = f"LoRA fine-tuning dynamics: {_escape(student.name)} student, {_escape(teacher.name)} teacher"
    return (
        "\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\usepackage[margin=2cm]{geometry}\n"
        "\\allowdisplaybreaks\n"
        f"\\title{{{title}}}\n\\author{{generated by symlora}}\n\\date{{}}\n"
        "\\begin{document}\n\\maketitle\n" + body + "\n\\end{document}\n"
    )


def _escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("^", r"\^{}"), ("&", r"\&"),
                       ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, repl)
    return text.replace("**", "\\^{}\\^{}").replace("*", "$\\cdot$")
