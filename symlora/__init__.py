r"""symlora: symbolic derivation of LoRA fine-tuning dynamics.

Vocabulary (used throughout the package)
----------------------------------------
* ``He_k``: probabilists' Hermite polynomials, ``E[He_j(Z) He_k(Z)] = k! δ_jk``
  for ``Z ~ N(0, 1)``; coefficient sequences are ordered from low to high degree.
* Variance-adapted coefficients ``f_k^[Q] = E[f(X) He_k^[Q](X)]``,
  ``X ~ N(0, Q)``, ``He_k^[Q](x) = Q^{k/2} He_k(x/√Q)``.
* Statistics ``m = v·w*`` (overlap), ``u`` (adapter scale); pre-training
  strength ``mu``; learning rate ``lr = eta/d``; time ``t = steps/d``.
* The ODE, its linearisation ``a(μ)``, ``b(μ)``, ``τ(μ)`` and escape laws are
  derived in the theory document ``docs/theory.md`` (shipped in the package as
  ``symlora/theory.md``); docstrings cite its sections as "docs/theory.md §N".
"""

__version__ = "0.1.0"

# Public name -> private module that defines it.  The modules are imported on
# first access (PEP 562), so ``import symlora`` and ``symlora --help`` do not
# pay for SymPy, SciPy or the simulators until a name is used.
_EXPORTS = {
    "ACTIVATION_NAMES": "_activation",
    "Activation": "_activation",
    "activation": "_activation",
    "x": "_activation",
    "NotIntegrableError": "_expectation",
    "evaluate_with_error": "_expectation",
    "gaussian_expectation": "_expectation",
    "is_exact": "_expectation",
    "GaussianExpectation": "_node",
    "ODESystem": "_ode_system",
    "quadrature_expectation": "_quadrature",
    "EscapeLaw": "_asymptotics",
    "Linearization": "_asymptotics",
    "CriticalMu": "_roots",
    "CriticalPoint": "_general_pretraining",
    "CriticalSet": "_general_pretraining",
    "critical_curve": "_general_pretraining",
    "critical_set": "_general_pretraining",
    "general_coefficients": "_general_pretraining",
    "CriticalMuRoots": "_roots",
    "HermiteExpansion": "_hermite",
    "hermite_coefficients": "_hermite",
    "LoRAModel": "_model",
    "TwoLayerLoRAModel": "two_layer",
    "EscapeResult": "_escape_time",
    "IntegrationResult": "_integrate",
    "fit_escape_slope": "_escape_time",
    "EscapeSlope": "simulate",
    "ODEComparison": "simulate",
    "SGDResult": "simulate",
    "compare_with_ode": "simulate",
    "escape_slope": "simulate",
    "simulate_sgd": "simulate",
    "EscapePrediction": "_prediction",
    "predict_escape": "_prediction",
    "SweepResult": "_sweep",
    "sweep": "_sweep",
}

__all__ = [
    "ACTIVATION_NAMES",
    "Activation",
    "CriticalMu",
    "CriticalMuRoots",
    "CriticalPoint",
    "CriticalSet",
    "EscapeLaw",
    "EscapePrediction",
    "EscapeResult",
    "EscapeSlope",
    "GaussianExpectation",
    "HermiteExpansion",
    "IntegrationResult",
    "Linearization",
    "LoRAModel",
    "NotIntegrableError",
    "ODEComparison",
    "ODESystem",
    "SGDResult",
    "SweepResult",
    "TwoLayerLoRAModel",
    "activation",
    "compare_with_ode",
    "critical_curve",
    "critical_set",
    "escape_slope",
    "evaluate_with_error",
    "fit_escape_slope",
    "gaussian_expectation",
    "general_coefficients",
    "hermite_coefficients",
    "predict_escape",
    "is_exact",
    "quadrature_expectation",
    "simulate_sgd",
    "sweep",
    "x",
]


def __getattr__(name):
    try:
        module_name = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'symlora' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
