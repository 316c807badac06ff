"""``--progress/--no-progress`` on simulate: the bar goes to stderr, never to stdout."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["simulate", "--student", "x", "--mu", "0.5", "--d", "64,128", "--seeds", "4", "--method", "reduced",
        "--format", "json"]


def _simulate(*flags):
    return subprocess.run([sys.executable, "-m", "symlora.cli", *ARGS, *flags], capture_output=True, text=True,
                          cwd=ROOT, check=True)


def test_progress_on_stderr_only_when_asked():
    quiet = _simulate("--no-progress")
    shown = _simulate("--progress")
    default = _simulate()  # stderr is a pipe here: no bar by default
    assert quiet.stderr == "" and default.stderr == ""
    assert shown.stderr.strip() != ""
    # stdout is the same JSON either way (seeded)
    assert json.loads(quiet.stdout) == json.loads(shown.stdout) == json.loads(default.stdout)
    payload = json.loads(quiet.stdout)
    assert payload["runs_per_d"] == 4 and len(payload["seed_per_d"]) == 2
