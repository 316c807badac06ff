"""The shared model options of the command line: --pretraining, --mu-perp, --rank (issue 11 item 4)."""

import json

import pytest

from symlora.cli import build_parser, main

#: Commands that describe a model and the options every one of them takes.
MODEL_COMMANDS = ("tau", "derive", "latex", "escape", "simulate", "predict", "law")
POINT = {"tau": ["--mu", "0.5"], "derive": [], "latex": ["-o", "-"], "escape": ["--mu", "0.5", "--eps", "1e-3"],
         "simulate": ["--mu", "0.5", "--d", "100"], "predict": ["--mu", "0.5", "--d", "100"], "law": []}


def run_json(capsys, *args):
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def one_line_error(capsys, *args):
    """Exit status 2 and one readable line on stderr, whether argparse or the command refuses."""
    try:
        status = main(list(args))
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and "Traceback" not in err[0] and len(err[0]) < 400, err
    return err[0]


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_every_model_command_takes_the_shared_options(command):
    args = build_parser().parse_args([command, "--student", "x", "--pretraining", "general", "--mu-perp", "0.3",
                                      "--rank", "2", *POINT[command]])
    assert (args.pretraining, args.mu_perp, args.rank) == ("general", 0.3, 2)
    assert build_parser().parse_args([command, "--student", "x", *POINT[command]]).rank == 1


@pytest.mark.parametrize("command", ("tau", "derive", "latex", "escape", "simulate"))
def test_help_shows_the_new_options_in_examples(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "--mu-perp" in text and "--rank" in text and "examples:" in text
    assert "--rank" in text.split("examples:")[1] or "--pretraining general" in text.split("examples:")[1]


def test_tau_general_pretraining(capsys):
    # sigma = sigma* = x: A_lambda = 1, A_nu = -1, so alpha = 1 - mu, beta = -mu_perp and
    # the effective coupling is a = sqrt((1 - mu)^2 + mu_perp^2), b = 1
    payload = run_json(capsys, "tau", "--student", "x", "--pretraining", "general", "--mu-perp", "0.3",
                       "--mu", "0.5", "--format", "json")
    assert payload["states"] == ["m", "s", "u"] and payload["mu_perp"] == 0.3
    assert payload["a"] == pytest.approx([(0.25 + 0.09) ** 0.5], rel=1e-12)
    assert payload["b"] == pytest.approx([1.0])


def test_tau_rank_names_every_statistic(capsys):
    payload = run_json(capsys, "tau", "--student", "x", "--rank", "2", "--mu", "0.5", "--format", "json")
    assert payload["rank"] == 2
    assert set(payload["states"]) == {"m1", "m2", "u1", "u2", "q12"}
    # at the random start (q12 = 0) the fastest mode is the rank-1 mode: a = 1 - mu, b = 1
    assert payload["a"] == pytest.approx([0.5]) and payload["b"] == pytest.approx([1.0])


def test_tau_rank_3_from_the_command_line(capsys):
    payload = run_json(capsys, "tau", "--student", "x", "--rank", "3", "--mu", "0.5", "--format", "json")
    assert payload["states"] == ["m1", "m2", "m3", "u1", "u2", "u3", "q12", "q13", "q23"]
    assert payload["tau"] == pytest.approx([2 * (1 + 2**0.5)])  # the rank-1 tau at mu = 1/2: every mode at q = 0


@pytest.mark.parametrize("args, words", [
    (["tau", "--student", "x", "--mu", "0.5", "--rank", "0"], "--rank"),
    (["tau", "--student", "x", "--mu", "0.5", "--rank", "99"], "--rank"),
    (["tau", "--student", "x", "--mu", "0.5", "--rank", "two"], "--rank"),
    (["tau", "--student", "x", "--mu", "0.5", "--pretraining", "general", "--mu-perp", "text"], "--mu-perp"),
    (["tau", "--student", "x", "--mu", "0.5", "--pretraining", "general", "--mu-perp", "-1"], "--mu-perp"),
    (["tau", "--student", "x", "--mu", "0.5", "--mu-perp", "0.3"], "--pretraining general"),
    (["simulate", "--student", "x", "--mu", "0.5", "--d", "100", "--mu-perp", "0.3"], "--pretraining general"),
    (["tau", "--student", "x", "--mu", "0.5", "--pretraining", "tilted"], "--pretraining"),
    (["escape", "--student", "x", "--mu", "0.5", "--eps", "1e-3", "--threshold", "1.5"], "--threshold"),
    (["predict", "--student", "x", "--mu", "0.5", "--d", "1"], "d"),
])
def test_bad_model_options_exit_2_with_one_line(args, words, capsys):
    assert words in one_line_error(capsys, *args)
