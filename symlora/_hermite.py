r"""Variance-adapted Hermite coefficients of activations.

For ``X ~ N(0, Q)`` and ``He_k^[Q](x) = Q^{k/2} He_k(x/√Q)`` the coefficients
are ``f_k^[Q] = E[f(X) He_k^[Q](X)]`` (docs/theory.md §3), so that
``f = Σ_k f_k^[Q] He_k^[Q] / (k! Q^k)`` in ``L²(N(0, Q))`` and Mehler's
formula reads ``E[f(X) g(Y)] = Σ_k f_k^[Q] g_k^[T] R^k / (k! Q^k T^k)``.

Exact families (polynomials, erf, ReLU/sign) go through the single
expectation engine and come out as closed forms in ``Q``; the others are
computed with mpmath at a numeric ``Q`` together with the part of
``E[f(X)^2]`` the truncation leaves out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy as sp

from ._activation import Activation, activation
from ._expectation import as_expr, gaussian_expectation, is_exact
from ._validate import as_exact_number

__all__ = ["hermite_coefficients", "HermiteExpansion", "scaled_hermite"]

_t = sp.Symbol("t", real=True)


def scaled_hermite(k: int, arg, variance) -> sp.Expr:
    """``He_k^[Q](arg) = Q^{k/2} He_k(arg/√Q)``, a polynomial in ``arg`` and ``Q``.

    Examples
    --------
    >>> import sympy as sp
    >>> x, Q = sp.symbols("x Q")
    >>> scaled_hermite(3, x, Q)
    -3*Q*x + x**3
    """
    # He_k has the parity of k, so Q^{k/2} He_k(x/√Q) = Σ_j c_j Q^j x^{k-2j}
    poly = sp.Poly(sp.hermite_prob(k, _t), _t)
    return sp.Add(
        *[
            coeff * arg**power * variance ** ((k - power) // 2)
            for (power,), coeff in poly.terms()
        ]
    )


@dataclass(frozen=True)
class HermiteExpansion:
    """Coefficients ``f_0^[Q], ..., f_kmax^[Q]`` of an activation.

    Attributes
    ----------
    coefficients : tuple
        SymPy expressions (exact) or mpmath numbers (approximate), low to high.
    variance : sympy.Expr
        ``Q``.
    exact : bool
        Whether the coefficients are exact closed forms.
    tail : sympy.Expr or mpmath.mpf
        ``E[f(X)^2] - Σ_{k<=kmax} (f_k^[Q])^2 / (k! Q^k)``: the L² mass the
        truncation leaves out (0 for a polynomial of degree <= kmax).  By
        Cauchy–Schwarz it bounds the error of a truncated Mehler sum:
        ``|Σ_{k>kmax} f_k g_k ρ^k/(k! ...)| <= sqrt(tail_f tail_g) |ρ|^{kmax+1}``.
    """

    coefficients: tuple
    variance: sp.Expr
    exact: bool
    tail: object

    def __post_init__(self):
        # a public constructor: text in a field would be sympified (evaluated) by series()
        if isinstance(self.coefficients, (str, bytes)) or not isinstance(self.coefficients, (tuple, list)):
            raise TypeError(f"coefficients must be a tuple of numbers, got {type(self.coefficients).__name__}")
        for name, value in [("coefficients entry", c) for c in self.coefficients] + [
            ("variance", self.variance), ("tail", self.tail)
        ]:
            if isinstance(value, (str, bytes)):
                raise TypeError(f"{name} must be a SymPy expression or a number, not a string")

    def __len__(self):
        return len(self.coefficients)

    def __getitem__(self, k):
        return self.coefficients[k]

    def __iter__(self):
        return iter(self.coefficients)

    def series(self, arg) -> sp.Expr:
        """The truncated expansion ``Σ_k f_k He_k^[Q](arg)/(k! Q^k)``."""
        return sp.Add(
            *[
                sp.sympify(c) * scaled_hermite(k, arg, self.variance) / (sp.factorial(k) * self.variance**k)
                for k, c in enumerate(self.coefficients)
            ]
        )


def hermite_coefficients(act, kmax: int, variance=1, *, dps: int = 30) -> HermiteExpansion:
    r"""Variance-adapted Hermite coefficients ``f_k^[Q]``, ``k = 0..kmax``.

    Parameters
    ----------
    act : Activation or activation spec
        Anything :func:`symlora.activation` accepts.
    kmax : int
        Highest order, ``>= 0``.
    variance : number or sympy.Expr
        ``Q > 0``; may be a symbol for the exact families.
    dps : int
        Decimal digits for the numeric (non-exact) families.

    Returns
    -------
    HermiteExpansion

    Raises
    ------
    ValueError
        Negative ``kmax``, non-positive numeric ``variance``, or a symbolic
        ``variance`` for an activation without closed-form coefficients.

    Examples
    --------
    >>> import sympy as sp
    >>> Q = sp.Symbol("Q", positive=True)
    >>> list(hermite_coefficients("x**3", 3, Q))
    [0, 3*Q**2, 0, 6*Q**3]
    >>> hermite_coefficients("relu", 2, 1).coefficients
    (sqrt(2)/(2*sqrt(pi)), 1/2, sqrt(2)/(2*sqrt(pi)))
    """
    act = activation(act)
    if not isinstance(kmax, (int, np.integer)) or isinstance(kmax, bool):
        raise TypeError(f"kmax must be a non-negative integer, got {type(kmax).__name__}")
    kmax = int(kmax)
    if not 0 <= kmax <= MAX_KMAX:
        raise ValueError(f"kmax must lie in [0, {MAX_KMAX}], got {kmax}")
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)):
        raise TypeError(f"dps must be an integer, got {type(dps).__name__}")
    if not 15 <= dps <= 1000:
        raise ValueError(f"dps must lie in [15, 1000], got {dps}")
    variance = as_exact_number(variance, "variance", symbolic=True, rationalize=False)
    if variance.is_number and not variance.is_positive:
        raise ValueError(f"variance must be positive, got {variance}")
    return _hermite_coefficients(act, kmax, variance, dps)


#: Largest Hermite order computed (the exact route expands products of degree ``kmax``).
MAX_KMAX = 200


@functools.lru_cache(maxsize=512)
def _hermite_coefficients(act: Activation, kmax: int, variance: sp.Expr, dps: int) -> HermiteExpansion:
    # the engine is exact for these families; it tells us by returning no quadrature node
    probe = gaussian_expectation(act(_t) ** 2, [_t], [[variance]])
    if is_exact(probe):
        coefficients = tuple(
            sp.factor(gaussian_expectation(act(_t) * scaled_hermite(k, _t, variance), [_t], [[variance]]))
            for k in range(kmax + 1)
        )
        captured = sp.Add(
            *[c**2 / (sp.factorial(k) * variance**k) for k, c in enumerate(coefficients)]
        )
        tail = sp.simplify(probe - captured) if act.is_polynomial else probe - captured
        return HermiteExpansion(coefficients, variance, True, tail)
    if variance.free_symbols:
        raise ValueError(
            f"activation {act.name!r} has no closed-form Hermite coefficients: give a numeric variance"
        )
    with mpmath.workdps(dps):
        Q = mpmath.mpf(sp.N(variance, dps + 5))
        func = sp.lambdify(_t, act(_t), modules="mpmath")
        density = lambda y: mpmath.exp(-y * y / (2 * Q)) / mpmath.sqrt(2 * mpmath.pi * Q)  # noqa: E731
        # split at 0: activations of a linear form have their kinks there
        def expect(g):
            return mpmath.quad(lambda y: g(y) * density(y), [-mpmath.inf, 0, mpmath.inf])

        coefficients = []
        for k in range(kmax + 1):
            he = sp.lambdify(_t, scaled_hermite(k, _t, sp.Float(str(Q), dps)), modules="mpmath")
            coefficients.append(expect(lambda y, he=he: func(y) * he(y)))
        second = expect(lambda y: func(y) ** 2)
        captured = mpmath.fsum(c**2 / (mpmath.factorial(k) * Q**k) for k, c in enumerate(coefficients))
        tail = max(second - captured, mpmath.mpf(0))
    return HermiteExpansion(tuple(coefficients), variance, False, tail)
