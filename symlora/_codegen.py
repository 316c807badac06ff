"""The single code generator: SymPy expressions to vectorised numpy functions.

Everything numeric in symlora goes through :func:`compile_expressions`
(``sympy.lambdify`` with common-subexpression elimination, scipy.special for
``erf``, ``numpy.heaviside`` with ``H(0) = 1/2`` and vectorised quadrature for
:class:`~symlora.GaussianExpectation` nodes).  Generated functions broadcast
over any array shapes of their arguments and say in their docstring which
arguments they take, in which order.  Generation is lazy and cached.

The pipeline has three stages, each in its own module: Dirac deltas are
integrated out exactly (:mod:`symlora._delta_conditioning`), expressions are
rewritten into overflow-free forms (:mod:`symlora._safe_rewriting`), then
compiled here.  :mod:`symlora._export` prints the same expressions as source
(a standalone numpy/scipy module, numba-ready scalar functions); its public
functions are re-exported here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import _symbols as S
from ._delta_conditioning import condition_deltas
from ._expectation import as_expr
from ._export import export_model, scalar_function_source
from ._node import GaussianExpectation
from ._node_groups import MODULES, compile_nodes
from ._ode_jacobian import jacobian_expressions
from ._ode_system import ODESystem, inline_definitions
from ._safe_rewriting import evaluation_form
from ._safe_rewriting import numerically_safe as _numerically_safe  # noqa: F401 (tests import it here)

__all__ = [
    "compile_expressions",
    "compile_ode",
    "CompiledODE",
    "coefficients_function",
    "tau_function",
    "tau_error_bound",
    "export_model",
    "scalar_function_source",
    "condition_deltas",
    "jacobian_expressions",
]


#: Rounding allowance of error bounds, in units in the last place of ``max(1, |value|)``.
ROUNDING_ULPS = 16


@functools.lru_cache(maxsize=256)
def _lambdify(args: tuple, exprs: tuple, definitions: tuple = ()):
    return sp.lambdify(args, list(exprs), modules=MODULES, cse=_staged_cse(definitions) if definitions else True)


def _staged_cse(definitions):
    """A ``cse`` for ``lambdify`` that assigns ``definitions`` inside the generated function.

    One ``sympy.cse`` runs over the definitions and the expressions together,
    then every assignment (the definitions and the common subexpressions) is
    put after the ones it uses.
    """
    symbols = [symbol for symbol, _ in definitions]

    def cse(exprs):
        replacements, reduced = sp.cse([expr for _, expr in definitions] + list(exprs))
        assignments = replacements + list(zip(symbols, reduced[: len(symbols)]))
        return _in_dependency_order(assignments), reduced[len(symbols):]

    return cse


def _in_dependency_order(assignments):
    """``(symbol, expr)`` pairs reordered so that each comes after those it uses (a depth-first walk)."""
    value = dict(assignments)
    position = {symbol: i for i, (symbol, _) in enumerate(assignments)}
    emitted, visiting, ordered = set(), set(), []
    for root, _ in assignments:
        stack = [(root, False)]
        while stack:
            symbol, children_done = stack.pop()
            if children_done:
                visiting.discard(symbol)
                emitted.add(symbol)
                ordered.append((symbol, value[symbol]))
                continue
            if symbol in emitted:
                continue
            if symbol in visiting:
                raise ValueError(f"definitions depend on each other in a cycle (through {symbol})")
            visiting.add(symbol)
            stack.append((symbol, True))
            uses = (value[symbol].free_symbols & value.keys()) - emitted
            stack.extend((use, False) for use in sorted(uses, key=position.get, reverse=True))
    return ordered



def compile_expressions(args, exprs, name="generated", doc="", *, with_error=False, refined=False, definitions=()):
    """Compile SymPy expressions into one vectorised numpy function.

    Parameters
    ----------
    args : sequence of sympy.Symbol
        Argument order of the generated function.
    exprs : sequence of sympy.Expr
        Expressions in ``args`` and the symbols of ``definitions`` (other
        free symbols are an error).
    name, doc : str
        Name and description for the generated docstring.
    definitions : sequence of (sympy.Symbol, sympy.Expr)
        Intermediate quantities computed once inside the generated function,
        in order (each may use ``args`` and earlier definitions), sharing one
        common-subexpression elimination with ``exprs``.  A structured
        system stays small this way (see :class:`~symlora.ODESystem`).  With
        quadrature nodes anywhere, the definitions are substituted instead
        (nodes are compiled from ``args`` alone).
    with_error : bool
        Also return a bound of the quadrature error of each value: every
        :class:`~symlora.GaussianExpectation` node's own bound
        (:func:`~symlora._quadrature.quadrature_with_error`) propagated to
        first order, ``Σ_j |∂f/∂E_j| δE_j`` (second-order terms are of order
        ``δE²``, far below double precision), plus an allowance for the
        rounding of the evaluation, :data:`ROUNDING_ULPS` units in the last
        place of ``max(1, |f|)``.
    refined : bool
        Evaluate quadrature nodes at a hundredfold tighter tolerance: the
        reference against which :meth:`CompiledODE.rhs_error` estimates the
        actual error of the default rule.

    Returns
    -------
    callable
        ``f(*arrays) -> numpy.ndarray`` of shape ``(len(exprs),) + broadcast
        shape of the arguments``; with ``with_error``, ``f(*arrays) ->
        (values, error_bounds)``, both of that shape.

    Raises
    ------
    ValueError
        If the expressions contain free symbols that are not arguments.

    Examples
    --------
    >>> import sympy as sp
    >>> mu = sp.Symbol("mu")
    >>> f = compile_expressions([mu], [1 - mu, sp.Integer(1)], name="ab")
    >>> f([0.0, 0.5]).tolist()
    [[1.0, 0.5], [1.0, 1.0]]
    >>> from symlora import GaussianExpectation
    >>> t = sp.Symbol("t", real=True)
    >>> node = GaussianExpectation(sp.Lambda(t, sp.tanh(t) ** 2), sp.ImmutableMatrix([[mu]]))
    >>> values, bounds = compile_expressions([mu], [2 * node], with_error=True)(1.0)
    >>> round(float(values[0]), 10), bool(0 < bounds[0] < 1e-12)  # 2 E[tanh(X)^2], X ~ N(0, 1)
    (0.7885889808, True)
    """
    args = tuple(args)
    exprs = tuple(as_expr(e, "expression") for e in exprs)
    definitions = tuple((symbol, as_expr(e, "definition")) for symbol, e in definitions)
    if any(e.has(GaussianExpectation) for e in exprs + tuple(e for _, e in definitions)):
        exprs, definitions = inline_definitions(definitions, exprs), ()
    known = set(args)
    for symbol, e in definitions:
        if not isinstance(symbol, sp.Symbol) or symbol in known or not e.free_symbols <= known:
            raise ValueError(f"cannot compile {name}: definition {symbol} is not a new symbol or uses symbols "
                             "that are neither arguments nor defined before it")
        known.add(symbol)
    free = set().union(*(e.free_symbols for e in exprs)) - known
    if free:
        raise ValueError(
            f"cannot compile {name}: free symbols {', '.join(sorted(map(str, free)))} are not arguments "
            f"({', '.join(map(str, args))})"
        )
    # deltas conditioned away, overflow-free forms (softplus, sigmoid, ...) before any code is generated
    exprs = tuple(evaluation_form(e) for e in exprs)
    definitions = tuple((symbol, evaluation_form(e)) for symbol, e in definitions)
    # Quadrature nodes are compiled on their own: common-subexpression
    # elimination must not pull their integration variables out of the lambda.
    nodes = sorted(set().union(*(e.atoms(GaussianExpectation) for e in exprs)), key=sp.default_sort_key)
    placeholders = tuple(sp.Dummy(f"E{i}") for i in range(len(nodes)))
    plain = tuple(e.xreplace(dict(zip(nodes, placeholders))) for e in exprs)
    main = _lambdify(args + placeholders, plain, definitions)
    if with_error and refined:
        raise ValueError("with_error and refined exclude each other")
    rule = "with_error" if with_error else ("refined" if refined else "default")
    node_values_at = compile_nodes(args, nodes, rule)
    n = len(exprs)
    if with_error and nodes:
        slopes = _lambdify(args + placeholders, tuple(sp.diff(p, E) for p in plain for E in placeholders))

    def evaluate(*values):
        if len(values) != len(args):
            raise TypeError(f"{name} takes {len(args)} arguments ({', '.join(map(str, args))}), got {len(values)}")
        arrays = [np.asarray(v, dtype=float) for v in values]
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        node_values = node_values_at(*arrays)
        bounds = np.zeros((n,) + shape)
        if with_error and nodes:
            node_values, node_errors = zip(*node_values)
            gradient = iter(slopes(*arrays, *node_values))
            for i in range(n):
                for error in node_errors:
                    bounds[i] += np.abs(next(gradient)) * error
        result = np.empty((n,) + shape)
        for i, value in enumerate(main(*arrays, *node_values)):
            result[i] = value  # numpy broadcasts constants and partial shapes here
        if with_error:
            bounds += ROUNDING_ULPS * np.finfo(float).eps * np.maximum(1.0, np.abs(result))
        return (result, bounds) if with_error else result

    evaluate.__name__ = name
    evaluate.__doc__ = (
        f"{doc}\n\nGenerated by symlora. Arguments, in order: {', '.join(map(str, args))} "
        f"(arrays broadcast together).\nReturns an array of shape ({n},) + broadcast shape"
        + (" and a bound of its quadrature error (same shape): " if with_error else ": ")
        + ", ".join(sp.sstr(e)[:60] for e in exprs[:4])
        + (" ..." if n > 4 else "")
    )
    return evaluate


@dataclass(frozen=True)
class CompiledODE:
    """Vectorised right-hand side and Jacobian of an :class:`ODESystem`.

    ``rhs(states, *parameters)``: ``states`` has shape ``(n_states, ...)``
    in the order of ``system.states``; parameters in the order of
    ``system.parameters``; returns ``d states/dt`` with the broadcast shape.
    ``jacobian(states, *parameters)`` returns shape ``(n, n, ...)``.
    ``rhs_error(states, *parameters)`` estimates the quadrature error of
    ``rhs`` and ``rhs_error_bound`` bounds it (zeros for exact systems);
    ``jacobian_error_bound`` bounds that of ``jacobian``.
    """

    system: ODESystem
    _rhs: object
    _jac: object

    def rhs(self, states, *parameters):
        states = np.asarray(states, dtype=float)
        if states.shape[0] != len(self.system.states):
            raise ValueError(
                f"states must have leading dimension {len(self.system.states)} "
                f"({', '.join(map(str, self.system.states))}), got shape {states.shape}"
            )
        if len(parameters) != len(self.system.parameters):
            raise TypeError(
                f"rhs needs parameters ({', '.join(map(str, self.system.parameters))}), got {len(parameters)}"
            )
        return self._rhs(*states, *parameters)

    def jacobian(self, states, *parameters):
        states = np.asarray(states, dtype=float)
        n = len(self.system.states)
        flat = self._jac(*states, *parameters)
        return flat.reshape((n, n) + flat.shape[1:])

    def jacobian_error_bound(self, states, *parameters):
        """A bound of the quadrature error of :meth:`jacobian`, same shape (zeros for exact systems).

        Like :meth:`rhs_error_bound`: each node of the Jacobian (the nodes of
        the right-hand side differentiated, :mod:`symlora._ode_jacobian`)
        carries its own bound, propagated to first order.
        """
        states = np.asarray(states, dtype=float)
        n = len(self.system.states)
        value = self.jacobian(states, *parameters)
        if self.system.exact:
            return np.zeros_like(value)
        key = "compiled_jacobian_with_error"
        if key not in self.system._cache:
            args = tuple(self.system.states) + tuple(self.system.parameters)
            self.system._cache[key] = compile_expressions(args, tuple(jacobian_expressions(self.system)),
                                                          name="jacobian_with_error", with_error=True)
        bound = self.system._cache[key](*states, *parameters)[1]
        return bound.reshape((n, n) + bound.shape[1:])

    def _rhs_variant(self, rule):
        """The right-hand side compiled with the quadrature ``rule`` ("refined" or "with_error"), cached."""
        key = f"compiled_{rule}"
        if key not in self.system._cache:
            args = tuple(self.system.states) + tuple(self.system.parameters)
            self.system._cache[key] = compile_expressions(args, self.system.rhs, name=f"rhs_{rule}",
                                                          definitions=self.system.definitions, **{rule: True})
        return self.system._cache[key]

    def rhs_error(self, states, *parameters):
        """Estimated quadrature error of :meth:`rhs`, same shape.

        ``|rhs - rhs_refined|``, the refined rule at a hundredfold tighter
        tolerance: close to the actual error (what an integrator's accuracy
        check needs), where the error *bounds* of :meth:`rhs_error_bound`
        are often orders of magnitude above it.  Exact systems give zeros.
        """
        states = np.asarray(states, dtype=float)
        value = self.rhs(states, *parameters)
        if self.system.exact:
            return np.zeros_like(value)
        return np.abs(value - self._rhs_variant("refined")(*states, *parameters))

    def rhs_error_bound(self, states, *parameters):
        """A bound of the quadrature error of :meth:`rhs`, same shape (what reports show).

        Each node's own bound propagated to first order
        (``compile_expressions(..., with_error=True)``); zeros for exact systems.
        """
        states = np.asarray(states, dtype=float)
        value = self.rhs(states, *parameters)
        if self.system.exact:
            return np.zeros_like(value)
        return self._rhs_variant("with_error")(*states, *parameters)[1]


def compile_ode(system: ODESystem) -> CompiledODE:
    """Compile (once per system) the right-hand side and Jacobian."""
    if not isinstance(system, ODESystem):
        raise TypeError(f"system must be an ODESystem, got {type(system).__name__}")
    key = "compiled"
    if key not in system._cache:
        args = tuple(system.states) + tuple(system.parameters)
        rhs = compile_expressions(args, system.rhs, name="rhs", doc=f"d/dt of {system.states} for {system.name}",
                                  definitions=system.definitions)

        def jac(*arrays):
            # compiled on first use: explicit integrators never ask, and for large systems (two-layer
            # students) differentiating and compiling the Jacobian costs many times the right-hand side
            if "compiled_jacobian" not in system._cache:
                system._cache["compiled_jacobian"] = compile_expressions(
                    args, tuple(jacobian_expressions(system)), name="jacobian",
                    doc=f"Jacobian of {system.name} (row-major)")
            return system._cache["compiled_jacobian"](*arrays)

        system._cache[key] = CompiledODE(system, rhs, jac)
    return system._cache[key]


def tau_error_bound(a, b, a_error, b_error):
    r"""First-order bound of the error of ``τ(a, b)`` from bounds of the errors of ``a`` and ``b``.

    .. math::

        δτ = \Big|\frac{∂τ}{∂a}\Big| δa + \Big|\frac{∂τ}{∂b}\Big| δb,\qquad
        \frac{∂τ}{∂a} = \frac{2}{a}\Big(\frac{1}{D} - τ\Big),\quad
        \frac{∂τ}{∂b} = \frac{τ}{D},\quad D = \sqrt{b^2 + 4a^2};

    ``inf`` where ``a = 0`` (``τ`` is infinite there).  Arrays broadcast.

    Examples
    --------
    >>> float(tau_error_bound(1.0, 0.0, 0.0, 1e-6))  # tau = 1/|a| + b/(2a^2) + ...: dtau/db = 1/2
    5e-07
    """
    from ._asymptotics import tau_from

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tau = np.asarray(tau_from(a, b))
        disc = np.hypot(b, 2 * a)
        bound = np.abs(2 / a * (1 / disc - tau)) * a_error + np.abs(tau / disc) * b_error
    return np.where(a == 0, np.inf, bound)


def coefficients_function(model, with_error=False):
    """``mu -> {"a", "b", "tau"}`` from generated code for ``model`` (cached).

    ``mu`` must be finite and ``>= 0``.  Where a closed form is singular at
    ``μ = 0`` (a removable ``0/0``), the value is the limit ``μ → 0+``,
    evaluated at ``μ = 1e-9``.  With ``with_error`` the dictionary also
    holds ``a_error_bound``, ``b_error_bound`` and ``tau_error_bound``:
    quadrature error bounds (:func:`compile_expressions`, zero for closed
    forms) plus, at a removable ``0/0``, the change of the value between
    ``μ = 1e-9`` and ``2e-9`` (the error of taking the value at ``1e-9``
    for the limit, for a function with a slope there).
    """
    key = ("coefficients_function", bool(with_error))
    if key in model._cache:
        return model._cache[key]
    lin = model.linearization()
    if model.pretraining == "general":
        args = (S.mu, S.mu_perp)
    else:
        args = (S.mu,)
    extra = set().union(lin.a.free_symbols, lin.b.free_symbols) - set(args)
    if extra:
        raise ValueError(
            "a(mu), b(mu) depend on symbols left free in the model: " + ", ".join(sorted(map(str, extra)))
        )
    compiled = compile_expressions(args, (lin.a, lin.b), name="coefficients", doc=f"a(mu), b(mu) of {model.name}",
                                   with_error=with_error)

    def evaluate(values):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # a removable 0/0 at mu = 0 is detected and replaced by the limit below; an
            # overflow at huge mu is reported by the caller (LoRAModel.coefficients)
            out = compiled(*values)
        return out if with_error else (out, np.zeros_like(out))

    def coefficients(mu, mu_perp=None):
        mu = np.asarray(mu, dtype=float)
        if not np.all(np.isfinite(mu)):
            raise ValueError("mu must be finite")
        if np.any(mu < 0):
            raise ValueError("mu (pre-training strength) must be >= 0")
        values = (mu,) if len(args) == 1 else (mu, np.asarray(0.0 if mu_perp is None else mu_perp, dtype=float))
        (a, b), errors = evaluate(values)
        bad = ~(np.isfinite(a) & np.isfinite(b))
        at_zero = np.broadcast_to(mu, a.shape) == 0
        if np.any(bad & at_zero):
            def near(h):
                return tuple(np.where(at_zero, h, np.broadcast_to(v, a.shape)) for v in values)

            (a2, b2), errors2 = evaluate(near(1e-9))
            (a3, b3), _ = evaluate(near(2e-9))
            a, b = np.where(bad, a2, a), np.where(bad, b2, b)
            limit_error = np.stack([np.abs(a3 - a2), np.abs(b3 - b2)])
            errors = np.where(bad, errors2 + limit_error, errors)
        from ._asymptotics import tau_from

        result = {"a": a, "b": b, "tau": np.asarray(tau_from(a, b))}
        if with_error:
            result.update(a_error_bound=errors[0], b_error_bound=errors[1],
                          tau_error_bound=tau_error_bound(a, b, errors[0], errors[1]))
        return result

    coefficients.__doc__ = f"a(mu), b(mu), tau(mu) of {model.name} (generated code; mu >= 0, arrays broadcast)."
    model._cache[key] = coefficients
    return coefficients


def tau_function(model):
    """``mu -> tau(mu)`` from generated code (units of ``1/η``)."""
    coefficients = coefficients_function(model)
    return lambda mu: coefficients(mu)["tau"]
