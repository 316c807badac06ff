"""The full ODE Jacobian against differences of the right-hand side and an independent 30-digit reference.

For aligned pairs (softsign pairs, whose Jacobian needs the distributional
derivatives of ``|λ|``, and pairs whose Jacobian was already built before, as
a regression) at states ``|m| < 1``, ``0 < |u| <= 3``, with label noise and
``B > 1``, this compares symlora's generated Jacobian with

* central differences of symlora's own generated right-hand side at steps
  ``h`` and ``h/2``, Richardson-extrapolated (truncation error ``O(h^4)``);
* ``mpmath.diff`` (30 digits) of :func:`lora_reference.aligned_rhs`, the
  nested-``mpmath.quad`` right-hand side written without symlora;

and reports the Jacobian's own quadrature error bound
(``CompiledODE.jacobian_error_bound``) beside the true error.

Usage::

    nice -n 10 python benchmarks/verify_jacobian.py               # every case (each reference state ~4 RHS calls)
    python benchmarks/verify_jacobian.py --cases 0 6 --no-reference  # generated code only, seconds
    nice -n 10 python benchmarks/verify_jacobian.py --degenerate --cases 0 3 6  # u = 0: elu pairs (~2 min each)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import mpmath
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lora_reference as ref  # noqa: E402

#: (student, teacher, lr, batch, noise, m, u, mu)
CASES = [
    ("softsign", "relu", 1, 1, 0, 0.3, -0.7, 0.6),
    ("softsign", "relu", 2, 3, 0.5, -0.85, 2.9, 0.2),
    ("softsign", "softsign", 1, 1, 0.1, 0.5, 1.3, 0.7),
    ("softsign", "leaky_relu(x, 0.1)", 0.5, 4, 1, 0.95, -1.1, 0.3),
    ("tanh", "relu", 2, 1, 1.5, 0.4, 0.8, 0.5),
    ("relu", "relu", 1, 2, 0.3, -0.6, 1.7, 0.4),
    ("erf", "erf", 1, 1, 0.2, 0.7, -0.5, 0.8),
    ("gelu", "silu", 1, 1, 0, 0.2, 2.2, 0.35),
]

#: States on and next to the line ``u = 0``, where ``P = Q - R² = u²(1 - m²)`` vanishes and the covariance of
#: ``(λ, ν)`` degenerates (``--degenerate``); there the right-hand side is only ``C¹`` in ``u`` for kinked pairs
#: (orthant probabilities go like ``|u|``), so the reference's step is taken far below ``|u|``.  For a student
#: kink away from 0 (relu(x - 0.5)) at 0 < |u| <~ 1e-2 the reference's nested rule (z1 outside, z2 inside) meets
#: a layer of width ~|u| in z1 that it does not resolve (at u = 1e-3 its du/dt is off by 9e-5 against scipy
#: quadrature in coordinates aligned with λ, and it says so: error estimate 1e-2); only u = 0 is checked there.
DEGENERATE_PAIRS = [("elu", "elu"), ("elu", "relu"), ("elu", "leaky_relu(x, 0.1)"), ("relu(x - 0.5)", "relu"),
                    ("softsign", "relu"), ("tanh", "relu")]
DEGENERATE_CASES = [(s, t, 1, 1, 0, 0.3, u, 0.6) for s, t in DEGENERATE_PAIRS for u in (0.0, 1e-8, 1e-4)]


def generated(student, teacher, lr, batch, noise, m, u, mu, h=1e-3):
    """symlora's Jacobian, its error bound and Richardson differences of its right-hand side."""
    from symlora import LoRAModel
    from symlora._codegen import compile_ode

    compiled = compile_ode(LoRAModel(student, teacher, lr=lr, batch=batch, noise=noise).ode_system())
    state = np.array([m, u], dtype=float)
    jac = compiled.jacobian(state, mu)
    bound = compiled.jacobian_error_bound(state, mu)

    def central(j, step):
        shift = np.zeros(2)
        shift[j] = step
        return (compiled.rhs(state + shift, mu) - compiled.rhs(state - shift, mu)) / (2 * step)

    differences = np.stack([(4 * central(j, h / 2) - central(j, h)) / 3 for j in range(2)], axis=1)

    def third(j, step=2e-2):  # third derivative along state j, for the reference's own step error
        shift = np.zeros(2)
        shift[j] = step
        f = [compiled.rhs(state + k * shift, mu) for k in (2, 1, -1, -2)]
        return (f[0] - 2 * f[1] + 2 * f[2] - f[3]) / (2 * step**3)

    return jac, bound, differences, np.stack([third(0), third(1)], axis=1)


#: Step of ``mpmath.diff``.  Its default step (``2^-(prec+10)``) needs the function to twice the working
#: precision, which the reference's quadrature at ``dps`` digits does not give; with a step of 1e-8 the
#: central difference is off by ``h² |f'''|/6 ~ 1e-17`` and the quadrature's ``1e-30`` becomes ``1e-22``.
STEP = mpmath.mpf("1e-8")


def reference(student, teacher, lr, batch, noise, m, u, mu, dps=ref.DPS, step=STEP):
    """``∂(dm/dt, du/dt)/∂(m, u)`` by ``mpmath.diff`` (step :data:`STEP`) of the independent right-hand side."""
    memo = {}

    def rhs(mm, uu):
        key = (mm, uu)
        if key not in memo:
            memo[key] = ref.aligned_rhs(student, teacher, mm, uu, mu, lr=lr, batch=batch, noise=noise, dps=dps)[0]
        return memo[key]

    out = np.empty((2, 2))
    with mpmath.workdps(dps):
        m0, u0 = mpmath.mpf(str(m)), mpmath.mpf(str(u))
        for i in range(2):
            out[i, 0] = float(mpmath.diff(lambda x: rhs(x, u0)[i], m0, h=step))
            out[i, 1] = float(mpmath.diff(lambda x: rhs(m0, x)[i], u0, h=step))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="*", default=None, help="indices into CASES (default: all)")
    parser.add_argument("--no-reference", action="store_true", help="skip the 30-digit reference")
    parser.add_argument("--dps", type=int, default=ref.DPS,
                        help="digits of the reference (20 with --step 1e-6 still leaves ~1e-13; default 30)")
    parser.add_argument("--step", type=float, default=float(STEP), help="step of mpmath.diff (default 1e-8)")
    parser.add_argument("--degenerate", action="store_true",
                        help="the states of DEGENERATE_CASES (u = 0, 1e-8, 1e-4) instead of CASES; the reference's "
                             "step is then min(step, |u|/100) and 1e-14 at u = 0")
    args = parser.parse_args(argv)
    worst = {"differences": 0.0, "reference": 0.0}
    cases = DEGENERATE_CASES if args.degenerate else CASES
    for case in (cases if args.cases is None else [cases[i] for i in args.cases]):
        step = args.step
        if args.degenerate:
            step = min(step, abs(case[6]) / 100) if case[6] else 1e-14
        start = time.process_time()
        jac, bound, differences, third = generated(*case)
        seconds = time.process_time() - start
        line = (f"{case[0]:>9} / {case[1]:<20} lr={case[2]} B={case[3]} Δ={case[4]} m={case[5]} u={case[6]} "
                f"mu={case[7]}: J=[{jac[0, 0]:.12g}, {jac[0, 1]:.12g}; {jac[1, 0]:.12g}, {jac[1, 1]:.12g}] "
                f"({seconds:.1f} s CPU incl. derivation)  |J - differences| = {np.abs(jac - differences).max():.1e}")
        worst["differences"] = max(worst["differences"], np.abs(jac - differences).max())
        if not args.no_reference:
            start = time.process_time()
            exact = reference(*case, dps=args.dps, step=mpmath.mpf(str(step)))
            error = np.abs(jac - exact)
            # the central difference of mpmath.diff is itself off by about step² |f^(3)|/6
            resolution = step**2 * np.abs(third) / 6 + 1e-15
            line += (f"  |J - mpmath| = {error.max():.1e} (reference's step error {resolution.max():.1e}; "
                     f"bound {bound.max():.1e}, bound below error beyond the reference's resolution: "
                     f"{int(np.sum(error > bound + 2 * resolution))}; {time.process_time() - start:.0f} s CPU)")
            worst["reference"] = max(worst["reference"], error.max())
        print(line, flush=True)
    print(f"largest |J - Richardson differences| = {worst['differences']:.2e}")
    if not args.no_reference:
        print(f"largest |J - mpmath.diff reference| = {worst['reference']:.2e}")


if __name__ == "__main__":
    main()
