"""``tau_limits()`` for activations without closed forms: limits, with errors that cover the truth.

Independent 30-digit values from the expansions of docs/theory.md §4.2 at the
two ends (student = teacher = σ, ``ν ~ N(0, 1)``):

* ``μ → 1``: ``e0 = σ(μν) - σ(ν) = O(1 - μ)``, so ``b → E[σ'(ν)²]`` and
  ``a = (1 - μ) E[ν² σ'(ν)²] + O((1 - μ)²)``; ``τ = b/a² + O(1)`` gives
  ``τ (1 - μ)² → E[σ'²] / E[ν² σ'²]²``;
* ``μ → 0``: ``a → σ'(0) E[ν σ(ν)] = σ'(0) E[σ'(ν)]`` (Stein) and
  ``b → σ'(0)² + (σ(0) - E[σ]) σ''(0)``, then ``τ = (b + sqrt(b² + 4a²))/(2a²)``.

The published finite-offset values (``τ(1 - 10⁻³) · 10⁻⁶``: 39.867 for tanh,
79.672 for sigmoid) are off by 2e-3 relative; the limits must not be.
"""

import mpmath
import pytest

from symlora import LoRAModel

DERIVATIVES = {
    "tanh": (lambda v: mpmath.tanh(v), lambda v: 1 - mpmath.tanh(v) ** 2),
    "sigmoid": (lambda v: 1 / (1 + mpmath.exp(-v)), lambda v: mpmath.exp(-v) / (1 + mpmath.exp(-v)) ** 2),
}


def gauss(f):
    with mpmath.workdps(30):
        density = lambda v: mpmath.exp(-v * v / 2) / mpmath.sqrt(2 * mpmath.pi)  # noqa: E731
        return mpmath.quad(lambda v: f(v) * density(v), [-mpmath.inf, -5, 0, 5, mpmath.inf])


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_limits_by_richardson_cover_the_true_values(name):
    sigma, dsigma = DERIVATIVES[name]
    strong = gauss(lambda v: dsigma(v) ** 2) / gauss(lambda v: v * v * dsigma(v) ** 2) ** 2
    a0 = dsigma(0) * gauss(dsigma)
    b0 = dsigma(0) ** 2  # σ''(0) = 0 for both (odd σ - σ(0))
    weak = (b0 + mpmath.sqrt(b0**2 + 4 * a0**2)) / (2 * a0**2)
    limits = LoRAModel(name).tau_limits()
    for label, truth, exponent in (("mu->1", strong, -2), ("mu->0", weak, 0)):
        law = limits[label]
        assert law["exponent"] == exponent
        error = abs(float(law["coefficient"]) - float(truth))
        assert error <= law["error"], (label, error, law["error"])
        assert law["error"] < 1e-6 * float(truth)  # an estimate that still says something
