r"""Linearisation of the two-layer ODE at the uninformative point (docs/theory.md §9.4).

At ``M = 0``, ``U = 0`` (``W = W0``: the adapter is off and its directions
carry no information) every right-hand side vanishes, whatever the overlaps
``q_ab`` of the directions.  The covariances are ``Q0 = D Dᵀ``, ``R0 = D``.
To first order in ``(M, U)`` only the expectations at that point enter
(their prefactors ``C``, ``M`` and ``U`` are already of first order; the drag
is of third order):

.. math::

    \dot M_{aj} = -η c \sum_k N_{kj} U_{ka},\qquad
    \dot U_{ka} = -η c \Big(\sum_j N_{kj} M_{aj} + \sum_{l,b} A^0_{kl} U_{lb} q_{ba}\Big),

with ``A0 = A(Q0, R0)``, ``B0 = B(Q0, R0)`` and ``N = A0 D + B0``.  At
``q = 0`` (orthogonal directions, the random start up to ``O(d^{-1/2})``)
the ``r`` adapters decouple into identical blocks for
``(M_{a1..aK*}, U_{1a..Ka})``,

.. math::

    J / η = -c \begin{pmatrix} 0 & N^T \\ N & A^0 \end{pmatrix},

a symmetric matrix.  For ``K = K* = 1``, ``c = 1`` this is ``[[0, a], [a, -b]]``
with ``a = -N``, ``b = A0`` (§4.2).  ``τ = 1/λ_max(J/η)``, in units of ``1/η``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .._codegen import compile_expressions
from .._expectation import is_exact
from .._validate import as_float_array
from ._geometry import covariance_symbols

__all__ = ["TwoLayerLinearization", "linearize"]


@dataclass(frozen=True)
class TwoLayerLinearization:
    """The linearised dynamics of one adapter direction at the uninformative point.

    Attributes
    ----------
    jacobian_block : sympy.Matrix
        ``J/η`` for the states ``(M_a1..M_aK*, U_1a..U_Ka)`` of one direction
        (every direction has the same block when ``q = 0``), a function of
        the model's parameters.
    A0, B0, N : sympy.Matrix
        The expectations at the point and the coupling ``N = A0 D + B0``.
    parameters : tuple of sympy.Symbol
        The free symbols, in the order :meth:`tau` accepts them.
    exact : bool
    """

    jacobian_block: sp.Matrix
    A0: sp.Matrix
    B0: sp.Matrix
    N: sp.Matrix
    parameters: tuple
    exact: bool
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def rates(self, **parameters) -> np.ndarray:
        """Eigenvalues of ``J/η`` (units of ``η``), in increasing order along the last axis.

        Parameters broadcast: arrays give one spectrum per element.
        """
        names = [p.name for p in self.parameters]
        unknown = set(parameters) - set(names)
        if unknown:
            raise ValueError(f"unknown parameters {', '.join(sorted(unknown))}; expected {', '.join(names) or 'none'}")
        missing = [n for n in names if n not in parameters]
        if missing:
            raise ValueError(f"missing parameters {', '.join(missing)}")
        n = self.jacobian_block.rows
        if not names:  # a numeric matrix: evaluate it once, with SymPy's arbitrary precision
            if "values" not in self._cache:
                self._cache["values"] = np.linalg.eigvalsh(np.array(self.jacobian_block.evalf(30), dtype=float))
            return self._cache["values"]
        if "compiled" not in self._cache:
            self._cache["compiled"] = compile_expressions(self.parameters, tuple(self.jacobian_block),
                                                          name="jacobian_block", doc="J/η, row-major")
        values = [as_float_array(parameters[n], n)[0] for n in names]
        flat = self._cache["compiled"](*values)
        matrices = np.moveaxis(flat.reshape((n, n) + flat.shape[1:]), (0, 1), (-2, -1))
        if not np.all(np.isfinite(matrices)):
            raise ValueError("the Jacobian is not finite at these parameters")
        return np.linalg.eigvalsh(matrices)

    def unstable_direction(self, **parameters) -> np.ndarray:
        """Unit eigenvector of the largest rate of ``J/η`` (one set of parameter values), states as in the block.

        Its sign is fixed so that its largest ``M`` component is positive.
        """
        self.rates(**parameters)  # checks the parameters and compiles the block
        names = [p.name for p in self.parameters]
        n = self.jacobian_block.rows
        if names:
            values = [float(as_float_array(parameters[name], name)[0]) for name in names]
            matrix = np.asarray(self._cache["compiled"](*values), dtype=float).reshape(n, n)
        else:
            matrix = np.array(self.jacobian_block.evalf(30), dtype=float)
        vector = np.linalg.eigh(matrix)[1][:, -1]
        teacher = n - self.N.rows  # the block's first K* entries are M_a1..M_aK*
        return vector * np.sign(vector[np.argmax(np.abs(vector[:teacher]))])

    def tau(self, **parameters):
        """``τ = 1/λ_max`` in units of ``1/η`` (``inf`` without an unstable direction); float or array."""
        top = self.rates(**parameters)[..., -1]
        with np.errstate(divide="ignore"):
            tau = np.where(top > 0, 1 / np.where(top > 0, top, 1), np.inf)
        return float(tau) if tau.ndim == 0 else tau


def linearize(model) -> TwoLayerLinearization:
    """The :class:`TwoLayerLinearization` of a :class:`~symlora.TwoLayerLoRAModel`."""
    D = sp.Matrix(model.pretraining)
    Qs, Rs = covariance_symbols(model.hidden, model.teacher_hidden)
    Q0 = D * D.T
    at_point = {Qs[k, l]: Q0[k, l] for k in range(model.hidden) for l in range(model.hidden)}
    at_point.update({Rs[k, j]: D[k, j] for k in range(model.hidden) for j in range(model.teacher_hidden)})

    def tidy(e):
        e = e.xreplace(at_point)
        return sp.simplify(e) if sp.count_ops(e) < 200 else e

    A0 = model.expectation_matrix("A").applyfunc(tidy)
    B0 = model.expectation_matrix("B").applyfunc(tidy)
    N = (A0 * D + B0).applyfunc(tidy)
    c, _ = model.readouts
    Kt = model.teacher_hidden
    block = -c * sp.BlockMatrix([[sp.zeros(Kt, Kt), N.T], [N, A0]]).as_explicit()
    block = block.applyfunc(lambda e: sp.factor_terms(sp.expand(e)) if e.is_polynomial() else e)
    exact = all(is_exact(e) for e in block)
    return TwoLayerLinearization(sp.Matrix(block), A0, B0, N, model.parameters, exact)
