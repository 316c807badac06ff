r"""TwoLayerLoRAModel: a committee (two-layer) student with a rank-``r`` LoRA adapter.

The learning problem (docs/theory.md §9.1): inputs
``x ~ N(0, I_d)``; teacher ``y = c* Σ_j σ*(w*_j·x) + √Δ ξ`` with ``K*``
orthonormal ``w*_j``; student ``ŷ = c Σ_k σ(w_k·x)`` with first layer
``W = W0 + U V``, ``W0 = D W*`` frozen, ``U`` (``K × r`` scales) and ``V``
(``r`` unit directions, renormalised after every step) trained by SGD with
``lr = η/d`` on the batch-mean loss ``½ (ŷ - y)²``; the readouts
``c = 1/K`` (``c* = 1/K*``) or ``1/√K`` (``1/√K*``) are fixed.  Time is
``t = steps/d``.  The class is a thin frozen object: the work is in
:mod:`._geometry`, :mod:`._expectations`, :mod:`._ode` and
:mod:`._linearization`.
"""

from __future__ import annotations

import sympy as sp

from .._activation import activation
from .._expectation import is_exact
from .._ode_system import ODESystem
from .._picklable import FrozenFields
from .._validate import as_exact_number, check_magnitude
from ._expectations import ExpectationTables
from ._geometry import Geometry, covariance_symbols
from ._ode import expectation_placeholders, ode_structure

__all__ = ["TwoLayerLoRAModel", "READOUTS"]

#: Readout conventions: ``c = 1/K`` or ``c = 1/√K`` (the teacher uses the same with ``K*``).
READOUTS = ("1/K", "1/sqrt(K)")
#: Largest number of hidden units, teacher units and LoRA rank (the drag needs expectations over
#: four fields for every pair of units: the derivation grows like ``K^4``).
MAX_UNITS = 8


def _size(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not 1 <= value <= MAX_UNITS:
        raise ValueError(f"{name} must lie in [1, {MAX_UNITS}], got {value}")
    return value


def _parameter(value, name, **constraints):
    value = as_exact_number(value, name, symbolic=True, **constraints)
    if value.is_number:
        check_magnitude(value, name)
    return value


def _pretraining_matrix(pretraining, hidden, teacher_hidden) -> sp.ImmutableMatrix:
    """``D`` (``K × K*``) from ``None`` (symbols ``mu1..muK``), ``K`` strengths or a ``K × K*`` matrix."""
    if pretraining is None:
        pretraining = [sp.Symbol(f"mu{k + 1}", positive=True) for k in range(hidden)]
    if isinstance(pretraining, (str, bytes)) or not hasattr(pretraining, "__len__"):
        raise TypeError(f"pretraining must be a sequence of K = {hidden} strengths or a K × K* matrix, "
                        f"got {pretraining!r}")
    rows = list(pretraining)
    if len(rows) != hidden:
        raise ValueError(f"pretraining must have K = {hidden} entries (one per hidden unit), got {len(rows)}")
    matrix_form = [hasattr(row, "__len__") and not isinstance(row, (str, bytes)) for row in rows]
    if all(matrix_form):
        if any(len(row) != teacher_hidden for row in rows):
            raise ValueError(f"pretraining rows must have K* = {teacher_hidden} entries")
        entries = [[_parameter(v, f"pretraining[{k}][{j}]") for j, v in enumerate(row)] for k, row in enumerate(rows)]
        return sp.ImmutableMatrix(entries)
    if any(matrix_form):
        raise TypeError("pretraining mixes numbers and rows: give K strengths or a K × K* matrix")
    mus = [_parameter(v, f"pretraining[{k}]") for k, v in enumerate(rows)]
    if teacher_hidden == hidden:
        return sp.ImmutableMatrix(sp.diag(*mus))
    if teacher_hidden == 1:
        return sp.ImmutableMatrix([[m] for m in mus])
    raise ValueError(f"K = {hidden} strengths need K* = K or K* = 1 (got K* = {teacher_hidden}); "
                     "give pretraining as a K × K* matrix of overlaps w0_k·w*_j")


class TwoLayerLoRAModel(FrozenFields):
    r"""Two-layer student with a rank-``r`` LoRA adapter on its first layer.

    Parameters
    ----------
    student, teacher : str or sympy.Expr or Activation
        ``σ`` and ``σ*`` (see :func:`symlora.activation`); ``teacher=None``
        means the same as the student.
    hidden : int
        ``K``, the number of hidden units of the student (1 to 8).
    teacher_hidden : int, optional
        ``K*`` (default ``K``); ``1`` is a single-index teacher.
    rank : int
        LoRA rank ``r`` (1 to 8).
    pretraining : sequence, optional
        ``W0 = D W*``: ``K`` strengths ``μ_k`` (``D = diag(μ)`` when
        ``K* = K``, a column when ``K* = 1``) or a ``K × K*`` matrix of
        overlaps ``w0_k·w*_j``; numbers or SymPy symbols.  Default: symbols
        ``mu1, ..., muK``.
    readout : {"1/K", "1/sqrt(K)"}
        Fixed second layer of student (``1/K``) and teacher (``1/K*``).
    lr, batch, noise : number or sympy.Symbol
        ``η`` (``lr = η/d``), batch size ``B``, label-noise variance ``Δ``.

    Raises
    ------
    TypeError
        Wrong types (a float ``hidden``, text for ``lr``, ...).
    ValueError
        Sizes out of range, an unknown ``readout``, a ``pretraining`` of the
        wrong shape, non-positive ``lr`` or ``batch``, negative ``noise``.

    Examples
    --------
    >>> import sympy as sp
    >>> mu = sp.Symbol("mu", positive=True)
    >>> model = TwoLayerLoRAModel("x", hidden=2, pretraining=[mu, 1])
    >>> model.states
    (M11, M12, U11, U21)
    >>> sp.factor(model.linearization().jacobian_block[0, 2])
    -(mu - 1)/4
    >>> round(model.tau(mu=0.5), 6)
    17.797959
    """

    __module__ = "symlora"

    _FIELDS = ("student", "teacher", "hidden", "teacher_hidden", "rank", "pretraining", "readout", "lr", "batch",
               "noise")

    def __init__(self, student, teacher=None, *, hidden=2, teacher_hidden=None, rank=1, pretraining=None,
                 readout="1/K", lr=1, batch=1, noise=0):
        student = activation(student)
        teacher = student if teacher is None else activation(teacher)
        hidden = _size(hidden, "hidden")
        teacher_hidden = hidden if teacher_hidden is None else _size(teacher_hidden, "teacher_hidden")
        rank = _size(rank, "rank")
        if not isinstance(readout, str):
            raise TypeError(f"readout must be one of {READOUTS}, got {readout!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if student.derivative(1).has(sp.DiracDelta):
            raise ValueError(f"student {student.name!r} has a Dirac delta as derivative; use a continuous student")
        values = dict(student=student, teacher=teacher, hidden=hidden, teacher_hidden=teacher_hidden, rank=rank,
                      pretraining=_pretraining_matrix(pretraining, hidden, teacher_hidden), readout=readout,
                      lr=_parameter(lr, "lr", positive=True), batch=_parameter(batch, "batch", positive=True, integer=True),
                      noise=_parameter(noise, "noise", nonnegative=True))
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_cache", {})

    def __repr__(self):
        pair = repr(self.student.name) + ("" if self.teacher == self.student else f", teacher={self.teacher.name!r}")
        return (f"TwoLayerLoRAModel({pair}, hidden={self.hidden}, teacher_hidden={self.teacher_hidden}, "
                f"rank={self.rank}, pretraining={self.pretraining.tolist()}, readout={self.readout!r}, "
                f"lr={self.lr}, batch={self.batch}, noise={self.noise})")

    @property
    def name(self) -> str:
        pair = self.student.name if self.teacher == self.student else f"{self.student.name} / {self.teacher.name}"
        return f"{pair}, two-layer K = {self.hidden}, K* = {self.teacher_hidden}, rank {self.rank}"

    # ----------------------------------------------------------------- pieces

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.hidden, self.teacher_hidden, self.rank)

    @property
    def readouts(self) -> tuple:
        """``(c, c*)``."""
        if self.readout == "1/K":
            return sp.Rational(1, self.hidden), sp.Rational(1, self.teacher_hidden)
        return 1 / sp.sqrt(self.hidden), 1 / sp.sqrt(self.teacher_hidden)

    @property
    def states(self) -> tuple:
        """``M`` (row by row), ``U`` (row by row), then ``q_ab`` (``a < b``)."""
        return self.geometry.states

    @property
    def parameters(self) -> tuple:
        """Symbols left free: those of ``pretraining`` (by name), then of ``η``, ``B``, ``Δ``."""
        params = sorted(set().union(*(e.free_symbols for e in self.pretraining)), key=str)
        for value in (self.lr, self.batch, self.noise):
            params.extend(sorted(value.free_symbols, key=str))
        return tuple(dict.fromkeys(params))

    def _cached(self, key, builder):
        if key not in self._cache:
            self._cache[key] = builder()
        return self._cache[key]

    def expectation_matrix(self, name: str) -> sp.Matrix:
        """One of ``"A"``, ``"B"``, ``"H"`` (see :mod:`._expectations`) in the symbols ``Q_kl``, ``R_kj``.

        ``A`` and ``B`` (all the linearisation needs) are quick; ``H``, the
        squared gradient of the drag, needs expectations over four fields.
        """
        if name not in ("A", "B", "H"):
            raise ValueError(f"name must be 'A', 'B' or 'H', got {name!r}")

        def build():
            Q, R = covariance_symbols(self.hidden, self.teacher_hidden)
            c, ct = self.readouts
            return getattr(ExpectationTables(self.student, self.teacher, c, ct, Q, R, self.noise), name)()

        return self._cached(("expectation", name), build)

    def expectations(self) -> dict:
        """``{"A": A, "B": B, "H": H}``, see :meth:`expectation_matrix`."""
        return {name: self.expectation_matrix(name) for name in ("A", "B", "H")}

    @property
    def exact(self) -> bool:
        """Whether the ODE is a closed form (no quadrature node)."""
        return all(is_exact(e) for matrix in self.expectations().values() for e in matrix)

    def covariances(self) -> dict:
        """``{Q_kl: ..., R_kj: ...}``: the covariance symbols in the statistics."""
        Qs, Rs = covariance_symbols(self.hidden, self.teacher_hidden)
        Q, R, _ = self.geometry.covariances(sp.Matrix(self.pretraining))
        values = {Qs[k, l]: Q[k, l] for k in range(self.hidden) for l in range(k, self.hidden)}
        values.update({Rs[k, j]: R[k, j] for k in range(self.hidden) for j in range(self.teacher_hidden)})
        return values

    # --------------------------------------------------------------------- ODE

    def ode(self, in_terms_of_QR: bool = False) -> dict:
        r"""Right-hand sides ``{state: d state/dt}`` (time ``t = steps/d``).

        Parameters
        ----------
        in_terms_of_QR : bool
            Keep the covariance symbols ``Q_kl``, ``R_kj`` inside the
            expectations (compact, for display); by default they are replaced
            by the statistics.

        Notes
        -----
        See :mod:`symlora.two_layer._ode` for the equations.
        """
        def build():
            D = sp.Matrix(self.pretraining)
            _, R, C = self.geometry.covariances(D)
            A, B, H = expectation_placeholders(self.hidden, self.teacher_hidden)
            c, _ = self.readouts
            structure = ode_structure(self.geometry, D, R, C, A, B, H, c, self.lr, self.batch)
            exps = self.expectations()
            fill = {}
            for placeholder, value in ((A, exps["A"]), (B, exps["B"]), (H, exps["H"])):
                fill.update({p: v for p, v in zip(placeholder, value)})
            rhs = {s: e.xreplace(fill) for s, e in structure.items()}
            if not in_terms_of_QR:
                values = self.covariances()
                rhs = {s: e.xreplace(values) for s, e in rhs.items()}
            return rhs

        return self._cached(("ode", in_terms_of_QR), build)

    def ode_system(self) -> ODESystem:
        """The ODE as a frozen :class:`~symlora.ODESystem` (states :attr:`states`, parameters :attr:`parameters`).

        The system is kept in stages (its ``definitions``): the covariances
        ``Q``, ``R`` in the statistics, then the expectation matrices ``A``,
        ``B``, ``H`` in ``Q``, ``R``, then the right-hand sides in ``A``, ``B``,
        ``H`` and the statistics.  Generated code computes each stage once per
        call; written out in the statistics (:meth:`ode`) the ``K = 4`` erf
        committee has ~820k operations, in stages ~36k and ~6k after
        common-subexpression elimination (docs/theory.md §9.5).
        """
        def build():
            D = sp.Matrix(self.pretraining)
            Qs, Rs = covariance_symbols(self.hidden, self.teacher_hidden)
            _, _, C = self.geometry.covariances(D)
            A, B, H = expectation_placeholders(self.hidden, self.teacher_hidden)
            c, _ = self.readouts
            structure = ode_structure(self.geometry, D, Rs, C, A, B, H, c, self.lr, self.batch)
            definitions = dict(self.covariances())  # Q_kl (k <= l) and R_kj in the statistics
            exps = self.expectations()
            for placeholder, value in ((A, exps["A"]), (B, exps["B"]), (H, exps["H"])):
                definitions.update(zip(placeholder, value))  # symmetric placeholders: equal values, kept once
            return ODESystem(self.states, self.parameters, tuple(structure[s] for s in self.states), self.exact,
                             self.name, tuple(definitions.items()))

        return self._cached("ode_system", build)

    # ------------------------------------------------------------ asymptotics

    def linearization(self):
        """Linearisation at the uninformative point ``M = 0``, ``U = 0`` (see :mod:`._linearization`)."""
        from ._linearization import linearize

        return self._cached("linearization", lambda: linearize(self))

    def tau(self, **parameters) -> float:
        """``τ = η/λ_max`` of the linearisation, in units of ``1/η`` like :meth:`symlora.LoRAModel.tau`.

        Parameters
        ----------
        **parameters : float
            A value for every symbol in :attr:`parameters` (e.g. ``mu=0.5``).

        Returns
        -------
        float
            ``inf`` when no direction is unstable.
        """
        return self.linearization().tau(**parameters)

    def to_latex(self, **kwargs) -> str:
        """A LaTeX document of the model, its covariances, expectations, ODE and linearisation.

        See :func:`symlora.two_layer._latex.two_layer_to_latex` (``body_only=True`` for ``\\input``).
        """
        from ._latex import two_layer_to_latex

        return two_layer_to_latex(self, **kwargs)

    # ------------------------------------------------------------ integration

    def integrate(self, initial, t_max, parameters=None, t_eval=None, **kwargs):
        """Integrate the ODE with :func:`symlora._integrate.integrate` (batched; missing states start at 0).

        Parameters
        ----------
        initial : dict
            State (symbol or name) -> value or array.
        t_max : float
        parameters : dict, optional
            A value for every symbol in :attr:`parameters`.
        t_eval : array_like, optional
        **kwargs
            ``rtol``, ``atol``, ``method`` of the integrator.

        Returns
        -------
        symlora.IntegrationResult
        """
        from .._integrate import integrate

        return integrate(self.ode_system(), initial, parameters or {}, t_max, t_eval, **kwargs)
