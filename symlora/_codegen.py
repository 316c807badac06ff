"""The single code generator: SymPy expressions to vectorised numpy functions.

Everything numeric in symlora goes through :func:`compile_expressions`
(``sympy.lambdify`` with common-subexpression elimination, scipy.special for
``erf``, ``numpy.heaviside`` with ``H(0) = 1/2`` and vectorised quadrature for
:class:`~symlora.GaussianExpectation` nodes).  Generated functions broadcast
over any array shapes of their arguments and say in their docstring which
arguments they take, in which order.  Generation is lazy and cached.

:func:`export_model` writes the same functions as a standalone module that
imports only numpy and scipy.  :func:`scalar_function_source` prints a
scalar function of one variable as Python source over the ``math`` module,
which numba compiles (the SGD simulator's activations).
"""

from __future__ import annotations

import functools
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.codegen.numpy_nodes import logaddexp
from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize
from sympy.printing.numpy import SciPyPrinter

from . import _quadrature
from . import _symbols as S
from ._expectation import NotIntegrableError, as_expr, gaussian_expectation
from ._node import NUMPY_NAMESPACE, GaussianExpectation
from ._ode_system import ODESystem

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


def _kink_normal_form(expr):
    """``Heaviside(x)**k -> Heaviside(x)`` inside quadrature nodes (equal almost everywhere).

    Done before differentiating: the product rule would otherwise create
    ``Heaviside · δ`` and ``δ²`` terms that are meaningless one by one.
    """

    def is_kinked_node(e):
        return isinstance(e, GaussianExpectation) and e.integrand.expr.has(sp.Heaviside)

    def normal(node):
        body = sp.expand(node.integrand.expr)
        body = body.replace(
            lambda e: isinstance(e, sp.Pow) and isinstance(e.base, sp.Heaviside) and e.exp.is_Integer and e.exp > 0,
            lambda e: e.base,
        )
        return GaussianExpectation(sp.Lambda(node.variables, body), node.covariance)

    return expr.replace(is_kinked_node, normal)


def jacobian_expressions(system: ODESystem) -> sp.Matrix:
    """The Jacobian of ``system`` with every Dirac delta conditioned away (cached).

    Quadrature nodes are differentiated under the integral after their
    kinks are put in normal form (:func:`_kink_normal_form`); the deltas
    this creates are integrated out exactly (:func:`condition_deltas`).
    Closed-form systems get the plain symbolic Jacobian.
    """
    key = "jacobian_conditioned"
    if key not in system._cache:
        if system.exact:
            jac = system.jacobian()
        else:
            rhs = sp.Matrix([_kink_normal_form(r) for r in system.rhs])
            jac = rhs.jacobian(sp.Matrix(system.states)).applyfunc(condition_deltas)
        system._cache[key] = jac
    return system._cache[key]


_MODULES = [NUMPY_NAMESPACE, {"Heaviside": _heaviside, "DiracDelta": _dirac}, "scipy", "numpy"]

#: Nodes per dimension of the refined rule used to estimate quadrature errors.
REFINED_NODES = {dim: 2 * n for dim, n in _quadrature.DEFAULT_NODES.items()}



def _refined_expectation(func, cov, nodes=None, args=(), kinks=()):
    # the adaptive rule at a hundredfold tighter tolerance (kinks on breakpoints)
    return _quadrature.quadrature_expectation(func, cov, None, args, kinks, tol=_quadrature.DEFAULT_TOLERANCE / 100)


_MODULES_REFINED = [{"_gauss_expectation": _refined_expectation}] + _MODULES[1:]


def _is_one_plus_exp(expr) -> bool:
    return expr.is_Add and len(expr.args) == 2 and sp.S.One in expr.args and any(
        isinstance(a, sp.exp) for a in expr.args
    )


def _log_one_plus_exp(expr):
    """``log(1 + exp(b))`` as ``logaddexp(0, b)`` (never overflows)."""
    (power,) = [a for a in expr.args if isinstance(a, sp.exp)]
    return logaddexp(0, power.args[0])


def _confine_exponentials(term):
    """``f(v) H(c - v)`` with ``exp`` in ``f``: evaluate ``f`` at ``Min(v, c)``.

    Equal wherever ``H`` is not zero, and ``exp(1000) * 0`` (``nan``) cannot
    occur (e.g. ``elu = v H(v) + (exp(v) - 1) H(-v)``).
    """
    if not term.is_Mul or not term.has(sp.exp):
        return term
    for factor in term.args:
        if isinstance(factor, sp.Heaviside) and len(factor.free_symbols) == 1:
            (v,) = factor.free_symbols
            arg = sp.expand(factor.args[0])
            if not arg.is_polynomial(v) or sp.degree(arg, v) != 1:
                continue
            slope = arg.coeff(v)
            if not slope.is_number:
                continue
            edge = sp.solve(arg, v)[0]
            bound = sp.Min(v, edge) if slope < 0 else sp.Max(v, edge)
            others = term.func(*[a for a in term.args if a is not factor])
            return factor * others.xreplace({v: bound})
    return term


def _numerically_safe(expr):
    """Rewrite ``expr`` so that generated code neither overflows nor loses digits.

    ``log(1 + exp(b)) -> logaddexp(0, b)``, ``(1 + exp(b))**p ->
    exp(p logaddexp(0, b))`` with exponentials then combined (sigmoid,
    softplus, SiLU and their derivatives stay finite for any argument),
    exponentials under a one-sided Heaviside evaluated on its support only,
    then :mod:`sympy.codegen.rewriting`'s ``log1p`` and ``expm1``
    optimisations.  Quadrature nodes are rewritten inside their integrand.

    Examples
    --------
    >>> t = sp.Symbol("t", real=True)
    >>> _numerically_safe(sp.log(1 + sp.exp(t)))
    logaddexp(0, t)
    >>> _numerically_safe(sp.exp(-t) / (1 + sp.exp(-t)) ** 2)
    exp(-t - 2*logaddexp(0, -t))
    """
    if isinstance(expr, GaussianExpectation):
        body = _numerically_safe(expr.integrand.expr)
        return GaussianExpectation(sp.Lambda(expr.variables, body), expr.covariance)
    if expr.has(GaussianExpectation):
        nodes = expr.atoms(GaussianExpectation)
        return expr.xreplace({node: _numerically_safe(node) for node in nodes})
    if not expr.has(sp.exp):
        return expr
    expr = expr.replace(lambda e: isinstance(e, sp.log) and _is_one_plus_exp(e.args[0]),
                        lambda e: _log_one_plus_exp(e.args[0]))
    expr = expr.replace(lambda e: e.is_Pow and _is_one_plus_exp(e.base),
                        lambda e: sp.exp(e.exp * _log_one_plus_exp(e.base)))
    # products of exponentials combined into one (finite) exponential each
    expr = sp.powsimp(sp.expand(expr) if expr.has(logaddexp) else expr, combine="exp")
    if expr.has(sp.Heaviside):
        expr = expr.replace(lambda e: e.is_Mul and e.has(sp.Heaviside), _confine_exponentials)
    return optimize(expr, [log1p_opt, expm1_opt])


@functools.lru_cache(maxsize=256)
def _lambdify(args: tuple, exprs: tuple):
    return sp.lambdify(args, list(exprs), modules=_MODULES, cse=True)


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
        Evaluate quadrature nodes with :data:`REFINED_NODES` (twice the
        default nodes per dimension): the reference against which the
        quadrature error of the default rule is estimated.

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
    # deltas become conditioned closed forms before anything is printed
    exprs = tuple(condition_deltas(as_expr(e, "expression")) for e in exprs)
    free = set().union(*(e.free_symbols for e in exprs)) - set(args)
    if free:
        raise ValueError(
            f"cannot compile {name}: free symbols {', '.join(sorted(map(str, free)))} are not arguments "
            f"({', '.join(map(str, args))})"
        )
    # overflow-free forms (softplus, sigmoid, ...) before any code is generated
    exprs = tuple(_numerically_safe(e) for e in exprs)
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
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
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

        ``|rhs - rhs_refined|`` with the refined rule (:data:`REFINED_NODES`):
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


# ---------------------------------------------------------------------------
# scalar source over the math module (compiled by numba)


def scalar_function_source(name, arg, expr, doc=""):
    """Python source of ``def name(arg): return expr`` over the ``math`` module.

    The function evaluates one float and uses only ``math`` and builtins, so
    numba compiles it in nopython mode; common subexpressions are computed
    once.  Heaviside steps print as conditional expressions with
    ``H(0) = 1/2``.

    Parameters
    ----------
    name : str
        Function name (a Python identifier).
    arg : sympy.Symbol
        The one argument.
    expr : sympy.Expr
        Expression in ``arg``.
    doc : str
        Docstring of the generated function.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If ``expr`` has other free symbols, a Dirac delta, a Gaussian
        expectation node or a function the ``math`` module lacks.

    Examples
    --------
    >>> import sympy as sp
    >>> t = sp.Symbol("t", real=True)
    >>> print(scalar_function_source("f", t, sp.erf(t) + sp.exp(-t**2)))
    def f(t):
        return math.erf(t) + math.exp(-t**2)
    """
    from sympy.printing.pycode import PythonCodePrinter

    if not str(name).isidentifier():
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    expr = as_expr(expr, "expression")
    if expr.free_symbols - {arg}:
        raise ValueError(f"cannot compile {name}: free symbols other than {arg}: {expr.free_symbols - {arg}}")
    if expr.has(sp.DiracDelta) or expr.atoms(GaussianExpectation):
        raise ValueError(f"cannot compile {name} = {expr} pointwise (Dirac delta or unevaluated expectation)")
    printer = PythonCodePrinter({"fully_qualified_modules": True, "allow_unknown_functions": False})
    replacements, (reduced,) = sp.cse([expr], symbols=sp.numbered_symbols("_x"))
    lines = [f"def {name}({arg}):"]
    if doc:
        lines.append(f'    """{doc}"""')
    for sym, sub in replacements:
        lines.append(f"    {sym} = {printer.doprint(sub)}")
    lines.append(f"    return {printer.doprint(reduced)}")
    if printer._not_supported:
        raise ValueError(f"cannot compile {name}: no math-module form of {sorted(map(str, printer._not_supported))}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# standalone export


def _function_source(name, args, exprs, doc):
    printer = SciPyPrinter({"fully_qualified_modules": True, "allow_unknown_functions": False})
    exprs = [condition_deltas(e) for e in exprs]
    exprs = [_numerically_safe(e) for e in exprs]
    # quadrature nodes first, outside the common-subexpression elimination
    nodes = sorted(set().union(*(e.atoms(GaussianExpectation) for e in exprs)), key=sp.default_sort_key)
    node_symbols = [sp.Symbol(f"_E{i}") for i in range(len(nodes))]
    exprs = [e.xreplace(dict(zip(nodes, node_symbols))) for e in exprs]
    replacements, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols("_x"))
    lines = [f"def {name}({', '.join(map(str, args))}):", f'    """{doc}"""']
    for arg in args:
        lines.append(f"    {arg} = numpy.asarray({arg}, dtype=float)")
    for sym, node in zip(node_symbols, nodes):
        lines.append(f"    {sym} = {printer.doprint(node)}")
    for sym, expr in replacements:
        lines.append(f"    {sym} = {printer.doprint(expr)}")
    shape = "numpy.broadcast(" + ", ".join(map(str, args)) + ").shape" if args else "()"
    outs = ", ".join(f"numpy.broadcast_to({printer.doprint(e)}, _shape)" for e in reduced)
    lines.append(f"    _shape = {shape}")
    lines.append(f"    return numpy.stack([{outs}])")
    return "\n".join(lines)


def export_model(model, path) -> Path:
    """Write a standalone module (numpy + scipy only) for ``model``.

    The module defines, each with its argument order in its docstring:

    * ``rhs(t, y, <parameters>)``: the ODE in the signature of
      :func:`scipy.integrate.solve_ivp` (pass the parameters with
      ``args=(mu, ...)``); ``y`` of shape ``(n,)`` or ``(n, k)``
      (``vectorized=True``);
    * ``jacobian(t, y, <parameters>)``: ``∂ rhs_i / ∂ y_j``, shape
      ``(n, n)`` (or ``(n, n, k)``), for the ``jac`` argument of implicit
      solvers; Dirac deltas of kinked activations are integrated out exactly;
    * ``escape_time(<parameters>, eps, threshold=0.5, t_max=None)``: the
      first time ``|m|`` reaches ``threshold`` from ``m = eps`` (other states
      0), ``inf`` if not within ``t_max``;
    * ``coefficients(mu)`` (``a``, ``b``) and ``tau(mu)`` (units of ``1/η``);
    * ``rates(<states>, <parameters>)``: the vectorised right-hand side by
      state, the form the other functions wrap.

    Parameters
    ----------
    model : LoRAModel
    path : str or os.PathLike
        Output file (``.py``); its folder must exist.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OSError
        If the folder of ``path`` does not exist.
    """
    path = Path(path)
    if not path.parent.exists():
        raise OSError(f"cannot write {path}: folder {path.parent} does not exist")
    system = model.ode_system()
    lin = model.linearization()
    states = tuple(system.states)
    params = tuple(system.parameters)
    args = states + params
    lin_args = (S.mu, S.mu_perp) if model.pretraining == "general" else (S.mu,)
    jac = tuple(jacobian_expressions(system))
    n = len(states)
    state_names = ", ".join(map(str, states))
    param_names = ", ".join(map(str, params))
    observed = "m1" if model.rank == 2 else "m"
    eta_value = None if model.lr.free_symbols else float(model.lr)
    pieces = [
        f'"""ODE and linearisation of the LoRA model {model.name}, generated by symlora.\n\n'
        f"States y = ({state_names}); parameters ({param_names}).\n"
        f"Model: eta = {model.lr}, B = {model.batch}, Delta = {model.noise}. Time t = steps/d.\n"
        + ("The expectations are exact closed forms.\n" if system.exact else
           "Some expectations have no closed form and are evaluated by Gauss-Legendre quadrature\n"
           "(accuracy about 1e-10 for smooth integrands, lower across kinks).\n")
        + "Requires only numpy and scipy.\n\n"
        "Example: scipy.integrate.solve_ivp(rhs, (0, 10), y0, args=(mu,), jac=jacobian)\n"
        '"""',
        "import numpy",
        "import scipy.integrate",
        "import scipy.special",
        "",
        "STATES = " + repr(tuple(map(str, states))),
        "PARAMETERS = " + repr(tuple(map(str, params))),
        f"ETA = {eta_value!r}  # the learning-rate scale eta (None: it is the parameter 'eta')",
        "",
    ]
    exprs_all = list(system.rhs) + list(jac) + [lin.a, lin.b]
    if any(e.has(GaussianExpectation) for e in exprs_all):
        source = inspect.getsource(_quadrature)
        body = source[source.index("import functools") :]
        body = body.replace("import functools\n", "import functools\n", 1).replace("import numpy as np\n", "np = numpy\n")
        body = body.replace("from __future__ import annotations\n", "")
        pieces.append("# --- numeric Gaussian expectations (copied from symlora._quadrature) ---")
        pieces.append(body.replace('__all__ = ["quadrature_expectation", "DEFAULT_NODES"]\n', ""))
        pieces.append("_gauss_expectation = quadrature_expectation\n")
    pieces.append(
        _function_source(
            "rates", args, system.rhs,
            f"d/dt ({state_names}) by state.\n\n    Arguments, in order: {', '.join(map(str, args))} "
            "(arrays broadcast together).\n    Returns an array of shape (n_states,) + broadcast shape.\n    ",
        )
    )
    pieces.append("")
    pieces.append(
        _function_source(
            "_jacobian_flat", args, jac,
            f"Row-major flattened Jacobian d rates_i / d state_j; arguments {', '.join(map(str, args))}.",
        )
    )
    pieces.append("")
    pieces.append(_function_source("coefficients", lin_args, (lin.a, lin.b),
                                   f"a, b of the linearisation (units of eta); arguments {', '.join(map(str, lin_args))}."))
    pieces.append("")
    lin_list = ", ".join(map(str, lin_args))
    pieces.append(
        textwrap.dedent(
            f'''
            def rhs(t, y, {param_names}):
                """d y/dt in the signature of scipy.integrate.solve_ivp.

                Arguments, in order: t (unused: the system is autonomous), y = ({state_names})
                of shape ({n},) or ({n}, k), then the parameters {param_names}
                (solve_ivp(..., args=({param_names},))).  Returns an array shaped like y.
                """
                y = numpy.asarray(y, dtype=float)
                return rates(*y, {param_names}).reshape(y.shape)


            def jacobian(t, y, {param_names}):
                """d rhs_i / d y_j in the signature of solve_ivp's ``jac``.

                Arguments, in order: t, y = ({state_names}) of shape ({n},) or ({n}, k), then
                {param_names}.  Returns shape ({n}, {n}) (or ({n}, {n}, k)).
                """
                y = numpy.asarray(y, dtype=float)
                flat = _jacobian_flat(*y, {param_names})
                return flat.reshape(({n}, {n}) + y.shape[1:])


            def tau({lin_list}):
                """tau = (b + sqrt(b^2 + 4 a^2)) / (2 a^2), in units of 1/eta; arguments {lin_list}."""
                a, b = coefficients({lin_list})
                disc = numpy.sqrt(b * b + 4 * a * a)
                with numpy.errstate(divide="ignore", invalid="ignore"):
                    return numpy.where(b > 0, (b + disc) / (2 * a * a), 2.0 / (disc - b))


            def escape_time({param_names}, eps, threshold=0.5, t_max=None, rtol=1e-10, atol=1e-14):
                """First time |{observed}| reaches threshold from {observed} = eps, the other states 0.

                Arguments, in order: the parameters {param_names} (scalars), eps (initial
                overlap, 0 < eps < threshold), threshold, t_max (default: 10 (tau/eta) log(threshold/eps)
                + 20/eta), rtol, atol of the DOP853 solver.  Returns the escape time (t = steps/d)
                as a float, or inf if |{observed}| stays below threshold up to t_max.
                """
                if not 0 < eps < threshold < 1:
                    raise ValueError("need 0 < eps < threshold < 1")
                eta = ETA if ETA is not None else float(locals()["eta"])
                if t_max is None:
                    rate_time = float(tau({", ".join(["mu"] + (["mu_perp"] if model.pretraining == "general" else []))}))
                    rate_time = rate_time if numpy.isfinite(rate_time) and rate_time > 0 else 1e3
                    t_max = min(10 * rate_time / eta * numpy.log(threshold / eps) + 20 / eta, 1e6)
                y0 = numpy.zeros({n})
                y0[STATES.index("{observed}")] = eps

                def crossed(t, y, *args):
                    return abs(y[STATES.index("{observed}")]) - threshold

                crossed.terminal = True
                solution = scipy.integrate.solve_ivp(
                    rhs, (0.0, float(t_max)), y0, method="DOP853", args=({param_names},),
                    events=crossed, rtol=rtol, atol=atol,
                )
                times = solution.t_events[0]
                return float(times[0]) if len(times) else float("inf")
            '''
        )
    )
    path.write_text("\n".join(pieces))
    return path
