"""The result of a batch of SGD runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .._display import latex_text
__all__ = ["SGDResult", "RunOutcomes"]


class RunOutcomes:
    """Counts of the outcomes of a batch of runs, from its ``status`` and ``escape_time`` arrays.

    Shared by the results of every simulator (single-index and two-layer).
    """

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


@dataclass(frozen=True)
class SGDResult(RunOutcomes):
    """Recorded trajectories and escape times of a batch of SGD runs.

    Attributes
    ----------
    t : numpy.ndarray
        Recorded times ``steps/d``, shape ``(nt,)``.
    stats : mapping
        The model's states (``"m"``, ``"u"``; general pre-training also
        ``"s" = v·w⊥``; rank ``r``: ``"m1" .. "mr"``, ``"u1" .. "ur"``,
        ``"q12"``, ...) and ``"v_norm"`` (of the ``|v_a|`` the one farthest
        from 1) -> arrays of shape ``(seeds, nt)``.  After a run stops (escaped with
        ``stop_at_escape``, or diverged) its values are frozen at its last
        state.
    escape_time : numpy.ndarray
        Per run, the first time :attr:`largest_overlap` (``|m|`` at rank 1)
        reaches ``threshold``; ``inf`` when not reached.
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

    def _overlap_names(self) -> list:
        return ["m"] if "m" in self.stats else sorted((n for n in self.stats if n[0] == "m"), key=lambda n: int(n[1:]))

    @property
    def m(self) -> np.ndarray:
        """Overlap ``v·w*`` of the first direction (``m``; rank ``r``: ``m1``), shape ``(seeds, nt)``."""
        return self.stats[self._overlap_names()[0]]

    @property
    def u(self) -> np.ndarray:
        """Adapter scale of the first direction (``u``; rank ``r``: ``u1``), shape ``(seeds, nt)``."""
        return self.stats["u" if "u" in self.stats else "u1"]

    @property
    def largest_overlap(self) -> np.ndarray:
        """The escape statistic ``max_a |m_a|`` (``|m|`` at rank 1), shape ``(seeds, nt)``."""
        return np.max([np.abs(self.stats[n]) for n in self._overlap_names()], axis=0)

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
