"""Every derived object for every pair, each against an independent route.

Pairs: every pair of :mod:`symlora.models` and mixed kinked/smooth pairs.
Objects: ODE, Jacobian (conditioned deltas), linearisation, critical μ,
escape law, LaTeX, exported module.  Independent routes: mpmath root finding
on the direct one-dimensional integral for ``a(μ)`` (built from the
activations' own expressions, not from the engine); finite differences of a
kink-aware piecewise Gauss–Legendre reference for the Jacobian; numeric
eigenvalues of the Jacobian for rates; SciPy's ``solve_ivp`` on the exported
module in a SymPy-free interpreter against the package's integrator.
"""

import json
import subprocess
import sys
import textwrap
import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy.integrate import quad

from symlora import LoRAModel
from symlora import _symbols as S
from symlora._codegen import compile_ode, jacobian_expressions
from symlora._node import GaussianExpectation
from symlora.models import DEFAULT_PAIRS

MIXED_PAIRS = {
    "sigmoid/relu": ("sigmoid", "relu"),
    "tanh/relu": ("tanh", "relu"),
    "softplus/relu": ("softplus", "relu"),
    "relu/tanh": ("relu", "tanh"),
    "tanh/sign": ("tanh", "sign"),
    "sigmoid/relu^2": ("sigmoid", "relu(x)**2"),
    "relu/sign": ("relu", "sign"),
    "x/erf": ("x", "erf"),
}
ALL_PAIRS = {**DEFAULT_PAIRS, **MIXED_PAIRS}
_MODELS = {}


def model_of(label):
    """Models are cached at module scope: their derivations are reused across tests."""
    if label not in _MODELS:
        _MODELS[label] = LoRAModel(*ALL_PAIRS[label])
    return _MODELS[label]


# ---------------------------------------------------------------------------
# independent references


def direct_a(model):
    """``a(μ) = -E[(σ(μν) - σ*(ν)) σ'(μν) ν]`` by adaptive quadrature of the activations' expressions.

    Built from the activations alone (not from the expectation engine) and
    integrated by ``scipy.integrate.quad`` on each side of the kink ``ν = 0``.
    """
    nu = sp.Symbol("nu_ref", real=True)
    mu = sp.Symbol("mu_ref", positive=True)
    modules = [{"Heaviside": lambda x, h0=0.5: np.heaviside(x, 0.5)}, "scipy", "numpy"]
    student = sp.lambdify((nu, mu), model.student(mu * nu), modules=modules)
    slope = sp.lambdify((nu, mu), model.student.derivative_at(mu * nu), modules=modules)
    teacher = sp.lambdify(nu, model.teacher(nu), modules=modules)

    def a(mu_value):
        m = float(mu_value)

        def f(n):
            return -(student(n, m) - teacher(n)) * slope(n, m) * n * np.exp(-n * n / 2) / np.sqrt(2 * np.pi)

        # |nu| <= 40: the Gaussian weight beyond is below 1e-340, and softplus does not overflow
        with np.errstate(over="ignore"):
            left = quad(f, -40.0, 0.0, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
            right = quad(f, 0.0, 40.0, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
        return left + right

    return a


_T, _W = np.polynomial.legendre.leggauss(60)


def _pieces(lo, hi):
    """Gauss–Legendre nodes and weights on consecutive pieces ``[lo_i, hi_i]`` (broadcast)."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return mid[..., None] + half[..., None] * _T, half[..., None] * _W


def _phi(z):
    return np.exp(-z * z / 2) / np.sqrt(2 * np.pi)


def _node_function(node, args):
    """A kink-aware reference for one 1-D or 2-D node, as a function of ``args``.

    Piecewise Gauss–Legendre in whitened coordinates, split exactly at every
    kink line of the integrand (not the package's quadrature rule).
    """
    variables = node.variables
    body = node.integrand.expr
    f = sp.lambdify(variables + tuple(args), body,
                    modules=[{"Heaviside": lambda x, h0=0.5: np.heaviside(x, 0.5)}, "scipy", "numpy"])
    cov = sp.lambdify(args, list(node.covariance), modules="numpy")
    kinks = [h.args[0] for h in body.atoms(sp.Heaviside)]
    forms = [np.array([float(sp.diff(k, v)) for v in variables]) for k in kinks]

    def value(*point):
        c = np.array(cov(*point), dtype=float).reshape(len(variables), len(variables))
        if len(variables) == 1:
            z, w = _pieces(np.array([-12.0, 0.0]), np.array([0.0, 12.0]))
            vals = np.broadcast_to(f(np.sqrt(max(c[0, 0], 0)) * z, *point), z.shape)
            return float(np.sum(w * _phi(z) * vals))
        c00 = max(c[0, 0], 0.0)
        if c00 > 1e-300:
            L = np.array([[np.sqrt(c00), 0.0], [c[0, 1] / np.sqrt(c00), np.sqrt(max(c[1, 1] - c[0, 1] ** 2 / c00, 0))]])
        else:
            L = np.array([[0.0, 0.0], [0.0, np.sqrt(max(c[1, 1], 0))]])
        z1, w1 = _pieces(np.array([-12.0, 0.0]), np.array([0.0, 12.0]))
        z1, w1 = z1.ravel(), w1.ravel()
        ends = [np.full_like(z1, -12.0), np.full_like(z1, 12.0)]
        ends += [-(form @ L)[0] * z1 / (form @ L)[1] for form in forms if abs((form @ L)[1]) > 1e-14]
        cuts = np.sort(np.clip(np.stack(ends, axis=1), -12, 12), axis=1)
        z2, w2 = _pieces(cuts[:, :-1], cuts[:, 1:])
        Z1 = np.broadcast_to(z1[:, None, None], z2.shape)
        vals = np.broadcast_to(f(L[0, 0] * Z1, L[1, 0] * Z1 + L[1, 1] * z2, *point), z2.shape)
        return float(np.sum(w1 * _phi(z1) * np.sum(w2 * _phi(z2) * vals, axis=(1, 2))))

    return value


def reference(expr, args):
    """``expr`` as a function of ``args`` with every node integrated by :func:`_node_function`."""
    nodes = sorted(expr.atoms(GaussianExpectation), key=sp.default_sort_key)
    holders = [sp.Dummy() for _ in nodes]
    outer = sp.lambdify(tuple(args) + tuple(holders), expr.xreplace(dict(zip(nodes, holders))), modules=["scipy", "numpy"])
    inner = [_node_function(node, args) for node in nodes]
    return lambda *point: float(outer(*point, *[g(*point) for g in inner]))


# ---------------------------------------------------------------------------
# critical mu, escape law, linearisation, LaTeX: every pair


@pytest.mark.parametrize("label", list(ALL_PAIRS))
def test_critical_mu_and_escape_law_against_direct_integrals(label):
    model = model_of(label)
    roots = model.critical_mu((0, 1))
    assert len(roots) == len(roots.details)
    a = direct_a(model)
    grid = np.linspace(0.0, 1.0, 21)
    values = [a(max(g, 1e-12)) for g in grid]
    scale = max(abs(v) for v in values)
    # every reported zero is a zero of the direct integral (to 1e-10 in mu)
    for root, detail in zip(roots, roots.details):
        assert detail.exact or detail.error <= 1e-12
        r = float(root)
        assert 0 <= r <= 1
        if 0 < r < 1:
            slope = abs(a(r + 1e-6) - a(r - 1e-6)) / 2e-6 if detail.kind == "simple" else 1.0
            assert abs(a(r)) <= 1e-10 * max(slope, 1e-3) + 1e-12 * scale
    # every sign change of the direct integral on the grid holds a reported zero, matching
    # the independent mpmath root to 1e-10
    for k in range(len(grid) - 1):
        if values[k] * values[k + 1] < 0:
            independent = float(mpmath.findroot(a, (grid[k], grid[k + 1]), solver="anderson", tol=1e-26))
            assert any(abs(float(r) - independent) < 1e-10 for r in roots), (label, independent, roots)
    # escape laws: linear away from the zeros, not linear (and never a crash) at them
    law = model.escape_law(sp.Rational(3, 10))
    if all(abs(float(r) - 0.3) > 1e-3 for r in roots):
        assert law.kind == "log"
        tau = float(model.tau(0.3))
        assert float(law.prefactor) == pytest.approx(tau / 2, rel=1e-9)
    for root in roots:
        law = model.escape_law(root)
        assert law.kind in ("power", "none", "not derived")
        if law.kind == "not derived":
            assert "no escape" not in str(law)
    # the linearisation renders
    assert "a(\\mu)" in model.linearization().to_latex()


def test_critical_mu_exact_transcendental_roots():
    for label in ("relu/sign", "x/erf"):
        roots = model_of(label).critical_mu((0, 1))
        assert roots.exact and len(roots) == 1
    assert sp.simplify(model_of("relu/sign").critical_mu((0, 1))[0] - sp.sqrt(2 / sp.pi)) == 0
    assert sp.simplify(model_of("x/erf").critical_mu((0, 1))[0] - 2 / sp.sqrt(3 * sp.pi)) == 0


def test_critical_mu_numeric_bracket_is_certified():
    roots = model_of("tanh/relu").critical_mu((0, 1))
    (detail,) = roots.details
    assert not detail.exact and detail.certified and detail.kind == "simple"
    lo, hi = detail.bracket
    a = direct_a(model_of("tanh/relu"))
    assert hi - lo <= 2e-13 * 1.01
    wide = 1e-9  # double-precision quadrature resolves the sign change at this distance
    assert a(lo - wide) * a(hi + wide) < 0 and lo - wide < float(roots[0]) < hi + wide


def test_tangential_zero_is_reported_uncertified():
    from symlora._roots import find_zeros

    mu = S.mu
    # a double zero without sign change, in a closed form that is not a polynomial
    roots = find_zeros(sp.sin(mu - sp.Rational(1, 2)) ** 2 * sp.exp(mu), mu, 0, 1)
    (detail,) = roots.details
    assert abs(float(detail) - 0.5) < 1e-6
    assert detail.exact or (detail.kind == "tangential" and not detail.certified)
    # no zero at all: nothing reported
    assert find_zeros(sp.exp(mu) + sp.sin(mu) ** 2, mu, 0, 1) == ()


def test_derive_cli_relu_sign(capsys):
    from symlora.cli import main

    assert main(["derive", "--student", "relu", "--teacher", "sign"]) == 0
    out = capsys.readouterr().out
    assert "sqrt(2)/sqrt(pi)" in out


# ---------------------------------------------------------------------------
# Jacobian: conditioned deltas, at the fixed point and away from it


@pytest.mark.parametrize("label", list(ALL_PAIRS))
def test_jacobian_at_fixed_point_equals_linearization(label):
    """At m = u = 0 the compiled Jacobian is η [[0, a], [a, -b]] of the direct integrals."""
    model = model_of(label)
    compiled = compile_ode(model.ode_system())
    mu = 0.45
    jac = compiled.jacobian(np.array([0.0, 1e-12]), mu)
    values = model.linearization().values(mu)
    expected = np.array([[0.0, values["a"]], [values["a"], -values["b"]]]) * float(model.lr)
    assert np.all(np.isfinite(jac))
    assert jac == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("label", ["tanh/relu", "relu/tanh", "tanh/sign", "sigmoid/relu^2"])
def test_jacobian_of_kinked_pairs_by_finite_differences(label):
    """Differentiation under the integral (Heaviside -> delta, conditioned) against FD of a kink-aware reference."""
    model = model_of(label)
    system = model.ode_system()
    args = tuple(system.states) + (S.mu,)
    jac = jacobian_expressions(system)
    assert not any(e.has(sp.DiracDelta) for e in jac)
    point = np.array([0.3, -0.45, 0.6])
    h = 1e-4
    for i in range(2):
        f = reference(system.rhs[i], args)
        for j in range(2):
            step = np.zeros(3)
            step[j] = h
            fd = (f(*(point + step)) - f(*(point - step))) / (2 * h)
            assert reference(jac[i, j], args)(*point) == pytest.approx(fd, abs=1e-7)
    # the compiled Jacobian agrees with the symbolic one within the quadrature error
    compiled = compile_ode(system)
    fast = compiled.jacobian(point[:2], point[2])
    exact = np.array([[reference(jac[i, j], args)(*point) for j in range(2)] for i in range(2)])
    assert fast == pytest.approx(exact, abs=2e-3)


# ---------------------------------------------------------------------------
# series, rank 2, quadrature error


def test_relu_series_holds_for_negative_u():
    model = LoRAModel("relu")
    series = model.series(2)
    assert sp.simplify(series[S.u] - (-S.m * S.mu / 2 + S.m / 2 - S.u / 2 + S.u * sp.Abs(S.u) / (2 * sp.pi * S.mu**2))) == 0
    compiled = compile_ode(model.ode_system())
    f = sp.lambdify((S.m, S.u, S.mu), series[S.u])
    for sign in (1, -1):
        errors = []
        for r in (1e-2, 5e-3):
            m_value, u_value = 0.5 * r, sign * r
            exact = compiled.rhs(np.array([m_value, u_value]), 0.6)[1]
            errors.append(abs(exact - f(m_value, u_value, 0.6)))
        # the remainder is third order: halving the point divides it by about 8
        assert errors[1] < errors[0] / 6


def test_rank2_fastest_rate_over_q():
    lin = LoRAModel("relu", rank=2).linearization()
    for q in (0.0, 0.4, -0.7):
        jac = np.array(lin.jacobian.subs({S.mu: 0.5, S.q12: q}).tolist(), dtype=float)
        fastest = max(np.linalg.eigvals(jac).real)
        assert float(lin.tau_q.subs({S.mu: 0.5, S.q12: q})) == pytest.approx(1 / fastest, rel=1e-12)
    # q = 0 is the rank-1 value; at q = 0.4 the fastest rate is 37 % higher
    tau0 = float(lin.tau_q.subs({S.mu: 0.5, S.q12: 0}))
    assert tau0 == pytest.approx(float(lin.tau.subs(S.mu, 0.5)))
    assert tau0 / float(lin.tau_q.subs({S.mu: 0.5, S.q12: 0.4})) == pytest.approx(1.3669, abs=1e-4)
    # over every reachable q (b > 0): 1/|a|
    assert float(lin.tau_fastest.subs(S.mu, 0.5)) == pytest.approx(4.0)


def test_quadrature_error_of_rhs_is_reported_and_warned():
    model = LoRAModel("softplus", "relu", lr=2, noise=1.5)
    # at this state the former fixed 2-D rule was off by about 2 %; the
    # kink-aligned adaptive rule is accurate and its estimate says so
    result = model.integrate(0.5, 0.014, -2.373, 1e-7, t_eval=[0, 1e-7])
    system = model.ode_system()
    args = tuple(system.states) + (S.mu,)
    truth = reference(system.rhs[0], args)(0.014, -2.373, 0.5)
    fast = compile_ode(system).rhs(np.array([0.014, -2.373]), 0.5)[0]
    estimate = result.rhs_error["m"][0]
    assert abs(fast - truth) < 1e-10
    assert estimate < 1e-10
    assert result.rhs_error is not None
    exact = LoRAModel("x").integrate(0.5, 0.1, 0.0, 1.0)
    assert exact.rhs_error is None and exact.rhs_error_max == 0


# ---------------------------------------------------------------------------
# exported modules, run without SymPy


def test_export_every_pair_runs_without_sympy(tmp_path):
    labels = list(ALL_PAIRS)
    names = {}
    for k, label in enumerate(labels):
        names[label] = f"pair_{k}"
        model_of(label).export_python(tmp_path / f"pair_{k}.py")
    point = [0.3, -0.4]
    integrate_for = ["x", "relu/sign", "tanh/relu"]
    script = textwrap.dedent(
        f"""
        import json, sys, importlib
        sys.modules["sympy"] = None  # importing sympy now fails
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        from scipy.integrate import solve_ivp
        out = {{}}
        for label, name in {names!r}.items():
            mod = importlib.import_module(name)
            entry = {{"rhs": mod.rhs(0.0, {point!r}, 0.6).tolist(),
                      "jac": mod.jacobian(0.0, {point!r}, 0.6).tolist(),
                      "tau": float(mod.tau(0.6))}}
            batch = mod.rhs(0.0, np.array({point!r})[:, None] * np.ones((1, 3)), 0.6)
            entry["batch_shape"] = list(batch.shape)
            if label in {integrate_for!r}:
                sol = solve_ivp(mod.rhs, (0.0, 2.0), [0.05, 0.0], args=(0.3,), method="DOP853",
                                rtol=1e-10, atol=1e-12, t_eval=[2.0])
                entry["y"] = sol.y[:, -1].tolist()
                entry["escape"] = mod.escape_time(0.3, 0.05)
                for attribute in ("rhs", "jacobian", "escape_time", "tau"):
                    assert "argument" in getattr(mod, attribute).__doc__.lower()
            out[label] = entry
        print(json.dumps(out))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    values = json.loads(run.stdout)
    for label in labels:
        model = model_of(label)
        compiled = compile_ode(model.ode_system())
        got = values[label]
        assert got["rhs"] == pytest.approx(compiled.rhs(np.array(point), 0.6).tolist(), rel=1e-9, abs=1e-12)
        assert np.array(got["jac"]).shape == (2, 2)
        expected = compiled.jacobian(np.array(point), 0.6)
        assert np.allclose(got["jac"], expected, rtol=1e-9, atol=1e-12)
        assert got["tau"] == pytest.approx(float(model.tau(0.6)), rel=1e-9)
        assert got["batch_shape"] == [2, 3]
        if "y" in got:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = model.integrate(0.3, 0.05, 0.0, 2.0, t_eval=[0.0, 2.0], rtol=1e-10, atol=1e-12)
                escape = model.escape_time(0.3, 0.05)
            assert got["y"] == pytest.approx([ref["m"][-1], ref["u"][-1]], rel=1e-7, abs=1e-10)
            assert got["escape"] == pytest.approx(float(escape.time), rel=1e-6)


def test_not_derived_is_never_printed_as_no_escape(capsys):
    from symlora.cli import main

    law = LoRAModel("He2").escape_law(0)  # a = 0 and b <= 0: beyond what is derived
    assert law.kind == "not derived" and "no escape" not in str(law)
    assert main(["law", "--student", "He2"]) == 0
    out = capsys.readouterr().out
    line = next(text for text in out.splitlines() if text.strip().startswith("mu = 0:"))
    assert "not derived" in line and "no escape" not in line


def test_rank2_escape_law_states_the_fastest_reachable_rate():
    law = LoRAModel("relu", rank=2).escape_law(sp.Rational(1, 2))
    assert law.kind == "log"
    assert sp.simplify(law.prefactor - 2 * (1 + sp.sqrt(2))) == 0  # tau(q = 0) / 2, the rank-1 value
    assert "τ = 4 " in law.derivation  # 1/|a| over every reachable q12
