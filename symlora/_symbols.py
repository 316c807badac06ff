"""The symbols of docs/theory.md §1.6, defined once.

States (summary statistics): ``m = v·w*``, ``u`` (adapter scale); general
pre-training adds ``s = v·w⊥``; rank ``r`` numbers them (``m1 .. mr``, ``u1 ..``,
``q12 = v1·v2``, ...: built by :mod:`symlora._statistics`; those of rank 2 are here too).
Parameters: ``mu`` (pre-training strength), ``mu_perp`` (orthogonal part of
the pre-trained weight), ``eta`` (learning rate ``lr = eta/d``), ``B`` (batch
size), ``Delta`` (label-noise variance).
Gaussian fields: ``nu = w*·x``, ``zeta = v·x``, ``lam = w·x``, ``xi_perp = w⊥·x``.
"""

import sympy as sp

m, u, s = sp.symbols("m u s", real=True)
m1, m2, u1, u2, q12 = sp.symbols("m1 m2 u1 u2 q12", real=True)
mu = sp.Symbol("mu", positive=True)
mu_perp = sp.Symbol("mu_perp", nonnegative=True)
eta = sp.Symbol("eta", positive=True)
B = sp.Symbol("B", positive=True)
Delta = sp.Symbol("Delta", nonnegative=True)

nu, zeta, lam = sp.symbols("nu zeta lambda", real=True)
zeta1, zeta2, xi_perp = sp.symbols("zeta1 zeta2 xi_perp", real=True)
Q = sp.Symbol("Q", positive=True)
R = sp.Symbol("R", real=True)
#: Q - R**2 = |w_perp|^2, the squared norm of the part of w orthogonal to w*.
P = sp.Symbol("P", nonnegative=True)
