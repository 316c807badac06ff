"""TwoLayerLoRAModel: the derived ODE against independent quadrature, the single-index limit, the linearisation."""

import numpy as np
import pytest
import sympy as sp

from symlora import LoRAModel, TwoLayerLoRAModel
from symlora._codegen import compile_ode

from _two_layer_reference import compare_with_reference


eta, B, Delta, mu = sp.symbols("eta B Delta mu", positive=True)


def test_erf_two_units_rank_two_matches_quadrature():
    # K = 2, K* = 1, r = 2: drift, renormalisation drag (large eta/B so it counts), q12, label noise
    model = TwoLayerLoRAModel("erf", hidden=2, teacher_hidden=1, rank=2, pretraining=[mu, sp.Rational(1, 3)],
                              lr=eta, batch=B, noise=Delta)
    assert model.exact
    D = np.array([[0.7], [1 / 3]])
    compare_with_reference(model, "erf", D, lr=1.3, batch=2, noise=0.2, seeds=[0, 1, 2], tol=1e-10)


def test_two_teacher_units_sqrt_readout_matches_quadrature():
    # K* = 2 with a full pre-training matrix: the teacher-index bookkeeping (R_kj, B_kj, M_aj).  A linear
    # pair keeps the derivation cheap (erf with two teacher units needs four-field shapes, minutes of CPU)
    model = TwoLayerLoRAModel("x", hidden=2, teacher_hidden=2, rank=2, pretraining=[[0.8, 0.1], [0, 1]],
                              readout="1/sqrt(K)", lr=eta, batch=B, noise=Delta)
    D = np.array([[0.8, 0.1], [0, 1]])
    # Gauss-Hermite with 8 nodes per dimension is exact for these polynomials (degree <= 6)
    compare_with_reference(model, "x", D, lr=0.9, batch=1, noise=0.3, seeds=[3, 4], tol=1e-10, nodes=8)


def test_relu_two_units_matches_quadrature():
    model = TwoLayerLoRAModel("relu", hidden=2, teacher_hidden=1, rank=1, pretraining=[mu, 1], lr=eta, batch=B)
    assert model.exact
    D = np.array([[0.4], [1.0]])
    compare_with_reference(model, "relu", D, lr=1.1, batch=1, noise=0.0, seeds=[5, 6, 7], tol=1e-10)


@pytest.mark.parametrize("act", ["erf", "relu", "x"])
def test_single_unit_is_the_single_index_lora_ode(act):
    two = TwoLayerLoRAModel(act, hidden=1, pretraining=[sp.Symbol("mu", positive=True)], lr=eta, batch=B, noise=Delta)
    one = LoRAModel(act, lr=eta, batch=B, noise=Delta)
    m, u = sp.symbols("m u", real=True)
    rename = {two.geometry.M[0, 0]: m, two.geometry.U[0, 0]: u, sp.Symbol("mu", positive=True): sp.Symbol("mu", positive=True)}
    ode2, ode1 = two.ode(), one.ode()
    rng = np.random.default_rng(11)
    for _ in range(3):
        point = {m: sp.Float(rng.uniform(-0.9, 0.9), 30), u: sp.Float(rng.normal(), 30),
                 sp.Symbol("mu", positive=True): sp.Float(rng.uniform(0.1, 1.5), 30), eta: sp.Float(0.7, 30),
                 B: 3, Delta: sp.Float(0.3, 30)}
        for s2, s1 in ((two.geometry.M[0, 0], m), (two.geometry.U[0, 0], u)):
            left = sp.N(ode2[s2].xreplace(rename).xreplace(point), 25)
            right = sp.N(ode1[s1].xreplace(point), 25)
            assert abs(left - right) < 1e-18
    mu_values = np.array([0.2, 0.5, 0.9])
    assert two.tau(mu=mu_values, eta=1, B=1, Delta=0) == pytest.approx(one.tau(mu_values), rel=1e-12)


def test_linearization_is_the_jacobian_of_the_derived_ode():
    model = TwoLayerLoRAModel("erf", hidden=2, teacher_hidden=1, rank=2, pretraining=[mu, sp.Rational(1, 3)],
                              lr=eta, batch=B, noise=Delta)
    lin = model.linearization()
    compiled = compile_ode(model.ode_system())
    order = {"mu": 0.4, "eta": 0.8, "B": 2.0, "Delta": 0.1}
    assert [p.name for p in model.parameters] == list(order)
    # central differences of the generated right-hand side (smooth: error ~ h^2 ~ 1e-12)
    n, h = len(model.states), 1e-6
    steps = h * np.eye(n)
    J = ((compiled.rhs(steps.T, *order.values()) - compiled.rhs(-steps.T, *order.values())) / (2 * h))
    block = np.array(lin.jacobian_block.subs({sp.Symbol(k, positive=True): v for k, v in order.items()}), dtype=float)
    # the block of direction a = 2: states M21, U12, U22
    names = [s.name for s in model.states]
    idx = [names.index(n) for n in ("M21", "U12", "U22")]
    assert J[np.ix_(idx, idx)] / order["eta"] == pytest.approx(block, abs=1e-8)
    # at q = 0 the two directions decouple at first order and nothing moves q12
    other = [names.index(n) for n in ("M11", "U11", "U21")]
    assert np.abs(J[np.ix_(idx, other)]).max() < 1e-8
    assert np.abs(J[names.index("q12")]).max() < 1e-8
    # a saddle: the coupling N is non-zero and the largest rate positive
    assert model.tau(**order) == pytest.approx(1 / np.linalg.eigvalsh(block)[-1], rel=1e-12)


def test_tau_of_symmetric_committee_at_perfect_pretraining_is_infinite():
    # W0 = W*: the student equals the teacher, nothing is unstable (N = 0, A0 positive semi-definite)
    model = TwoLayerLoRAModel("erf", hidden=2, pretraining=[1, 1])
    assert model.tau() == np.inf
    assert model.linearization().N == sp.zeros(2, 2)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(hidden=2.0), TypeError, "hidden"),
        (dict(hidden=0), ValueError, "hidden"),
        (dict(hidden=2, teacher_hidden=9), ValueError, "teacher_hidden"),
        (dict(hidden=2, rank="1"), TypeError, "rank"),
        (dict(hidden=2, readout="1/k"), ValueError, "readout"),
        (dict(hidden=2, readout=1), TypeError, "readout"),
        (dict(hidden=2, pretraining=[1, 2, 3]), ValueError, "pretraining"),
        (dict(hidden=2, pretraining="0.5"), TypeError, "pretraining"),
        (dict(hidden=3, teacher_hidden=2, pretraining=[1, 1, 1]), ValueError, "matrix"),
        (dict(hidden=2, pretraining=[[1], 1]), TypeError, "pretraining"),
        (dict(hidden=2, teacher_hidden=1, pretraining=[[1, 0], [1, 0]]), ValueError, "pretraining rows"),
        (dict(hidden=2, lr=0), ValueError, "lr"),
        (dict(hidden=2, lr="1"), TypeError, "lr"),
        (dict(hidden=2, noise=-1), ValueError, "noise"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        TwoLayerLoRAModel("erf", **kwargs)


def test_tau_requires_every_parameter():
    model = TwoLayerLoRAModel("x", hidden=2, pretraining=[mu, 1])
    with pytest.raises(ValueError, match="missing parameters mu"):
        model.tau()
    with pytest.raises(ValueError, match="unknown parameters nu"):
        model.tau(mu=0.5, nu=1)


def test_finite_d_sgd_follows_the_ode_after_alignment():
    from symlora.two_layer import compare_two_layer_with_ode, simulate_two_layer_sgd

    model = TwoLayerLoRAModel("erf", hidden=2, teacher_hidden=1, pretraining=[0, 1], lr=2)
    runs = simulate_two_layer_sgd(model, 400, 35, seeds=6, seed=7)
    assert set(runs.status) == {"escaped"}
    comparison = compare_two_layer_with_ode(model, runs, align=0.15, horizon=15)
    # fluctuations are O(d^{-1/2}) = 0.05 per run; the overlap grows from 0.15 to ~0.25 meanwhile
    growth = np.abs(comparison.sgd["M11"][:, -1]).mean() - 0.15
    assert growth > 0.05
    assert comparison.max_deviation < 0.1
    mean_gap = np.abs((comparison.ode["M11"] - comparison.sgd["M11"]).mean(axis=0)).max()
    assert mean_gap < 0.03


def test_sgd_bad_input():
    from symlora.two_layer import simulate_two_layer_sgd

    model = TwoLayerLoRAModel("erf", hidden=2, pretraining=[mu, 1])
    with pytest.raises(TypeError, match="model"):
        simulate_two_layer_sgd("erf", 100, 1)
    with pytest.raises(TypeError, match="d must be an integer"):
        simulate_two_layer_sgd(model, 100.0, 1)
    with pytest.raises(ValueError, match="needs values for mu"):
        simulate_two_layer_sgd(model, 100, 1)
    # parameter values are numbers: text is refused by type, never handed to SymPy
    with pytest.raises(TypeError, match=r"parameters\['mu'\] must be a number"):
        simulate_two_layer_sgd(model, 100, 1, parameters={"mu": "__import__('os')"})
    with pytest.raises(TypeError, match="parameters must be a dict"):
        simulate_two_layer_sgd(model, 100, 1, parameters=[("mu", 0.5)])
