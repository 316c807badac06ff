"""Dirac deltas out of generated expressions, exactly, before any code is printed.

Differentiating a :class:`~symlora.GaussianExpectation` under the integral
(Price's theorem: the Jacobian of a kinked ODE) turns a ReLU factor into a
Heaviside, a Heaviside into a Dirac delta and a delta into its derivative.
Quadrature samples neither of the last two, so this module integrates them
out symbolically: :func:`condition_deltas` (lower derivatives of deltas by
Gaussian integration by parts, then condition on the delta's linear form).
The Jacobian of an ODE system differentiates kinked integrands on their own
(:mod:`symlora._ode_jacobian`).
It is the symbolic stage of the code generator (:mod:`symlora._codegen`).
"""

from __future__ import annotations

import sympy as sp

from ._expectation import NotIntegrableError, as_expr, gaussian_expectation
from ._node import GaussianExpectation

__all__ = ["condition_deltas", "kink_normal_form"]


def condition_deltas(expr):
    """Integrate out the Dirac deltas inside quadrature nodes, exactly.

    Differentiating a :class:`~symlora.GaussianExpectation` under the
    integral (Price's theorem, as the Jacobian does) turns a ReLU factor into
    a Heaviside, a Heaviside into a Dirac delta and a delta into its
    derivative; quadrature can sample none of the last two.  Derivatives of
    deltas are first lowered by Gaussian integration by parts (see
    :func:`_lower_delta_derivatives`); each node that still holds a delta is
    then handed back to the expectation engine, which conditions the
    Gaussian vector on the delta's linear form (the reduction it applies to
    the drift) and returns closed forms plus delta-free nodes.

    Examples
    --------
    >>> import sympy as sp
    >>> from symlora import GaussianExpectation
    >>> x = sp.Symbol("x", real=True)
    >>> node = GaussianExpectation(sp.Lambda(x, sp.DiracDelta(x) * sp.cos(x)), sp.ImmutableMatrix([[1]]))
    >>> condition_deltas(node)  # cos(0) φ(0)
    sqrt(2)/(2*sqrt(pi))
    >>> node = GaussianExpectation(sp.Lambda(x, sp.DiracDelta(x, 1) * sp.sin(x)), sp.ImmutableMatrix([[1]]))
    >>> condition_deltas(node)  # E[sin(x) δ'(x)] = -sin'(0) φ(0)
    -sqrt(2)/(2*sqrt(pi))
    """
    expr = as_expr(expr, "expr")

    def is_delta_node(e):
        return isinstance(e, GaussianExpectation) and e.integrand.expr.has(sp.DiracDelta)

    def condition(node):
        integrand = _lower_delta_derivatives(node.integrand.expr, node.variables, node.covariance)
        return gaussian_expectation(integrand, node.variables, node.covariance)

    def is_point_mass(e):
        return isinstance(e, GaussianExpectation) and all(c == 0 for c in e.covariance)

    def at_origin(node):
        # conditioning can leave a node whose variables all have zero variance: E[f] = f(0)
        return node.integrand(*[0] * len(node.variables))

    return expr.replace(is_delta_node, condition).replace(is_point_mass, at_origin)


def _lower_delta_derivatives(integrand, variables, cov):
    r"""Rewrite ``g(X) δ^{(k)}(s)``, ``s = d·X``, with lower derivatives of the delta.

    Valid under the expectation over ``X ~ N(0, Σ)``.  Stein's lemma applied
    to ``g δ^{(k-1)}(s)`` and contracted with ``d`` gives, with ``c = Σd``
    and ``S = d·Σd``,

    .. math::

        E[g δ^{(k)}(s)] = \frac{E[s\, g δ^{(k-1)}(s)] - E[(c·∇g) δ^{(k-1)}(s)]}{S},
        \qquad s δ^{(j)}(s) = -j δ^{(j-1)}(s),

    so that no derivative of a delta reaches the engine.
    """
    if not any(len(f.args) > 1 and f.args[1] != 0 for f in integrand.atoms(sp.DiracDelta)):
        return integrand
    total = sp.S.Zero
    for term in sp.Add.make_args(sp.expand(integrand)):
        factors = sp.Mul.make_args(term)
        derivative = next(
            (f for f in factors if isinstance(f, sp.DiracDelta) and len(f.args) > 1 and f.args[1] != 0), None
        )
        if derivative is None:
            if any(isinstance(f, sp.Pow) and isinstance(f.base, sp.DiracDelta) and len(f.base.args) > 1 for f in factors):
                raise NotIntegrableError(f"cannot integrate {term}: a power of a derivative of a Dirac delta")
            total += term
            continue
        arg, k = derivative.args[0], int(derivative.args[1])
        g = sp.Mul(*[f for f in factors if f is not derivative])
        d = [sp.diff(arg, v) for v in variables]
        if any(di.has(*variables) for di in d):
            raise NotIntegrableError(f"cannot integrate {derivative}: its argument is not linear in {variables}")
        c = [sp.Add(*[cov[i, j] * d[j] for j in range(len(d))]) for i in range(len(d))]
        S = sp.Add(*[di * ci for di, ci in zip(d, c)])
        lower = sp.DiracDelta(arg, k - 1) if k > 1 else sp.DiracDelta(arg)
        new = -sp.Add(*[ci * sp.diff(g, v) for ci, v in zip(c, variables)]) * lower / S
        if k >= 2:
            new -= (k - 1) * g * (sp.DiracDelta(arg, k - 2) if k > 2 else sp.DiracDelta(arg)) / S
        total += _lower_delta_derivatives(new, variables, cov)
    return total


def kink_normal_form(expr):
    """``H(a)**k -> H(a)`` and ``H(a) H(-a) -> 0`` inside quadrature nodes (equal almost everywhere).

    Done before differentiating: the product rule would otherwise create
    ``H · δ`` and ``δ²`` terms that are meaningless one by one (the
    products come from activations with one-sided pieces, such as
    ``elu = x H(x) + (exp(x) - 1) H(-x)``, squared).

    Examples
    --------
    >>> from symlora import GaussianExpectation
    >>> t = sp.Symbol("t", real=True)
    >>> H = sp.Heaviside
    >>> node = GaussianExpectation(sp.Lambda(t, (t * H(t) + sp.exp(t) * H(-t)) ** 2), sp.ImmutableMatrix([[1]]))
    >>> kink_normal_form(node).integrand.expr
    t**2*Heaviside(t) + exp(2*t)*Heaviside(-t)
    """

    def is_kinked_node(e):
        return isinstance(e, GaussianExpectation) and e.integrand.expr.has(sp.Heaviside)

    def one_sided(term):
        steps = [f.base if f.is_Pow else f for f in sp.Mul.make_args(term)
                 if isinstance(f, sp.Heaviside) or (f.is_Pow and isinstance(f.base, sp.Heaviside))]
        arguments = {h.args[0] for h in steps}
        if any(-a in arguments for a in arguments):
            return sp.S.Zero  # H(a) H(-a) vanishes except on the null set a = 0
        return term

    def normal(node):
        body = sp.expand(node.integrand.expr)
        body = body.replace(
            lambda e: isinstance(e, sp.Pow) and isinstance(e.base, sp.Heaviside) and e.exp.is_Integer and e.exp > 0,
            lambda e: e.base,
        )
        body = sp.Add(*[one_sided(term) for term in sp.Add.make_args(body)])
        return GaussianExpectation(sp.Lambda(node.variables, body), node.covariance)

    return expr.replace(is_kinked_node, normal)
