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

Products of four or more sign-like factors, and every factor without a closed
form (``tanh``, sigmoid, softplus, ...), are returned as an explicit
:class:`~symlora.GaussianExpectation` node: the result then *says* it is
approximate, and ``node.numeric()`` returns its value with an error estimate.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import sympy as sp

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


def _linear_form(arg, variables):
    """Coefficient vector of a homogeneous linear form, or None."""
    arg = sp.expand(arg)
    coeffs = []
    rest = arg
    for v in variables:
        c = arg.coeff(v)
        if c.has(*variables):
            return None
        coeffs.append(c)
        rest = rest - c * v
    if sp.expand(rest) != 0 or all(c == 0 for c in coeffs):
        return None
    return tuple(coeffs)


def _quadratic_form(arg, variables):
    """(matrix A, linear b, constant c) with arg = -½ xᵀAx + b·x + c, or None."""
    try:
        poly = sp.Poly(sp.expand(arg), *variables)
    except sp.PolynomialError:
        return None
    if poly.total_degree() > 2:
        return None
    n = len(variables)
    A = sp.zeros(n, n)
    b = [sp.S.Zero] * n
    c = sp.S.Zero
    for monom, coeff in poly.terms():
        degree = sum(monom)
        if degree == 0:
            c += coeff
        elif degree == 1:
            b[monom.index(1)] += coeff
        else:
            idx = [i for i, k in enumerate(monom) for _ in range(k)]
            i, j = idx
            if i == j:
                A[i, i] += -2 * coeff
            else:
                A[i, j] += -coeff
                A[j, i] += -coeff
    return sp.ImmutableMatrix(A), tuple(b), c


# --------------------------------------------------------------------------
# Terms


@dataclass(frozen=True)
class _Term:
    """coef * x^alpha * Π H(h·X) * Π erf(a·X) * Π δ(d·X) * exp(gaussian factors)."""

    alpha: tuple
    heavisides: tuple  # tuple of vectors
    erfs: tuple  # tuple of vectors (with repetition)
    deltas: tuple  # tuple of vectors
    gaussians: tuple  # tuple of (A matrix) with weight exp(-½ xᵀAx)


class _NotClosed(Exception):
    """Internal: this term has no closed form here (goes to a quadrature node)."""


def _split_terms(expr, variables):
    """Expand into (coefficient, _Term or None) pairs; None = not closed form."""
    atoms = {}

    def placeholder(e):
        if e not in atoms:
            atoms[e] = sp.Dummy("atom", commutative=True)
        return atoms[e]

    def is_atom(e):
        return (
            isinstance(e, (sp.erf, sp.Heaviside, sp.DiracDelta, sp.exp))
            and e.has(*variables)
        )

    hidden = expr.replace(is_atom, placeholder)
    inverse = {p: e for e, p in atoms.items()}
    # atoms inside atoms (exp(x H(-x)) from elu) were replaced from the inside out
    for p, e in inverse.items():
        while e.has(*inverse):
            e = e.xreplace(inverse)
        inverse[p] = e
    result = []
    for term in sp.Add.make_args(sp.expand(hidden)):
        coef = sp.S.One
        alpha = [0] * len(variables)
        heavisides, erfs, deltas, gaussians = [], [], [], []
        closed = True
        for factor in sp.Mul.make_args(term):
            base, exponent = factor.as_base_exp()
            if not factor.has(*variables) and not factor.has(*inverse):
                coef *= factor
                continue
            if base in variables and exponent.is_Integer and exponent > 0:
                alpha[variables.index(base)] += int(exponent)
                continue
            if base in inverse and exponent.is_Integer and exponent > 0:
                atom = inverse[base]
                k = int(exponent)
                arg = atom.args[0]
                if isinstance(atom, sp.exp):
                    quad = _quadratic_form(k * arg, variables)
                    if quad is None:
                        closed = False
                        break
                    A, b, c = quad
                    if any(bi != 0 for bi in b):
                        closed = False
                        break
                    coef *= sp.exp(c)
                    if A != sp.zeros(*A.shape):
                        gaussians.append(A)
                    continue
                if len(atom.args) > 1 and isinstance(atom, sp.DiracDelta):
                    raise NotImplementedError(
                        f"derivatives of the Dirac delta ({atom}) are not supported"
                    )
                form = _linear_form(arg, variables)
                if form is None:
                    closed = False
                    break
                if isinstance(atom, sp.Heaviside):
                    heavisides.append(form)
                elif isinstance(atom, sp.erf):
                    erfs.extend([form] * k)
                else:  # DiracDelta
                    if k > 1:
                        raise NotIntegrableError(
                            f"E[{atom}**{k}] diverges: powers of a Dirac delta are not integrable"
                        )
                    deltas.append(form)
                continue
            closed = False
            break
        if closed:
            result.append(
                (coef, _Term(tuple(alpha), tuple(dict.fromkeys(heavisides)), tuple(erfs), tuple(deltas), tuple(gaussians)))
            )
        else:
            result.append((term.xreplace(inverse), None))
    return result


# --------------------------------------------------------------------------
# Exact reduction


def _bilinear(a, cov, b):
    n = len(a)
    return sp.Add(*[a[i] * cov[i, j] * b[j] for i in range(n) for j in range(n) if a[i] != 0 and b[j] != 0])


def _is_zero(expr) -> bool:
    if expr == 0:
        return True
    return sp.cancel(sp.together(expr)) == 0


def _tidy_matrix(matrix):
    return sp.ImmutableMatrix(matrix.applyfunc(lambda e: sp.cancel(sp.together(e)) if e.free_symbols else sp.nsimplify(e) if e.is_Float else e))


class _Reducer:
    """Exact reduction of single terms, memoised within one top-level call."""

    def __init__(self, variables):
        self.variables = variables
        self.n = len(variables)
        self.moment_cache = {}
        self.cache = {}

    # -- Gaussian factors and deltas change the covariance --------------------

    def absorb_gaussian(self, A, cov):
        """E[g exp(-½ xᵀAx)] = factor * E_{cov'}[g]."""
        n = self.n
        eye = sp.eye(n)
        if A.rank() == 1:
            # A = c a aᵀ: Sherman–Morrison keeps the expressions small
            i = next(k for k in range(n) if A[k, k] != 0) if any(A[k, k] != 0 for k in range(n)) else None
            if i is not None:
                c = A[i, i]
                a = [sp.cancel(A[i, j] / c) for j in range(n)]
                sa = [sp.Add(*[cov[r, j] * a[j] for j in range(n)]) for r in range(n)]
                q = sp.Add(*[a[r] * sa[r] for r in range(n)])
                denom = 1 + c * q
                new = sp.Matrix(cov) - c * sp.Matrix(sa) * sp.Matrix(sa).T / denom
                return denom ** sp.Rational(-1, 2), _tidy_matrix(new)
        M = eye + sp.Matrix(cov) * A
        det = sp.cancel(M.det())
        new = sp.Matrix(cov) * (eye + A * sp.Matrix(cov)).inv()
        return det ** sp.Rational(-1, 2), _tidy_matrix(new)

    def condition(self, d, cov):
        """E[g δ(d·X)] = factor * E_{cov'}[g]."""
        s = sp.cancel(_bilinear(d, cov, d))
        if _is_zero(s):
            raise NotIntegrableError(
                "the expectation diverges: a Dirac delta sits on a linear form of zero variance "
                "(e.g. a squared delta, or the derivative of sign squared)"
            )
        sd = sp.Matrix([sp.Add(*[cov[r, j] * d[j] for j in range(self.n)]) for r in range(self.n)])
        new = sp.Matrix(cov) - sd * sd.T / s
        return (2 * sp.pi * s) ** sp.Rational(-1, 2), _tidy_matrix(new)

    # -- the recursion --------------------------------------------------------

    def expectation(self, term: _Term, cov) -> sp.Expr:
        key = (term, cov)
        if key in self.cache:
            return self.cache[key]
        factor = sp.S.One
        if term.gaussians:
            for A in term.gaussians:
                f, cov = self.absorb_gaussian(A, cov)
                factor *= f
            term = _Term(term.alpha, term.heavisides, term.erfs, term.deltas, ())
        if term.deltas:
            for d in term.deltas:
                f, cov = self.condition(d, cov)
                factor *= f
            term = _Term(term.alpha, term.heavisides, term.erfs, (), ())
        term, const = self._drop_constant_forms(term, cov)
        # Stein steps keep the parity of (sign-like factors + polynomial degree)
        # and end in orthant products of degree 0: with four or more factors
        # left there, the term has no closed form here (say so before the work)
        if len(term.heavisides) + len(term.erfs) - sum(term.alpha) % 2 >= 4:
            raise _NotClosed
        if const == 0:
            value = sp.S.Zero
        else:
            value = factor * const * self._reduce(term, cov)
        self.cache[key] = value
        return value

    def _drop_constant_forms(self, term, cov):
        """Forms of zero variance are constants: H(0) = 1/2, erf(0) = 0."""
        const = sp.S.One
        heavisides = []
        for h in term.heavisides:
            if _is_zero(_bilinear(h, cov, h)):
                const *= sp.Rational(1, 2)
            else:
                heavisides.append(h)
        erfs = []
        for a in term.erfs:
            if _is_zero(_bilinear(a, cov, a)):
                return term, sp.S.Zero
            erfs.append(a)
        return _Term(term.alpha, tuple(heavisides), tuple(erfs), (), ()), const

    def _reduce(self, term: _Term, cov) -> sp.Expr:
        """No deltas, no Gaussian factors left."""
        if sum(term.alpha) == 0:
            return self._orthant(term, cov)
        if not term.heavisides and not term.erfs:
            return self._moment(term.alpha, cov)
        # Stein's lemma on the first variable of the monomial
        l = next(i for i, k in enumerate(term.alpha) if k > 0)
        rest = list(term.alpha)
        rest[l] -= 1
        total = sp.S.Zero
        # derivative of the remaining monomial
        for j in range(self.n):
            if rest[j] > 0 and cov[l, j] != 0:
                lowered = list(rest)
                lowered[j] -= 1
                total += cov[l, j] * rest[j] * self.expectation(
                    _Term(tuple(lowered), term.heavisides, term.erfs, (), ()), cov
                )
        # derivative of each Heaviside: a delta
        for i, h in enumerate(term.heavisides):
            c = sp.Add(*[cov[l, j] * h[j] for j in range(self.n)])
            if _is_zero(c):
                continue
            others = term.heavisides[:i] + term.heavisides[i + 1 :]
            total += c * self.expectation(_Term(tuple(rest), others, term.erfs, (h,), ()), cov)
        # derivative of each erf: (2/√π) exp(-(a·X)^2)
        for i, a in enumerate(term.erfs):
            c = sp.Add(*[cov[l, j] * a[j] for j in range(self.n)])
            if _is_zero(c):
                continue
            others = term.erfs[:i] + term.erfs[i + 1 :]
            A = sp.ImmutableMatrix(2 * sp.Matrix(a) * sp.Matrix(a).T)
            total += (
                c
                * 2
                / sp.sqrt(sp.pi)
                * self.expectation(_Term(tuple(rest), term.heavisides, others, (), (A,)), cov)
            )
        return total

    def _moment(self, alpha, cov) -> sp.Expr:
        """Isserlis: E[x^alpha] by the recursion E[x_l x^β] = Σ_j Σ_lj β_j E[x^{β-e_j}]."""
        key = (alpha, cov)
        if key in self.moment_cache:
            return self.moment_cache[key]
        total_degree = sum(alpha)
        if total_degree == 0:
            value = sp.S.One
        elif total_degree % 2:
            value = sp.S.Zero
        else:
            l = next(i for i, k in enumerate(alpha) if k > 0)
            rest = list(alpha)
            rest[l] -= 1
            value = sp.S.Zero
            for j in range(self.n):
                if rest[j] > 0 and cov[l, j] != 0:
                    lowered = list(rest)
                    lowered[j] -= 1
                    value += cov[l, j] * rest[j] * self._moment(tuple(lowered), cov)
            value = sp.expand(value)
        self.moment_cache[key] = value
        return value

    def _orthant(self, term: _Term, cov) -> sp.Expr:
        """E[Π H(h·X) Π erf(a·X)] through signs of an augmented Gaussian vector."""
        # (vector, scale, extra variance): H(h·X) ~ sign(h·X); erf(a·X) ~ sign(√2 a·X - Z)
        signs_h = [(h, sp.S.One, sp.S.Zero) for h in term.heavisides]
        signs_e = [(a, sp.sqrt(2), sp.S.One) for a in term.erfs]
        total = sp.S.Zero
        nh = len(signs_h)
        for r in range(nh + 1):
            for subset in itertools.combinations(range(nh), r):
                chosen = [signs_h[i] for i in subset] + signs_e
                total += sp.Rational(1, 2**nh) * self._sign_product(chosen, cov, term)
        return total

    def _sign_product(self, signs, cov, term):
        k = len(signs)
        if k == 0:
            return sp.S.One
        if k % 2:
            return sp.S.Zero
        if k == 2:
            (v1, s1, e1), (v2, s2, e2) = signs
            c12 = s1 * s2 * _bilinear(v1, cov, v2)
            var1 = s1**2 * _bilinear(v1, cov, v1) + e1
            var2 = s2**2 * _bilinear(v2, cov, v2) + e2
            return 2 / sp.pi * sp.asin(sp.cancel(c12) / sp.sqrt(sp.cancel(var1) * sp.cancel(var2)))
        raise _NotClosed


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


def _term_expr(term: _Term, variables):
    X = sp.Matrix(variables)
    expr = sp.Mul(*[v**k for v, k in zip(variables, term.alpha)])
    for h in term.heavisides:
        expr *= sp.Heaviside(sp.Add(*[c * v for c, v in zip(h, variables)]))
    for a in term.erfs:
        expr *= sp.erf(sp.Add(*[c * v for c, v in zip(a, variables)]))
    for d in term.deltas:
        expr *= sp.DiracDelta(sp.Add(*[c * v for c, v in zip(d, variables)]))
    for A in term.gaussians:
        expr *= sp.exp(-(X.T * A * X)[0, 0] / 2)
    return expr


#: Above this operation count, closed forms are returned as derived (no simplification).
_TIDY_LIMIT = 400


def _tidy(expr):
    """Light simplification that keeps closed forms readable without long waits."""
    if expr == 0 or not expr.free_symbols:
        return sp.nsimplify(expr) if expr.is_Float else sp.radsimp(expr) if expr.count_ops() < 200 else expr
    if sp.count_ops(expr) > _TIDY_LIMIT:
        # e.g. GELU pairs: cancelling thousands of terms takes minutes and the
        # generated code (with common-subexpression elimination) gains little
        return expr
    expr = sp.expand(expr)
    # arguments of asin over a common denominator (they come out expanded)
    expr = expr.replace(sp.asin, lambda arg: sp.asin(sp.factor(sp.together(arg))))
    # group by the transcendental atoms (asin, sqrt of non-polynomials) and cancel coefficients
    atoms = sorted(expr.atoms(sp.asin), key=sp.default_sort_key)
    if atoms:
        collected = sp.collect(expr, atoms, evaluate=False)
        return sp.Add(*[sp.factor_terms(sp.cancel(c)) * (a if a != 1 else 1) for a, c in collected.items()])
    return sp.factor_terms(sp.cancel(expr))


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
            check_activation_expr(ray, t, f"the integrand {sp.sstr(expr)[:80]}")


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
