"""The linearisation, a(μ), b(μ), τ and the ODE right-hand side against an
independent 30-digit reference, with error bounds above the true errors.

The reference (``benchmarks/lora_reference.py``) integrates the formulas of
docs/theory.md with nested ``mpmath.quad``, without calling symlora; the
corpus and the comparison live in ``benchmarks/verify_exact_accuracy.py``,
which runs here at a small size (the whole corpus takes about an hour: run
the script).  Pairs are drawn by hypothesis from the corpus over the
parser's families: smooth without closed form (tanh, sigmoid, softplus,
SiLU, GELU), kinked (elu, softsign, |x|, leaky and shifted ReLU), closed forms
(erf(c x), polynomials, Hermite) and mixed pairs, with label noise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mpmath
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import lora_reference  # noqa: E402
import verify_exact_accuracy as corpus  # noqa: E402


def _assert_rows(rows, tolerance=1e-10):
    assert rows
    for row in rows:
        where = f"{row['kind']} {row['case']} {row['name']}: {row['value']!r} vs {row['reference']!r}"
        assert row["relative"] <= tolerance, where
        assert row["ok"], f"{where}: error {row['error']:.2e} above its bound {row['bound']:.2e}"


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(corpus.ALIGNED), mu=st.sampled_from([0.2, 0.45, 0.7, 0.9]))
def test_linearization_matches_the_reference(case, mu):
    student, teacher, lr, batch, noise = case
    _assert_rows(corpus.check_linearization(student, teacher, lr, batch, noise, mus=(mu,)))


@pytest.mark.parametrize("student, teacher", [("elu", "softsign"), ("silu", "gelu")])
def test_linearization_of_kinked_and_smooth_pairs(student, teacher):
    # a product of two kinked factors without closed form, and the two activations most used today
    _assert_rows(corpus.check_linearization(student, teacher, mus=(0.5,)))


def test_rhs_of_a_kinked_pair_matches_the_reference():
    # one state of the elu/softsign ODE (two kinked factors without closed form), label noise, B = 2;
    # 20 digits keep the nested reference affordable here (the script uses 30)
    (state,) = corpus.random_states(1, seed=5)
    _assert_rows(corpus.check_rhs("elu", "softsign", 1, 2, 0.5, [state], dps=20))


def test_reference_reproduces_known_closed_forms():
    # the reference itself: a = 1 - μ, b = 1 for x/x; a = (1 - μ)/2, b = 1/2 for relu/relu; a = -μ for x/x²
    with mpmath.workdps(30):
        mu = mpmath.mpf(3) / 10
        cases = (("x", "x", 1 - mu, 1), ("relu", "relu", (1 - mu) / 2, mpmath.mpf(1) / 2), ("x", "x**2", -mu, 1))
    for student, teacher, a, b in cases:
        with mpmath.workdps(30):
            got_a, got_b, _, _ = lora_reference.ab(student, teacher, mu)
            assert abs(got_a - a) < 1e-25 and abs(got_b - b) < 1e-25, (student, teacher, got_a, got_b)
