"""The reduced simulator as it was before numba: a numpy loop over steps.

Kept only as the baseline that ``bench_sgd.py`` measures in the same run as
the compiled chain (the issue asks for the ratio).  Not part of the package;
vectorised over runs, one Python iteration per step.
"""

import math

import numpy as np

_REDUCED_CHUNK = 2048


class _NoProgress:
    def update(self, done):
        pass

    def close(self):
        pass


class _Simulation:
    """Shared bookkeeping of both simulators: escape detection and records."""

    def __init__(self, *, model, general, rank, d, seeds, mu, mu_perp, eta, B, delta, threshold, m0, generators):
        self.general, self.rank, self.d, self.S = general, rank, d, seeds
        self.mu, self.mu_perp, self.eta, self.B = mu, mu_perp, eta, B
        self.noise_sd = math.sqrt(delta)
        self.threshold, self.m0 = threshold, m0
        self.generators = generators
        self.lr_step = eta / d
        self.sigma = model.student.numpy(0)
        self.dsigma = model.student.numpy(1)
        self.teacher = model.teacher.numpy(0)
        if rank == 2:
            self.names = ["m1", "m2", "u1", "u2", "q12"]
        else:
            self.names = ["m", "s", "u"] if general else ["m", "u"]
        self.records = {n: [] for n in [*self.names, "v_norm"]}
        self.times = []
        self.escape = np.full(seeds, np.inf)
        self.status = np.full(seeds, "censored", dtype=object)
        self.active = np.ones(seeds, dtype=bool)

    def gradient_factor(self, lam, nu, xi):
        """``g = (σ(λ) - y) σ'(λ)``, ``dloss/dλ`` per sample."""
        y = self.teacher(nu)
        if xi is not None:
            y = y + self.noise_sd * xi
        return (self.sigma(lam) - y) * self.dsigma(lam)

    def record(self, step, values):
        self.times.append(step / self.d)
        for name, value in values.items():
            self.records[name].append(np.array(value, dtype=float))

    def run(self, runner, steps, record_every, stop_at_escape, progress):
        self.record(0, runner.statistics())
        step = 0
        try:
            while step < steps:
                n_now = runner.draw(min(runner.chunk, steps - step))
                for k in range(n_now):
                    runner.step(k)
                    step += 1
                    m_now = np.abs(runner.overlap())
                    hit = self.active & (m_now >= self.threshold)
                    if hit.any():
                        self.escape[hit] = step / self.d
                        self.status[hit] = "escaped"
                        self.active &= ~hit
                    bad = self.active & ~runner.finite()
                    if bad.any():
                        self.status[bad] = "diverged"
                        self.active &= ~bad
                    if step % record_every == 0:
                        self.record(step, runner.statistics())
                    if stop_at_escape and not self.active.any():
                        break
                progress.update(step)
                if stop_at_escape and not self.active.any():
                    break
        finally:
            progress.close()
            runner.close()
        if step % record_every:
            self.record(step, runner.statistics())
        return step



class _ReducedRunner:
    """The exact-in-law simulation in the frame of the state (module notes).

    Coordinates: ``F`` fixed directions (``w*``, and ``w⊥`` for general
    pre-training) and an ``r``-dimensional moving orthonormal frame spanning
    the parts of ``v_1 .. v_r`` orthogonal to them; ``C[s, a]`` holds the
    ``F + r`` coordinates of ``v_a`` (lower-triangular in the moving part).
    """

    def __init__(self, sim):
        self.sim = sim
        S, d = sim.S, sim.d
        self.r = sim.rank
        self.F = 2 if sim.general else 1
        self.k = self.F + self.r
        # hidden coordinates left after the frame: their contribution has norm² |g|² χ²_{dof}
        self.dof = d - self.k
        self.C = np.zeros((S, self.r, self.k))
        for s, g in enumerate(sim.generators):
            self.C[s] = self._initial_coordinates(g)
        self.U = np.zeros((S, self.r))
        self.chunk = _REDUCED_CHUNK
        self.Y = np.empty((S, self.chunk, sim.B, self.k))
        self.chi2 = np.zeros((S, self.chunk))
        self.xi = np.empty((S, self.chunk, sim.B)) if sim.noise_sd > 0 else None

    def _initial_coordinates(self, g):
        """Uniform directions drawn in the same law as the full simulator's."""
        sim, F, r = self.sim, self.F, self.r
        hidden = sim.d - F  # dimension of the complement of the fixed directions
        # v_a ∝ a standard normal vector: its fixed coordinates are normals and the
        # complement parts of the r vectors have the Gram matrix built below
        fixed = g.standard_normal((r, F))
        if sim.m0 is not None:
            fixed[:, 0] = 0.0
        # the complement parts of r isotropic vectors in R^hidden: Bartlett-style
        # factor of their Gram matrix (r <= 2)
        L = np.zeros((r, r))
        L[0, 0] = math.sqrt(g.chisquare(hidden))
        if r == 2:
            L[1, 0] = g.standard_normal()
            L[1, 1] = math.sqrt(g.chisquare(hidden - 1)) if hidden > 1 else 0.0
        C = np.concatenate([fixed, L], axis=1)
        C /= np.linalg.norm(C, axis=1, keepdims=True)
        if sim.m0 is not None:
            C[:, 1:] *= math.sqrt(1 - sim.m0**2)
            C[:, 0] = sim.m0
        return C

    def draw(self, n):
        sim = self.sim
        for s, g in enumerate(sim.generators):
            g.standard_normal(out=self.Y[s, :n])
            if self.dof > 0:
                self.chi2[s, :n] = g.chisquare(self.dof, size=n)
            if self.xi is not None:
                g.standard_normal(out=self.xi[s, :n])
        return n

    def step(self, k):
        sim, F, r = self.sim, self.F, self.r
        Yk = self.Y[:, k]  # (S, B, F + r): coordinates of x in the frame, i.i.d. N(0, 1)
        Z = Yk @ self.C.transpose(0, 2, 1)  # ζ_a, (S, B, r)
        nu = Yk[:, :, 0]
        lam = sim.mu * nu + (Z @ self.U[:, :, None])[:, :, 0]
        if sim.general:
            lam += sim.mu_perp * Yk[:, :, 1]
        g = sim.gradient_factor(lam, nu, None if self.xi is None else self.xi[:, k])
        grad_u = (g[:, None, :] @ Z)[:, 0, :] / sim.B
        coef = (-sim.lr_step / sim.B) * self.U  # (S, r)
        gy = (g[:, None, :] @ Yk)[:, 0, :]  # Σ_b g_b x_b in the frame, (S, F + r)
        # the hidden part of Σ_b g_b x_b: a new direction of norm |g| sqrt(χ²)
        hidden = np.sqrt(np.einsum("sb,sb->s", g, g) * self.chi2[:, k])
        new = np.empty((sim.S, r, F + r + 1))
        new[:, :, : F + r] = self.C + coef[:, :, None] * gy[:, None, :]
        new[:, :, F + r] = coef * hidden[:, None]
        new /= np.linalg.norm(new, axis=2, keepdims=True)
        self.C[:, :, :F] = new[:, :, :F]
        moving = new[:, :, F:]  # (S, r, r + 1): re-express in a new r-frame
        if r == 1:
            self.C[:, 0, F] = np.linalg.norm(moving[:, 0], axis=1)
        else:
            # moving = L Q^T with L lower-triangular: QR of its transpose
            R = np.linalg.qr(moving.transpose(0, 2, 1), mode="r")
            self.C[:, :, F:] = R.transpose(0, 2, 1)
        self.U -= sim.lr_step * grad_u

    def overlap(self):
        return self.C[:, 0, 0]

    def finite(self):
        return np.isfinite(self.U).all(axis=1) & np.isfinite(self.C[:, :, 0]).all(axis=1)

    def statistics(self):
        C, U = self.C, self.U
        norms = np.linalg.norm(C, axis=2)
        v_norm = norms[np.arange(self.sim.S), np.argmax(np.abs(norms - 1), axis=1)]
        if self.r == 2:
            return {"m1": C[:, 0, 0], "m2": C[:, 1, 0], "u1": U[:, 0], "u2": U[:, 1],
                    "q12": np.einsum("sk,sk->s", C[:, 0], C[:, 1]), "v_norm": v_norm}
        values = {"m": C[:, 0, 0], "u": U[:, 0], "v_norm": v_norm}
        if self.sim.general:
            values["s"] = C[:, 0, 1]
        return values

    def close(self):
        pass


def run_numpy_reduced(model, mu, d, steps, seeds, seed=0, lr=1.0):
    """Advance ``seeds`` runs by ``steps`` steps (no early stop); returns the overlaps."""
    generators = [np.random.default_rng(c) for c in np.random.SeedSequence(seed).spawn(seeds)]
    sim = _Simulation(model=model, general=False, rank=1, d=d, seeds=seeds, mu=mu, mu_perp=0.0, eta=lr, B=1,
                      delta=0.0, threshold=0.999, m0=None, generators=generators)
    runner = _ReducedRunner(sim)
    sim.run(runner, steps, steps, False, _NoProgress())
    return runner.overlap()
