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
* The run stops at its escape (``max_a |m_a| >= threshold``) when
  ``stop_at_escape``, at the horizon, or when its state stops being finite
  (divergence: a blown-up run is not a censored one).
* The return value is ``(escape_step, diverge_step, stop_step)`` with ``-1``
  for an event that did not happen.

Statistics, in the order of the model's states (:mod:`symlora._statistics`):
``m_1 .. m_r``, (general pre-training) ``s_1 .. s_r``, ``u_1 .. u_r``, the
``q_ab`` for ``a < b`` in lexicographic order, then ``v_norm`` (of the
``|v_a|`` the one farthest from 1).  Every loop runs over the ``r``
directions: no rank has code of its own.
"""

import math

import numpy as np


def _write_statistics(out, M, S, U, G, norms, r, general):
    """Store one record in the order documented in the module notes.

    ``M``, ``S``, ``U``: per direction ``v_a·w*``, ``v_a·w⊥``, ``u_a``;
    ``G``: the Gram matrix ``v_a·v_b``; ``norms``: ``|v_a|``.
    """
    k = 0
    for a in range(r):
        out[k] = M[a]
        k += 1
    if general:
        for a in range(r):
            out[k] = S[a]
            k += 1
    for a in range(r):
        out[k] = U[a]
        k += 1
    for a in range(r):
        for b in range(a + 1, r):
            out[k] = G[a, b]
            k += 1
    worst = 1.0
    for a in range(r):
        if abs(norms[a] - 1.0) >= abs(worst - 1.0):
            worst = norms[a]
    out[k] = worst


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
    k = C.shape[1]
    G = np.empty((r, r))
    for a in range(r):
        for b in range(r):
            acc = 0.0
            for j in range(k):
                acc += C[a, j] * C[b, j]
            G[a, b] = acc
    norms = np.empty(r)
    for a in range(r):
        norms[a] = math.sqrt(G[a, a])
    _write_statistics(out, C[:, 0], C[:, 1] if general else C[:, 0], U, G, norms, r, general)


def _largest_overlap(C, r):
    """``max_a |m_a|``: the escape statistic (the best-aligned direction escapes first)."""
    largest = 0.0
    for a in range(r):
        largest = max(largest, abs(C[a, 0]))
    return largest


def run_reduced(rng, d, mu, mu_perp, sizes, lr_step, noise_sd, threshold, m0, has_m0, horizon, record_every,
                stop_at_escape, records, final):
    """One run of the exact-in-law reduced chain (see :mod:`symlora.simulate`).

    Coordinates: ``F`` fixed directions (``w*``; general pre-training also
    ``w⊥``) and ``r`` moving orthonormal directions spanning the parts of
    ``v_1 .. v_r`` orthogonal to them; ``C[a]`` holds the ``F + r``
    coordinates of ``v_a``, lower-triangular in the moving part.  A step
    draws the input's ``F + r`` frame coordinates per batch sample (i.i.d.
    ``N(0, 1)``) and one chi-square with ``d - F - r`` degrees of freedom:
    the squared norm of the new direction the remaining coordinates add.

    ``sizes = (r_marker, F_marker, B_marker)`` gives ``r``, ``F`` and the
    batch ``B`` as the LENGTHS of three tuples, and ``noise_sd`` is ``None``
    without label noise: numba compiles one specialisation per tuple type
    and optional type, in which the loop bounds are constants and the
    noise branch is gone (about 1.2-1.4x faster per step than run-time
    sizes; ``benchmarks/bench_reduced_chain.py``).  The arithmetic and the
    order of the draws do not depend on it.
    """
    r, F, B = len(sizes[0]), len(sizes[1]), len(sizes[2])
    general = F == 2
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
    # (Bartlett: the Cholesky factor of a Gaussian r x hidden matrix's Gram has
    # chi diagonal entries with hidden, hidden - 1, ... degrees of freedom and
    # standard normal entries below the diagonal)
    hidden = d - F
    for a in range(r):
        for j in range(a):
            C[a, F + j] = rng.standard_normal()
        C[a, F + a] = math.sqrt(rng.chisquare(hidden - a)) if hidden > a else 0.0
    for a in range(r):
        norm = math.sqrt(np.sum(C[a] * C[a]))
        for j in range(k):
            C[a, j] /= norm
        if has_m0:
            scale = math.sqrt(1.0 - m0 * m0)
            for j in range(1, k):
                C[a, j] *= scale
            C[a, 0] = m0

    y = np.empty(k)
    zeta = np.empty(r)
    gy = np.empty(k)
    grad = np.empty(r)
    new = np.empty((r, k + 1))
    L = np.zeros((r, r))
    escape_step = -1
    diverge_step = -1
    step = 0
    next_record = record_every
    _reduced_statistics(C, U, r, F, general, records[0])
    while step < horizon:
        # the batch sums g·y, g·ζ_a and g² accumulate sample by sample: no per-sample arrays
        gg = 0.0
        for j in range(k):
            gy[j] = 0.0
        for a in range(r):
            grad[a] = 0.0
        for b in range(B):
            for j in range(k):
                y[j] = rng.standard_normal()
            nu = y[0]
            lam = mu * nu
            if general:
                lam += mu_perp * y[1]
            for a in range(r):
                z = 0.0
                for j in range(k):
                    z += C[a, j] * y[j]
                zeta[a] = z
                lam += U[a] * z
            noise = 0.0 if noise_sd is None else noise_sd * rng.standard_normal()
            g = _gradient_factor(lam, nu, noise)
            gg += g * g
            for j in range(k):
                gy[j] += g * y[j]
            for a in range(r):
                grad[a] += g * zeta[a]
        chi2 = _chi_square(rng, dof, shape_third, inv_sqrt) if dof > 0 else 0.0
        hidden_norm = math.sqrt(gg * chi2)
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
            U[a] -= lr_step * grad[a] / B
            for j in range(F):
                C[a, j] = new[a, j]
        # re-express the moving parts (r + 1 coordinates) in a new lower-triangular r-frame
        # (Cholesky of their Gram matrix); the direction left over rejoins the isotropic rest
        for a in range(r):
            for b in range(a + 1):
                acc = 0.0
                for j in range(F, k + 1):
                    acc += new[a, j] * new[b, j]
                for c in range(b):
                    acc -= L[a, c] * L[b, c]
                if a == b:
                    L[a, a] = math.sqrt(max(acc, 0.0))
                else:
                    L[a, b] = acc / L[b, b] if L[b, b] > 0.0 else 0.0
        for a in range(r):
            for b in range(r):
                C[a, F + b] = L[a, b] if b <= a else 0.0
        step += 1
        # one test per direction: a sum is finite only if every term is (inf - inf is nan)
        finite = True
        for a in range(r):
            if not math.isfinite(U[a] + C[a, 0] + C[a, F]):
                finite = False
        if not finite:
            diverge_step = step
            break
        if escape_step < 0 and _largest_overlap(C, r) >= threshold:
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
    G = np.empty((r, r))
    for a in range(r):
        for b in range(a, r):
            acc = 0.0
            for i in range(W.shape[1]):
                acc += W[a, i] * W[b, i]
            G[a, b] = G[b, a] = acc / (alpha[a] * alpha[b])
    norms = np.empty(r)
    M = np.empty(r)
    S = np.zeros(r)
    for a in range(r):
        norms[a] = math.sqrt(G[a, a])
        M[a] = W[a, 0] / alpha[a]
        if general:
            S[a] = W[a, 1] / alpha[a]
    _write_statistics(out, M, S, U, G, norms, r, general)


def run_full(rng, d, mu, mu_perp, general, r, B, lr_step, noise_sd, threshold, m0, has_m0, horizon,
             record_every, stop_at_escape, W, X, records, final):
    """One run of the literal ``d``-dimensional SGD.

    ``W`` (shape ``(r, d)``) and ``X`` (shape ``(B, d)``) are work arrays of
    the run's precision.  ``v_a = W[a] / alpha[a]`` with ``alpha[a] = |W[a]|``
    kept exact: the renormalisation ``v <- (v + c x)/|v + c x|`` becomes
    ``W <- W + alpha c x`` and a new ``alpha``, accumulated in the same pass,
    so a step costs the draw of ``x``, the dot products ``W·x``
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
            # draw x_b, then one product with each direction (a scalar accumulator per
            # direction keeps the inner loop a plain dot product)
            for i in range(d):
                X[b, i] = rng.standard_normal()
            for a in range(r):
                acc = 0.0
                for i in range(d):
                    acc += W[a, i] * X[b, i]
                zeta[b, a] = acc / alpha[a]
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
        largest = 0.0
        for a in range(r):
            largest = max(largest, abs(W[a, 0] / alpha[a]))
        if escape_step < 0 and largest >= threshold:
            escape_step = step
            if stop_at_escape:
                break
        if step % record_every == 0:
            _full_statistics(W, alpha, U, r, general, records[step // record_every])
    _full_statistics(W, alpha, U, r, general, final)
    return escape_step, diverge_step, step
