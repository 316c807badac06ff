"""General pre-training w0 = mu w* + mu_perp w_perp: the ODE of (m, s, u)."""

from _common import write

from symlora import LoRAModel

if __name__ == "__main__":
    pairs = {label: LoRAModel(label, pretraining="general") for label in ("x", "relu", "erf")}
    write("general", pairs, "General pre-training", "Extra overlap s = v.w_perp; the fixed point is m = s = u = 0.")
