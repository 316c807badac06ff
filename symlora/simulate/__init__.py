r"""One-pass SGD of the real LoRA model at finite ``d`` (docs/theory.md §2).

By rotational invariance the teacher direction is ``w* = e_1`` and, for
general pre-training, ``w⊥ = e_2``.  Two simulators of the same process,
both compiled by numba from one file of loops
(:mod:`symlora.simulate._chains`) and the model's activations printed from
their SymPy expressions:

``method="full"``
    The literal model: every step draws a fresh input ``x ~ N(0, I_d)`` per
    batch sample, computes ``λ = w·x`` and the gradient of the batch-mean
    loss, updates ``u`` and the ``d``-vector ``v`` and renormalises ``v``.
    Drawing the inputs is fused with the products ``v·x``; the update and
    the new norm take one more pass.  Memory: ``(r + B) d`` numbers per
    thread.

``method="reduced"``
    The same Markov chain, exact in law, at a cost independent of ``d``.
    Given the state, the input's coordinates along any orthonormal frame
    built from the state (``w*``, ``w⊥``, the unit directions of the parts
    of the ``v_a`` orthogonal to them) are i.i.d. ``N(0, 1)`` and independent
    of the remaining ``d - k`` coordinates.  Those enter a step only through
    the new direction ``Σ_b g_b x_b`` they add to every ``v_a``, whose squared
    norm is ``|g|² χ²_{d-k}``.  So a step needs ``batch·k`` normals and one
    chi-square.  Agreement of both simulators is tested.

Randomness: ``numpy.random.SeedSequence(seed).spawn(seeds)`` gives every run
its own ``numpy.random.default_rng`` stream and a run is advanced by one
thread from start to end, so run ``k`` depends neither on how many runs
advance with it nor on the number of threads.

Outcomes: a run *escapes* when ``|m|`` reaches the threshold, is *censored*
when the horizon comes first, and *diverges* when its state stops being
finite (then it stops; no floating-point warnings are raised).

Modules: :mod:`._runner` (:func:`simulate_sgd`), :mod:`._chains` and
:mod:`._compile` (the compiled chains), :mod:`._result`
(:class:`SGDResult`), :mod:`._ode_comparison` (:func:`compare_with_ode`),
:mod:`._slope` (:func:`escape_slope`).
"""

from ._ode_comparison import ODEComparison, compare_with_ode
from ._result import SGDResult
from ._runner import simulate_sgd
from ._slope import EscapeSlope, escape_slope

__all__ = ["SGDResult", "simulate_sgd", "ODEComparison", "compare_with_ode", "EscapeSlope", "escape_slope"]
