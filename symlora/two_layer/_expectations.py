r"""The Gaussian expectations of the two-layer ODE, from symlora's single engine.

Every expectation the two-layer ODE needs is a product of functions of at
most four local fields (``λ_k, λ_l, λ_m, λ_n`` or ``λ_k, λ_l, ν_i, ν_j``)
whose covariance is made of ``Q_kl = Cov(λ_k, λ_l)``, ``R_kj = Cov(λ_k, ν_j)``
and ``Cov(ν_i, ν_j) = δ_ij``.  Many of them share one *shape* (the same
functions on fields of the same kinds, only the indices differ), so each shape
is derived once by :func:`symlora.gaussian_expectation` on a generic
covariance and then renamed: a ``K = 4`` committee needs a few dozen
derivations instead of hundreds.

With the error ``e0 = c Σ_k σ(λ_k) - c* Σ_j σ*(ν_j)`` of the noise-free
network (``c``, ``c*`` the readouts) and ``F_k = e0 σ'(λ_k)``, the ODE
needs (see :mod:`symlora.two_layer._ode`)

.. math::

    A_{kl} = E[∂_{λ_l} F_k] = c E[σ'_k σ'_l] + δ_{kl} E[e_0 σ''_k],\qquad
    B_{kj} = E[∂_{ν_j} F_k] = -c^* E[σ^{*\prime}_j σ'_k],

    H_{kl} = E[e_0^2 σ'_k σ'_l] + Δ E[σ'_k σ'_l].
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import sympy as sp

from .. import _diskcache
from .._expectation import gaussian_expectation

__all__ = ["ExpectationTables", "field_expectation"]

_TEMPLATES: dict = {}


def _generic_covariance(kinds):
    """Generic covariance of fields of the given kinds ('lambda' or 'nu'), and its symbols."""
    n = len(kinds)
    cov = sp.zeros(n, n)
    generic = {}
    for i in range(n):
        for j in range(i, n):
            if kinds[i] == "nu" and kinds[j] == "nu":
                cov[i, j] = cov[j, i] = sp.S.One if i == j else sp.S.Zero
                continue
            symbol = sp.Symbol(f"c{i}{j}", positive=True) if i == j else sp.Symbol(f"c{i}{j}", real=True)
            cov[i, j] = cov[j, i] = symbol
            generic[(i, j)] = symbol
    return sp.ImmutableMatrix(cov), generic


#: The modules a shape's closed form depends on: the engine and this file.  Their source is part of
#: the disk key, so editing them never reads a stale result (other edits keep the cache valid).
_ENGINE_FILES = ("_expectation.py", "_closed_forms.py", "_node.py", "_integrability.py", "_validate.py", "two_layer/_expectations.py")


def _engine_fingerprint() -> str:
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for name in _ENGINE_FILES:
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def _derive_template(integrand, variables, cov, kinds):
    """The engine's closed form of one shape, kept on disk (a four-field erf shape takes a minute or more)."""
    disk_key = [_diskcache.FORMAT, _engine_fingerprint(), sp.__version__, "two-layer expectation",
                sp.srepr(integrand), list(kinds)]
    value = _diskcache.load(disk_key)
    if value is None:
        value = gaussian_expectation(integrand, variables, cov)
        _diskcache.store(disk_key, value)
    return value


def field_expectation(factors, Q, R) -> sp.Expr:
    """``E[Π f(field)]`` for ``factors = [(kind, index, f), ...]``.

    ``kind`` is ``"lambda"`` (student field ``λ_index``) or ``"nu"`` (teacher
    field ``ν_index``), ``f`` a function of a SymPy symbol.  The result is in
    the covariance symbols ``Q``, ``R`` (matrices of symbols).
    """
    per_field: dict = {}
    for kind, index, f in factors:
        per_field.setdefault((kind, index), []).append(f)
    placeholder = sp.Symbol("x_field", real=True)
    shapes = []
    for (kind, index), fs in per_field.items():
        body = sp.Mul(*[f(placeholder) for f in fs])
        shapes.append((0 if kind == "lambda" else 1, sp.srepr(body), kind, index, body))
    shapes.sort(key=lambda item: item[:2])
    kinds = tuple(item[2] for item in shapes)
    bodies = tuple(item[4] for item in shapes)
    key = (kinds, bodies)
    if key not in _TEMPLATES:
        variables = [sp.Symbol(f"X{i}", real=True) for i in range(len(shapes))]
        cov, generic = _generic_covariance(kinds)
        integrand = sp.Mul(*[body.xreplace({placeholder: v}) for body, v in zip(bodies, variables)])
        _TEMPLATES[key] = (_derive_template(integrand, variables, cov, kinds), generic)
    template, generic = _TEMPLATES[key]

    def actual(i, j):
        (ki, ii), (kj, jj) = (shapes[i][2], shapes[i][3]), (shapes[j][2], shapes[j][3])
        if ki == "lambda" and kj == "lambda":
            return Q[ii, jj]
        return R[ii, jj] if ki == "lambda" else R[jj, ii]

    return template.xreplace({symbol: actual(i, j) for (i, j), symbol in generic.items()})


class ExpectationTables:
    """The matrices ``A``, ``B``, ``H`` of the module docstring, in ``Q``, ``R`` and ``Δ``.

    Parameters
    ----------
    student, teacher : symlora.Activation
    readout, teacher_readout : sympy.Expr
        ``c`` and ``c*``.
    Q, R : sympy.Matrix
        Covariance symbols (``K × K`` and ``K × K*``).
    noise : sympy.Expr
        ``Δ``.
    """

    def __init__(self, student, teacher, readout, teacher_readout, Q, R, noise):
        self.K, self.Kt = R.shape
        self.sigma = lambda order: (lambda x: student.derivative_at(x, order) if order else student(x))
        self.teacher = lambda order: (lambda x: teacher.derivative_at(x, order) if order else teacher(x))
        self.c, self.ct, self.Q, self.R, self.noise = readout, teacher_readout, Q, R, noise

    def _E(self, *factors):
        return field_expectation(factors, self.Q, self.R)

    def _error_times(self, extra):
        """``E[e0 · Π extra]``: the error is a sum over student and teacher units."""
        s, t = self.sigma, self.teacher
        total = sp.Add(*[self.c * self._E(("lambda", m, s(0)), *extra) for m in range(self.K)])
        return total - sp.Add(*[self.ct * self._E(("nu", j, t(0)), *extra) for j in range(self.Kt)])

    def _error_squared_times(self, extra):
        """``E[e0² · Π extra]``, each unordered pair of units once."""
        s, t, c, ct = self.sigma, self.teacher, self.c, self.ct
        units = [("lambda", m, s(0), c) for m in range(self.K)] + [("nu", j, t(0), -ct) for j in range(self.Kt)]
        total = sp.S.Zero
        for (i, first), (j, second) in itertools.combinations_with_replacement(enumerate(units), 2):
            weight = first[3] * second[3] * (1 if i == j else 2)
            total += weight * self._E(first[:3], second[:3], *extra)
        return total

    def slope_products(self):
        """``E[σ'_k σ'_l]``, a symmetric ``K × K`` matrix."""
        d = self.sigma(1)
        return sp.Matrix(self.K, self.K, lambda k, l: self._E(("lambda", k, d), ("lambda", l, d)))

    def A(self):
        """``A_kl = E[∂_{λ_l} F_k]``."""
        S = self.slope_products()
        curvature = [self._error_times([("lambda", k, self.sigma(2))]) for k in range(self.K)]
        return sp.Matrix(self.K, self.K, lambda k, l: self.c * S[k, l] + (curvature[k] if k == l else 0))

    def B(self):
        """``B_kj = E[∂_{ν_j} F_k]``."""
        return sp.Matrix(self.K, self.Kt, lambda k, j: -self.ct * self._E(("nu", j, self.teacher(1)),
                                                                          ("lambda", k, self.sigma(1))))

    def H(self):
        """``H_kl = E[e0² σ'_k σ'_l] + Δ E[σ'_k σ'_l]`` (the squared gradient of the drag)."""
        d = self.sigma(1)
        S = self.slope_products() if self.noise != 0 else sp.zeros(self.K, self.K)
        H = sp.zeros(self.K, self.K)
        for k in range(self.K):
            for l in range(k, self.K):
                H[k, l] = H[l, k] = self._error_squared_times([("lambda", k, d), ("lambda", l, d)]) + self.noise * S[k, l]
        return H
