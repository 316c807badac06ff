"""Plateaus of the ODE at large η/B: the largest η that still escapes, checked against the reduced SGD simulator."""

import numpy as np
import pytest

from symlora import LoRAModel, simulate_sgd
from symlora._critical import finite_d_law, largest_escaping_lr


def test_largest_escaping_lr_separates_escape_from_stall_in_sgd():
    model = LoRAModel("x**3 - 3*x", lr=1)
    escapes, stalls = largest_escaping_lr(model, 0.5)
    assert 0 < escapes < stalls < 1 and stalls - escapes < 0.015 * stalls
    # the ODE depends on η/B only: twice the batch doubles the largest η
    wide = largest_escaping_lr(LoRAModel("x**3 - 3*x", lr=1, batch=2), 0.5)
    assert wide[0] == pytest.approx(2 * escapes, rel=0.02)
    # SGD at d = 2000: 25 % below the bound every run escapes; at twice the bound none does within 3 ODE escape times
    d = 2000
    horizon = 3 * float(LoRAModel("x**3 - 3*x", lr=0.75 * escapes).escape_time(0.5, d**-0.5).time)
    below = simulate_sgd(LoRAModel("x**3 - 3*x", lr=0.75 * escapes), 0.5, d, seeds=12, seed=3, method="reduced",
                         record_every=10**9, t_max=horizon)
    above = simulate_sgd(LoRAModel("x**3 - 3*x", lr=2 * stalls), 0.5, d, seeds=12, seed=3, method="reduced",
                         record_every=10**9, t_max=horizon)
    assert np.all(below.escaped)
    assert not np.any(above.escaped) and above.diverged == 0


def test_finite_d_law_reports_the_plateau_and_the_escaping_ratio():
    status, law = finite_d_law(LoRAModel("x**3 - 3*x", lr=1), 0.5)
    assert status == "no escape" and "plateau" in law and "η/B <" in law
    assert finite_d_law(LoRAModel("x", lr=1), 0.5)[0] == "asymptotic"
