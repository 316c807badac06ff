"""Hermite activations He2..He6 with matching teachers: closed forms and critical mu."""

from _common import OUT, write

from symlora._figures import describe_number
from symlora.models import HERMITE_PAIRS, models

if __name__ == "__main__":
    chosen = models(HERMITE_PAIRS)
    write("hermite", chosen, "Hermite activations", "Polynomial pairs: every expectation is an exact polynomial.")
    lines = ["# Critical mu of the Hermite pairs", "", "| pair | mu_c | escape law |", "|---|---|---|"]
    for label, model in chosen.items():
        for root in model.critical_mu((0, 1)):
            lines.append(f"| {label} | {describe_number(root)} | {model.escape_law(root)} |")
    (OUT / "hermite_critical_mu.md").write_text("\n".join(lines) + "\n")
