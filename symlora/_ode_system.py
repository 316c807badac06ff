"""The frozen ODE system passed from the derivation to code generation."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

__all__ = ["ODESystem"]


@dataclass(frozen=True)
class ODESystem:
    """Right-hand sides ``d state/dt = rhs(state, parameters)``, ``t = steps/d``.

    Attributes
    ----------
    states : tuple of sympy.Symbol
        The summary statistics, in the order used by generated code
        (aligned rank 1: ``(m, u)``).
    parameters : tuple of sympy.Symbol
        Every other symbol the right-hand sides may contain, in the order used
        by generated code (aligned rank 1: ``(mu, eta, B, Delta)``).
    rhs : tuple of sympy.Expr
        ``d states[i] / dt``.
    exact : bool
        False when some expectation is a numeric quadrature node
        (:class:`symlora.GaussianExpectation`).
    name : str
        A human-readable description ("erf / erf, aligned, rank 1").
    """

    states: tuple
    parameters: tuple
    rhs: tuple
    exact: bool = True
    name: str = ""
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if len(self.states) != len(self.rhs):
            raise ValueError(
                f"ODESystem needs one right-hand side per state: {len(self.states)} states, "
                f"{len(self.rhs)} right-hand sides"
            )
        allowed = set(self.states) | set(self.parameters)
        for r in self.rhs:
            if not isinstance(r, sp.Basic):
                raise TypeError(f"right-hand sides must be SymPy expressions, got {r!r}")
        extra = set().union(*(r.free_symbols for r in self.rhs)) - allowed
        if extra:
            raise ValueError(
                "right-hand sides contain symbols that are neither states nor parameters: "
                + ", ".join(sorted(map(str, extra)))
            )

    def as_dict(self) -> dict:
        """``{state: rhs}``."""
        return dict(zip(self.states, self.rhs))

    def jacobian(self) -> sp.Matrix:
        """Symbolic Jacobian ``∂ rhs_i / ∂ state_j``."""
        key = "jacobian"
        if key not in self._cache:
            self._cache[key] = sp.Matrix(self.rhs).jacobian(sp.Matrix(self.states))
        return self._cache[key]
