r"""symlora: symbolic derivation of LoRA fine-tuning dynamics.

Vocabulary (used throughout the package)
----------------------------------------
* ``He_k``: probabilists' Hermite polynomials, ``E[He_j(Z) He_k(Z)] = k! δ_jk``
  for ``Z ~ N(0, 1)``; coefficient sequences are ordered from low to high degree.
* Variance-adapted coefficients ``f_k^[Q] = E[f(X) He_k^[Q](X)]``,
  ``X ~ N(0, Q)``, ``He_k^[Q](x) = Q^{k/2} He_k(x/√Q)``.
* Statistics ``m = v·w*`` (overlap), ``u`` (adapter scale); pre-training
  strength ``mu``; learning rate ``lr = eta/d``; time ``t = steps/d``.
* The ODE, its linearisation ``a(μ)``, ``b(μ)``, ``τ(μ)`` and escape laws follow
  MODEL.md (shipped with the project's shared documentation).
"""

__version__ = "0.1.0"

from ._activation import ACTIVATION_NAMES, Activation, activation, x
from ._expectation import NotIntegrableError, evaluate_with_error, gaussian_expectation, is_exact
from ._node import GaussianExpectation
from ._ode_system import ODESystem
from ._quadrature import quadrature_expectation

__all__ = [
    "ACTIVATION_NAMES",
    "Activation",
    "GaussianExpectation",
    "NotIntegrableError",
    "ODESystem",
    "activation",
    "evaluate_with_error",
    "quadrature_expectation",
    "gaussian_expectation",
    "is_exact",
    "x",
]

from ._asymptotics import EscapeLaw, Linearization  # noqa: E402
from ._hermite import HermiteExpansion, hermite_coefficients  # noqa: E402
from ._model import LoRAModel  # noqa: E402
from ._integrate import EscapeResult, IntegrationResult, fit_escape_slope  # noqa: E402
from ._sgd import EscapeSlope, ODEComparison, SGDResult, compare_with_ode, escape_slope, simulate_sgd  # noqa: E402

__all__ += [
    "EscapeLaw",
    "EscapeResult",
    "EscapeSlope",
    "HermiteExpansion",
    "IntegrationResult",
    "Linearization",
    "LoRAModel",
    "ODEComparison",
    "SGDResult",
    "compare_with_ode",
    "escape_slope",
    "fit_escape_slope",
    "hermite_coefficients",
    "simulate_sgd",
]
