"""The standard activation pairs of the analysis, defined once.

Tests, derivations, notebooks, benchmarks and ``symlora reproduce`` all take
their pairs from here.

Examples
--------
>>> from symlora.models import DEFAULT_PAIRS, model
>>> sorted(DEFAULT_PAIRS)[:3]
['He2', 'He2/He2^2', 'He3']
>>> model("relu").linearization().b
1/2
"""

from __future__ import annotations

from ._model import LoRAModel

__all__ = ["DEFAULT_PAIRS", "STANDARD_PAIRS", "HERMITE_PAIRS", "SQUARED_TEACHER_PAIRS", "model", "models"]

#: label -> (student, teacher): the classical activations with matching teachers.
STANDARD_PAIRS = {
    "x": ("x", "x"),
    "erf": ("erf", "erf"),
    "relu": ("relu", "relu"),
    "sigmoid": ("sigmoid", "sigmoid"),
    "tanh": ("tanh", "tanh"),
}

#: Probabilists' Hermite activations with matching teachers.
HERMITE_PAIRS = {f"He{k}": (f"He{k}", f"He{k}") for k in range(2, 7)}

#: Mismatched targets: squared teachers.
SQUARED_TEACHER_PAIRS = {
    "x/x^2": ("x", "x**2"),
    "He2/He2^2": ("He2", "He2(x)**2"),
}

#: Every pair ``symlora reproduce`` analyses.
DEFAULT_PAIRS = {**STANDARD_PAIRS, **HERMITE_PAIRS, **SQUARED_TEACHER_PAIRS}


def model(label: str, **kwargs) -> LoRAModel:
    """The :class:`LoRAModel` of a labelled pair (keyword arguments pass through)."""
    try:
        student, teacher = DEFAULT_PAIRS[label]
    except KeyError:
        raise ValueError(f"unknown pair {label!r}; known pairs: {', '.join(DEFAULT_PAIRS)}") from None
    return LoRAModel(student, teacher, **kwargs)


def models(labels=None, **kwargs) -> dict:
    """``{label: LoRAModel}`` for ``labels`` (default: all of :data:`DEFAULT_PAIRS`)."""
    labels = list(DEFAULT_PAIRS) if labels is None else list(labels)
    return {label: model(label, **kwargs) for label in labels}
