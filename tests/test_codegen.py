"""Generated numeric code: broadcasting, agreement with SymPy, standalone export."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy as sp

from symlora import LoRAModel
from symlora import _symbols as S
from symlora._codegen import compile_expressions, compile_ode


def test_compile_expressions_broadcasts_constants():
    mu = sp.Symbol("mu")
    f = compile_expressions([mu], [1 - mu, sp.Integer(1)], name="ab")
    out = f(np.zeros((3, 4)))
    assert out.shape == (2, 3, 4)
    assert np.all(out[1] == 1)
    assert "mu" in f.__doc__


def test_compile_expressions_rejects_free_symbols():
    a, b = sp.symbols("a b")
    with pytest.raises(ValueError, match="free symbols b"):
        compile_expressions([a], [a + b])
    f = compile_expressions([a], [a])
    with pytest.raises(TypeError, match="takes 1 arguments"):
        f(1.0, 2.0)


@pytest.mark.parametrize("student", ["x", "relu", "erf", "He3", "tanh", "relu(x) + tanh(x)"])
def test_coefficients_match_high_precision(student):
    model = LoRAModel(student)
    mu = np.array([0.1, 0.45, 0.9, 1.3])
    fast = model.coefficients(mu)
    lin = model.linearization()
    for i, value in enumerate(mu):
        ref = lin.values(value)
        for key in ("a", "b", "tau"):
            assert fast[key][i] == pytest.approx(ref[key], rel=1e-9, abs=1e-13)


def test_coefficients_vectorised_shape_and_mu_zero():
    model = LoRAModel("relu(x) + tanh(x)")  # its closed form divides by mu: 0/0 at mu = 0
    mu = np.linspace(0, 1, 11).reshape(11, 1) * np.ones((1, 3))
    out = model.coefficients(mu)
    assert out["tau"].shape == (11, 3)
    assert np.all(np.isfinite(out["a"]))
    assert out["a"][0, 0] == pytest.approx(model.coefficients(1e-7)["a"], rel=1e-5)


def test_coefficients_reject_negative_mu():
    with pytest.raises(ValueError, match=">= 0"):
        LoRAModel("x").tau(-0.1)
    with pytest.raises(ValueError, match="finite"):
        LoRAModel("x").tau(np.nan)


@pytest.mark.parametrize("student", ["x", "relu", "erf", "tanh"])
def test_compiled_ode_matches_sympy(student):
    model = LoRAModel(student)
    system = model.ode_system()
    compiled = compile_ode(system)
    rng = np.random.default_rng(3)
    states = np.stack([rng.uniform(-0.9, 0.9, 5), rng.uniform(-1, 1, 5)])
    mu = rng.uniform(0.1, 1.2, 5)
    fast = compiled.rhs(states, mu)
    assert fast.shape == (2, 5)
    for k in range(5):
        point = {S.m: states[0, k], S.u: states[1, k], S.mu: mu[k]}
        for i, rhs in enumerate(system.rhs):
            exact = float(sp.N(rhs.subs(point))) if model.exact else None
            if exact is not None:
                assert fast[i, k] == pytest.approx(exact, rel=1e-10, abs=1e-13)
    if not model.exact:
        # quadrature nodes: compare with the nodes' own high-accuracy evaluation
        from symlora import evaluate_with_error

        point = {S.m: states[0, 0], S.u: states[1, 0], S.mu: mu[0]}
        value, error = evaluate_with_error(system.rhs[1], point)
        assert fast[1, 0] == pytest.approx(value, abs=10 * error + 1e-9)


def test_stable_form_has_no_nan_near_parallel_weights():
    # u tiny: Q - R^2 = u^2 (1 - m^2) would cancel catastrophically if formed as a difference
    compiled = compile_ode(LoRAModel("relu").ode_system())
    u = np.logspace(-14, -1, 14)
    out = compiled.rhs(np.stack([np.full_like(u, 0.3), u]), 0.5)
    assert np.all(np.isfinite(out))


def test_export_runs_without_sympy(tmp_path):
    model = LoRAModel("tanh")
    path = model.export_python(tmp_path / "tanh_lora.py")
    script = textwrap.dedent(
        f"""
        import sys, json
        sys.modules["sympy"] = None  # importing sympy now fails
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        import tanh_lora
        print(json.dumps({{"tau": tanh_lora.tau(np.array([0.3, 0.7])).tolist(),
                          "rhs": tanh_lora.rates(0.2, 0.4, 0.6).tolist()}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    import json

    values = json.loads(out.stdout)
    assert values["tau"] == pytest.approx(model.tau(np.array([0.3, 0.7])).tolist(), rel=1e-10)
    expected = compile_ode(model.ode_system()).rhs(np.array([0.2, 0.4]), 0.6)
    assert values["rhs"] == pytest.approx(expected.tolist(), rel=1e-10)


def test_export_exact_model_and_bad_path(tmp_path):
    model = LoRAModel("x", "x**2")
    path = model.export_python(tmp_path / "lin.py")
    text = path.read_text()
    assert "import sympy" not in text and "def tau(mu)" in text
    with pytest.raises(OSError, match="does not exist"):
        model.export_python(tmp_path / "missing" / "x.py")


def test_general_pretraining_coefficients():
    general = LoRAModel("relu", pretraining="general")
    aligned = LoRAModel("relu")
    assert general.coefficients(0.5, 0.0)["tau"] == pytest.approx(aligned.tau(0.5), rel=1e-9)
    assert general.coefficients(0.5, 0.3)["tau"] != pytest.approx(aligned.tau(0.5), rel=1e-3)
    with pytest.raises(ValueError, match="mu_perp"):
        aligned.coefficients(0.5, 0.3)


def _richardson_jacobian(compiled, states, mu, h=1e-3):
    """Central differences of the right-hand side at steps h and h/2, extrapolated (error O(h^4))."""
    import numpy as np

    states = np.asarray(states, dtype=float)
    n = states.shape[0]
    out = np.empty((n, n) + states.shape[1:])
    for j in range(n):
        def central(step):
            shift = np.zeros_like(states)
            shift[j] = step
            return (compiled.rhs(states + shift, mu) - compiled.rhs(states - shift, mu)) / (2 * step)

        out[:, j] = (4 * central(h / 2) - central(h)) / 3
    return out


@pytest.mark.parametrize("student, teacher, lr, batch, noise", [
    ("softsign", "relu", 1, 1, 0),
    ("softsign", "leaky_relu(x, 0.1)", 1.5, 2, 0.25),
])
def test_jacobian_of_softsign_pairs_matches_differences_of_the_rhs(student, teacher, lr, batch, noise):
    """softsign's |λ|: the Jacobian differentiates one smooth piece per side of the kink
    (third derivative 6/(1+|λ|)^4 - 4δ(λ)), so it is built, finite at the fixed point, and equal to
    differences of the right-hand side and to the linearisation there."""
    import warnings

    import numpy as np

    from symlora import LoRAModel
    from symlora._codegen import compile_ode

    model = LoRAModel(student, teacher, lr=lr, batch=batch, noise=noise)
    compiled = compile_ode(model.ode_system())
    states = np.array([[0.3, -0.8, 0.05, 0.6], [-0.7, 2.5, 0.4, -3.0]])
    mu = np.array([0.6, 0.3, 0.9, 0.45])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jac = compiled.jacobian(states, mu)
        at_origin = compiled.jacobian(np.zeros(2), 0.6)
    np.testing.assert_allclose(jac, _richardson_jacobian(compiled, states, mu), rtol=0, atol=2e-9)
    bound = compiled.jacobian_error_bound(states, mu)  # the nodes' own bounds, propagated
    assert bound.shape == jac.shape and np.all(bound > 0) and np.all(bound < 1e-10)
    lin = model.coefficients(0.6)
    np.testing.assert_allclose(at_origin, lr * np.array([[0, lin["a"]], [lin["a"], -lin["b"]]]), atol=1e-12)


@pytest.mark.filterwarnings("error")  # the Jacobian is evaluated at u = 0, where P = u²(1 - m²) vanishes
def test_implicit_integrator_on_a_softsign_pair():
    """Radau with the generated Jacobian follows the explicit solver on softsign / relu."""
    import numpy as np

    from symlora import LoRAModel
    from symlora._codegen import compile_ode
    from symlora._integrate import integrate

    system = LoRAModel("softsign", "relu").ode_system()
    start, params = {"m": [0.01, 0.05], "u": [0.0, 0.1]}, {"mu": [0.6, 0.3]}
    implicit = integrate(system, start, params, 30, method="Radau", rtol=1e-9, atol=1e-12)
    explicit = integrate(system, start, params, 30, rtol=1e-9, atol=1e-12)
    assert implicit.success
    assert not np.any(compile_ode(LoRAModel("relu").ode_system()).jacobian_error_bound(np.array([0.5, 1.0]), 0.5))
    for name in ("m", "u"):
        np.testing.assert_allclose(implicit[name], explicit[name], rtol=0, atol=1e-7)
