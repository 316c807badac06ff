"""Every approximate quantity of the ODE against an independent 30-digit reference.

For a corpus of activation pairs over the parser's families (smooth without
closed form, kinked, closed form, mixed, label noise, general pre-training)
this compares what symlora's generated code returns with
:mod:`lora_reference` (nested ``mpmath.quad``, written without symlora):

* ``a(μ)``, ``b(μ)``, ``τ(μ)`` (``coefficients_function(..., with_error=True)``)
  and the same from ``Linearization.values`` (the high-precision route);
* the Jacobian at the uninformative fixed point, from the generated Jacobian
  (the derivative of the ODE, not built from ``a`` and ``b``);
* the right-hand side at random states ``|m| < 1``, ``0 < |u| <= 3``
  (aligned pre-training; two-dimensional reference, the expensive part).

Each quantity's reported error bound must be at least its true error (up to
a rounding allowance for closed forms, whose bound is 0).  Prints one line
per quantity and the worst errors and bound ratios per kind.

Usage::

    nice -n 10 python benchmarks/verify_exact_accuracy.py            # whole corpus (about an hour)
    python benchmarks/verify_exact_accuracy.py --pairs 3 --states 1  # a few minutes
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lora_reference as ref  # noqa: E402

#: (student, teacher, lr, batch, noise): aligned pairs over the parser's families
ALIGNED = [
    ("tanh", "relu", 2, 1, 1.5),
    ("sigmoid", "relu", 2, 1, 1.5),
    ("elu", "softsign", 1, 2, 0.5),
    ("silu", "gelu", 1, 1, 0),
    ("softplus", "He3", 0.5, 1, 0.25),
    ("softsign", "relu", 1, 1, 0),
    ("elu", "elu", 1, 1, 0),
    ("softsign", "softsign", 1, 1, 0.1),
    ("gelu", "tanh", 1, 4, 1),
    ("swish", "x", 1, 1, 0),
    ("tanh", "tanh", 1, 1, 0),
    ("abs", "abs", 1, 1, 0),
    ("leaky_relu(x, 0.1)", "relu", 1, 1, 0.5),
    ("relu(x - 0.5)", "relu", 1, 1, 0),
    ("erf(2*x)", "erf", 1, 1, 0),
    ("relu", "tanh", 1, 1, 0),
    ("elu", "relu(x + 0.3)", 1, 1, 0),
    ("softsign", "leaky_relu(x, 0.25)", 1, 1, 0),
    ("tanh(x) + relu(x)", "x", 1, 1, 0),
    ("x*tanh(x)", "He2", 0.5, 1, 0),
    ("erf(x/2)", "x + x**3/3", 0.5, 1, 0),
    ("x", "x**2", 1, 1, 0.3),
    ("He3", "x", 0.2, 1, 0),
    ("sigmoid", "softplus", 1, 1, 0),
]

#: (student, teacher, mu, mu_perp): general pre-training
GENERAL = [
    ("tanh", "relu", 0.5, 0.3),
    ("elu", "softsign", 0.6, 0.4),
    ("silu", "x", 0.3, 0.8),
    ("softsign", "relu", 0.7, 0.2),
    ("relu", "erf", 0.5, 0.5),
]

#: pre-training strengths of the linearisation checks
MUS = (0.15, 0.5, 0.85)


#: Target accuracy of values that carry no bound of their own (the generated Jacobian).
TARGET = 1e-12


def _row(kind, case, name, value, reference, bound):
    # τ = ∞ where a = 0 (erf(2x) against erf at μ = 1/2: the student is the teacher)
    error = 0.0 if value == reference else abs(value - reference)
    scale = max(1.0, abs(reference)) if math.isfinite(reference) else 1.0
    if bound is None:
        ok = error <= TARGET * scale
        bound = math.nan
    else:
        # closed forms report bound 0: allow rounding of a double-precision evaluation
        ok = error <= bound + 1e-14 * scale
    return {"kind": kind, "case": case, "name": name, "value": value, "reference": reference,
            "error": error, "relative": error / scale, "bound": bound, "ok": ok}


def check_linearization(student, teacher, lr=1, batch=1, noise=0, mus=MUS, jacobian=True, generated=True):
    """Rows for a, b, τ (generated code and Linearization.values) and the fixed-point Jacobian.

    ``jacobian``: also the symbolic Jacobian at the fixed point (with bounds);
    ``generated``: also the generated Jacobian (compiling it takes minutes for
    pairs of two kinked activations without closed form).
    """
    from symlora import LoRAModel
    from symlora._codegen import coefficients_function, compile_ode

    model = LoRAModel(student, teacher, lr=lr, batch=batch, noise=noise)
    case = f"{student} / {teacher}"
    coefficients = coefficients_function(model, with_error=True)
    system = model.ode_system()
    compiled = compile_ode(system) if generated else None
    rows = []
    for mu in mus:
        a, b, tau, _ = ref.ab(student, teacher, mu)
        a, b, tau = float(a), float(b), float(tau)
        got = coefficients(mu)
        for name, r in (("a", a), ("b", b), ("tau", tau)):
            rows.append(_row(name, case, f"{name}({mu})", float(got[name]), r, float(got[f"{name}_error_bound"])))
        values = model.linearization().values(mu)
        for name, r in (("a", a), ("b", b)):
            rows.append(_row(name + " (values)", case, f"{name}({mu})", values[name], r, values[f"{name}_error"]))
        if not jacobian:
            continue
        reference = ref.aligned_jacobian(student, teacher, mu, lr)
        symbolic, bounds = fixed_point_jacobian(model, {"mu": mu})
        with np.errstate(all="ignore"):
            values = compiled.jacobian(np.zeros(2), mu) if generated else np.full((2, 2), np.nan)
        for i in range(2):
            for j in range(2):
                r = float(reference[i][j])
                rows.append(_row("jacobian", case, f"J{i}{j}({mu})", symbolic[i, j], r, bounds[i, j]))
                if np.isfinite(values[i, j]):  # closed forms with |u| sqrt(1 - m²) read 0/0 at u = 0
                    rows.append(_row("jacobian (generated)", case, f"J{i}{j}({mu})", float(values[i, j]), r, None))
    return rows


def fixed_point_jacobian(model, parameters, offset=1e-18):
    """The derivative of the ODE at the fixed point, entry by entry, with error bounds.

    Each entry of the symbolic Jacobian is evaluated by ``evaluate_with_error``
    (30 digits for closed forms; quadrature nodes with their bounds) a distance
    ``offset`` from the fixed point: closed forms such as
    ``sqrt(Q - R²) = |u| sqrt(1 - m²)`` are 0/0 exactly there.
    """
    import sympy as sp

    from symlora._codegen import jacobian_expressions
    from symlora._expectation import evaluate_with_error

    system = model.ode_system()
    jacobian = jacobian_expressions(system)
    point = {state: sp.Float(offset * (k + 1), 40) for k, state in enumerate(system.states)}
    point.update({p: sp.Rational(str(parameters[str(p)])) for p in system.parameters})
    n = len(system.states)
    values, bounds = np.empty((n, n)), np.empty((n, n))
    for i in range(n):
        for j in range(n):
            values[i, j], bounds[i, j] = evaluate_with_error(jacobian[i, j].subs(point))
    return values, bounds


def random_states(count, seed):
    """``count`` states ``(m, u)`` with ``|m| < 1`` and ``0.05 <= |u| <= 3``, and ``μ`` in [0.1, 0.95]."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(-0.95, 0.95, count)
    u = rng.choice([-1, 1], count) * rng.uniform(0.05, 3.0, count)
    mu = rng.uniform(0.1, 0.95, count)
    return list(zip(m.round(6), u.round(6), mu.round(6)))


def check_rhs(student, teacher, lr=1, batch=1, noise=0, states=(), dps=ref.DPS):
    """Rows for the right-hand side (both components) at the given ``(m, u, mu)`` states."""
    from symlora import LoRAModel
    from symlora._codegen import compile_ode

    model = LoRAModel(student, teacher, lr=lr, batch=batch, noise=noise)
    compiled = compile_ode(model.ode_system())
    case = f"{student} / {teacher} (η {lr}, B {batch}, Δ {noise})"
    rows = []
    for m, u, mu in states:
        point = np.array([m, u])
        value = compiled.rhs(point, mu)
        bound = compiled.rhs_error_bound(point, mu)
        (dm, du), _ = ref.aligned_rhs(student, teacher, m, u, mu, lr, batch, noise, dps=dps)
        for k, (name, r) in enumerate((("dm/dt", dm), ("du/dt", du))):
            rows.append(_row("rhs", case, f"{name}(m={m}, u={u}, μ={mu})", float(value[k]), float(r), float(bound[k])))
    return rows


def check_general(student, teacher, mu, mu_perp, dps=ref.DPS):
    """Rows for α, β, b, τ (generated code) and the fixed-point Jacobian of general pre-training."""
    from symlora import LoRAModel
    from symlora._codegen import coefficients_function

    model = LoRAModel(student, teacher, pretraining="general")
    case = f"{student} / {teacher} (general, μ⊥ {mu_perp})"
    alpha, beta, b, tau, _ = ref.general_coefficients(student, teacher, mu, mu_perp, dps=dps)
    got = coefficients_function(model, with_error=True)(mu, mu_perp)
    rows = [
        _row("a", case, f"a({mu})", float(got["a"]), float(math.hypot(alpha, beta)), float(got["a_error_bound"])),
        _row("b", case, f"b({mu})", float(got["b"]), float(b), float(got["b_error_bound"])),
        _row("tau", case, f"tau({mu})", float(got["tau"]), float(tau), float(got["tau_error_bound"])),
    ]
    system = model.ode_system()
    flat, bounds = fixed_point_jacobian(model, {"mu": mu, "mu_perp": mu_perp})
    reference = ref.general_jacobian(student, teacher, mu, mu_perp, dps=dps)
    names = [str(s) for s in system.states]
    order = [names.index(s) for s in ("m", "s", "u")]
    for i in range(3):
        for j in range(3):
            value, bound = flat[order[i], order[j]], bounds[order[i], order[j]]
            if not np.isfinite(value):
                continue  # reported as a failure below
            rows.append(_row("jacobian", case, f"J{i}{j}({mu})", float(value), float(reference[i][j]), float(bound)))
    if not np.all(np.isfinite(flat)):
        rows.append({"kind": "jacobian", "case": case, "name": "finite", "value": math.nan, "reference": 0.0,
                     "error": math.inf, "relative": math.inf, "bound": 0.0, "ok": False})
    return rows


def _refused(case, exc):
    """A failed row for a case symlora could not evaluate (the message says why)."""
    return {"kind": "refused", "case": case, "name": str(exc)[:120], "value": math.nan, "reference": 0.0,
            "error": math.inf, "relative": math.inf, "bound": math.nan, "ok": False}


def summary(rows):
    """Per kind: worst absolute and relative error, smallest and largest bound/error ratio, failures."""
    out = {}
    for row in rows:
        s = out.setdefault(row["kind"], {"count": 0, "abs": 0.0, "rel": 0.0, "ratio": [math.inf, 0.0], "failed": 0})
        s["count"] += 1
        s["abs"] = max(s["abs"], row["error"])
        s["rel"] = max(s["rel"], row["relative"])
        if row["error"] > 1e-15 * max(1.0, abs(row["reference"])) and row["bound"] > 0:
            ratio = row["bound"] / row["error"]
            s["ratio"] = [min(s["ratio"][0], ratio), max(s["ratio"][1], ratio)]
        s["failed"] += not row["ok"]
    return out


def run(pairs=len(ALIGNED), states=4, general=len(GENERAL), seed=12, dps=ref.DPS, out=print, first=0,
        generated=True):
    """Run the corpus (aligned pairs ``first`` to ``first + pairs``, ``states`` RHS states each); returns the rows."""
    rows = []
    for index, (student, teacher, lr, batch, noise) in enumerate(ALIGNED[first:first + pairs], start=first):
        start = time.process_time()
        try:
            new = check_linearization(student, teacher, lr, batch, noise, generated=generated)
            if states:
                new += check_rhs(student, teacher, lr, batch, noise, random_states(states, seed + index), dps=dps)
        except (ValueError, NotImplementedError) as exc:  # reported, the corpus goes on
            new = [_refused(f"{student} / {teacher}", exc)]
        rows += new
        worst = max(new, key=lambda r: r["relative"])
        out(f"{student:>20} / {teacher:<20} worst {worst['relative']:.1e} ({worst['kind']} {worst['name']}), "
            f"failed {sum(not r['ok'] for r in new)}, {time.process_time() - start:.0f} s CPU")
    for student, teacher, mu, mu_perp in GENERAL[:general]:
        start = time.process_time()
        try:
            new = check_general(student, teacher, mu, mu_perp, dps=dps)
        except (ValueError, NotImplementedError) as exc:
            new = [_refused(f"{student} / {teacher} (general)", exc)]
        rows += new
        worst = max(new, key=lambda r: r["relative"])
        out(f"{student:>20} / {teacher:<20} general worst {worst['relative']:.1e} ({worst['kind']} {worst['name']}), "
            f"failed {sum(not r['ok'] for r in new)}, {time.process_time() - start:.0f} s CPU")
    for kind, s in summary(rows).items():
        out(f"{kind:>12}: {s['count']:4d} values, max abs error {s['abs']:.1e}, max rel error {s['rel']:.1e}, "
            f"bound/error in [{s['ratio'][0]:.3g}, {s['ratio'][1]:.3g}], bound below error {s['failed']}")
    for row in rows:
        if not row["ok"]:
            out(f"FAILED {row['kind']} {row['case']} {row['name']}: {row['value']!r} vs {row['reference']!r} "
                f"(error {row['error']:.2e}, bound {row['bound']:.2e})")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=len(ALIGNED), help="aligned pairs to check (from the top)")
    parser.add_argument("--states", type=int, default=4, help="random RHS states per aligned pair")
    parser.add_argument("--general", type=int, default=len(GENERAL), help="general pre-training cases")
    parser.add_argument("--first", type=int, default=0, help="index of the first aligned pair")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--no-generated-jacobian", action="store_true",
                        help="skip compiling the generated Jacobian (minutes for two kinked activations)")
    args = parser.parse_args(argv)
    rows = run(args.pairs, args.states, args.general, args.seed, first=args.first,
               generated=not args.no_generated_jacobian)
    return 1 if any(not r["ok"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
