"""The compiled pieces of the simulator: generated activations and the chi-square sampler."""

import numba
import numpy as np
import pytest
from scipy import stats

from symlora import activation
from symlora.simulate._compile import chain_kernels


@pytest.mark.parametrize("student, teacher", [("relu", "sigmoid"), ("tanh", "He3"), ("erf", "softplus")])
def test_generated_activations_match_the_numpy_route(student, teacher):
    # two routes from the same SymPy expressions: numba-compiled math source and numpy lambdify
    s, t = activation(student), activation(teacher)
    kernels = chain_kernels(s, t)
    points = np.concatenate([np.linspace(-4, 4, 33), [0.0, -1e-300, 7.5]])
    for compiled, reference in ((kernels.sigma, s.numpy(0)), (kernels.dsigma, s.numpy(1)),
                                (kernels.teacher, t.numpy(0))):
        values = np.array([compiled(float(p)) for p in points])
        np.testing.assert_allclose(values, reference(points), rtol=1e-13, atol=1e-15)


def test_chi_square_sampler_has_the_chi_square_law():
    chi_square = chain_kernels(activation("x"), activation("x"))._chi_square

    @numba.njit
    def draw(rng, n, dof):
        shape_third = max(dof / 2.0 - 1.0 / 3.0, 1.0)
        inv_sqrt = 1.0 / np.sqrt(9.0 * shape_third)
        out = np.empty(n)
        for i in range(n):
            out[i] = chi_square(rng, dof, shape_third, inv_sqrt)
        return out

    rng = np.random.default_rng(12)
    for dof in (1.0, 3.0, 10.0, 997.0, 1e6):
        sample = draw(rng, 20000, dof)
        # Kolmogorov-Smirnov against scipy's chi-square: rejects a wrong law at this size
        assert stats.kstest(sample, stats.chi2(dof).cdf).pvalue > 1e-3, dof
