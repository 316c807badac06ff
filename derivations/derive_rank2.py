"""Rank-2 LoRA with aligned pre-training: the ODE of (m1, m2, u1, u2, q12)."""

from _common import write

from symlora import LoRAModel

if __name__ == "__main__":
    pairs = {label: LoRAModel(label, rank=2) for label in ("x", "relu", "He3")}
    write("rank2", pairs, "Rank-2 LoRA", "w = w0 + u1 v1 + u2 v2, q12 = v1.v2.")
