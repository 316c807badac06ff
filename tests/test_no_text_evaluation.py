"""No public entry point turns user text into code: strings are refused, not sympified."""

import os

import pytest
import sympy as sp

from symlora import LoRAModel, ODESystem, evaluate_with_error, gaussian_expectation, hermite_coefficients, is_exact
from symlora._codegen import compile_expressions

X = sp.Symbol("X", real=True)
PAYLOAD = "__import__('os').mkdir('pwned')"


@pytest.mark.parametrize("call", [
    lambda: gaussian_expectation(PAYLOAD, [X], [[1]]),
    lambda: gaussian_expectation(X**2, [X], [[PAYLOAD]]),
    lambda: gaussian_expectation(X**2, [X], PAYLOAD),
    lambda: hermite_coefficients("x", 2, PAYLOAD),
    lambda: evaluate_with_error(PAYLOAD),
    lambda: is_exact(PAYLOAD),
    lambda: compile_expressions([X], [PAYLOAD]),
    lambda: ODESystem((X,), (), (PAYLOAD,)),
    lambda: LoRAModel("x", lr=PAYLOAD),
])
def test_strings_are_refused_without_evaluation(call, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError):
        call()
    assert os.listdir(tmp_path) == []


def test_numbers_and_matrices_still_accepted():
    assert gaussian_expectation(X**2, [X], sp.Matrix([[2]])) == 2
    assert gaussian_expectation(X**2, [X], ((3,),)) == 3
    assert hermite_coefficients("x", 1, 2.0).exact
