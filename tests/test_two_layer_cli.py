"""The two-layer options of the command line (tau, derive; refused elsewhere)."""

import json

import pytest

from symlora import TwoLayerLoRAModel
from symlora.cli import main


def _run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_tau_of_the_paper_committee_matches_the_api(capsys):
    code, out, _ = _run(capsys, "tau", "--student", "erf", "--hidden", "4", "--mus", "mu,mu,1,1", "--mu", "0,0.5",
                        "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["model"] == "two-layer" and payload["states"][:2] == ["M11", "M12"]
    expected = [TwoLayerLoRAModel("erf", hidden=4, pretraining=[m, m, 1, 1]).tau() for m in (0, 0.5)]
    assert payload["tau"] == pytest.approx(expected, rel=1e-12)


def test_derive_json_names_every_statistic(capsys):
    code, out, _ = _run(capsys, "derive", "--student", "relu", "--hidden", "2", "--teacher-hidden", "1",
                        "--mus", "mu,1", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert list(payload["ode"]) == payload["states"] == ["M11", "U11", "U21"]
    assert payload["covariances"]["R21"] == "M11*U21 + 1"


@pytest.mark.parametrize("args, message", [
    (["tau", "--student", "erf", "--hidden", "4", "--mus", "mu,1", "--mu", "0.5"], "--mus has 2 entries"),
    (["tau", "--student", "erf", "--hidden", "2", "--pretraining", "general", "--mu", "0.5"], "drop --pretraining"),
    (["escape", "--student", "erf", "--hidden", "2", "--mu", "0.5", "--eps", "1e-3"], "symlora tau"),
    (["tau", "--student", "erf", "--hidden", "9", "--mu", "0.5"], "--hidden"),
    (["tau", "--student", "erf", "--hidden", "2", "--mus", "mu,nu", "--mu", "0.5"], "--mus"),
])
def test_bad_two_layer_options_give_one_line(capsys, args, message):
    try:
        code = main(args)
    except SystemExit as exc:  # argparse errors exit 2
        code = exc.code
    err = capsys.readouterr().err
    assert code != 0
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
