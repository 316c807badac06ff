"""Leading behaviour of ``τ(μ)`` at weak (``μ → 0``) and strong (``μ → 1``) pre-training (docs/theory.md §4).

Exact limits and power laws where ``a`` and ``b`` have closed forms; a local
power law and a Richardson-extrapolated coefficient, with its error, otherwise.
"""

from __future__ import annotations

import math

import sympy as sp

from . import _symbols as S
from ._expectation import is_exact

__all__ = ["tau_limits"]


def tau_limits(model) -> dict:
    """Leading behaviour of ``τ(μ)`` as ``μ → 0+`` and ``μ → 1``.

    Returns
    -------
    dict
        ``{"mu->0": law, "mu->1": law}``, each ``{"coefficient", "exponent",
        "point", "law"}`` meaning ``τ ≈ coefficient · |μ - point|^exponent``
        (``exponent = 0``: ``τ`` tends to the finite ``coefficient``).  For
        activations without closed forms the coefficient is a limit by
        Richardson extrapolation and carries its error estimate ``"error"``.

    Raises
    ------
    ValueError
        General pre-training (``τ`` then depends on ``μ⊥`` as well).
    """
    if model.pretraining == "general":
        raise ValueError("tau_limits is derived for aligned pre-training; for general pre-training evaluate "
                         "model.coefficients(mu, mu_perp) or symlora._general_pretraining.critical_set")
    lin = model.linearization()
    out = {}
    for label, point in (("mu->0", sp.S.Zero), ("mu->1", sp.S.One)):
        out[label] = _tau_limit(lin, point)
    return out


def _tau_limit(lin, point):
    mu = S.mu
    a, b = lin.a, lin.b
    if is_exact(a) and is_exact(b):
        direction = "+" if point == 0 else "+-"
        a0 = sp.limit(a, mu, point, "+") if direction == "+" else sp.simplify(a.subs(mu, point))
        b0 = sp.limit(b, mu, point, "+") if direction == "+" else sp.simplify(b.subs(mu, point))
        if a0 != 0:
            value = sp.simplify((b0 + sp.sqrt(b0**2 + 4 * a0**2)) / (2 * a0**2))
            return {"point": point, "coefficient": value, "exponent": 0, "law": f"tau -> {value}"}
        # a vanishes at the point: find its order k, tau ~ b0 / (a_k^2 |mu - point|^(2k))
        series = sp.series(a, mu, point, 6, dir="+").removeO()
        poly_terms = sp.Poly(sp.expand(series.subs(mu, mu + point)), mu) if point != 0 else sp.Poly(sp.expand(series), mu)
        k, ak = min(((mon[0], c) for mon, c in poly_terms.terms() if c != 0), default=(None, None))
        if k is None:
            return {"point": point, "coefficient": sp.oo, "exponent": None, "law": "a vanishes to order 6: tau = inf"}
        if b0 > 0:
            coeff = sp.simplify(b0 / ak**2)
            return {"point": point, "coefficient": coeff, "exponent": -2 * k,
                    "law": f"tau ~ {coeff} |mu - {point}|^({-2 * k})"}
        coeff = sp.simplify(1 / sp.Abs(ak))
        return {"point": point, "coefficient": coeff, "exponent": -k,
                "law": f"tau ~ {coeff} |mu - {point}|^({-k}) (b <= 0)"}
    # numeric families: the local power law from two offsets, then the
    # coefficient as a limit by Richardson extrapolation of
    # f(h) = τ(point ± h) h^(-exponent) = C + c_1 h + c_2 h^2 + ... (a, b
    # analytic in μ), with the spread of the last extrapolants as its error
    def tau_at(h):
        x = float(point) + (h if point == 0 else -h)
        return lin.values(x)["tau"]

    offsets = [1e-2, 1e-3]
    taus = [tau_at(h) for h in offsets]
    slope = (math.log(taus[1]) - math.log(taus[0])) / (math.log(offsets[1]) - math.log(offsets[0]))
    exponent = int(round(slope))
    if abs(slope - exponent) > 0.05:
        exponent = 0
    # seven levels (h down to 0.04/64): the extrapolants then agree to ~1e-8 for tanh and sigmoid, where
    # five left an error estimate of ~1e-4 (true error ~1e-8)
    coeff, error = _richardson(lambda h: tau_at(h) * h ** (-exponent), h0=0.04, levels=7)
    if exponent == 0:
        return {"point": point, "coefficient": sp.Float(coeff, 12), "exponent": 0, "error": error,
                "law": f"tau -> {coeff:.10g} ± {error:.1g} (Richardson extrapolation)"}
    return {"point": point, "coefficient": sp.Float(coeff, 12), "exponent": exponent, "error": error,
            "law": f"tau ~ {coeff:.10g} |mu - {point}|^({exponent}) ± {error:.1g} (Richardson extrapolation)"}


def _richardson(func, h0, levels):
    """``lim_{h→0} func(h)`` by Neville extrapolation on ``h0 / 2^k``, and an error estimate.

    ``func(h) = C + c_1 h + c_2 h^2 + ...``; the estimate is the larger
    change of the diagonal in its last two steps.

    Examples
    --------
    >>> value, error = _richardson(lambda h: 2 + 3 * h - h**2, 0.1, 5)
    >>> round(value, 12), error < 1e-9
    (2.0, True)
    """
    hs = [h0 / 2**k for k in range(levels)]
    table = [[func(h)] for h in hs]
    for k in range(1, levels):
        for j in range(1, k + 1):
            ratio = hs[k - j] / hs[k]
            table[k].append(table[k][j - 1] + (table[k][j - 1] - table[k - 1][j - 1]) / (ratio - 1))
    diagonal = [table[k][k] for k in range(levels)]
    error = max(abs(diagonal[-1] - diagonal[-2]), abs(diagonal[-2] - diagonal[-3]) if levels > 2 else 0.0)
    return diagonal[-1], error
