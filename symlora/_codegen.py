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

from . import _quadrature, _separable
from . import _symbols as S
from ._delta_conditioning import condition_deltas, jacobian_expressions
from ._expectation import as_expr
from ._export import export_model, scalar_function_source
from ._node import NUMPY_NAMESPACE, GaussianExpectation
from ._ode_system import ODESystem
from ._safe_rewriting import evaluation_form
from ._safe_rewriting import numerically_safe as _numerically_safe  # noqa: F401 (tests import it here)

__all__ = [
    "compile_expressions",
    "compile_ode",
    "CompiledODE",
    "coefficients_function",
    "tau_function",
    "export_model",
    "scalar_function_source",
    "condition_deltas",
    "jacobian_expressions",
]


def _heaviside(arg, h0=0.5):
    return np.heaviside(arg, float(h0))


def _dirac(*_):
    raise ValueError("generated code cannot evaluate a Dirac delta pointwise")


_MODULES = [NUMPY_NAMESPACE, {"Heaviside": _heaviside, "DiracDelta": _dirac}, "scipy", "numpy"]

def _refined_expectation(func, cov, nodes=None, args=(), kinks=()):
    # the adaptive rule at a hundredfold tighter tolerance (kinks on breakpoints)
    return _quadrature.quadrature_expectation(func, cov, None, args, kinks, tol=_quadrature.DEFAULT_TOLERANCE / 100)


def _refined_separable(left, right, a, b, c, args=()):
    # Mehler's series with more terms and a finer one-dimensional rule
    return _separable.separable_expectation(
        left, right, a, b, c, args, tol=_separable.SEPARABLE_TOLERANCE / 100, nodes=3 * _separable.MEHLER_NODES // 2
    )


_MODULES_REFINED = [{"_gauss_expectation": _refined_expectation, "_gauss_separable": _refined_separable}] + _MODULES[1:]


@functools.lru_cache(maxsize=256)
def _lambdify(args: tuple, exprs: tuple, refined: bool = False):
    return sp.lambdify(args, list(exprs), modules=_MODULES_REFINED if refined else _MODULES, cse=True)


@functools.lru_cache(maxsize=256)
def _lambdify_plain(args: tuple, expr, refined: bool = False):
    return sp.lambdify(args, expr, modules=_MODULES_REFINED if refined else _MODULES)


def compile_expressions(args, exprs, name="generated", doc="", *, refined=False):
    """Compile SymPy expressions into one vectorised numpy function.

    Parameters
    ----------
    args : sequence of sympy.Symbol
        Argument order of the generated function.
    exprs : sequence of sympy.Expr
        Expressions in ``args`` (other free symbols are an error).
    name, doc : str
        Name and description for the generated docstring.
    refined : bool
        Evaluate quadrature nodes with the adaptive rule at a hundredfold
        tighter tolerance: the reference against which the quadrature error
        of the default rule is estimated.

    Returns
    -------
    callable
        ``f(*arrays) -> numpy.ndarray`` of shape ``(len(exprs),) + broadcast
        shape of the arguments``.

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
    """
    args = tuple(args)
    exprs = tuple(as_expr(e, "expression") for e in exprs)
    free = set().union(*(e.free_symbols for e in exprs)) - set(args)
    if free:
        raise ValueError(
            f"cannot compile {name}: free symbols {', '.join(sorted(map(str, free)))} are not arguments "
            f"({', '.join(map(str, args))})"
        )
    # deltas conditioned away, overflow-free forms (softplus, sigmoid, ...) before any code is generated
    exprs = tuple(evaluation_form(e) for e in exprs)
    # Quadrature nodes are compiled on their own: common-subexpression
    # elimination must not pull their integration variables out of the lambda.
    nodes = sorted(set().union(*(e.atoms(GaussianExpectation) for e in exprs)), key=sp.default_sort_key)
    placeholders = tuple(sp.Dummy(f"E{i}") for i in range(len(nodes)))
    plain = tuple(e.xreplace(dict(zip(nodes, placeholders))) for e in exprs)
    main = _lambdify(args + placeholders, plain)
    node_functions = [_lambdify_plain(args, node, refined) for node in nodes]

    def raw(*arrays):
        node_values = [f(*arrays) for f in node_functions]
        return main(*arrays, *node_values)

    n = len(exprs)

    def generated(*values):
        if len(values) != len(args):
            raise TypeError(f"{name} takes {len(args)} arguments ({', '.join(map(str, args))}), got {len(values)}")
        arrays = [np.asarray(v, dtype=float) for v in values]
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        out = raw(*arrays)
        result = np.empty((n,) + shape)
        for i, value in enumerate(out):
            result[i] = value  # numpy broadcasts constants and partial shapes here
        return result

    generated.__name__ = name
    generated.__doc__ = (
        f"{doc}\n\nGenerated by symlora. Arguments, in order: {', '.join(map(str, args))} "
        f"(arrays broadcast together).\nReturns an array of shape ({n},) + broadcast shape: "
        + ", ".join(sp.sstr(e)[:60] for e in exprs[:4])
        + (" ..." if n > 4 else "")
    )
    return generated


@dataclass(frozen=True)
class CompiledODE:
    """Vectorised right-hand side and Jacobian of an :class:`ODESystem`.

    ``rhs(states, *parameters)``: ``states`` has shape ``(n_states, ...)``
    in the order of ``system.states``; parameters in the order of
    ``system.parameters``; returns ``d states/dt`` with the broadcast shape.
    ``jacobian(states, *parameters)`` returns shape ``(n, n, ...)``.
    ``rhs_error(states, *parameters)`` estimates the quadrature error of
    ``rhs`` (zeros for exact systems).
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

    def rhs_error(self, states, *parameters):
        """Estimated quadrature error of :meth:`rhs`, same shape.

        ``|rhs - rhs_refined|`` with the refined rule (tolerance / 100):
        for smooth integrands the default rule is then far more accurate
        than this bound; across kinks (where quadrature converges only
        algebraically) it is the right order of the error.  Exact systems
        give zeros.
        """
        states = np.asarray(states, dtype=float)
        value = self.rhs(states, *parameters)
        if self.system.exact:
            return np.zeros_like(value)
        key = "compiled_refined"
        if key not in self.system._cache:
            args = tuple(self.system.states) + tuple(self.system.parameters)
            self.system._cache[key] = compile_expressions(args, self.system.rhs, name="rhs_refined", refined=True)
        return np.abs(value - self.system._cache[key](*states, *parameters))


def compile_ode(system: ODESystem) -> CompiledODE:
    """Compile (once per system) the right-hand side and Jacobian."""
    if not isinstance(system, ODESystem):
        raise TypeError(f"system must be an ODESystem, got {type(system).__name__}")
    key = "compiled"
    if key not in system._cache:
        args = tuple(system.states) + tuple(system.parameters)
        rhs = compile_expressions(args, system.rhs, name="rhs", doc=f"d/dt of {system.states} for {system.name}")
        jac_exprs = tuple(jacobian_expressions(system))
        jac = compile_expressions(args, jac_exprs, name="jacobian", doc=f"Jacobian of {system.name} (row-major)")
        system._cache[key] = CompiledODE(system, rhs, jac)
    return system._cache[key]


def coefficients_function(model):
    """``mu -> {"a", "b", "tau"}`` from generated code for ``model`` (cached).

    ``mu`` must be finite and ``>= 0``.  Where a closed form is singular at
    ``μ = 0`` (a removable ``0/0``), the value is the limit ``μ → 0+``,
    evaluated at ``μ = 1e-9``.
    """
    key = "coefficients_function"
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
    compiled = compile_expressions(args, (lin.a, lin.b), name="coefficients", doc=f"a(mu), b(mu) of {model.name}")

    def coefficients(mu, mu_perp=None):
        mu = np.asarray(mu, dtype=float)
        if not np.all(np.isfinite(mu)):
            raise ValueError("mu must be finite")
        if np.any(mu < 0):
            raise ValueError("mu (pre-training strength) must be >= 0")
        values = (mu,) if len(args) == 1 else (mu, np.asarray(0.0 if mu_perp is None else mu_perp, dtype=float))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # a removable 0/0 at mu = 0 is detected and replaced by the limit below; an
            # overflow at huge mu is reported by the caller (LoRAModel.coefficients)
            a, b = compiled(*values)
        bad = ~(np.isfinite(a) & np.isfinite(b))
        if np.any(bad & (np.broadcast_to(mu, a.shape) == 0)):
            near = tuple(np.where(np.broadcast_to(mu, a.shape) == 0, 1e-9, np.broadcast_to(v, a.shape)) for v in values)
            a2, b2 = compiled(*near)
            a = np.where(bad, a2, a)
            b = np.where(bad, b2, b)
        from ._asymptotics import tau_from

        return {"a": a, "b": b, "tau": np.asarray(tau_from(a, b))}

    coefficients.__doc__ = f"a(mu), b(mu), tau(mu) of {model.name} (generated code; mu >= 0, arrays broadcast)."
    model._cache[key] = coefficients
    return coefficients


def tau_function(model):
    """``mu -> tau(mu)`` from generated code (units of ``1/η``)."""
    coefficients = coefficients_function(model)
    return lambda mu: coefficients(mu)["tau"]
