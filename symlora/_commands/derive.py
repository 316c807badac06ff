"""``symlora derive``: the ODE system and its linearisation, readable."""

from __future__ import annotations

import argparse

import sympy as sp

from ._common import add_model_arguments, build_model

EXAMPLE = """examples:
  symlora derive --student erf
  symlora derive --student x --teacher 'x**2'
  symlora derive --student relu --pretraining general"""


def register(subparsers):
    parser = subparsers.add_parser(
        "derive",
        help="print the ODE system of the summary statistics and its linearisation",
        description="Derive the expected-gradient ODEs (MODEL.md section 2) and the linearisation "
        "at the uninformative fixed point (section 3) for a student/teacher pair.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser, pretraining=True)
    parser.set_defaults(func=run)


def run(args) -> int:
    model = build_model(args)
    print(f"# {model.name}; eta = {model.lr}, B = {model.batch}, Delta = {model.noise}")
    print(f"# expectations: {'exact closed forms' if model.exact else 'contain numeric quadrature nodes E[...]'}")
    print("Auxiliary overlaps:")
    for symbol, value in model.overlaps().items():
        print(f"  {symbol} = {sp.sstr(value)}")
    print("Expectations (G = (sigma(lambda) - sigma*(nu)) sigma'(lambda)):")
    for name, value in model.expectations().items():
        print(f"  {name} = {sp.sstr(value)}")
    print("ODE (t = steps/d):")
    for state, rhs in model.ode(in_terms_of_QR=True).items():
        print(f"  d{state}/dt = {sp.sstr(rhs)}")
    lin = model.linearization()
    print("Linearisation at the fixed point " + ", ".join(f"{k} = {v}" for k, v in lin.fixed_point.items()) + ":")
    print(f"  a(mu) = {sp.sstr(lin.a)}")
    print(f"  b(mu) = {sp.sstr(lin.b)}")
    print(f"  tau(mu) = {sp.sstr(lin.tau)}")
    print(f"  Jacobian = {sp.sstr(lin.jacobian.tolist())}")
    if model.pretraining == "aligned" and model.rank == 1:
        try:
            roots = model.critical_mu((0, 1))
        except ValueError as exc:
            print(f"  critical mu in [0, 1]: {exc}")
        else:
            print("  critical mu in [0, 1] (a = 0): " + (", ".join(sp.sstr(r) for r in roots) or "none"))
    return 0
