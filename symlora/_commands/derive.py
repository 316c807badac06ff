"""``symlora derive``: the ODE system and its linearisation, as text, JSON or LaTeX.

Quadrature nodes (Gaussian expectations without a closed form) are long; the
text and JSON formats name each distinct node once (``E1``, ``E2``, ...) and
list its integrand and covariance separately, and text lines are wrapped at
:data:`WIDTH` characters.
"""

from __future__ import annotations

import argparse
import textwrap

from ._common import add_model_arguments, build_model

#: Longest line of the text format.
WIDTH = 100

EXAMPLE = """examples:
  symlora derive --student erf
  symlora derive --student x --teacher 'x**2' --format json
  symlora derive --student tanh --format latex > tanh.tex
  symlora derive --student relu --pretraining general
  symlora derive --student erf --rank 3 --format json
  symlora derive --student relu --hidden 2 --teacher-hidden 1 --mus mu,1 --format json"""


def register(subparsers):
    parser = subparsers.add_parser(
        "derive",
        help="print the ODE system of the summary statistics and its linearisation",
        description="Derive the expected-gradient ODEs (docs/theory.md §3) and the linearisation "
        "at the uninformative fixed point (§4) for a student/teacher pair.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    parser.add_argument("--format", choices=("text", "json", "latex"), default="text",
                        help="text: readable, lines of at most 100 characters, quadrature nodes named E1, E2, ...; "
                             "json: the same content as SymPy strings; latex: a standalone document (default text)")
    parser.set_defaults(func=run)


def _abbreviate_nodes(exprs):
    """Replace every quadrature node in ``exprs`` by a symbol ``E1, E2, ...``.

    Returns the rewritten expressions and ``{name: node}`` in order of first use.
    """
    import sympy as sp

    from .._node import GaussianExpectation

    names = {}
    for expr in exprs:
        for node in sorted(sp.sympify(expr).atoms(GaussianExpectation), key=sp.default_sort_key):
            names.setdefault(node, sp.Symbol(f"E{len(names) + 1}"))
    rewritten = [sp.sympify(e).xreplace(names) for e in exprs]
    return rewritten, {str(symbol): node for node, symbol in names.items()}


def derivation(model) -> dict:
    """The derivation of ``model`` as SymPy strings (the JSON payload)."""
    import sympy as sp

    lin = model.linearization()
    overlaps = model.overlaps()
    expectations = model.expectations()
    ode = model.ode(in_terms_of_QR=True)
    jacobian = lin.jacobian.tolist()
    flat = (list(overlaps.values()) + list(expectations.values()) + list(ode.values())
            + [lin.a, lin.b] + [entry for row in jacobian for entry in row])
    rewritten, nodes = _abbreviate_nodes(flat)
    it = iter(rewritten)
    take = lambda mapping: {str(k): sp.sstr(next(it)) for k in mapping}  # noqa: E731
    payload = {
        "model": {
            "student": model.student.name,
            "teacher": model.teacher.name,
            "pretraining": model.pretraining,
            "rank": model.rank,
            "lr": sp.sstr(model.lr),
            "batch": sp.sstr(model.batch),
            "noise": sp.sstr(model.noise),
        },
        "exact": model.exact,
        "states": [str(s) for s in model.states],
        "parameters": [str(p) for p in model.parameters],
        "time": "t = steps/d, learning rate eta/d (docs/theory.md §1.4)",
        "overlaps": take(overlaps),
        "expectations": take(expectations),
        "ode": take(ode),
    }
    a, b = sp.sstr(next(it)), sp.sstr(next(it))
    payload["linearization"] = {
        "fixed_point": {str(k): sp.sstr(v) for k, v in lin.fixed_point.items()},
        "a": a,
        "b": b,
        "tau": "(b + sqrt(b**2 + 4*a**2))/(2*a**2)",
        "units": "a, b in units of eta; tau in units of 1/eta (docs/theory.md §1.5)",
        "jacobian": [[sp.sstr(next(it)) for _ in row] for row in jacobian],
    }
    payload["critical_mu"] = None
    payload["critical_mu_note"] = "derived for aligned pre-training, rank 1 only"
    if model.pretraining == "aligned" and model.rank == 1:
        try:
            roots = model.critical_mu((0, 1))
        except ValueError as exc:
            payload["critical_mu_note"] = str(exc)
        else:
            # exact roots stay exact; numeric ones (sympy.Float) get 12 significant digits
            payload["critical_mu"] = [f"{float(r):.12g}" if r.is_Float else sp.sstr(r) for r in roots]
            payload["critical_mu_note"] = "zeros of a(mu) in [0, 1] (docs/theory.md §5.3)"
    payload["error_bounds"], payload["error_bounds_note"] = error_bounds(model)
    payload["nodes"] = {
        name: {
            "integrand": sp.sstr(node.integrand.expr),
            "variables": [str(v) for v in node.variables],
            "covariance": [[sp.sstr(c) for c in row] for row in node.covariance.tolist()],
        }
        for name, node in nodes.items()
    }
    return payload


#: Where the numeric error bounds of an approximate derivation are shown: every state and parameter 1/2.
SAMPLE_VALUE = 0.5


def error_bounds(model):
    """Values with quadrature error bounds at a sample point, and a note; ``None`` for exact models.

    The expressions with quadrature nodes are symbolic; their error depends
    on where they are evaluated, so the bounds are shown at every state and
    parameter equal to :data:`SAMPLE_VALUE` (``symlora tau --format json``
    gives them at any ``mu``).
    """
    import numpy as np

    from .._codegen import coefficients_function, compile_ode

    lin = model.linearization()
    if model.exact and lin.exact:
        return None, "exact closed forms: no quadrature nodes, so no error bound (only double-precision rounding)"
    system = model.ode_system()
    point = {str(s): SAMPLE_VALUE for s in (*system.states, *system.parameters)}
    compiled = compile_ode(system)
    states = np.full(len(system.states), SAMPLE_VALUE)
    parameters = [SAMPLE_VALUE] * len(system.parameters)
    bounds = {
        "point": point,
        "ode": dict(zip(map(str, system.states), compiled.rhs(states, *parameters).tolist())),
        "ode_error_bound": dict(zip(map(str, system.states), compiled.rhs_error_bound(states, *parameters).tolist())),
    }
    note = ("quadrature nodes E1, E2, ... are evaluated by adaptive Gauss-Legendre quadrature with kinks on "
            "breakpoints; each evaluation carries the bound |I(2n) - I(n)| plus rounding, propagated to first "
            f"order; shown here with every state and parameter = {SAMPLE_VALUE}")
    try:
        coefficients = coefficients_function(model, with_error=True)(SAMPLE_VALUE)
    except ValueError as exc:  # a, b with free symbols (rank 2: the Gram entry q12)
        note += f"; a, b not evaluated: {exc}"
    else:
        for name in ("a", "b", "tau"):
            bounds[name] = float(coefficients[name])
            bounds[name + "_error_bound"] = float(coefficients[name + "_error_bound"])
    return bounds, note


def _wrapped(label: str, text: str, indent: str = "  ") -> list:
    # SymPy puts spaces around + and -, so breaking at spaces keeps terms whole
    return textwrap.wrap(f"{label}{text}", width=WIDTH, initial_indent=indent,
                         subsequent_indent=indent + "    ", break_on_hyphens=False)


def format_text(payload: dict) -> str:
    """The readable form of :func:`derivation` (no line longer than :data:`WIDTH`)."""
    spec = payload["model"]
    lines = [f"# {spec['student']} / {spec['teacher']}, {spec['pretraining']}, rank {spec['rank']}; "
             f"eta = {spec['lr']}, B = {spec['batch']}, Delta = {spec['noise']}"]
    lines.append("# expectations: " + ("exact closed forms" if payload["exact"]
                                       else "contain numeric quadrature nodes E1, E2, ... (listed at the end)"))
    lines.append("Auxiliary overlaps:")
    for name, value in payload["overlaps"].items():
        lines += _wrapped(f"{name} = ", value)
    lines.append("Expectations (G = (sigma(lambda) - sigma*(nu)) sigma'(lambda)):")
    for name, value in payload["expectations"].items():
        lines += _wrapped(f"{name} = ", value)
    lines.append("ODE (t = steps/d, learning rate eta/d):")
    for state, value in payload["ode"].items():
        lines += _wrapped(f"d{state}/dt = ", value)
    lin = payload["linearization"]
    fixed = ", ".join(f"{k} = {v}" for k, v in lin["fixed_point"].items())
    lines.append(f"Linearisation at the fixed point {fixed} (rates in units of eta):")
    lines += _wrapped("a(mu) = ", lin["a"])
    lines += _wrapped("b(mu) = ", lin["b"])
    lines += _wrapped("tau(mu) = ", lin["tau"] + "   (units of 1/eta)")
    lines.append("  Jacobian (rows):")
    for row in lin["jacobian"]:
        lines += _wrapped("", "[" + ", ".join(row) + "]", indent="    ")
    if payload["critical_mu"] is not None:
        lines += _wrapped("critical mu in [0, 1] (a = 0): ", ", ".join(payload["critical_mu"]) or "none")
    elif payload["critical_mu_note"]:
        lines += _wrapped("critical mu: ", payload["critical_mu_note"])
    if payload["error_bounds"] is not None:
        bounds = payload["error_bounds"]
        at = ", ".join(f"{k} = {v:g}" for k, v in bounds["point"].items())
        lines.append(f"Numeric values with quadrature error bounds at {at}:")
        pairs = [(f"d{k}/dt", v, bounds["ode_error_bound"][k]) for k, v in bounds["ode"].items()]
        pairs += [(k, bounds[k], bounds[k + "_error_bound"]) for k in ("a", "b", "tau") if k in bounds]
        lines += _wrapped("", ", ".join(f"{k} = {v:.15g} +- {e:.1e}" for k, v, e in pairs))
    if payload["nodes"]:
        lines.append("Quadrature nodes (Gaussian expectations without closed form, evaluated numerically):")
        for name, node in payload["nodes"].items():
            variables = ", ".join(node["variables"])
            lines += _wrapped(f"{name} = E[", f"{node['integrand']}]")
            cov = "[" + ", ".join("[" + ", ".join(row) + "]" for row in node["covariance"]) + "]"
            lines += _wrapped("", f"over ({variables}) ~ N(0, {cov})", indent="      ")
    return "\n".join(lines)


def run(args) -> int:
    if getattr(args, "hidden", None) is not None:  # a two-layer student (symlora/_commands/_two_layer.py)
        from ._two_layer import run_derive

        return run_derive(args)
    model = build_model(args)
    fmt = getattr(args, "format", "text")
    if fmt == "latex":
        print(model.to_latex())
        return 0
    payload = derivation(model)
    if fmt == "json":
        import json

        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print(format_text(payload))
    return 0
