"""``symlora law``: critical μ and escape-time laws of a student/teacher pair."""

from __future__ import annotations

import argparse
import math
import textwrap

from ._common import add_model_arguments, add_point_arguments, build_model, point_keywords

#: Longest line of the text format.
WIDTH = 100
#: At most this many values of --mu (each law is a symbolic computation).
MAX_MU = 20

EXAMPLE = """examples:
  symlora law --student relu
  symlora law --student x --teacher 'x**2' --mu 0.25,0.5
  symlora law --student He3 --format json
  symlora law --student relu --pretraining general --mu-perp 0.3 --mu 0.5"""


def register(subparsers):
    parser = subparsers.add_parser(
        "law",
        help="critical mu (zeros of a) and the escape-time law at given mu",
        description="For aligned rank-1 LoRA: the coupling a(mu) and damping b(mu) of the linearisation "
        "(docs/theory.md §4), the behaviour of tau as mu -> 0 and mu -> 1, the critical pre-training "
        "strengths in [0, 1] where a vanishes with the escape law there (§5.3), and the leading escape-time "
        "law at each --mu (§5.1: t_esc ≈ (tau/(2 eta)) log d where a != 0). With --pretraining general: "
        "the same at --mu-perp, and the critical points of the (mu, mu_perp) plane (§4.6).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    add_point_arguments(parser, mu="optional")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def _number(expr):
    """A float for JSON (None when not a finite real number)."""
    import sympy as sp

    try:
        value = float(sp.N(expr, 17))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _law_payload(law) -> dict:
    import sympy as sp

    exact = law.prefactor is not None and not law.prefactor.is_Float and not law.prefactor.atoms(sp.Float)
    return {
        "kind": law.kind,
        "prefactor": None if law.prefactor is None else _number(law.prefactor),
        "prefactor_exact": sp.sstr(law.prefactor) if exact else None,
        "exponent": None if law.exponent is None else sp.sstr(law.exponent),
        "log_factor": law.log_factor,
        "statement": law.summary(),
        "derivation": law.derivation,
    }


def laws(model, mu_values=None, mu_perp=0.0) -> dict:
    """Everything ``symlora law`` prints, as JSON-ready data (general pre-training: at ``mu_perp``)."""
    import sympy as sp

    lin = model.linearization()
    general = model.pretraining == "general"
    point = {"mu_perp": mu_perp} if general else {}
    # tau_limits are the aligned mu -> 0, 1 limits; general pre-training reports its critical set instead
    limits = {} if general else model.tau_limits()
    payload = {
        "student": model.student.name,
        "teacher": model.teacher.name,
        "lr": _number(model.lr),
        "batch": int(model.batch),
        "noise": _number(model.noise),
        "a": sp.sstr(lin.a),
        "b": sp.sstr(lin.b),
        "units": "a, b in units of eta; tau in units of 1/eta; t = steps/d (docs/theory.md §1)",
        "tau_limits": {
            label: {"point": int(law["point"]), "law": law["law"],
                    "coefficient": _number(law["coefficient"]),
                    "exponent": None if law["exponent"] is None else int(law["exponent"])}
            for label, law in limits.items()
        },
        "critical_mu": [],
        "laws": [],
    }
    if general:
        from .._general_pretraining import critical_set

        found = critical_set(model, 1, max(1, mu_perp))
        payload.update(pretraining="general", mu_perp=mu_perp, critical_set={
            "points": [{"mu": sp.sstr(p.mu), "mu_perp": sp.sstr(p.mu_perp), "exact": p.exact,
                        "certified": p.certified} for p in found.points],
            "statement": found.statement})
    for root in model.critical_mu((0, 1), **point):
        entry = {"mu": f"{float(root):.12g}" if root.is_Float else sp.sstr(root), "mu_numeric": _number(root)}
        entry.update(_law_payload(model.escape_law(root, **point)))
        payload["critical_mu"].append(entry)
    for mu in [] if mu_values is None else mu_values:
        mu = float(mu)
        tau = float(model.coefficients(mu, mu_perp)["tau"] if general else model.tau(mu))
        entry = {"mu": mu, "tau": tau if math.isfinite(tau) else None}
        entry.update(_law_payload(model.escape_law(mu, **point)))
        payload["laws"].append(entry)
    return payload


def _wrap(text, indent="  "):
    return textwrap.wrap(text, width=WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False)


def _law_line(entry) -> str:
    if entry["kind"] == "none":
        return f"{entry['statement']}  (see why)"
    if entry["kind"] == "not derived":
        return "law not derived (see why)"
    if entry["kind"] == "log":
        return f"{entry['statement']}  (log d law, slope tau/(2 eta))"
    return f"{entry['statement']}  (power law, a finite-d heuristic)"


def format_text(payload) -> str:
    setting = f"general, mu_perp = {payload['mu_perp']:g}" if "mu_perp" in payload else "aligned"
    lines = [f"# {payload['student']} / {payload['teacher']}, {setting}, rank 1; eta = {payload['lr']:g}, "
             f"B = {payload['batch']}, Delta = {payload['noise']:g}; a, b in units of eta, tau of 1/eta"]
    lines += _wrap(f"a(mu) = {payload['a']}", "")
    lines += _wrap(f"b(mu) = {payload['b']}", "")
    for label, limit in payload["tau_limits"].items():
        lines += _wrap(f"tau as mu -> {limit['point']}: {limit['law']}", "")
    if "critical_set" in payload:
        points = ", ".join(f"({p['mu']}, {p['mu_perp']})" for p in payload["critical_set"]["points"]) or "none"
        lines += _wrap(f"critical points (mu, mu_perp) in [0, 1] x [0, {max(1, payload['mu_perp']):g}], where "
                       f"tau = inf needs a = 0: {points}", "")
        lines += _wrap(f"why: {payload['critical_set']['statement']}", "      ")
    where = f" at mu_perp = {payload['mu_perp']:g}" if "mu_perp" in payload else ""
    if payload["critical_mu"]:
        lines.append(f"critical mu in [0, 1]{where} (a = 0, docs/theory.md §5.3):")
        for entry in payload["critical_mu"]:
            mu = entry["mu"] if entry["mu"] == f"{entry['mu_numeric']:.12g}" else \
                f"{entry['mu']} ≈ {entry['mu_numeric']:.12g}"
            lines += _wrap(f"mu = {mu}: {_law_line(entry)}")
            lines += _wrap(f"why: {entry['derivation']}", "      ")
    else:
        lines.append(f"critical mu in [0, 1]{where} (a = 0): none")
    for entry in payload["laws"]:
        lines.append(f"escape law at mu = {entry['mu']:g} (tau = {entry['tau']:.6g}):"
                     if entry["tau"] is not None else f"escape law at mu = {entry['mu']:g}:")
        lines += _wrap(_law_line(entry))
        if entry["kind"] != "log":
            lines += _wrap(f"why: {entry['derivation']}", "      ")
    return "\n".join(lines)


def run(args) -> int:
    from ..cli import CommandError

    if args.mu is not None and len(args.mu) > MAX_MU:
        raise CommandError(f"--mu has {len(args.mu)} values; the law command takes at most {MAX_MU}")
    model = build_model(args)
    payload = laws(model, args.mu, **point_keywords(args))
    if args.format == "json":
        import json

        from ..cli import _jsonable

        print(json.dumps(_jsonable(payload), indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(format_text(payload))
    return 0
