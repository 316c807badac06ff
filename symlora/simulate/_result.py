"""The result of a batch of SGD runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .._display import latex_text
__all__ = ["SGDResult"]


@dataclass(frozen=True)
class SGDResult:
    """Recorded trajectories and escape times of a batch of SGD runs.

    Attributes
    ----------
    t : numpy.ndarray
        Recorded times ``steps/d``, shape ``(nt,)``.
    stats : mapping
        ``"m"``, ``"u"`` (general pre-training: also ``"s" = v·w⊥``; rank 2:
        ``"m1", "m2", "u1", "u2", "q12"``) and ``"v_norm"`` (``|v|``, rank 2
        the larger deviation of ``|v_1|``, ``|v_2|`` from 1) -> arrays of shape
        ``(seeds, nt)``.  After a run stops (escaped with
        ``stop_at_escape``, or diverged) its values are frozen at its last
        state.
    escape_time : numpy.ndarray
        Per run, the first time ``|m|`` (rank 2: ``|m1|``) reaches
        ``threshold``; ``inf`` when not reached.
    status : numpy.ndarray of str
        Per run: ``"escaped"``, ``"censored"`` (the horizon came first: a run
        stuck on a plateau below the threshold is censored, not slow) or
        ``"diverged"`` (its state stopped being finite before it escaped: a
        blown-up run, neither escaped nor censored).
    diverge_time : numpy.ndarray
        Per run, the time ``step/d`` of the first step with a non-finite
        state; ``inf`` for runs that stayed finite.  A run stops there.
    seed : int
        Entropy of the :class:`numpy.random.SeedSequence` (pass it back as
        ``seed`` to reproduce the runs).
    d, mu, mu_perp, lr, batch, noise, threshold : numbers
        The settings of the runs (``lr`` is ``η``; the step size is ``η/d``).
    steps : int
        Steps actually taken (fewer than the horizon when every run escaped).
    horizon : int
        Steps allowed.
    method : str
        ``"full"`` or ``"reduced"``.
    record_every : int
        Steps between records.
    """

    t: np.ndarray
    stats: MappingProxyType
    escape_time: np.ndarray
    status: np.ndarray
    diverge_time: np.ndarray
    seed: int
    d: int
    mu: float
    mu_perp: float
    lr: float
    batch: int
    noise: float
    threshold: float
    steps: int
    horizon: int
    method: str
    record_every: int
    settings: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def m(self) -> np.ndarray:
        """Overlap ``v·w*`` (rank 2: ``m1``), shape ``(seeds, nt)``."""
        return self.stats["m1"] if "m1" in self.stats else self.stats["m"]

    @property
    def u(self) -> np.ndarray:
        """Adapter scale ``u`` (rank 2: ``u1``), shape ``(seeds, nt)``."""
        return self.stats["u1"] if "u1" in self.stats else self.stats["u"]

    @property
    def n_seeds(self) -> int:
        """Number of runs."""
        return int(self.escape_time.size)

    @property
    def escaped(self) -> np.ndarray:
        """Boolean mask of the runs that escaped."""
        return self.status == "escaped"

    @property
    def censored(self) -> int:
        """Number of censored runs (the horizon came before the threshold)."""
        return int(np.sum(self.status == "censored"))

    @property
    def diverged(self) -> int:
        """Number of diverged runs (non-finite state before escaping)."""
        return int(np.sum(self.status == "diverged"))

    @property
    def v_norm_error(self) -> float:
        """``max | |v| - 1 |`` over runs and records of runs that stayed finite."""
        finite = self.status != "diverged"
        if not finite.any():
            return float("nan")
        return float(np.max(np.abs(self.stats["v_norm"][finite] - 1)))

    def __repr__(self):
        return (
            f"SGDResult(method={self.method!r}, d={self.d}, mu={self.mu}, lr={self.lr}, batch={self.batch}, "
            f"seeds={self.n_seeds}, escaped={int(self.escaped.sum())}, censored={self.censored}, "
            f"diverged={self.diverged}, "
            f"steps={self.steps})"
        )

    def _repr_latex_(self):
        return latex_text(repr(self))
