"""The on-disk cache of derived models: exact round trip, reuse across processes, never stale or unsafe."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from symlora import LoRAModel, _diskcache

ROOT = Path(__file__).resolve().parents[1]

DERIVE = """
import json, sys
import symlora._linearization as A, symlora._model as M, symlora._diskcache as C
if sys.argv[1] == "forbid":
    def refuse(*args, **kwargs):
        raise AssertionError("the engine was called although the cache holds the derivation")
    M.gaussian_expectation = A.gaussian_expectation = refuse
model = M.LoRAModel("erf", lr=0.5)
rhs = model.ode()
lin = model.linearization()
print(json.dumps({"stats": C.STATS, "ode": [str(rhs[s]) for s in model.states], "a": str(lin.a),
                  "tau": str(lin.tau), "jacobian": str(lin.jacobian)}))
"""


def _derive(cache, mode):
    env = dict(os.environ, SYMLORA_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", DERIVE, mode], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_second_process_derives_nothing(tmp_path):
    first = _derive(tmp_path, "derive")
    assert first["stats"]["writes"] >= 2 and first["stats"]["hits"] == 0
    second = _derive(tmp_path, "forbid")  # the engine raises if it is called at all
    assert second["stats"]["hits"] >= 2 and second["stats"]["writes"] == 0
    assert {k: v for k, v in second.items() if k != "stats"} == {k: v for k, v in first.items() if k != "stats"}


@pytest.mark.parametrize("spec", [("tanh",), ("relu", "x**2"), ("He3",)])
def test_round_trip_is_exact(spec):
    model = LoRAModel(*spec)
    for value in (model.expectations(), model.ode(), model.ode(in_terms_of_QR=True)):
        decoded = _diskcache._decode(json.loads(json.dumps(_diskcache._encode(value))))
        assert decoded == value  # structural equality: same tree, same classes, same numbers
    lin = model.linearization()
    back = _diskcache._decode(_diskcache._encode(lin))
    assert (back.a, back.b, back.tau, back.jacobian, back.fixed_point, back.exact) == (
        lin.a, lin.b, lin.tau, lin.jacobian, lin.fixed_point, lin.exact)


def test_keys_separate_models_and_code():
    key = _diskcache.model_key(LoRAModel("x"), "linearization")
    assert key != _diskcache.model_key(LoRAModel("x", lr=2), "linearization")
    assert key != _diskcache.model_key(LoRAModel("x", "x**2"), "linearization")
    assert key != _diskcache.model_key(LoRAModel("x"), "expectations")
    from symlora import __version__

    assert __version__ in key and _diskcache._source_fingerprint() in key


def test_foreign_or_tampered_files_are_ignored_and_never_run(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMLORA_CACHE_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    key = _diskcache.model_key(LoRAModel("x"), "linearization")
    path = _diskcache._path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a valid file under another key
    path.write_text(json.dumps({"key": ["other"], "value": {"I": "1"}}))
    assert _diskcache.load(key) is None
    # a class that is not SymPy's, and a string where a SymPy object belongs
    for value in ({"B": ["os.mkdir", [{"py": "pwned"}]]}, {"B": ["builtins.eval", [{"py": "1"}]]},
                  {"B": ["sympy.core.add.Add", [{"py": "__import__('os').mkdir('pwned')"}, {"I": "1"}]]}):
        path.write_text(json.dumps({"key": key, "value": value}))
        assert _diskcache.load(key) is None
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_switched_off_and_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMLORA_CACHE_DIR", "off")
    assert _diskcache.cache_dir() is None and _diskcache.store(["k"], sp.Integer(1)) is False
    monkeypatch.setenv("SYMLORA_CACHE_DIR", str(tmp_path))
    assert _diskcache.store(["k"], {"x": sp.sqrt(2)}) is True
    assert _diskcache.load(["k"]) == {"x": sp.sqrt(2)}
    _diskcache._path(["k"]).write_text("{not json")
    assert _diskcache.load(["k"]) is None
