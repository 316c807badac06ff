"""Input checks shared by the simulators, the ODE comparison and the fits."""

from __future__ import annotations

import math

import numpy as np
import sympy as sp


def frozen(array):
    """A read-only view of ``array`` (results are data that cannot be edited)."""
    array = np.asarray(array)
    array.setflags(write=False)
    return array


def integer(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def real(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating, sp.Expr)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, sp.Expr):
        if value.free_symbols:
            raise ValueError(f"{name} is symbolic ({value}); pass a number")
        value = float(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def from_model(value, model_value, name):
    """An explicit argument, or the model's value if it is a number."""
    if value is not None:
        return value
    if isinstance(model_value, sp.Expr) and model_value.free_symbols:
        raise ValueError(
            f"{name} is symbolic in the model ({model_value}); pass a number, e.g. simulate_sgd(..., {name}=1)"
        )
    return model_value


def check_model(model):
    for attribute in ("student", "teacher", "pretraining", "rank", "lr", "batch", "noise"):
        if not hasattr(model, attribute):
            raise TypeError(f"model must be a LoRAModel (it has no {attribute!r}), got {type(model).__name__}")
    if model.student.derivative(1).has(sp.DiracDelta):
        raise ValueError(
            f"student {model.student.name!r} has a Dirac delta as derivative: SGD gradients vanish almost "
            "everywhere; use a continuous student"
        )


def default_t_max(model, mu, eta, d):
    """Horizon from the linear theory: three times the predicted escape plus margin."""
    tau = float(np.asarray(model.tau(mu)))
    if not math.isfinite(tau) or tau <= 0:
        raise ValueError(
            f"the linear theory gives no finite escape time at mu = {mu} (tau = {tau}); pass t_max or steps"
        )
    return 3 * tau / eta * math.log(d) + 10 * tau / eta
