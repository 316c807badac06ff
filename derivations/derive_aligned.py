"""Aligned pre-training, rank 1: the ODE of (m, u) and its linearisation for the standard pairs."""

from _common import write

from symlora.models import STANDARD_PAIRS, models

if __name__ == "__main__":
    write("aligned", models(STANDARD_PAIRS), "Aligned pre-training, rank-1 LoRA",
          "w0 = mu w*; statistics m = v.w*, u. docs/theory.md §3-4.")
