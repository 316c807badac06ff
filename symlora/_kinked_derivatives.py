r"""Derivatives of kinked integrands as distributions, one smooth piece per side of each kink.

The Jacobian of an ODE whose right-hand side holds quadrature nodes
differentiates each node under the integral (Price's theorem,
:mod:`symlora._ode_jacobian`).  For a kinked activation that creates
Heaviside steps, Dirac deltas and derivatives of deltas.  Differentiating the
engine's own form of a kink (``|λ| = λ (2H(λ) - 1)``, softsign) with the product
rule multiplies steps and deltas of the same argument (``H(λ) δ(λ)``,
``δ(λ)²``), meaningless one by one and, for softsign, beyond the engine's size
limit after two derivatives.

Here an integrand is held as a sum of *terms*
``c(X) Π_i H(s_i l_i(X)) Π_j δ^{(k_j)}(l_j(X))``: ``c`` is the smooth piece of the
function on the side ``s_i = ±1`` of each kink ``l_i = 0`` (a rational function
for softsign, ``(1 + λ)^{-3}`` rather than a product of steps).  The derivative
of a term is again a sum of terms,

.. math::

    ∂_v\, c\, H(s l) = (∂_v c)\, H(s l) + s\, (∂_v l)\, c\, δ(l), \qquad
    ∂_v\, c\, δ^{(k)}(l) = (∂_v c)\, δ^{(k)}(l) + (∂_v l)\, c\, δ^{(k+1)}(l),

so a step and a delta of the same kink never meet.  The two sides' delta
terms are then collected on the kink, ``(c_+ - c_-)|_{l=0}\, δ(l)``: the jump,
zero for a ``C^1`` function (softsign's first two jumps vanish exactly).
Derivatives of deltas are removed by Gaussian integration by parts before the
terms go to the expectation engine, which conditions on the remaining deltas
exactly (:func:`expectation_of_terms`).
"""

from __future__ import annotations

import itertools

import sympy as sp

from ._closed_forms import _linear_form
from ._expectation import NotIntegrableError, _rewrite_piecewise_linear, gaussian_expectation
from ._node import GaussianExpectation

__all__ = ["one_sided_terms", "differentiate_terms", "expectation_of_terms", "merge_nodes"]

#: A term: (smooth coefficient, ((kink form, side ±1), ...), ((kink form, order of the delta's derivative), ...)).


def _kink_form(argument, variables):
    """``(l, c)`` with ``argument = c·l`` and ``l`` of leading coefficient 1 in the first variable it uses.

    Only numeric leading coefficients are normalised (their sign decides the
    side); otherwise ``(argument, 1)``.
    """
    argument = sp.expand(argument)
    for v in variables:
        lead = argument.coeff(v)
        if lead != 0:
            if lead.is_number and not lead.has(*variables):
                return sp.expand(argument / lead), lead
            break
    return argument, sp.S.One


def _compact(piece, variables):
    """One side's smooth piece, as a single reduced fraction where it is rational (softsign's pieces)."""
    if piece.is_rational_function(*variables):
        numerator, denominator = sp.fraction(sp.cancel(piece))
        return sp.factor(numerator) / sp.factor(denominator)
    return piece


def one_sided_terms(expr, variables) -> list:
    """``expr`` as a list of terms: one smooth piece per combination of sides of its kinks.

    ``relu``, ``sign``, ``|·|`` are first written with Heaviside steps (the
    engine's form); each step then selects a side, and the piece on that
    side is reduced (for softsign ``λ/(1 + λ)`` on ``λ > 0``).

    Examples
    --------
    >>> lam = sp.Symbol("lambda", real=True)
    >>> for c, steps, deltas in one_sided_terms(lam / (1 + sp.Abs(lam)), [lam]):
    ...     print(c, steps)
    lambda/(lambda + 1) ((lambda, 1),)
    -lambda/(lambda - 1) ((lambda, -1),)
    """
    variables = tuple(variables)
    expr = _rewrite_piecewise_linear(sp.sympify(expr, strict=True))
    groups = {}
    for term in (sp.Add.make_args(sp.expand(expr)) if expr.has(sp.DiracDelta) else (expr,)):
        deltas, rest = [], sp.S.One
        for factor in sp.Mul.make_args(term):
            base, exponent = factor.as_base_exp()
            if isinstance(base, sp.DiracDelta) and base.has(*variables):
                if exponent != 1:
                    raise NotIntegrableError(f"cannot integrate {factor}: a power of a Dirac delta")
                order = int(base.args[1]) if len(base.args) > 1 else 0
                form, scale = _kink_form(base.args[0], variables)
                rest /= sp.Abs(scale) * scale**order  # δ^(k)(c l) = δ^(k)(l) / (|c| c^k)
                deltas.append((form, order))
            else:
                rest *= factor
        key = tuple(sorted(deltas, key=sp.default_sort_key))
        groups[key] = groups.get(key, sp.S.Zero) + rest
    terms = []
    for deltas, rest in groups.items():
        rest = _on_its_kinks(rest, deltas, variables)
        steps = [h for h in rest.atoms(sp.Heaviside) if h.has(*variables)]
        forms = {}
        for h in steps:
            form, scale = _kink_form(h.args[0], variables)
            forms.setdefault(form, []).append((h, scale))
        ordered = sorted(forms, key=sp.default_sort_key)
        for sides in itertools.product((1, -1), repeat=len(ordered)):
            values = {}
            for form, side in zip(ordered, sides):
                for h, scale in forms[form]:
                    # H(c l) is 1 on the side where c l > 0
                    values[h] = sp.S.One if (scale.is_positive if side > 0 else scale.is_negative) else sp.S.Zero
            piece = _compact(rest.xreplace(values), variables)
            if piece != 0:
                terms.append((piece, tuple(zip(ordered, sides)), deltas))
    return terms


def _on_its_kinks(coefficient, deltas, variables):
    """``c(X)`` of ``c(X) δ(l(X))`` taken on ``l = 0``, where it is continuous.

    A step of the delta's own kink may stand in ``c`` only where its factor
    vanishes there (``(λ - b) H(λ - b) δ(λ - b) = 0``, a shifted ReLU's
    ``σ σ''``); a step left standing alone has no value on its kink.
    """
    for form, order in deltas:
        point = _on_kink(form, variables) if order == 0 else None
        if not point:
            continue
        marker = sp.Dummy("step_on_kink")
        same = {h: marker for h in coefficient.atoms(sp.Heaviside) if _kink_form(h.args[0], variables)[0] == form}
        coefficient = coefficient.xreplace(same).subs(point)
        if coefficient.has(marker):
            raise NotIntegrableError(f"cannot integrate a step times a Dirac delta on the same kink {form} = 0")
    return coefficient


def differentiate_terms(terms, symbol, variables) -> list:
    """The distributional derivative of a sum of terms with respect to ``symbol``, collected on its kinks."""
    out = []
    for c, steps, deltas in terms:
        if c.has(symbol):
            out.append((sp.diff(c, symbol), steps, deltas))
        for i, (form, side) in enumerate(steps):
            slope = sp.diff(form, symbol)
            if slope != 0:
                out.append((side * slope * c, steps[:i] + steps[i + 1:], _with_delta(deltas, form, 0)))
        for i, (form, order) in enumerate(deltas):
            slope = sp.diff(form, symbol)
            if slope != 0:
                raised = deltas[:i] + ((form, order + 1),) + deltas[i + 1:]
                out.append((slope * c, steps, tuple(sorted(raised, key=sp.default_sort_key))))
    return _collect(out, variables)


def _with_delta(deltas, form, order):
    if any(f == form for f, _ in deltas):
        raise NotIntegrableError(f"cannot integrate a product of Dirac deltas of the same form {form}")
    return tuple(sorted(deltas + ((form, order),), key=sp.default_sort_key))


def _on_kink(form, variables):
    """``{v: value}`` putting the point on ``form = 0`` (solved for its first variable), or None."""
    for v in variables:
        slope = form.coeff(v)
        if slope != 0:
            if slope.has(*variables):
                return None
            return {v: sp.expand(v - form / slope)}
    return None


def _collect(terms, variables) -> list:
    """Sum terms with the same steps and deltas; a delta's coefficient is taken on its kink.

    ``c(X) δ(l) = c(X|_{l=0}) δ(l)``: the sides' contributions then add up to
    the jump across the kink, which cancels exactly for smooth-enough pieces.
    """
    grouped = {}
    for c, steps, deltas in terms:
        if any(order == 0 for _, order in deltas):
            for form, order in deltas:
                point = _on_kink(form, variables) if order == 0 else None
                if point and not any(f.has(*point) for f, _ in steps) and not any(
                        f.has(*point) for f, k in deltas if f != form):
                    c = c.subs(point)
        key = (steps, deltas)
        grouped[key] = grouped.get(key, sp.S.Zero) + c
    out = []
    for (steps, deltas), c in grouped.items():
        if deltas:
            c = _compact(sp.together(c), variables) if c.is_rational_function(*variables) else c
        if c != 0:
            out.append((c, steps, deltas))
    return out


def _lower_delta_derivatives(terms, variables, cov) -> list:
    r"""Terms without derivatives of deltas, equal in expectation over ``X ~ N(0, Σ)``.

    For ``s = d·X + o``, ``c = Σd``, ``S = d·Σd`` and ``g`` the rest of the term,
    Stein's lemma on ``g δ^{(k-1)}(s)`` gives

    .. math::

        E[g δ^{(k)}(s)] = \frac{E[(s - o)\, g\, δ^{(k-1)}(s)] - E[(c·∇g)\, δ^{(k-1)}(s)]}{S},
        \qquad s\, δ^{(j)}(s) = -j\, δ^{(j-1)}(s).
    """
    done, todo = [], list(terms)
    while todo:
        c, steps, deltas = todo.pop()
        index = next((i for i, (_, k) in enumerate(deltas) if k > 0), None)
        if index is None:
            done.append((c, steps, deltas))
            continue
        form, k = deltas[index]
        linear = _linear_form(form - form.subs({v: 0 for v in variables}), variables)
        if linear is None:
            raise NotIntegrableError(f"cannot integrate a derivative of δ({form}): its argument is not linear")
        offset = form.subs({v: 0 for v in variables})
        direction = [sp.Add(*[cov[i, j] * linear[j] for j in range(len(variables))]) for i in range(len(variables))]
        spread = sp.Add(*[a * b for a, b in zip(linear, direction)])
        others = deltas[:index] + deltas[index + 1:]
        lower = tuple(sorted(others + ((form, k - 1),), key=sp.default_sort_key))
        along = []  # c·∇g: the rest of the term differentiated along Σd
        for v, weight in zip(variables, direction):
            if weight != 0:
                along += [(-weight * a / spread, s, d) for a, s, d in differentiate_terms([(c, steps, others)], v, variables)]
        new = [(a, s, tuple(sorted(d + ((form, k - 1),), key=sp.default_sort_key))) for a, s, d in along]
        if offset != 0:
            new.append((-offset * c / spread, steps, lower))
        if k >= 2:
            new.append((-(k - 1) * c / spread, steps, tuple(sorted(others + ((form, k - 2),), key=sp.default_sort_key))))
        todo += _collect(new, variables)
    return _collect(done, variables)


def _side_by_side(c, steps, deltas, variables):
    """``c`` written with ``|l|`` on the side each step selects, so that it is finite on the whole line.

    A smooth piece is valid only on its side (``λ/(1 - λ)`` for ``λ < 0`` has
    a pole at ``λ = 1``); with ``λ = s|λ|`` on the side ``s`` it is the same
    function there and finite everywhere, which quadrature over the whole
    line and the engine's integrability check need.
    """
    in_deltas = set().union(*(f.free_symbols for f, _ in deltas)) if deltas else set()
    counts = {}
    for form, _ in steps:
        for v in form.free_symbols & set(variables):
            counts[v] = counts.get(v, 0) + 1
    values = {}
    for form, side in steps:
        used = [v for v in variables if form.has(v)]
        if len(used) != 1 or counts[used[0]] != 1 or used[0] in in_deltas:
            continue
        v = used[0]
        slope = form.coeff(v)
        if not slope.is_number:
            continue
        values[v] = (side * sp.Abs(form) - (form - slope * v)) / slope
    return c.subs(values) if values else c


def expectation_of_terms(terms, variables, cov) -> sp.Expr:
    """``E[Σ terms]`` for ``X ~ N(0, cov)``: derivatives of deltas lowered, then the engine (exact where it can)."""
    terms = _lower_delta_derivatives(terms, variables, cov)
    # term by term (the engine's integrability check reads one term at a time), then the
    # quadrature nodes with the same law merged back into one
    total = sp.S.Zero
    for c, steps, deltas in terms:
        integrand = (_side_by_side(c, steps, deltas, variables)
                     * sp.Mul(*[sp.Heaviside(side * form) for form, side in steps])
                     * sp.Mul(*[sp.DiracDelta(form) for form, _ in deltas]))
        total += gaussian_expectation(integrand, variables, cov)
    return merge_nodes(total)


def merge_nodes(expr) -> sp.Expr:
    """``a E[f] + b E[g] -> E[a f + b g]`` for nodes over the same variables and covariance (one quadrature).

    Examples
    --------
    >>> from symlora import GaussianExpectation
    >>> t = sp.Symbol("t", real=True)
    >>> one = sp.ImmutableMatrix([[1]])
    >>> merge_nodes(2 * GaussianExpectation(sp.Lambda(t, sp.tanh(t) ** 2), one)
    ...             + GaussianExpectation(sp.Lambda(t, sp.cosh(t)), one))
    E[cosh(t) + 2*tanh(t)**2; (t) ~ N(0, [[1]])]
    """
    groups, rest = {}, sp.S.Zero
    for term in sp.Add.make_args(sp.expand(expr, deep=False, mul=True, multinomial=False, power_exp=False,
                                           power_base=False, log=False)):
        nodes = [f for f in sp.Mul.make_args(term) if isinstance(f, GaussianExpectation)]
        if len(nodes) != 1:
            rest += term
            continue
        node = nodes[0]
        key = (node.variables, node.covariance)
        groups[key] = groups.get(key, sp.S.Zero) + (term / node) * node.integrand.expr
    for (variables, cov), integrand in groups.items():
        rest += GaussianExpectation(sp.Lambda(variables, integrand), cov)
    return rest
