"""Two-layer (committee) students with a LoRA adapter (issue 11, item 3).

* :class:`TwoLayerLoRAModel`: the problem, its ODE, linearisation and ``τ``;
* :func:`simulate_two_layer_sgd`: SGD of the same network at finite ``d``.
"""

from ._model import READOUTS, TwoLayerLoRAModel

__all__ = ["READOUTS", "TwoLayerLoRAModel"]
