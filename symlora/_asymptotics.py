r"""Small-overlap asymptotics (docs/theory.md §4).

At the uninformative fixed point ``m = u = 0`` the linearised dynamics, in
units of ``η``, is ``d/dt (m, u) = [[0, a], [a, -b]] (m, u)`` with the
one-dimensional integrals

.. math::

    a(μ) = -E[e_0(ν) σ'(μν) ν],\qquad
    b(μ) = E[σ'(μν)^2] + E[e_0(ν) σ''(μν)],\qquad e_0(ν) = σ(μν) - σ^*(ν),

computed by the expectation engine directly (exact for polynomial, erf and
ReLU-type pairs; no Hermite series, so nothing is ill-conditioned at small
``μ`` and nothing is lost for activations of non-zero mean).  The unstable
rate is ``λ_+ = (-b + sqrt(b² + 4a²))/2`` and ``τ = 1/λ_+``.

General pre-training (``w0 = μ w* + μ⊥ w⊥``) and rank 2 use the same
integrals at the fixed-point covariance; see :func:`linearize`.

The work is split by responsibility: :mod:`symlora._linearization` (the
Jacobian, ``a``, ``b``, ``τ`` and the series around the fixed point),
:mod:`symlora._escape_law` (critical ``μ`` and escape laws) and
:mod:`symlora._tau_limits` (``τ`` as ``μ → 0`` and ``μ → 1``).  This module
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
