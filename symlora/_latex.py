"""LaTeX export of a model's ODE system and linearisation.

The output compiles with plain ``pdflatex`` (``article`` + ``amsmath``):
long sums are broken over lines inside ``align*`` environments, and the
ODE is written in terms of four expectations defined separately, as in
docs/theory.md §3.
"""

from __future__ import annotations

import re

import sympy as sp

from . import _symbols as S
from ._activation import x
from ._expectation import evaluate_with_error, is_exact
from ._figures import describe_number, format_number
from ._node import GaussianExpectation

__all__ = ["model_to_latex", "latex_lines"]

#: Visible width (estimated characters, see :func:`_width`) of a displayed line, left side included.
_LINE = 80

_NAMES = {
    sp.Symbol("A_lambda"): r"A_\lambda",
    sp.Symbol("A_nu"): r"A_\nu",
    sp.Symbol("G2"): r"\mathcal{G}",
    S.mu_perp: r"\mu_\perp",
    S.q12: r"q_{12}",
}


def adapter_latex(rank: int) -> str:
    """The LoRA update in LaTeX: ``u v`` at rank 1, ``Σ_a u_a v_a`` above."""
    return "u v" if rank == 1 else rf"\sum_{{a=1}}^{{{rank}}} u_a v_a"


def _statistics_sentence(model) -> str:
    """One sentence naming every summary statistic of ``model``."""
    index = "" if model.rank == 1 else "_a"
    names = [f"$m{index} = v{index}\\cdot w^*$"]
    if model.pretraining == "general":
        names.append(f"$s{index} = v{index}\\cdot w_\\perp$ (the overlap with the orthogonal part of the "
                     "pre-trained weight)")
    names.append(f"the adapter scale{'s' if model.rank > 1 else ''} $u{index}$")
    if model.rank > 1:
        names[-1] += f" ($a = 1, \\dots, {model.rank}$)"
        names.append("the overlaps $q_{ab} = v_a\\cdot v_b$ of the directions ($a < b$)")
    return "Statistics: " + ", ".join(names[:-1]) + " and " + names[-1] + ".\n"


def _tex(expr) -> str:
    return sp.latex(expr, symbol_names=_NAMES)


def _width(tex: str) -> int:
    """Rough printed width of LaTeX math, in characters.

    Commands count as one character, grouping and sizing markup as none,
    and a fraction as its wider part; deliberately on the generous side so
    that a line judged to fit does fit the 17 cm text width.
    """
    text = re.sub(r"\\(left|right|Bigl|Bigr|bigl|bigr|quad|qquad|,|;)\b", "", tex)
    while True:  # \frac{A}{B} -> the wider of A and B
        match = re.search(r"\\frac\{((?:[^{}]|\{[^{}]*\})*)\}\{((?:[^{}]|\{[^{}]*\})*)\}", text)
        if not match:
            break
        num, den = match.group(1), match.group(2)
        text = text[: match.start()] + (num if _width(num) >= _width(den) else den) + text[match.end():]
    text = re.sub(r"\\[a-zA-Z]+", "x", text)
    text = re.sub(r"[{}^_ ]", "", text)
    return len(text)


def _split(expr, width: int) -> list:
    r"""Lines of at most ``width`` (estimated) whose concatenation is ``expr``.

    Sums are broken between terms (each line after the first starts with
    its sign); a product whose widest factor is a sum, possibly raised to a
    power, keeps its other factors in front and breaks the sum inside
    ``\Bigl( … \Bigr)``.  Anything else (a long square root, a quadrature
    node) stays on one line.
    """
    text = _tex(expr)
    if _width(text) <= width:
        return [text]
    if isinstance(expr, sp.Add):
        lines, current = [], ""
        for term in expr.as_ordered_terms():
            for piece in _split(term, width - 2):
                # continuation lines of a broken term already carry their sign
                sign = "" if not current and not lines else ("" if piece.startswith(("-", "+ ")) else "+ ")
                piece = sign + piece
                if current and _width(current) + _width(piece) > width:
                    lines.append(current)
                    current = piece
                else:
                    current = f"{current} {piece}".strip()
        return lines + [current]
    if isinstance(expr, sp.Mul):
        factors = list(expr.as_ordered_factors())
        inner = [f for f in factors if isinstance(f, sp.Add) or (isinstance(f, sp.Pow) and isinstance(f.base, sp.Add)
                                                                 and f.exp.is_Integer and f.exp > 0)]
        if inner:
            widest = max(inner, key=lambda f: _width(_tex(f)))
            rest = sp.Mul(*[f for f in factors if f is not widest])
            base, power = (widest.base, widest.exp) if isinstance(widest, sp.Pow) else (widest, 1)
            if rest == -1:
                prefix = "-"
            elif rest == 1:
                prefix = ""
            else:
                prefix = _tex(rest) + (r"\," if not rest.is_Number else " ")
                prefix = prefix if not prefix.startswith("-") or rest.is_Number else prefix
            suffix = r"\Bigr)" + (f"^{{{power}}}" if power != 1 else "")
            if _width(prefix) > width // 3:  # a long prefix gets a line of its own
                lines = [f"{prefix}\\Bigl("] + _split(base, width - 4)
            else:
                lines = _split(base, width - 4 - _width(prefix))
                lines[0] = f"{prefix}\\Bigl({lines[0]}"
            lines[-1] = f"{lines[-1]}{suffix}"
            return lines
    return [text]


def _one_expectation(expr):
    """``E[f] + c`` → ``E[f + c]``: a quadrature node and its constants read as one expectation."""
    if isinstance(expr, (sp.Add, sp.Mul, sp.Pow)):
        args = [_one_expectation(arg) for arg in expr.args]
        if isinstance(expr, sp.Add):
            nodes = [a for a in args if isinstance(a, GaussianExpectation)]
            numbers = [a for a in args if a.is_Number]
            if len(nodes) == 1 and numbers and len(nodes) + len(numbers) == len(args):
                integrand, cov = nodes[0].args[:2]
                shifted = sp.Lambda(integrand.variables, integrand.expr + sp.Add(*numbers))
                return GaussianExpectation(shifted, cov)
        return expr.func(*args)
    return expr


def latex_lines(lhs: str, expr) -> str:
    r"""``lhs &= ...`` with long sums spread over several aligned lines.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> text = latex_lines("f", sum(x**k for k in range(60)))
    >>> text.count(r"&\quad")     # continuation lines
    2
    """
    lines = _split(_one_expectation(expr), max(_LINE - _width(lhs), 30))
    body = " \\\\\n  &\\quad ".join(lines)
    return f"{lhs} &= {body}"


def _signed_root(term):
    """``t`` with ``t² = term`` keeping the sign-carrying factors, or ``None``."""
    coeff, rest = term.as_coeff_Mul()
    if not coeff > 0:
        return None
    out = [sp.sqrt(coeff)]
    for factor in sp.Mul.make_args(rest):
        base, exp = factor.as_base_exp()
        # even powers carry the sign of the root; the other factors of a square are non-negative
        out.append(base ** (exp / 2) if exp.is_Integer and exp % 2 == 0 else sp.sqrt(factor))
    return sp.Mul(*out)


def _coupling_lines(a) -> list:
    """``a(μ)``; a norm ``sqrt(a_1² + a_2²)`` is written with its signed parts defined first."""
    if isinstance(a, sp.Pow) and a.exp == sp.Rational(1, 2) and isinstance(a.base, sp.Add):
        parts = [_signed_root(t) for t in a.base.as_ordered_terms()]
        if all(p is not None for p in parts):
            names = [f"a_{{{k + 1}}}" for k in range(len(parts))]
            norm = " + ".join(f"{n}^2" for n in names)
            return [latex_lines(n, p) for n, p in zip(names, parts)] + [f"a(\\mu) &= \\sqrt{{{norm}}}"]
    return [latex_lines("a(\\mu)", a)]


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
    adapter = adapter_latex(model.rank)
    parts.append(
        "Inputs $x \\sim \\mathcal{N}(0, I_d)$, teacher $y = \\sigma^*(\\nu) + \\sqrt{\\Delta}\\,\\xi$ with "
        "$\\nu = w^*\\cdot x$; student $\\sigma(\\lambda)$, $\\lambda = w\\cdot x$, "
        f"$w = w_0 + {adapter}$, ${pre}$; one-pass SGD with learning rate $\\eta/d$, batch $B$, "
        "$v$ renormalised after each step; time $t = \\text{steps}/d$.\n"
    )
    parts.append(_statistics_sentence(model))
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
        *_coupling_lines(lin.a),
        latex_lines("b(\\mu)", lin.b),
        "\\tau(\\mu) &= \\frac{b + \\sqrt{b^2 + 4a^2}}{2a^2},\\qquad "
        "t_{\\mathrm{esc}} \\approx \\frac{\\tau}{2\\eta}\\log d",
    ]))
    if model.pretraining == "aligned" and model.rank == 1:
        try:
            roots = model.critical_mu(critical_interval)
        except ValueError as exc:
            parts.append(f"Critical $\\mu$: {_escape(str(exc))}.\n\n")
        except NotImplementedError:
            parts.append("Critical $\\mu$: the zeros of $a(\\mu)$ could not be isolated exactly for this pair "
                         "(see \\texttt{symlora tau} for its values).\n\n")
        else:
            lo, hi = critical_interval
            listed = [f"${describe_number(r, latex=True, digits=10)}$" for r in roots]
            items = "".join(f"\\item {item}\n" for item in listed)
            parts.append(f"Zeros of $a(\\mu)$ in $[{lo}, {hi}]$ (critical $\\mu$):"
                         + (f"\n\\begin{{itemize}}\n{items}\\end{{itemize}}\n\n" if listed else " none.\n\n"))
    parts.append(_diffusion_latex(model))
    exact = model.exact and lin.exact
    if exact:
        parts.append("\\paragraph{Exactness.} All expressions above are exact closed forms.\n")
    else:
        parts.append(
            "\\paragraph{Exactness.} Expressions containing $\\mathbb{E}_{\\cdot}[\\cdots]$ have no closed form "
            "here; symlora evaluates them by Gaussian quadrature with an error estimate (approximate). "
            "All other expressions are exact.\n"
        )
        if model.pretraining == "aligned" and model.rank == 1:
            from ._asymptotics import tau_from
            from ._codegen import tau_error_bound

            values, numbers = [], {}
            for name, expr in (("a", lin.a), ("b", lin.b)):
                numbers[name] = value, error = evaluate_with_error(expr, {S.mu: sp.Rational(1, 2)})
                values.append(f"${name}(1/2) = {format_number(value, 10)} \\pm {_tex_bound(error)}$")
            (a, a_error), (b, b_error) = numbers["a"], numbers["b"]
            tau, tau_error = float(tau_from(a, b)), float(tau_error_bound(a, b, a_error, b_error))
            values.append(f"$\\tau(1/2) = {format_number(tau, 10)} \\pm {_tex_bound(tau_error)}$")
            parts.append("For example " + ", ".join(values[:-1]) + " and " + values[-1]
                         + " (quadrature error bounds, propagated to $\\tau$ to first order).\n")
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


#: Operation count of the unexpanded diffusion matrix above which it is not expanded for display. Expanded,
#: x/x^2 (250 operations) has 57 terms and fits the page; He2 (2,100) has 356 and does not; He3 (4,900)
#: took minutes to expand only to be dropped as too long.
_DIFFUSION_OPS = 1000


def _tex_bound(error: float) -> str:
    """An error bound in LaTeX with two digits, ``3.4 \\cdot 10^{-16}`` (not ``3.4e-16``)."""
    return sp.latex(sp.Float(float(error), 2)) if error else "0"


def _diffusion_latex(model) -> str:
    """Section on the order-1/d noise: definition, fixed-point value and (if short) the full matrix."""
    text = [
        "\\section*{Diffusion at finite $d$}\n",
        "One step changes each statistic $X_i$ by $-\\frac{\\eta}{dB}\\sum_b h_i(x_b)$ with "
        "$h_i = g L_i + \\frac{\\eta}{B} K_i g^2$, $g = (\\sigma(\\lambda) - \\sigma^*(\\nu) - \\sqrt{\\Delta}\\xi)"
        "\\,\\sigma'(\\lambda)$; over a time $\\delta t$ the statistics gain the covariance "
        "$D\\,\\delta t/d$ with $D_{ij} = \\frac{\\eta^2}{B}\\operatorname{Cov}[h_i, h_j]$.\n",
    ]
    if model.pretraining == "aligned" and model.rank == 1:
        D0 = model.diffusion_at_fixed_point()
        text.append("At the fixed point only the adapter scale diffuses:\n")
        text.append(_align([latex_lines("D_{uu}\\big|_{m=u=0}", D0[1, 1])]))
    polynomial = all(act.expr.is_polynomial(x) for act in (model.student, model.teacher))
    rows = []
    if polynomial and model.rank == 1:
        # the full matrix is derived in seconds for polynomial pairs only (kinked and erf-type pairs take
        # up to a minute): other exports point to model.diffusion() instead of slowing every document down
        D = model.diffusion()
        if sum(sp.count_ops(entry) for entry in D) <= _DIFFUSION_OPS:
            names = [_tex(st) for st in model.states]
            # expanded sums break cleanly; a narrower measure than latex_lines' because sums of
            # monomials with many superscripts typeset wider than _width estimates
            rows = [f"D_{{{names[i]}{names[j]}}} &= " + " \\\\\n  &\\quad ".join(_split(sp.expand(D[i, j]), 55))
                    for i in range(D.rows) for j in range(i, D.cols) if D[i, j] != 0]
    if rows and sum(len(r) for r in rows) <= 40 * _LINE:
        text.append("The full matrix (entries not shown are zero):\n")
        text.append(_align(rows))
    else:
        text.append("The full matrix is long for this pair; symlora provides it exactly as "
                    "\\texttt{model.diffusion()} and in generated code (\\texttt{model.diffusion\\_function()}).\n")
    return "".join(text)


def _escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("^", r"\^{}"), ("&", r"\&"),
                       ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, repl)
    text = re.sub(r"\*\*\s*\(?([0-9A-Za-z.]+)\)?", r"\\textsuperscript{\1}", text)
    return text.replace("*", "$\\cdot$")
