"""The tau and escape benchmarks run, at a small size, and their answers agree (no timing asserts).

What is asserted is accuracy: the generated code against 30-digit values
(every pair), the direct-quad baseline likewise, the paper's truncated
Hermite route at least as far off as docs/theory.md §4.2 says it is for
ReLU, and batched escape times equal to a solve_ivp loop's.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_escape  # noqa: E402
import bench_tau  # noqa: E402


def test_bench_tau_small():
    lines = []
    results = bench_tau.run(np.linspace(0.1, 0.9, 5), np.array([0.5]), repeats=1, out=lines.append)
    assert set(results) == set(bench_tau.PAIRS) and len(lines) == 2 + 3 * len(bench_tau.PAIRS)
    for name, routes in results.items():
        assert routes["generated"][1] < 1e-12, name
        assert routes["direct quad"][1] < 1e-10, name
    # the truncated series of a kinked, non-zero-mean activation is visibly wrong (the paper's ReLU column)
    assert results["relu"]["Hermite k<=16"][1] > 1e-3


@pytest.mark.parametrize("name, mu", [("relu", np.array([0.2, 0.6])), ("sigmoid", np.array([0.3]))])
def test_bench_escape_batched_equals_loop(name, mu):
    lines = []
    ratio, difference = bench_escape.compare(name, mu, out=lines.append)
    assert difference < 1e-8 and ratio > 0
    assert "ratio" in lines[0]
