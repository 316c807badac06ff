"""Two-layer (committee) students with a LoRA adapter (issue 11, item 3).

* :class:`TwoLayerLoRAModel`: the problem, its ODE, linearisation and ``τ``;
* :func:`simulate_two_layer_sgd`: SGD of the same network at finite ``d``.
"""

from ._comparison import TwoLayerODEComparison, compare_two_layer_with_ode
from ._model import READOUTS, TwoLayerLoRAModel
from ._sgd import TwoLayerSGDResult, simulate_two_layer_sgd

__all__ = ["READOUTS", "TwoLayerLoRAModel", "TwoLayerODEComparison", "TwoLayerSGDResult",
           "compare_two_layer_with_ode", "simulate_two_layer_sgd"]
