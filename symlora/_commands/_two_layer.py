"""Two-layer options of the model commands (``--hidden``, ``--teacher-hidden``, ``--readout``, ``--mus``).

With ``--hidden K`` the commands ``tau``, ``derive``, ``escape``, ``simulate``
and ``latex`` describe a :class:`~symlora.TwoLayerLoRAModel` instead of a
single-index :class:`~symlora.LoRAModel`.  ``--mus`` lists the pre-training strengths of
the ``K`` hidden units; each entry is a number or the word ``mu``, which
stands for the values of ``--mu`` (default: ``mu`` for every unit).
"""

from __future__ import annotations

import argparse

import numpy as np

from ..cli import CommandError, emit, parse_number

__all__ = ["add_two_layer_arguments", "build_two_layer_model", "describe_two_layer", "two_layer_tau",
           "simulate_two_layer_runs", "two_layer_escape", "run_tau", "run_derive"]

_MAX_UNITS = 8


def _units(name):
    def parse(text):
        if not text.isdigit() or not 1 <= int(text) <= _MAX_UNITS:
            raise argparse.ArgumentTypeError(f"invalid {name} {text[:20]!r}: an integer from 1 to {_MAX_UNITS}")
        return int(text)

    return parse


def _mus(text):
    entries = [entry.strip() for entry in text.split(",")]
    if not 1 <= len(entries) <= _MAX_UNITS or any(not entry for entry in entries):
        raise argparse.ArgumentTypeError(f"invalid --mus {text[:60]!r}: 1 to {_MAX_UNITS} comma-separated entries")
    return [entry if entry == "mu" else parse_number(entry, "--mus") for entry in entries]


def add_two_layer_arguments(group) -> None:
    """Register the two-layer options in the model argument ``group``."""
    group.add_argument("--hidden", type=_units("--hidden"), default=None, metavar="K",
                       help="two-layer student with K hidden units sigma(w_k.x) and a LoRA adapter on its first "
                            "layer (default: the single-index model)")
    group.add_argument("--teacher-hidden", type=_units("--teacher-hidden"), default=None, metavar="KSTAR",
                       help="two-layer: number of teacher units (default K; 1 is a single-index teacher)")
    group.add_argument("--readout", choices=("1/K", "1/sqrt(K)"), default=None,
                       help="two-layer: fixed second layer of student and teacher (default 1/K)")
    group.add_argument("--mus", type=_mus, default=None, metavar="LIST",
                       help="two-layer: pre-training strengths of the K units, numbers or 'mu' (the values of "
                            "--mu), e.g. mu,mu,1,1 (default: mu for every unit)")


def build_two_layer_model(args):
    """The :class:`~symlora.TwoLayerLoRAModel` of the arguments (``--hidden`` given)."""
    import sympy as sp

    from ..two_layer import TwoLayerLoRAModel

    if args.pretraining != "aligned" or args.mu_perp is not None:
        raise CommandError("--hidden builds a two-layer student: drop --pretraining general / --mu-perp "
                           "(give the pre-training of each unit with --mus)")
    mu = sp.Symbol("mu", positive=True)
    mus = args.mus or ["mu"] * args.hidden
    if len(mus) != args.hidden:
        raise CommandError(f"--mus has {len(mus)} entries but --hidden is {args.hidden}: give one per hidden unit")
    return TwoLayerLoRAModel(args.student, args.teacher, hidden=args.hidden, teacher_hidden=args.teacher_hidden,
                             rank=args.rank, pretraining=[mu if m == "mu" else m for m in mus],
                             readout=args.readout or "1/K", lr=args.lr, batch=args.batch, noise=args.noise)


def describe_two_layer(model) -> dict:
    return {
        "model": "two-layer",
        "student": model.student.name,
        "teacher": model.teacher.name,
        "hidden": model.hidden,
        "teacher_hidden": model.teacher_hidden,
        "rank": model.rank,
        "readout": model.readout,
        "pretraining": [[str(e) for e in row] for row in model.pretraining.tolist()],
        "states": [str(s) for s in model.states],
    }


def _values(model, mu):
    """Keyword values of the model's free parameters at one ``mu``."""
    names = [p.name for p in model.parameters]
    unknown = [n for n in names if n != "mu"]
    if unknown:
        raise CommandError(f"the model has free parameters {', '.join(unknown)}; only mu can be set from --mu")
    return {"mu": float(mu)} if "mu" in names else {}


def run_tau(args) -> int:
    """``symlora tau --hidden K``: τ(μ) of the two-layer linearisation."""
    model = build_two_layer_model(args)
    mu = np.atleast_1d(np.asarray(args.mu, dtype=float))
    lin = model.linearization()
    tau = np.array([lin.tau(**_values(model, m)) for m in mu], dtype=float)
    eta = float(model.lr)
    payload = {**describe_two_layer(model), "lr": eta, "exact": bool(lin.exact), "mu": mu, "tau": tau,
               "lambda_plus": np.where(np.isfinite(tau), 1 / tau, 0.0), "escape_slope": tau / (2 * eta)}
    emit(payload, args.format, {"mu": mu, "tau": tau, "tau/(2 eta)": tau / (2 * eta)}, extra_lines=[
        f"# {model.name}: tau = 1/largest rate of the linearisation at W = W0, in units of 1/eta"])
    return 0


def run_derive(args) -> int:
    """``symlora derive --hidden K``: the ODE (in the covariances ``Q``, ``R``) and the linearisation block."""
    import sympy as sp

    model = build_two_layer_model(args)
    lin = model.linearization()
    ode = model.ode(in_terms_of_QR=True)
    payload = {
        **describe_two_layer(model),
        "parameters": [str(p) for p in model.parameters],
        "exact": model.exact,
        "time": "t = steps/d, learning rate eta/d (docs/theory.md §1.4)",
        "covariances": {str(k): sp.sstr(v) for k, v in model.covariances().items()},
        "ode": {str(k): sp.sstr(v) for k, v in ode.items()},
        "linearization": {"jacobian_block": [[sp.sstr(e) for e in row] for row in lin.jacobian_block.tolist()],
                          "units": "J/eta of one adapter direction, states (M_a., U_.a); tau = 1/largest eigenvalue"},
    }
    if args.format == "json":
        emit(payload, "json")
        return 0
    if args.format == "latex":
        print(model.to_latex(body_only=True))
        return 0
    print(f"# {model.name}; states {', '.join(payload['states'])}")
    for name, value in payload["covariances"].items():
        print(f"{name} = {value}")
    for name, value in payload["ode"].items():
        print(f"d{name}/dt = {value}")
    print(f"J/eta (one direction) = {payload['linearization']['jacobian_block']}")
    return 0


def two_layer_tau(model, mu) -> float:
    """``τ`` (units of ``1/η``) of the linearisation at one ``--mu``."""
    return float(model.tau(**_values(model, mu)))


def simulate_two_layer_runs(model, args, horizon) -> list:
    """``symlora simulate --hidden K``: one batch of full SGD runs per ``--d``."""
    from ..two_layer import simulate_two_layer_sgd

    if args.method != "full":
        raise CommandError("--method reduced exists for single-index models only; two-layer students are "
                           "simulated in full (drop --method)")
    if args.threads is not None:
        raise CommandError("--threads: two-layer runs are vectorised over seeds in one thread; drop --threads")
    values = _values(model, args.mu)
    return [simulate_two_layer_sgd(model, int(d), horizon, seeds=args.seeds, seed=args.seed + k, parameters=values,
                                   threshold=args.threshold)
            for k, d in enumerate(args.d)]


def two_layer_escape(model, args, eps, t_max, max_steps):
    """``symlora escape --hidden K``: ``T(eps)`` from the unstable direction of the linearisation.

    Direction ``a = 1`` starts at ``eps`` times the eigenvector of the largest
    rate, scaled so that its largest ``|M_1j|`` is ``eps`` (every other
    statistic starts at 0); the run escapes when ``max_j |M_1j|`` reaches the
    threshold.  Asymptotically ``T = (τ/η) log(1/eps) + const``.
    """
    from .._escape_time import escape_time

    values = _values(model, args.mu)
    vector = model.linearization().unstable_direction(**values)
    Kt = model.teacher_hidden
    names = [s.name for s in model.geometry.M[0, :]] + [s.name for s in model.geometry.U[:, 0]]
    first = int(np.argmax(np.abs(vector[:Kt])))
    scaled = vector / vector[first]
    observed = (names[first],) + tuple(n for j, n in enumerate(names[:Kt]) if j != first)
    initial = {name: eps * scaled[i] for i, name in enumerate(names) if i != first}
    return escape_time(model.ode_system(), values, eps, args.threshold, t_max, observed=observed, initial=initial,
                       max_steps=max_steps)
