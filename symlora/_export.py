"""Python source from SymPy expressions: standalone model modules and numba-ready scalars.

:func:`export_model` writes the ODE, its Jacobian, ``a``, ``b``, ``tau`` and
an escape-time helper of a model as a module that imports only numpy and
scipy (run it where SymPy is not installed).  :func:`scalar_function_source`
prints scalar functions over the ``math`` module, which numba compiles
(the SGD simulator's activations, the drift-diffusion SDE of the benchmarks).  Both print the same
conditioned, overflow-free expressions as :mod:`symlora._codegen` compiles.
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import sympy as sp
from sympy.printing.numpy import SciPyPrinter

from . import _conditional, _near_unit_correlation, _quadrature, _separable
from . import _symbols as S
from ._expectation import as_expr
from ._node import GaussianExpectation
from ._ode_jacobian import jacobian_expressions
from ._safe_rewriting import evaluation_form, logaddexp_as_elementary, numerically_safe

__all__ = ["export_model", "scalar_function_source"]


def scalar_function_source(name, arg, expr, doc=""):
    """Python source of ``def name(arg): return expr`` over the ``math`` module.

    The function evaluates floats and uses only ``math`` and builtins, so
    numba compiles it in nopython mode; common subexpressions are computed
    once (jointly for several outputs).  The expression is first put in overflow-free form
    (:func:`~symlora._safe_rewriting.numerically_safe`): a sigmoid at
    ``-1000`` is ``0.0``, not an ``OverflowError``.  Heaviside steps print as conditional expressions with
    ``H(0) = 1/2``.

    Parameters
    ----------
    name : str
        Function name (a Python identifier).
    arg : sympy.Symbol or sequence of sympy.Symbol
        The argument, or the arguments in order.
    expr : sympy.Expr or sequence of sympy.Expr
        Expression in ``arg``; a sequence (list, tuple, Matrix) makes the
        function return a tuple of its values, in order.
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
    >>> s = sp.Symbol("s", real=True)
    >>> print(scalar_function_source("g", (s, t), [s * t, s + t]))
    def g(s, t):
        return (s*t, s + t)
    """
    from sympy.printing.pycode import PythonCodePrinter

    if not str(name).isidentifier():
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    args = tuple(arg) if isinstance(arg, (list, tuple)) else (arg,)
    # the names are printed into source that is compiled: only SymPy symbols with identifier names
    for a in args:
        if not isinstance(a, sp.Symbol) or not a.name.isidentifier():
            raise TypeError(f"arg must be a sympy Symbol (or a sequence of them) named by an identifier, got {a!r}")
    several = isinstance(expr, (list, tuple, sp.MatrixBase))
    exprs = [as_expr(e, "expression") for e in (expr if several else [expr])]
    for e in exprs:
        if e.free_symbols - set(args):
            raise ValueError(f"cannot compile {name}: free symbols other than {args}: {e.free_symbols - set(args)}")
        if e.has(sp.DiracDelta) or e.atoms(GaussianExpectation):
            raise ValueError(f"cannot compile {name} = {e} pointwise (Dirac delta or unevaluated expectation)")
    # the overflow-free form, in functions the math module has (no logaddexp there)
    exprs = [logaddexp_as_elementary(numerically_safe(e)) for e in exprs]
    printer = PythonCodePrinter({"fully_qualified_modules": True, "allow_unknown_functions": False})
    replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_x"))
    lines = [f"def {name}({', '.join(map(str, args))}):"]
    if doc:
        lines.append(f'    """{doc}"""')
    for sym, sub in replacements:
        lines.append(f"    {sym} = {printer.doprint(sub)}")
    values = [printer.doprint(e) for e in reduced]
    lines.append(f"    return ({', '.join(values)})" if several else f"    return {values[0]}")
    if printer._not_supported:
        raise ValueError(f"cannot compile {name}: no math-module form of {sorted(map(str, printer._not_supported))}")
    return "\n".join(lines)


def _function_source(name, args, exprs, doc):
    printer = SciPyPrinter({"fully_qualified_modules": True, "allow_unknown_functions": False})
    exprs = [evaluation_form(e) for e in exprs]
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


def _embedded(module, name):
    """The source of the SymPy-free ``module`` as a function returning its ``name``.

    Each copied module gets its own namespace (the function's scope), so
    private helpers of the same name in two modules do not collide.
    """
    source = inspect.getsource(module)
    body = source[source.index("import functools"):].replace("import numpy as np\n", "np = numpy\n")
    # names imported from sibling modules are module-level names of the export (embedded before)
    body = "".join(line for line in body.splitlines(keepends=True) if not line.startswith("from ."))
    short = module.__name__.rsplit(".", 1)[-1]
    return (f"# --- {short}: copied from {module.__name__} ---\n"
            f"def {short}():\n" + textwrap.indent(body, "    ") + f"\n    return {name}\n")


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
    from ._statistics import geometry

    observed = geometry(model.pretraining, model.rank).m[0].name  # the first direction escapes from eps
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
        "import functools",
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
        pieces.append(_embedded(_quadrature, "quadrature_expectation"))
        pieces.append("_gauss_expectation = _quadrature()\n")
        pieces.append(_embedded(_near_unit_correlation, "(coarse_nodes, conditioned_sums, inner_nodes)"))
        pieces.append("coarse_nodes, conditioned_sums, inner_nodes = _near_unit_correlation()\n")
        pieces.append(_embedded(_separable, "separable_expectation"))
        pieces.append("_gauss_separable = _separable()\n")
        # the semi-analytic route calls the adaptive rule of _quadrature (passed in)
        source = inspect.getsource(_conditional)
        body = source[source.index("import math"):].replace("import numpy as np\n", "np = numpy\n")
        body = body.replace("from ._quadrature import DEFAULT_TOLERANCE, quadrature_with_error\n", "")
        pieces.append("# --- _conditional: copied from symlora._conditional ---\n"
                      "def _conditional(quadrature_with_error, DEFAULT_TOLERANCE):\n"
                      + textwrap.indent(body, "    ") + "\n    return conditional_expectation\n")
        pieces.append(_embedded(_quadrature, "quadrature_with_error"))
        pieces.append(f"_gauss_conditional = _conditional(_quadrature(), {_quadrature.DEFAULT_TOLERANCE!r})\n")
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
