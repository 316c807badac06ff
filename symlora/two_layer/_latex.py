r"""LaTeX export of a two-layer student's ODE (docs/theory.md §9), for ``symlora latex --hidden K``.

The document follows the stages of the generated code: the covariances in
the statistics, the expectation matrices ``A``, ``B``, ``H`` in the
covariances, and the right-hand sides in ``A``, ``B``, ``H``.  An entry too
long for a page (the four-field drag of an erf committee has thousands of
operations) is named with its size instead of being printed.
"""

from __future__ import annotations

import sympy as sp

from .._latex import _align, _escape, _split, _tex, latex_lines

__all__ = ["two_layer_to_latex"]

#: Operation count above which an entry is not printed (about a page of an ``align*``).
MAX_PRINTED_OPS = 400


def _entries(pairs, what) -> str:
    """``align*`` rows ``name = value`` for the short entries, and a sentence naming the long ones."""
    rows, long = [], []
    for name, value in pairs:
        ops = sp.count_ops(value)
        if ops <= MAX_PRINTED_OPS:
            rows.append(latex_lines(name, value))
        else:
            long.append(f"${name}$ ({ops} operations)")
    text = _align(rows) if rows else ""
    if long:
        text += (f"Not printed, too long for a page ({what}): " + ", ".join(long) + ". They are exact "
                 "and kept as sums over units of a few shapes, each derived once (docs/theory.md §9.5).\n\n")
    return text


def _ode_line(state, rhs, placeholders) -> str:
    # one term per expectation entry (A_kl, B_kj, H_kl) times a polynomial in the statistics; sums of
    # fractions print wider than estimated, hence a narrower line than latex_lines' default
    rhs = sp.collect(sp.expand(rhs), placeholders)
    return f"\\frac{{d{_tex(state)}}}{{dt}} &= " + " \\\\\n  &\\quad ".join(_split(rhs, 56))


def two_layer_to_latex(model, body_only: bool = False) -> str:
    """LaTeX for a :class:`~symlora.TwoLayerLoRAModel`: model, covariances, expectations, ODE, linearisation.

    Parameters
    ----------
    model : TwoLayerLoRAModel
    body_only : bool
        Only the equations (for ``\\input``), no preamble.

    Returns
    -------
    str
    """
    K, Kt, r = model.hidden, model.teacher_hidden, model.rank
    c, ct = model.readouts
    system = model.ode_system()
    definitions = dict(system.definitions)
    Qs = [s for s in definitions if s.name.startswith("Q")]
    Rs = [s for s in definitions if s.name.startswith("R")]
    placeholders = [s for s in definitions if s not in Qs + Rs]
    parts = ["\\section*{Model}\n",
             "Inputs $x \\sim \\mathcal{N}(0, I_d)$; teacher $y = c^* \\sum_{j=1}^{K^*} \\sigma^*(\\nu_j) + "
             "\\sqrt{\\Delta}\\,\\xi$ with $\\nu_j = w^*_j\\cdot x$ (orthonormal $w^*_j$); student "
             "$\\hat y = c \\sum_{k=1}^{K} \\sigma(\\lambda_k)$, $\\lambda_k = w_k\\cdot x$, first layer "
             "$W = W_0 + U V$ with $W_0 = D W^*$ frozen, $U$ a $K \\times r$ matrix and $V$ the $r$ unit "
             "directions $v_a$ (renormalised after each step); one-pass SGD with learning rate $\\eta/d$ and "
             "batch $B$ on $\\frac12 (\\hat y - y)^2$; time $t = \\text{steps}/d$.\n",
             "Statistics: $M_{aj} = v_a\\cdot w^*_j$, the scales $U_{ka}$"
             + (" and the overlaps $q_{ab} = v_a\\cdot v_b$ ($a < b$)" if r > 1 else "") + ".\n",
             _align([f"K &= {K},\\quad K^* = {Kt},\\quad r = {r},\\quad c = {_tex(c)},\\quad c^* = {_tex(ct)}",
                     f"D &= {_tex(model.pretraining)}",
                     f"\\sigma(x) &= {model.student.latex()},\\quad \\sigma^*(x) = {model.teacher.latex()}",
                     f"\\eta &= {_tex(model.lr)},\\quad B = {_tex(model.batch)},\\quad "
                     f"\\Delta = {_tex(model.noise)}"]),
             "\\section*{Covariances}\n",
             "$Q_{kl} = \\operatorname{Cov}(\\lambda_k, \\lambda_l)$, $R_{kj} = \\operatorname{Cov}(\\lambda_k, "
             "\\nu_j)$ in the statistics:\n",
             _entries([(_tex(s), definitions[s]) for s in Qs + Rs], "covariances"),
             "\\section*{Expectations}\n",
             "With $e_0 = c\\sum_k \\sigma(\\lambda_k) - c^*\\sum_j \\sigma^*(\\nu_j)$, in the covariances: "
             "$A_{kl} = c\\,\\mathbb{E}[\\sigma'(\\lambda_k)\\sigma'(\\lambda_l)] + \\delta_{kl}\\,"
             "\\mathbb{E}[e_0 \\sigma''(\\lambda_k)]$, $B_{kj} = -c^*\\,\\mathbb{E}[\\sigma^{*\\prime}(\\nu_j)"
             "\\sigma'(\\lambda_k)]$, $H_{kl} = \\mathbb{E}[e_0^2 \\sigma'(\\lambda_k)\\sigma'(\\lambda_l)] + "
             "\\Delta\\,\\mathbb{E}[\\sigma'(\\lambda_k)\\sigma'(\\lambda_l)]$.\n",
             _entries([(_tex(s), definitions[s]) for s in placeholders], "expectations"),
             "\\section*{ODE of the statistics}\n",
             _align([_ode_line(s, rhs, placeholders) for s, rhs in zip(system.states, system.rhs)]),
             "\\section*{Linearisation at $W = W_0$}\n",
             "At $M = 0$, $U = 0$ each adapter direction has the block $J/\\eta$ acting on "
             "$(M_{a1..aK^*}, U_{1a..Ka})$; $\\tau = 1/\\lambda_{\\max}(J/\\eta)$ in units of $1/\\eta$ and "
             "$t_{\\mathrm{esc}} \\approx \\frac{\\tau}{2\\eta}\\log d$.\n"]
    block = model.linearization().jacobian_block
    n = block.rows
    parts.append(_entries([(f"(J/\\eta)_{{{i + 1},{j + 1}}}", block[i, j]) for i in range(n) for j in range(i, n)],
                          "entries of the block, which is symmetric"))
    parts.append("\\paragraph{Exactness.} " + ("All expressions above are exact closed forms.\n" if model.exact else
                 "Expressions containing $\\mathbb{E}_{\\cdot}[\\cdots]$ have no closed form here; symlora "
                 "evaluates them by Gaussian quadrature with an error estimate.\n"))
    body = "\n".join(parts)
    if body_only:
        return body
    title = f"LoRA fine-tuning of a two-layer student: {_escape(model.name)}"
    return ("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\usepackage[margin=2cm]{geometry}\n"
            "\\allowdisplaybreaks\n"
            f"\\title{{{title}}}\n\\author{{generated by symlora}}\n\\date{{}}\n"
            "\\begin{document}\n\\maketitle\n" + body + "\n\\end{document}\n")
