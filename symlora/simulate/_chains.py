r"""The Markov chains of one SGD run, as plain Python that numba compiles.

This file is not imported as it stands: :mod:`symlora.simulate._compile`
copies it into a generated module after the model's activations ``sigma``,
``dsigma`` (the student and its derivative) and ``teacher``, printed from
their SymPy expressions by :func:`symlora._codegen.scalar_function_source`,
and compiles :func:`run_reduced` and :func:`run_full` there with
``numba.njit(cache=True, nogil=True)``.  Keeping the loops in an ordinary
file keeps them readable and testable; generating only the activations
keeps one code generator.

Both chains advance ONE run from its own ``numpy.random.Generator`` (so a
run never depends on which runs or how many threads advance with it) and
share the bookkeeping:

* ``records[i]`` receives the statistics at step ``i * record_every`` for
  every record up to the step the run stopped at; ``final`` receives them
  at that step.  The caller freezes later records at ``final``.
* The run stops at its escape (``|m| >= threshold``; rank 2: ``|m1|``) when
  ``stop_at_escape``, at the horizon, or when its state stops being finite
  (divergence: a blown-up run is not a censored one).
* The return value is ``(escape_step, diverge_step, stop_step)`` with ``-1``
  for an event that did not happen.

Statistics, in order: rank 1 ``m, u, v_norm`` (general pre-training
``m, s, u, v_norm``); rank 2 ``m1, m2, u1, u2, q12, v_norm`` (``v_norm``:
of ``|v_1|``, ``|v_2|`` the one farther from 1).
"""

import math

import numpy as np


def _write_statistics(out, m, s, u, m2, u2, q12, norm1, norm2, r, general):
    """Store one record in the order documented in the module notes."""
    if r == 2:
        out[0] = m
        out[1] = m2
        out[2] = u
        out[3] = u2
        out[4] = q12
        out[5] = norm1 if abs(norm1 - 1.0) >= abs(norm2 - 1.0) else norm2
    elif general:
        out[0] = m
        out[1] = s
        out[2] = u
        out[3] = norm1
    else:
        out[0] = m
        out[1] = u
        out[2] = norm1


def _gradient_factor(lam, nu, noise):
    """``g = (σ(λ) - y) σ'(λ)`` with ``y = σ*(ν) + noise``: ``dloss/dλ``."""
    return (sigma(lam) - (teacher(nu) + noise)) * dsigma(lam)  # noqa: F821 - defined by the generated module


# ------------------------------------------------------------------ reduced


def _chi_square(rng, dof, shape_third, inv_sqrt):
    """One draw of ``χ²_dof`` (exact, a rejection sampler).

    Marsaglia & Tsang (2000), "A simple method for generating gamma
    variables": ``χ²_dof = 2 Gamma(dof/2)``; with ``a = dof/2 >= 1``,
    ``dd = a - 1/3`` (``shape_third``) and ``c = 1/sqrt(9 dd)``
    (``inv_sqrt``), accept ``dd (1 + c x)³`` for a standard normal ``x``
    with the test below.  It is the method numpy uses; the constants are
    computed once per run instead of once per draw, which halves the cost
    of a reduced step.  Fewer than two degrees of freedom go to numpy's
    sampler.
    """
    if dof < 2.0:
        return rng.chisquare(dof)
    while True:
        x = rng.standard_normal()
        v = 1.0 + inv_sqrt * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = rng.random()
        if u < 1.0 - 0.0331 * (x * x) * (x * x):
            return 2.0 * shape_third * v
        if math.log(u) < 0.5 * x * x + shape_third * (1.0 - v + math.log(v)):
            return 2.0 * shape_third * v


def _reduced_statistics(C, U, r, F, general, out):
    norm1 = math.sqrt(np.sum(C[0] * C[0]))
    if r == 2:
        norm2 = math.sqrt(np.sum(C[1] * C[1]))
        q12 = np.sum(C[0] * C[1])
        _write_statistics(out, C[0, 0], 0.0, U[0], C[1, 0], U[1], q12, norm1, norm2, r, general)
    else:
        s = C[0, 1] if general else 0.0
        _write_statistics(out, C[0, 0], s, U[0], 0.0, 0.0, 0.0, norm1, 1.0, r, general)


def run_reduced(rng, d, mu, mu_perp, general, r, B, lr_step, noise_sd, threshold, m0, has_m0, horizon,
                record_every, stop_at_escape, records, final):
    """One run of the exact-in-law reduced chain (see :mod:`symlora.simulate`).

    Coordinates: ``F`` fixed directions (``w*``; general pre-training also
    ``w⊥``) and ``r`` moving orthonormal directions spanning the parts of
    ``v_1 .. v_r`` orthogonal to them; ``C[a]`` holds the ``F + r``
    coordinates of ``v_a``, lower-triangular in the moving part.  A step
    draws the input's ``F + r`` frame coordinates per batch sample (i.i.d.
    ``N(0, 1)``) and one chi-square with ``d - F - r`` degrees of freedom:
    the squared norm of the new direction the remaining coordinates add.
    """
    F = 2 if general else 1
    k = F + r
    dof = float(d - k)
    shape_third = max(dof / 2.0 - 1.0 / 3.0, 1.0)
    inv_sqrt = 1.0 / math.sqrt(9.0 * shape_third)
    C = np.zeros((r, k))
    U = np.zeros(r)
    # initial directions: uniform on the sphere (given v·w* = m0 if has_m0);
    # Bartlett factor of the Gram matrix of the parts orthogonal to the fixed directions
    for a in range(r):
        for j in range(F):
            C[a, j] = rng.standard_normal()
        if has_m0:
            C[a, 0] = 0.0
    hidden = d - F
    C[0, F] = math.sqrt(rng.chisquare(hidden))
    if r == 2:
        C[1, F] = rng.standard_normal()
        C[1, F + 1] = math.sqrt(rng.chisquare(hidden - 1)) if hidden > 1 else 0.0
    for a in range(r):
        norm = math.sqrt(np.sum(C[a] * C[a]))
        for j in range(k):
            C[a, j] /= norm
        if has_m0:
            scale = math.sqrt(1.0 - m0 * m0)
            for j in range(1, k):
                C[a, j] *= scale
            C[a, 0] = m0

    Y = np.empty((B, k))
    zeta = np.empty((B, r))
    g = np.empty(B)
    gy = np.empty(k)
    new = np.empty((r, k + 1))
    escape_step = -1
    diverge_step = -1
    step = 0
    next_record = record_every
    _reduced_statistics(C, U, r, F, general, records[0])
    while step < horizon:
        gg = 0.0
        for b in range(B):
            for j in range(k):
                Y[b, j] = rng.standard_normal()
            nu = Y[b, 0]
            lam = mu * nu
            if general:
                lam += mu_perp * Y[b, 1]
            for a in range(r):
                z = 0.0
                for j in range(k):
                    z += C[a, j] * Y[b, j]
                zeta[b, a] = z
                lam += U[a] * z
            noise = noise_sd * rng.standard_normal() if noise_sd > 0 else 0.0
            g[b] = _gradient_factor(lam, nu, noise)
            gg += g[b] * g[b]
        chi2 = _chi_square(rng, dof, shape_third, inv_sqrt) if dof > 0 else 0.0
        hidden_norm = math.sqrt(gg * chi2)
        for j in range(k):
            acc = 0.0
            for b in range(B):
                acc += g[b] * Y[b, j]
            gy[j] = acc
        for a in range(r):
            coef = -lr_step / B * U[a]
            norm2 = 0.0
            for j in range(k):
                new[a, j] = C[a, j] + coef * gy[j]
                norm2 += new[a, j] * new[a, j]
            new[a, k] = coef * hidden_norm
            norm2 += new[a, k] * new[a, k]
            inv_norm = 1.0 / math.sqrt(norm2)
            for j in range(k + 1):
                new[a, j] *= inv_norm
        for a in range(r):
            grad = 0.0
            for b in range(B):
                grad += g[b] * zeta[b, a]
            U[a] -= lr_step * grad / B
            for j in range(F):
                C[a, j] = new[a, j]
        # re-express the moving parts (r + 1 coordinates) in a new lower-triangular r-frame
        # (Cholesky of their Gram matrix); the direction left over rejoins the isotropic rest
        p0 = new[0, F]
        p1 = new[0, F + 1]
        p2 = new[0, F + 2] if r == 2 else 0.0
        l11 = math.sqrt(p0 * p0 + p1 * p1 + p2 * p2)
        C[0, F] = l11
        if r == 2:
            q0, q1, q2 = new[1, F], new[1, F + 1], new[1, F + 2]
            l21 = (p0 * q0 + p1 * q1 + p2 * q2) / l11
            C[0, F + 1] = 0.0
            C[1, F] = l21
            C[1, F + 1] = math.sqrt(max(q0 * q0 + q1 * q1 + q2 * q2 - l21 * l21, 0.0))
        step += 1
        # one test per direction: a sum is finite only if every term is (inf - inf is nan)
        finite = True
        for a in range(r):
            if not math.isfinite(U[a] + C[a, 0] + C[a, F]):
                finite = False
        if not finite:
            diverge_step = step
            break
        if escape_step < 0 and abs(C[0, 0]) >= threshold:
            escape_step = step
            if stop_at_escape:
                break
        if step == next_record:  # a comparison, not an integer division per step
            _reduced_statistics(C, U, r, F, general, records[step // record_every])
            next_record += record_every
    _reduced_statistics(C, U, r, F, general, final)
    return escape_step, diverge_step, step


# --------------------------------------------------------------------- full


def _full_statistics(W, alpha, U, r, general, out):
    inv0 = 1.0 / alpha[0]
    norm1 = 0.0
    for i in range(W.shape[1]):
        norm1 += (W[0, i] * inv0) ** 2
    norm1 = math.sqrt(norm1)
    if r == 2:
        inv1 = 1.0 / alpha[1]
        norm2 = 0.0
        q12 = 0.0
        for i in range(W.shape[1]):
            norm2 += (W[1, i] * inv1) ** 2
            q12 += (W[0, i] * inv0) * (W[1, i] * inv1)
        _write_statistics(out, W[0, 0] * inv0, 0.0, U[0], W[1, 0] * inv1, U[1], q12, norm1, math.sqrt(norm2),
                          r, general)
    else:
        s = W[0, 1] * inv0 if general else 0.0
        _write_statistics(out, W[0, 0] * inv0, s, U[0], 0.0, 0.0, 0.0, norm1, 1.0, r, general)


def run_full(rng, d, mu, mu_perp, general, r, B, lr_step, noise_sd, threshold, m0, has_m0, horizon,
             record_every, stop_at_escape, W, X, records, final):
    """One run of the literal ``d``-dimensional SGD.

    ``W`` (shape ``(r, d)``) and ``X`` (shape ``(B, d)``) are work arrays of
    the run's precision.  ``v_a = W[a] / alpha[a]`` with ``alpha[a] = |W[a]|``
    kept exact: the renormalisation ``v <- (v + c x)/|v + c x|`` becomes
    ``W <- W + alpha c x`` and a new ``alpha``, accumulated in the same pass,
    so a step costs the draw of ``x`` (fused with the dot products ``W·x``)
    and one pass for the update.
    """
    alpha = np.ones(r)
    U = np.zeros(r)
    for a in range(r):
        for i in range(d):
            W[a, i] = rng.standard_normal()
        if has_m0:
            W[a, 0] = 0.0
            norm2 = 0.0
            for i in range(d):
                norm2 += W[a, i] * W[a, i]
            scale = math.sqrt((1.0 - m0 * m0) / norm2)
            for i in range(d):
                W[a, i] *= scale
            W[a, 0] = m0
        norm2 = 0.0
        for i in range(d):
            norm2 += W[a, i] * W[a, i]
        alpha[a] = math.sqrt(norm2)
    zeta = np.empty((B, r))
    g = np.empty(B)
    coef = np.empty(B)
    escape_step = -1
    diverge_step = -1
    step = 0
    _full_statistics(W, alpha, U, r, general, records[0])
    while step < horizon:
        for b in range(B):
            # draw x_b and take its products with W in the same pass
            z0 = 0.0
            z1 = 0.0
            if r == 1:
                for i in range(d):
                    xi = rng.standard_normal()
                    X[b, i] = xi
                    z0 += W[0, i] * X[b, i]
            else:
                for i in range(d):
                    xi = rng.standard_normal()
                    X[b, i] = xi
                    z0 += W[0, i] * X[b, i]
                    z1 += W[1, i] * X[b, i]
            zeta[b, 0] = z0 / alpha[0]
            if r == 2:
                zeta[b, 1] = z1 / alpha[1]
            nu = float(X[b, 0])
            lam = mu * nu
            if general:
                lam += mu_perp * X[b, 1]
            for a in range(r):
                lam += U[a] * zeta[b, a]
            noise = noise_sd * rng.standard_normal() if noise_sd > 0 else 0.0
            g[b] = _gradient_factor(lam, nu, noise)
        for a in range(r):
            # v_a <- v_a - lr_step u_a (1/B) Σ_b g_b x_b, renormalised
            for b in range(B):
                coef[b] = -alpha[a] * lr_step / B * U[a] * g[b]
            norm2 = 0.0
            if B == 1:
                c0 = coef[0]
                for i in range(d):
                    w = W[a, i] + c0 * X[0, i]
                    W[a, i] = w
                    norm2 += W[a, i] * W[a, i]
            else:
                for i in range(d):
                    w = W[a, i]
                    for b in range(B):
                        w += coef[b] * X[b, i]
                    W[a, i] = w
                    norm2 += W[a, i] * W[a, i]
            alpha[a] = math.sqrt(norm2)
            if not 0.5 < alpha[a] < 2.0 and alpha[a] > 0:
                # keep W near unit length (no drift towards over- or underflow)
                inv = 1.0 / alpha[a]
                for i in range(d):
                    W[a, i] *= inv
                norm2 = 0.0
                for i in range(d):
                    norm2 += W[a, i] * W[a, i]
                alpha[a] = math.sqrt(norm2)
        for a in range(r):
            grad = 0.0
            for b in range(B):
                grad += g[b] * zeta[b, a]
            U[a] -= lr_step * grad / B
        step += 1
        finite = True
        for a in range(r):
            if not (math.isfinite(U[a]) and math.isfinite(alpha[a]) and alpha[a] > 0 and math.isfinite(W[a, 0])):
                finite = False
        if not finite:
            diverge_step = step
            break
        if escape_step < 0 and abs(W[0, 0] / alpha[0]) >= threshold:
            escape_step = step
            if stop_at_escape:
                break
        if step % record_every == 0:
            _full_statistics(W, alpha, U, r, general, records[step // record_every])
    _full_statistics(W, alpha, U, r, general, final)
    return escape_step, diverge_step, step
