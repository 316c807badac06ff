r"""Small-overlap asymptotics (docs/theory.md §4).

The linearisation at the uninformative fixed point, its coefficients
``a(μ)``, ``b(μ)`` and the characteristic time ``τ``, critical ``μ`` and the
escape laws.  The work is split by responsibility:
:mod:`symlora._linearization` (the Jacobian, ``a``, ``b``, ``τ`` and the
series around the fixed point), :mod:`symlora._escape_law` (critical ``μ``
and escape laws), :mod:`symlora._tau_limits` (``τ`` as ``μ → 0`` and
``μ → 1``) and :mod:`symlora._general_pretraining` (``w0 = μ w* + μ⊥ w⊥``:
the line of fixed points, ``α``, ``β``, the critical set).  This module
gathers their public names.
"""

from __future__ import annotations

from ._escape_law import EscapeLaw, critical_mu, escape_law
from ._linearization import (
    Linearization,
    _high_precision,
    _simplify,
    fastest_unstable_rate,
    linearize,
    ode_jacobian_at_fixed_point,
    ode_series,
    tau_from,
    unstable_rate,
)
from ._tau_limits import tau_limits

__all__ = [
    "Linearization",
    "EscapeLaw",
    "linearize",
    "critical_mu",
    "escape_law",
    "tau_limits",
    "ode_series",
    "unstable_rate",
    "fastest_unstable_rate",
    "tau_from",
    "ode_jacobian_at_fixed_point",
    "_high_precision",
    "_simplify",
]
