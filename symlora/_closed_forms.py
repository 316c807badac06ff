r"""Exact Gaussian expectations of products of atoms: the closed-form families.

An integrand is split into terms ``coef · x^α · Π H(h·X) · Π erf(a·X) ·
Π δ(d·X) · Π exp(-½ XᵀAX)`` (:func:`_split_terms`); :class:`_Reducer`
reduces each term exactly (Gaussian factors absorbed into the covariance,
deltas conditioned on, polynomial factors removed by Stein's lemma, the
remaining orthant products of up to three sign-like factors by the arcsine
law).  Terms without a closed form raise :class:`_NotClosed`; the public
entry point :func:`symlora.gaussian_expectation` turns them into quadrature
nodes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp

from ._integrability import NotIntegrableError

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
        for weight, lowered in _monomial_derivatives(rest, cov, l):
            total += weight * self.expectation(_Term(lowered, term.heavisides, term.erfs, (), ()), cov)
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
            value = sp.expand(sp.Add(*[weight * self._moment(lowered, cov)
                                       for weight, lowered in _monomial_derivatives(rest, cov, l)]))
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


def _monomial_derivatives(beta, cov, l):
    """Stein's lemma on ``x_l x^β``: the pairs ``(Σ_lj β_j, β - e_j)`` of the terms ``E[∂_j x^β]``."""
    for j, power in enumerate(beta):
        if power > 0 and cov[l, j] != 0:
            lowered = list(beta)
            lowered[j] -= 1
            yield cov[l, j] * power, tuple(lowered)


def _tidy(expr):
    """Light simplification that keeps closed forms readable without long waits."""
    if expr == 0 or not expr.free_symbols:
        return sp.nsimplify(expr) if expr.is_Float else sp.radsimp(expr) if expr.count_ops() < 200 else expr
    if sp.count_ops(expr) > _TIDY_LIMIT:
        # e.g. GELU pairs: cancelling thousands of terms takes minutes and the
        # generated code (with common-subexpression elimination) gains little
        return expr
    # arguments of asin over a common denominator, each on its own and as derived: expanding them
    # first multiplies out the products under their square roots (a four-field erf shape grows to
    # ~500k operations and `together` then takes ~20 s, for the same factored result)
    arcsines = {a: sp.asin(sp.factor(sp.together(a.args[0]))) for a in expr.atoms(sp.asin)}
    hidden = {a: sp.Dummy("asin") for a in arcsines}
    expr = sp.expand(expr.xreplace(hidden)).xreplace({hidden[a]: tidy for a, tidy in arcsines.items()})
    # group by the transcendental atoms (asin, sqrt of non-polynomials) and cancel coefficients
    atoms = sorted(expr.atoms(sp.asin), key=sp.default_sort_key)
    if atoms:
        collected = sp.collect(expr, atoms, evaluate=False)
        return sp.Add(*[sp.factor_terms(sp.cancel(c)) * (a if a != 1 else 1) for a, c in collected.items()])
    return sp.factor_terms(sp.cancel(expr))


