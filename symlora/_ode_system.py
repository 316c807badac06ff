"""The frozen ODE system passed from the derivation to code generation."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

__all__ = ["ODESystem", "ExpectationForm", "inline_definitions"]


@dataclass(frozen=True)
class ExpectationForm:
    r"""The right-hand sides as written before their Gaussian expectations were evaluated.

    The expectation engine splits ``E[F]`` into closed forms plus a
    quadrature node for the rest; both pieces may be singular where the
    covariance degenerates (``P = Q - R² = 0``, the line ``u = 0``) although
    ``E[F]`` is smooth there.  The Jacobian (:mod:`symlora._ode_jacobian`)
    therefore differentiates the unevaluated ``E[F]`` in one piece.

    Attributes
    ----------
    structure : tuple of sympy.Expr
        One right-hand side per state, in the states, the parameters and the
        symbols of ``expectations``.
    expectations : tuple of (sympy.Symbol, sympy.Expr)
        Each symbol's value: a linear combination of unevaluated
        :class:`~symlora.GaussianExpectation` nodes over ``(λ, ν)`` with
        covariance ``[[Q, R], [R, 1]]`` (the symbols ``Q``, ``R``).
    overlaps : tuple of (sympy.Symbol, sympy.Expr)
        ``((P, P(states)), (R, R(states)))`` with ``P = Q - R²``.
    """

    structure: tuple
    expectations: tuple
    overlaps: tuple


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
    definitions : tuple of (sympy.Symbol, sympy.Expr)
        Intermediate quantities, in evaluation order: each expression may
        use the states, the parameters and the symbols defined before it,
        and the right-hand sides may use all of them.  They keep large
        systems structured (a committee's right-hand side is a few matrices
        of expectations combined by sums over units, see
        :mod:`symlora.two_layer`); :attr:`inlined_rhs` substitutes them.
    expectation_form : ExpectationForm or None
        The right-hand sides before their expectations were evaluated
        (:class:`LoRAModel` systems); the Jacobian of a system with
        quadrature nodes is taken through it.
    """

    states: tuple
    parameters: tuple
    rhs: tuple
    exact: bool = True
    name: str = ""
    definitions: tuple = ()
    expectation_form: ExpectationForm | None = None
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if len(self.states) != len(self.rhs):
            raise ValueError(
                f"ODESystem needs one right-hand side per state: {len(self.states)} states, "
                f"{len(self.rhs)} right-hand sides"
            )
        allowed = set(self.states) | set(self.parameters)
        for pair in self.definitions:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], sp.Symbol)
                    and isinstance(pair[1], sp.Basic)):
                raise TypeError(f"definitions must be (symbol, expression) pairs, got {pair!r}"[:200])
            symbol, expr = pair
            if symbol in allowed:
                raise ValueError(f"definition {symbol} is defined twice or is a state or parameter")
            early = expr.free_symbols - allowed
            if early:
                raise ValueError(f"definition {symbol} uses {', '.join(sorted(map(str, early)))} before it is "
                                 "defined (or they are neither states nor parameters)")
            allowed.add(symbol)
        if self.expectation_form is not None and not isinstance(self.expectation_form, ExpectationForm):
            raise TypeError(f"expectation_form must be an ExpectationForm, got {type(self.expectation_form).__name__}")
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
            self._cache[key] = sp.Matrix(self.inlined_rhs).jacobian(sp.Matrix(self.states))
        return self._cache[key]

    @property
    def inlined_rhs(self) -> tuple:
        """The right-hand sides in the states and parameters only (:attr:`definitions` substituted).

        For a large structured system this is the large expression the
        definitions avoid: the Jacobian needs it, integration does not.
        """
        if not self.definitions:
            return self.rhs
        key = "inlined_rhs"
        if key not in self._cache:
            self._cache[key] = inline_definitions(self.definitions, self.rhs)
        return self._cache[key]


def inline_definitions(definitions, exprs) -> tuple:
    """``exprs`` with the ``(symbol, expression)`` ``definitions`` substituted, in order."""
    values = {}
    for symbol, expr in definitions:
        values[symbol] = expr.xreplace(values)
    return tuple(e.xreplace(values) for e in exprs)
