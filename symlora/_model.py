r"""LoRAModel: the frozen description of the learning problem, wiring the derivation.

The class holds the problem's data (activations, pre-training kind, rank,
``η``, ``B``, ``Δ``), checks it on entry, caches derived results (in memory
and, for the symbolic derivation, on disk) and delegates the work:

* :mod:`symlora._statistics`: the summary statistics and ``Q``, ``R``, ``P``;
* :mod:`symlora._ode_derivation`: the expectations and the ODE (theory §3);
* :mod:`symlora._asymptotics`: linearisation, critical μ, escape laws (§4-5);
* :mod:`symlora._codegen`, :mod:`symlora._integrate`, :mod:`symlora._latex`:
  numbers, integration and LaTeX from the derived expressions.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import _diskcache, _ode_derivation, _statistics
from ._activation import activation
from ._expectation import is_exact
from ._ode_system import ODESystem
from ._picklable import FrozenFields
from ._validate import (MU_MAX, as_float_array, check_model_parameter, check_mu, exact_mu, exact_mu_perp, mu_interval,
                        scalar_or_array)

__all__ = ["LoRAModel"]

_PRETRAINING = ("aligned", "general")
#: Highest order of :meth:`LoRAModel.series` (the expansion grows combinatorially).
_MAX_SERIES_ORDER = 8

# Results worth keeping across processes (symlora._diskcache): the symbolic
# derivation proper.  Everything else is cheap to rebuild from these.
_ON_DISK = frozenset({"expectations", ("ode", False, False), ("ode", True, False), "linearization"})


class LoRAModel(FrozenFields):  # immutable; pickles without the cache of compiled functions
    r"""Rank-``r`` LoRA fine-tuning of a single-index model (docs/theory.md §2).

    An immutable description of the learning problem; its methods derive the
    ODE of the summary statistics (§3), the linearisation at the
    uninformative fixed point (§4), the escape-time laws (§5), and integrate
    or export the result. Derived results are computed once and kept, in
    memory and on disk (see the package documentation of the cache).

    Parameters
    ----------
    student : str or sympy.Expr or Activation
        ``σ``: a name (``"x"``, ``"relu"``, ``"erf"``, ``"tanh"``, ``"He3"``, ...)
        or an expression in ``x`` (``"x**3 - 3*x"``); see
        :func:`symlora.activation`.
    teacher : same as ``student``, optional
        ``σ*``; ``None`` means the same as the student.
    pretraining : {"aligned", "general"}
        ``w0 = μ w*`` or ``w0 = μ w* + μ⊥ w⊥`` (§2.3).
    rank : int
        LoRA rank ``r``, from 1 to 8: ``w = w0 + Σ_a u_a v_a``.
    lr : number or sympy.Symbol
        ``η``; the SGD learning rate is ``η/d`` (§1.4).
    batch : positive integer or sympy.Symbol
        Batch size ``B``.
    noise : number or sympy.Symbol
        Label-noise variance ``Δ >= 0``.

    Raises
    ------
    TypeError
        A parameter of the wrong type (text for ``lr``, a float ``rank``, ...).
    ValueError
        An unknown activation or pre-training kind, a rank outside ``[1, 8]``,
        a non-positive ``lr`` or ``batch``, a negative ``noise``, or a student
        whose derivative is a Dirac delta (``sign``).

    Examples
    --------
    >>> from symlora import LoRAModel
    >>> model = LoRAModel("x")
    >>> model
    LoRAModel('x')
    >>> model.linearization().a
    1 - mu
    >>> LoRAModel("relu").linearization().tau / LoRAModel("x").linearization().tau
    2
    >>> LoRAModel("x", teacher="x**2", lr=0.5)
    LoRAModel('x', teacher='x**2', lr=1/2)
    """

    __module__ = "symlora"  # documented and shown as symlora.LoRAModel

    _FIELDS = ("student", "teacher", "pretraining", "rank", "lr", "batch", "noise")

    def __init__(self, student, teacher=None, pretraining="aligned", rank=1, lr=1, batch=1, noise=0):
        student = activation(student)
        teacher = student if teacher is None else activation(teacher)
        if not isinstance(pretraining, str) or pretraining not in _PRETRAINING:
            raise ValueError(f"pretraining must be one of {_PRETRAINING}, got {pretraining!r}")
        rank = _statistics.check_rank(rank)
        object.__setattr__(self, "student", student)
        object.__setattr__(self, "teacher", teacher)
        object.__setattr__(self, "pretraining", pretraining)
        object.__setattr__(self, "rank", rank)
        object.__setattr__(self, "lr", check_model_parameter(lr, "lr", positive=True))
        object.__setattr__(self, "batch", check_model_parameter(batch, "batch", positive=True, integer=True))
        object.__setattr__(self, "noise", check_model_parameter(noise, "noise", nonnegative=True))
        object.__setattr__(self, "_cache", {})  # derived results, keyed by method and arguments
        if student.derivative(1).has(sp.DiracDelta):
            raise ValueError(
                f"student {student.name!r} has a Dirac delta as derivative: its gradient vanishes "
                "almost everywhere and E[σ'(λ)^2] diverges; use a continuous student"
            )

    # ------------------------------------------------------------------ names

    @property
    def name(self) -> str:
        """Short description: pair, pre-training kind and rank."""
        pair = self.student.name if self.teacher == self.student else f"{self.student.name} / {self.teacher.name}"
        return f"{pair}, {self.pretraining}, rank {self.rank}"

    def __repr__(self):
        args = [repr(self.student.name)]
        if self.teacher != self.student:
            args.append(f"teacher={self.teacher.name!r}")
        defaults = {"pretraining": "aligned", "rank": 1, "lr": 1, "batch": 1, "noise": 0}
        for name, default in defaults.items():
            value = getattr(self, name)
            if value != default:
                args.append(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}")
        return f"LoRAModel({', '.join(args)})"

    def _repr_latex_(self):
        sigma, teacher = self.student.latex(), self.teacher.latex()
        w0 = r"\mu w^*" if self.pretraining == "aligned" else r"\mu w^* + \mu_\perp w_\perp"
        from ._latex import adapter_latex

        adapter = adapter_latex(self.rank)
        return (
            rf"$\sigma(x) = {sigma},\ \sigma^*(x) = {teacher},\ w = {w0} + {adapter},\ "
            rf"\text{{lr}} = \eta/d,\ \eta = {sp.latex(self.lr)},\ B = {sp.latex(self.batch)},\ \Delta = {sp.latex(self.noise)}$"
        )

    @property
    def states(self) -> tuple:
        """The summary statistics, in the order of :meth:`ode_system`."""
        return _statistics.state_symbols(self.pretraining, self.rank)

    @property
    def parameters(self) -> tuple:
        """Symbols left free in :meth:`ode_system`, in order."""
        return _statistics.free_parameters(self.pretraining, self.lr, self.batch, self.noise)

    # ------------------------------------------------------------ expectations

    def _cached(self, key, builder):
        if key not in self._cache:
            persistent = key in _ON_DISK
            value = _diskcache.load(_diskcache.model_key(self, key)) if persistent else None
            if value is None:
                value = builder()
                if persistent:
                    _diskcache.store(_diskcache.model_key(self, key), value)
            self._cache[key] = value
        return self._cache[key]

    def expectations(self) -> dict:
        """The four expectations of the ODE as functions of ``Q`` and ``R``.

        Returns
        -------
        dict
            ``{"A_lambda": E[∂_λ G], "A_nu": E[∂_ν G], "G2": E[G²],
            "S2": E[σ'(λ)²]}``, expressions in the symbols ``Q`` and ``R``
            (exact closed forms or containing quadrature nodes).
        """

        return self._cached("expectations", lambda: _ode_derivation.drift_expectations(self.student, self.teacher))

    @property
    def exact(self) -> bool:
        """Whether the ODE is an exact closed form (no quadrature node)."""
        return all(is_exact(e) for e in self.expectations().values())

    # --------------------------------------------------------------------- ODE

    def overlaps(self) -> dict:
        """``Q = |w|²``, ``R = w·w*`` in terms of the states and parameters."""
        return _statistics.overlaps(self.pretraining, self.rank)

    def orthogonal_norm2(self) -> sp.Expr:
        """``P = Q - R² = |w - (w·w*) w*|²`` as a manifest function of the states."""
        return _statistics.orthogonal_norm2(self.pretraining, self.rank)

    def ode_structure(self):
        """The ODE in terms of the expectation symbols ``A_lambda``, ``A_nu``, ``G2``.

        Returns
        -------
        (dict, dict)
            ``{state: rhs}`` with the symbols, and ``{symbol: expectation in Q, R}``
            (``G2`` stands for ``E[G²] + Δ E[σ'(λ)²]``).
        """
        rhs = self._ode(in_terms_of_QR=False, structure=True)
        exps = self.expectations()
        Al, An, G2 = _ode_derivation.EXPECTATION_SYMBOLS
        return rhs, {Al: exps["A_lambda"], An: exps["A_nu"], G2: exps["G2"] + self.noise * exps["S2"]}

    def ode(self, in_terms_of_QR: bool = False) -> dict:
        r"""Right-hand sides ``{state: d state/dt}`` (time ``t = steps/d``).

        Parameters
        ----------
        in_terms_of_QR : bool
            Keep the auxiliary ``Q = |w|²`` and ``R = w·w*`` as symbols (the
            compact form for display); by default they are substituted.

        Notes
        -----
        Aligned, rank 1 (``C = Cov(λ, ζ) = μm + u``):

        .. math::

            \dot u = -η (C A_λ + m A_ν),\qquad
            \dot m = -η u (1 - m^2)(μ A_λ + A_ν)
                     - \frac{η^2}{2B} u^2 m \left(E[G^2] + Δ E[σ'(λ)^2]\right).
        """
        return self._ode(in_terms_of_QR, structure=False)

    def _ode(self, in_terms_of_QR, structure):
        # structure=True: right-hand sides in the expectation symbols A_lambda, A_nu, G2
        key = ("ode", in_terms_of_QR, structure)

        def build():
            if structure:
                return _ode_derivation.ode_structure(self.pretraining, self.rank, self.lr, self.batch)
            return _ode_derivation.assemble_ode(self._ode(False, structure=True), self.expectations(), self.noise,
                                                self.pretraining, self.rank, in_terms_of_QR=in_terms_of_QR)

        return self._cached(key, build)

    def ode_system(self) -> ODESystem:
        """The ODE as a frozen :class:`~symlora.ODESystem` for code generation.

        States are :attr:`states`; parameters are :attr:`parameters`
        (``mu`` first, then ``mu_perp`` for general pre-training, then any
        of ``eta``, ``B``, ``Delta`` the model left symbolic).
        """

        def build():
            rhs = self.ode()
            return ODESystem(
                states=self.states,
                parameters=self.parameters,
                rhs=tuple(rhs[s] for s in self.states),
                exact=self.exact,
                name=self.name,
                expectation_form=_ode_derivation.expectation_form(
                    self.student, self.teacher, self._ode(False, structure=True), self.noise, self.pretraining,
                    self.rank),
            )

        return self._cached("ode_system", build)

    # ------------------------------------------------------------ asymptotics

    def linearization(self):
        """Linearisation at the uninformative fixed point (docs/theory.md §4).

        Returns
        -------
        symlora.Linearization
        """
        from ._asymptotics import linearize

        return self._cached("linearization", lambda: linearize(self))

    def series(self, order: int):
        """The ODE expanded around the fixed point to total ``order`` in the states."""
        from ._asymptotics import ode_series

        if isinstance(order, bool) or not isinstance(order, int):
            raise TypeError(f"order must be an integer, got {type(order).__name__}")
        if not 1 <= order <= _MAX_SERIES_ORDER:
            raise ValueError(f"order must lie in [1, {_MAX_SERIES_ORDER}], got {order}")
        return self._cached(("series", order), lambda: ode_series(self, order))

    def critical_mu(self, interval=(0, 1), mu_perp=None):
        """Zeros of ``a(μ)`` in ``interval``: exact where SymPy isolates them, certified brackets otherwise.

        Returns a :class:`~symlora.CriticalMuRoots`: a tuple of SymPy numbers
        whose ``details`` say, per zero, exact or numeric, the error bound
        and the bracket.  General pre-training: zeros of ``a(μ, μ⊥)`` at
        ``mu_perp`` (default 0).
        """
        from ._asymptotics import critical_mu

        lo, hi = mu_interval(interval)
        mu_perp = exact_mu_perp(mu_perp, self.pretraining)
        return self._cached(("critical_mu", lo, hi, mu_perp), lambda: critical_mu(self, lo, hi, mu_perp))

    def escape_law(self, mu, mu_perp=None):
        """Leading escape-time law at pre-training strength ``mu`` (general pre-training: and ``mu_perp``, default 0)."""
        from ._asymptotics import escape_law

        mu = exact_mu(mu)
        mu_perp = exact_mu_perp(mu_perp, self.pretraining)
        return self._cached(("escape_law", mu, mu_perp), lambda: escape_law(self, mu, mu_perp))

    def tau_limits(self) -> dict:
        """Leading behaviour of ``τ(μ)`` as ``μ → 0`` and ``μ → 1``."""
        from ._asymptotics import tau_limits

        return self._cached("tau_limits", lambda: tau_limits(self))

    # ----------------------------------------------------------- fast numbers

    def coefficients(self, mu, mu_perp=None):
        """``a(μ)``, ``b(μ)``, ``τ(μ)`` from generated code, vectorised over ``mu`` (and ``mu_perp``).

        Parameters
        ----------
        mu : float or array_like
            Pre-training strengths, finite, in ``[0, 1e6]``.
        mu_perp : float or array_like, optional
            Finite and ``>= 0``, broadcast with ``mu`` (general pre-training only, default 0).

        Returns
        -------
        dict
            ``{"a": ..., "b": ..., "tau": ...}`` (``tau`` in units of ``1/η``):
            Python floats for scalar input, numpy arrays otherwise.

        Raises
        ------
        TypeError
            ``mu`` is not a number or array of numbers (strings are refused).
        ValueError
            ``mu`` outside ``[0, 1e6]`` or not finite; ``a`` or ``b`` overflow
            double precision.
        """
        from ._codegen import coefficients_function

        mu_values, scalar = check_mu(mu)
        if mu_perp is not None:
            if self.pretraining != "general":
                raise ValueError("mu_perp is only used with pretraining='general'")
            mu_perp, perp_scalar = as_float_array(mu_perp, "mu_perp", low=0.0, high=MU_MAX)
            scalar = scalar and perp_scalar
        with np.errstate(all="ignore"):
            values = coefficients_function(self)(mu_values, mu_perp)
        finite = np.isfinite(values["a"]) & np.isfinite(values["b"])
        if not np.all(finite):
            where = np.broadcast_to(mu_values, np.shape(finite))[~finite].flat[0]
            raise ValueError(
                f"a(mu), b(mu) of {self.name} are not finite in double precision at mu = {where:g} "
                "(overflow); use model.linearization() for exact values"
            )
        return {key: scalar_or_array(value, scalar) for key, value in values.items()}

    def tau(self, mu):
        """``τ(μ)`` (units of ``1/η``), vectorised over ``mu``.

        A Python float for scalar ``mu``, a numpy array otherwise; ``inf``
        where ``a(μ) = 0`` (no linear escape).  See :meth:`coefficients`.

        Examples
        --------
        >>> LoRAModel("x").tau(0.5)
        4.82842712474619
        """
        return self.coefficients(mu)["tau"]

    # ------------------------------------------------------------ integration

    def integrate(self, mu, m0, u0, t_max, t_eval=None, **kwargs):
        """Integrate the ODE for batches of ``mu`` and initial conditions.

        Parameters
        ----------
        mu, m0, u0 : float or array_like
            Pre-training strength and initial ``m``, ``u`` (rank ``r``: of the
            first direction); arrays broadcast into a batch of runs.
        t_max : float
            Horizon in ``t = steps/d``.
        t_eval : array_like, optional
            Times at which to report the states.
        **kwargs
            ``mu_perp``, ``s0`` (general pre-training), ``initial`` (any other
            statistic by name, e.g. ``{"m2": 1e-3, "q12": 0.01}`` at rank
            ``r``), ``parameters`` (values of symbolic ``eta``, ``B``,
            ``Delta``), and the solver's ``rtol``, ``atol``, ``method``.

        Returns
        -------
        symlora.IntegrationResult
        """
        from ._model_integration import integrate_model

        return integrate_model(self, mu, m0, u0, t_max, t_eval=t_eval, **kwargs)

    def escape_time(self, mu, eps, threshold=0.5, t_max=None, **kwargs):
        """Time for ``|m|`` (rank ``r``: ``max_a |m_a|``) to reach ``threshold`` from ``m0 = eps, u0 = 0``.

        Parameters
        ----------
        mu, eps : float or array_like
            Pre-training strength and initial overlap; they broadcast.
        threshold : float
            Escape when ``|m|`` reaches it, ``0 < eps < threshold < 1``.
        t_max : float, optional
            Horizon (default: generous, from the linear theory of
            docs/theory.md §5.1).
        **kwargs
            ``mu_perp`` (general pre-training), ``parameters`` (values of
            symbolic ``eta``, ``B``, ``Delta``) and solver options.

        Returns
        -------
        symlora.EscapeResult
            Times (``inf`` where the run did not escape) and a status per run.
        """
        from ._model_integration import escape_time_model

        return escape_time_model(self, mu, eps, threshold=threshold, t_max=t_max, **kwargs)

    def export_python(self, path):
        """Write a standalone numpy/scipy module with the ODE and ``τ(μ)``.

        ``path`` is a ``str`` or path object naming a ``.py`` file in an
        existing folder.
        """
        import os

        from ._codegen import export_model

        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        if not str(path).strip() or not str(path).endswith(".py"):
            raise ValueError(f"path must name a Python file ending in .py, got {str(path)[:80]!r}")

        return export_model(self, path)

    def to_latex(self, **kwargs) -> str:
        """A LaTeX document (or body) with the model, ODE and linearisation."""
        from ._latex import model_to_latex

        return model_to_latex(self, **kwargs)

    # ------------------------------------------------------------ finite d

    def diffusion(self, in_terms_of_QR: bool = False) -> sp.Matrix:
        r"""Order-``1/d`` diffusion matrix ``D`` of the statistics (docs/theory.md §6.1).

        Over a time ``δt`` the statistics gain, around the drift of :meth:`ode`,
        a covariance ``D δt / d``; rows and columns follow :attr:`states`.

        Examples
        --------
        >>> from symlora import LoRAModel
        >>> LoRAModel("x").diffusion_at_fixed_point()
        Matrix([
        [0,           0],
        [0, (mu - 1)**2]])
        """
        from ._diffusion import derive_diffusion

        return derive_diffusion(self, in_terms_of_QR=in_terms_of_QR)

    def diffusion_at_fixed_point(self) -> sp.Matrix:
        """``D`` at ``m = u = 0`` as a function of ``mu`` (aligned rank 1)."""
        from ._diffusion import diffusion_at_fixed_point

        return diffusion_at_fixed_point(self)

    def diffusion_function(self):
        """Generated code for :meth:`diffusion`: ``f(*states, *parameters) -> (n, n, ...)`` array."""
        from ._diffusion import compile_diffusion

        return self._cached("diffusion_function", lambda: compile_diffusion(self))

    def predict_escape(self, mu, d, threshold=0.5, m0=None, **kwargs):
        """Distribution of the SGD escape time at finite ``d`` (see :func:`symlora.predict_escape`)."""
        from ._prediction import predict_escape

        return predict_escape(self, mu, d, threshold=threshold, m0=m0, **kwargs)
