r"""The Gaussian-expectation engine.

``gaussian_expectation(expr, variables, cov)`` computes ``E[expr]`` for a
centred Gaussian vector ``X`` (the ``variables``) with covariance ``cov``.

How it works
------------
``expr`` is rewritten as a sum of products of *atoms* of linear forms
``l·X``: polynomials, ``erf(l·X)``, ``Heaviside(l·X)``, ``DiracDelta(l·X)``
and Gaussian factors ``exp(-c (l·X)^2)`` (``relu``, ``sign``, ``|·|`` are
rewritten through ``Heaviside``).  Each product is reduced exactly:

* a Gaussian factor is absorbed into the covariance (Sherman–Morrison):
  ``E[g(X) exp(-c (a·X)^2)] = (1 + 2c aΣa)^{-1/2} E'[g]`` with
  ``Σ' = Σ - 2c Σa aᵀΣ / (1 + 2c aΣa)``;
* a Dirac delta conditions the vector: ``E[g(X) δ(d·X)] = (2π dΣd)^{-1/2}
  E[g(X) | d·X = 0]``;
* polynomial factors are removed by Stein's lemma
  ``E[x_l F] = Σ_j Σ_lj E[∂_j F]`` (whose derivatives of ``erf`` and
  ``Heaviside`` are Gaussian factors and deltas again);
* what is left, a product of ``erf`` and ``Heaviside`` factors, is an
  orthant expectation of signs: ``Heaviside(y) = (1 + sign y)/2`` and
  ``erf(a·X) = E_Z[sign(√2 a·X - Z)]`` with an independent ``Z ~ N(0, 1)``,
  so that ``E[S_1 S_2] = (2/π) asin ρ_12`` and odd products vanish;
* pure polynomials use Isserlis' theorem.

The reduction lives in :mod:`symlora._closed_forms`; this module holds the
public entry point, input checks and numeric evaluation.  Products of four or
more sign-like factors, and every factor without a closed form (``tanh``,
sigmoid, softplus, ...), are returned as an explicit
:class:`~symlora.GaussianExpectation` node: the result then *says* it is
approximate, and ``node.numeric()`` returns its value with an error bound
(one-dimensional Mehler sums for separable integrands, see
:mod:`symlora._separable`; kink-aligned quadrature otherwise).
"""

from __future__ import annotations

import functools

import sympy as sp

from ._closed_forms import _bilinear, _linear_form, _NotClosed, _Reducer, _split_terms, _term_expr, _tidy
from ._integrability import NotIntegrableError, check_activation_expr
from ._node import GaussianExpectation
from ._validate import as_exact_number, covariance_matrix

__all__ = ["gaussian_expectation", "is_exact", "evaluate_with_error", "NotIntegrableError", "as_expr"]


# --------------------------------------------------------------------------
# Input normalisation


def as_expr(value, name="expr"):
    """``value`` as a SymPy object without ever parsing text (strings are refused).

    ``sympify`` evaluates strings as Python; user text reaches SymPy only
    through :func:`symlora.activation`'s whitelist parser.
    """
    if isinstance(value, str):
        raise TypeError(
            f"{name} must be a SymPy expression or a number, not a string "
            "(build expressions with sympy or symlora.activation)"
        )
    try:
        return sp.sympify(value, strict=True)
    except (sp.SympifyError, TypeError) as exc:
        raise TypeError(f"{name} must be a SymPy expression or a number, got {value!r}") from exc


def _as_cov(cov, n) -> sp.ImmutableMatrix:
    """The covariance, checked: symmetric, PSD, real and finite (see :mod:`symlora._validate`)."""
    return covariance_matrix(cov, n, "cov")


def _rewrite_piecewise_linear(expr: sp.Expr) -> sp.Expr:
    """relu, sign, |·| in terms of Heaviside (so the engine sees a single atom)."""

    def max_rule(*args):
        if len(args) == 2 and 0 in args:
            other = args[1] if args[0] == 0 else args[0]
            return other * sp.Heaviside(other)
        return sp.Max(*args)

    def min_rule(*args):
        if len(args) == 2 and 0 in args:
            other = args[1] if args[0] == 0 else args[0]
            return other * sp.Heaviside(-other)
        return sp.Min(*args)

    expr = expr.replace(sp.Max, max_rule).replace(sp.Min, min_rule)
    expr = expr.replace(sp.sign, lambda a: 2 * sp.Heaviside(a) - 1)
    expr = expr.replace(sp.Abs, lambda a: a * (2 * sp.Heaviside(a) - 1))
    # Heaviside(y, 1/2) is the default convention; drop the explicit second argument
    expr = expr.replace(
        lambda e: isinstance(e, sp.Heaviside) and len(e.args) == 2,
        lambda e: sp.Heaviside(e.args[0]),
    )
    return expr


# --------------------------------------------------------------------------
# Public entry point


@functools.lru_cache(maxsize=4096)
def _cached_expectation(expr, variables, cov):
    variables = list(variables)
    expr = _rewrite_piecewise_linear(expr)
    reducer = _Reducer(variables)
    exact_part = sp.S.Zero
    closed_terms = []
    numeric_terms = []
    delta_groups = {}
    for coef, term in _split_terms(expr, variables):
        if term is None:
            if _vanishes_on_its_deltas(coef, variables):
                continue
            deltas, rest = _pull_deltas(coef, variables)
            if deltas:
                # a delta next to a factor without closed form: condition exactly,
                # integrate the rest numerically under the conditional law
                delta_groups.setdefault(deltas, []).append(rest)
            else:
                numeric_terms.append(coef)
            continue
        try:
            exact_part += coef * reducer.expectation(term, cov)
            closed_terms.append(coef * _term_expr(term, variables))
        except _NotClosed:
            numeric_terms.append(coef * _term_expr(term, variables))
    result = _tidy(exact_part)
    if numeric_terms:
        if any(t.has(sp.Heaviside, sp.DiracDelta) for t in closed_terms):
            # kinks cancel exactly only in the expanded remainder
            integrand = sp.Add(*numeric_terms)
        else:
            # the user's (unexpanded) form: fewer operations, no cancellations
            # between expanded terms
            integrand = expr.replace(sp.DiracDelta, lambda *args: sp.S.Zero) - sp.Add(*closed_terms)
        # integrate only over the variables the integrand uses (cheaper quadrature)
        used = [i for i, v in enumerate(variables) if integrand.has(v)]
        sub = sp.ImmutableMatrix([[cov[i, j] for j in used] for i in used])
        node_vars = tuple(variables[i] for i in used)
        result = result + GaussianExpectation(sp.Lambda(node_vars, integrand), sub)
    for deltas, rests in delta_groups.items():
        factor, conditioned = sp.S.One, cov
        shift = [sp.S.Zero] * len(variables)  # conditional mean of X given the deltas so far
        for d, offset in deltas:
            # δ(d·X + c) with X = shift + Y: the delta sits at d·Y = -(c + d·shift)
            level = sp.cancel(offset + sp.Add(*[di * si for di, si in zip(d, shift)]))
            s = sp.cancel(_bilinear(d, conditioned, d))
            f, new_cov = reducer.condition(d, conditioned)
            factor *= f * sp.exp(-(level**2) / (2 * s)) if level != 0 else f
            if level != 0:
                sd = [sp.Add(*[conditioned[r, j] * d[j] for j in range(len(variables))]) for r in range(len(variables))]
                shift = [sp.cancel(si - level * sdi / s) for si, sdi in zip(shift, sd)]
            conditioned = new_cov
        integrand = sp.Add(*rests)
        if any(si != 0 for si in shift):
            integrand = integrand.xreplace({v: v + si for v, si in zip(variables, shift)})
        result = result + factor * GaussianExpectation(sp.Lambda(tuple(variables), integrand), conditioned)
    return result


def _vanishes_on_its_deltas(term, variables) -> bool:
    """True for a product ``a^k δ(a)^n ...`` with ``k >= n``: zero, as ``a δ(a) = 0``.

    Derivatives of functions written with ``|a| = a (2H(a) - 1)`` (softsign)
    carry such products; the singular parts of a ``C^1`` function's
    derivatives cancel, so no ``δ(a)²`` survives once each ``δ(a)`` has met
    its factor ``a``.
    """
    powers, deltas = {}, {}
    for factor in sp.Mul.make_args(term):
        base, exponent = factor.as_base_exp()
        if not (exponent.is_Integer and exponent > 0 and base.has(*variables)):
            continue
        if isinstance(base, sp.DiracDelta) and len(base.args) == 1:
            argument = sp.expand(base.args[0])
            deltas[argument] = deltas.get(argument, 0) + int(exponent)
        else:
            argument = sp.expand(base)
            powers[argument] = powers.get(argument, 0) + int(exponent)
            powers[-argument] = powers.get(-argument, 0) + int(exponent)
    return any(powers.get(argument, 0) >= n for argument, n in deltas.items())


def _pull_deltas(term, variables):
    """Split ``term`` into (tuple of (linear form, offset) of its deltas, rest) for a plain product."""
    deltas, rest = [], sp.S.One
    for factor in sp.Mul.make_args(term):
        base, exponent = factor.as_base_exp()
        if isinstance(base, sp.DiracDelta) and base.has(*variables):
            if len(base.args) > 1:
                raise NotImplementedError(f"derivatives of the Dirac delta ({base}) are not supported")
            argument = sp.expand(base.args[0])
            offset = argument.subs({v: 0 for v in variables})
            form = _linear_form(argument - offset, variables)
            if form is None or exponent != 1:
                raise NotIntegrableError(
                    f"cannot integrate {factor}: only single deltas of affine forms are supported"
                )
            deltas.append((form, offset))
        else:
            rest *= factor
    return tuple(deltas), rest


def gaussian_expectation(expr, variables, cov) -> sp.Expr:
    r"""Expectation of ``expr`` over a centred Gaussian vector.

    Parameters
    ----------
    expr : sympy.Expr or str-free expression
        A sum of products of polynomials in the ``variables`` and
        activation-type factors of linear forms in them: ``erf``,
        ``exp(-c·(l·X)^2)``, ``Heaviside``, ``DiracDelta``, ``Max(0, ·)``
        (ReLU), ``sign``, ``Abs``; any other function (``tanh``, sigmoid, ...)
        is handled numerically (see Returns).
    variables : sequence of sympy.Symbol
        The Gaussian vector ``X``.
    cov : matrix-like
        Its covariance matrix (symmetric, positive semi-definite; SymPy
        entries, symbolic allowed).

    Returns
    -------
    sympy.Expr
        The exact closed form for polynomials, the erf family and the
        ReLU/Heaviside family (products of up to three sign-like factors,
        any polynomial factors, any number of Gaussian factors and deltas).
        Terms without a closed form are kept as one
        :class:`~symlora.GaussianExpectation` node: the result is then
        approximate and ``evaluate_with_error`` gives its value and an error
        estimate.

    Raises
    ------
    TypeError
        If ``variables`` are not symbols or ``cov`` is not a matrix.
    ValueError
        Wrong shapes, a non-symmetric ``cov``, or a divergent expectation
        (:class:`NotIntegrableError`, e.g. a squared Dirac delta).

    Notes
    -----
    Results are cached on ``(expr, variables, cov)``: the same expectation
    is never derived twice.

    Examples
    --------
    >>> import sympy as sp
    >>> X, Y = sp.symbols("X Y", real=True)
    >>> Q, T = sp.symbols("Q T", positive=True)
    >>> R = sp.Symbol("R", real=True)
    >>> gaussian_expectation(X**2 * Y**2, [X, Y], [[Q, R], [R, T]])
    Q*T + 2*R**2
    >>> gaussian_expectation(sp.erf(X) * sp.erf(Y), [X, Y], [[Q, R], [R, T]])
    2*asin(2*R/(sqrt(2*Q + 1)*sqrt(2*T + 1)))/pi
    >>> gaussian_expectation(sp.Max(0, X) * sp.Max(0, Y), [X, Y], [[1, 0], [0, 1]])
    1/(2*pi)
    >>> gaussian_expectation(sp.Max(0, X) ** 2, [X], [[Q]])
    Q/2
    """
    if isinstance(variables, sp.Symbol):
        variables = [variables]
    variables = tuple(variables)
    if not variables or not all(isinstance(v, sp.Symbol) for v in variables):
        raise TypeError("variables must be a non-empty sequence of sympy.Symbol")
    if len(set(variables)) != len(variables):
        raise ValueError("variables must be distinct")
    signed = [v for v in variables if v.is_positive or v.is_nonnegative or v.is_negative or v.is_nonpositive]
    if signed:
        raise ValueError(
            f"Gaussian variables must not carry sign assumptions ({', '.join(map(str, signed))} "
            "is declared positive/negative): SymPy would already have simplified e.g. Max(0, X) to X. "
            "Use sympy.Symbol(name, real=True) or no assumptions"
        )
    expr = as_expr(expr)
    if not isinstance(expr, sp.Expr):
        raise TypeError(f"expr must be a SymPy expression, not {type(expr).__name__}")
    cov = _as_cov(cov, len(variables))
    if any(c.has(*variables) for c in cov):
        raise ValueError("cov must not depend on the Gaussian variables")
    _check_integrand(expr, variables)
    result = _cached_expectation(expr, variables, cov)
    if not result.free_symbols and not result.has(GaussianExpectation):
        # a numeric covariance outside the domain of a closed form (E[exp(X²)]
        # at Var X >= 1/2 would read -I or zoo): the integral diverges
        value = sp.N(result, 20)
        if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or not value.is_real:
            raise NotIntegrableError(
                f"E[{expr}] diverges for this covariance (the closed form gives {sp.N(result, 6)})"
            )
    return result


#: Largest total degree of a polynomial factor in ``gaussian_expectation``
#: (Isserlis' recursion is as deep as the degree).
MAX_MOMENT_DEGREE = 200
#: Size limit of an input expression (nodes of the tree).
MAX_INPUT_NODES = 20000


def _check_integrand(expr, variables) -> None:
    """Refuse integrands whose expectation diverges for every covariance, before any work.

    Gaussian factors ``exp(quadratic form)`` are left to the exact reduction
    (whether they converge depends on the covariance: the result is checked);
    Dirac deltas are conditioned on exactly.  Everything else must be a real,
    finite function growing like ``exp(o(|x|^2))``: this is checked along the
    coordinate axes and along a generic direction with the one-dimensional
    analysis of :mod:`symlora._integrability`.
    """
    count = 0
    for node in sp.preorder_traversal(expr):
        count += 1
        if count > MAX_INPUT_NODES:
            raise ValueError(f"expr is too large (more than {MAX_INPUT_NODES} nodes)")
        if isinstance(node, sp.Pow) and node.exp.is_Integer and node.base.has(*variables):
            if abs(int(node.exp)) > MAX_MOMENT_DEGREE:
                raise ValueError(
                    f"expr has the power {sp.sstr(node.base)[:40]}**{node.exp}; "
                    f"exponents are limited to {MAX_MOMENT_DEGREE}"
                )
    if expr.free_symbols - set(variables):
        return  # parameters in the integrand: the growth depends on them
    t = sp.Symbol("t", real=True)

    def strip(e):
        # Gaussian factors exp(quadratic) and deltas that multiply or add at the
        # top level are the reduction's business; inside other functions they stay
        if isinstance(e, sp.exp):
            arg = e.args[0]
            if arg.is_polynomial(*variables) and sp.Poly(arg, *variables).total_degree() <= 2:
                return sp.S.One
            return e
        if isinstance(e, sp.DiracDelta):
            return sp.S.Zero
        if isinstance(e, (sp.Add, sp.Mul)) or (isinstance(e, sp.Pow) and e.exp.is_Integer and e.exp > 0):
            return e.func(*[strip(a) for a in e.args])
        return e

    plain = strip(expr)
    if not plain.has(*variables) or plain.is_polynomial(*variables):
        return
    n = len(variables)
    directions = [[1 if i == j else 0 for i in range(n)] for j in range(n)]
    if n > 1:
        directions.append([sp.Rational(k + 2, k + 3) for k in range(n)])
    for direction in directions:
        ray = plain.xreplace({v: c * t for v, c in zip(variables, direction)})
        if ray.has(t):
            check_activation_expr(_heaviside_as_abs(ray, t), t, f"the integrand {sp.sstr(expr)[:80]}")


def _heaviside_as_abs(expr, t):
    """``t^k H(±c t)`` (``c > 0``) as ``t^(k-1) (t ± |t|)/2``: the same function, in the form the analysis reads.

    The engine writes ``|t|`` as ``t (2H(t) - 1)``; a denominator such as
    ``(1 + |t|)^2`` (softsign'') then reads ``t² + 4tH(t) - 2t + 1``, whose
    positivity the analysis of :mod:`symlora._integrability` cannot see,
    while ``t² + 2|t| + 1`` it can.
    """
    if not expr.has(sp.Heaviside):
        return expr

    def is_target(e):
        if not e.is_Mul:
            return False
        steps = [f for f in e.args if isinstance(f, sp.Heaviside)]
        powers = [f for f in e.args if f == t or (f.is_Pow and f.base == t and f.exp.is_Integer and f.exp > 0)]
        if len(steps) != 1 or not powers:
            return False
        slope = sp.expand(steps[0].args[0]).coeff(t)
        return slope.is_number and slope != 0 and sp.expand(steps[0].args[0] - slope * t) == 0

    def rewrite(e):
        step = next(f for f in e.args if isinstance(f, sp.Heaviside))
        sign = 1 if sp.expand(step.args[0]).coeff(t) > 0 else -1
        return e.xreplace({step: sp.S.One}) / t * (t + sign * sp.Abs(t)) / 2

    def sum_rule(e):
        # each sum on its own (bases of powers are rewritten before they are raised)
        return sp.Add(*[rewrite(a) if is_target(a) else a for a in sp.Add.make_args(sp.expand(e))])

    return expr.replace(lambda e: e.is_Add and e.has(sp.Heaviside), sum_rule)


def is_exact(expr) -> bool:
    """True if ``expr`` contains no numeric-quadrature node."""
    return not as_expr(expr).has(GaussianExpectation)


def evaluate_with_error(expr, subs=None):
    """Numeric value of ``expr`` and an estimate of its quadrature error.

    Exact expressions are evaluated with 30 digits and reported with error 0.
    Each :class:`GaussianExpectation` node contributes its own error
    estimate, propagated to first order through ``expr``.

    Parameters
    ----------
    expr : sympy.Expr
    subs : dict, optional
        Values for the free symbols.

    Returns
    -------
    (float, float)
        Value and absolute error estimate.
    """
    expr = as_expr(expr)
    if subs:
        if not isinstance(subs, dict):
            raise TypeError(f"subs must be a dict {{symbol: number}}, got {type(subs).__name__}")
        checked = {}
        for key, value in subs.items():
            if not isinstance(key, sp.Symbol):
                raise TypeError(f"subs keys must be SymPy symbols, got {key!r}"[:200])
            # the values are checked as numbers: Basic.subs would sympify (evaluate) text
            checked[key] = as_exact_number(value, f"subs[{key}]", symbolic=True, rationalize=False)
        expr = expr.subs(checked)
    nodes = sorted(expr.atoms(GaussianExpectation), key=sp.default_sort_key)
    dummies = {node: sp.Dummy() for node in nodes}
    plain = expr.xreplace(dummies)
    if plain.free_symbols - set(dummies.values()):
        left = plain.free_symbols - set(dummies.values())
        raise ValueError("free symbols left: " + ", ".join(sorted(map(str, left))))
    values, errors = {}, {}
    for node in nodes:
        values[dummies[node]], errors[dummies[node]] = node.numeric()
    point = {d: sp.Float(v, 30) for d, v in values.items()}
    value = float(sp.N(plain.xreplace(point), 30))
    error = 0.0
    for d in values:
        slope = float(sp.N(sp.diff(plain, d).xreplace(point), 15))
        error += abs(slope) * errors[d]
    return value, error
