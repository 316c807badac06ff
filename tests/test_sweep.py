"""Sweeps: spec checking, dask execution equal to the in-process run, the cache."""

import json

import numpy as np
import pytest

from symlora._sweep import COLUMNS, read_spec, sweep
from symlora.cli import main
from symlora.simulate import simulate_sgd
from symlora import LoRAModel

pytest.importorskip("dask.distributed")

SPEC = {"pairs": ["x", {"student": "relu", "teacher": "x"}], "mu": [0.5], "lr": [0.5, 1.0], "d": [60, 120],
        "runs": 3, "runs_per_task": 2, "seed": 4}


def _equal_tables(a, b):
    assert list(a) == list(b) == list(COLUMNS)
    for name in COLUMNS:
        x, y = a[name], b[name]
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=name)  # NaN == NaN here, bit for bit otherwise
        else:
            assert x.tolist() == y.tolist(), name


def test_local_cluster_equals_inline_and_the_cache_is_reused(tmp_path):
    inline = sweep(read_spec({**SPEC, "output": "inline.parquet", "cache": "c1"}, base=tmp_path), scheduler="inline")
    # a real LocalCluster with 2 workers (threads: process start-up would dominate this small sweep)
    spec = read_spec({**SPEC, "output": "dask.parquet", "cache": "c2"}, base=tmp_path)
    first = sweep(spec, workers=2, processes=False)
    n_sim = 2 * 1 * 2 * 2 * 2  # pairs x mu x lr x d x chunks of runs
    assert first.n_tasks == n_sim + 2 * 2 * 2 and first.n_cached == 0
    assert first.n_rows == 2 * 2 * 2 * 3
    _equal_tables(inline.columns, first.columns)
    # a repeated sweep runs nothing; an interrupted one (a task's entry missing) runs only what is missing
    again = sweep(spec, scheduler="inline")
    assert again.n_cached == again.n_tasks
    _equal_tables(first.columns, again.columns)
    victim = sorted((tmp_path / "c2").glob("*.json"))[0]
    victim.unlink()
    resumed = sweep(spec, scheduler="inline")
    assert resumed.n_cached == resumed.n_tasks - 1
    _equal_tables(first.columns, resumed.columns)
    # the written table is the returned one
    import pyarrow.parquet as pq

    written = pq.read_table(first.path).to_pydict()
    assert written["escape_time"] == first.columns["escape_time"].tolist()


def test_a_row_is_reproduced_by_its_seed_and_run(tmp_path):
    res = sweep(read_spec({**SPEC, "pairs": ["x"], "lr": [0.5], "output": "t.csv"}, base=tmp_path),
                scheduler="inline")
    cols = res.columns
    k = int(np.flatnonzero(cols["d"] == 120)[-1])
    again = simulate_sgd(LoRAModel("x", lr=0.5), 0.5, 120, seeds=int(cols["run"][k]) + 1, seed=int(cols["seed"][k]),
                         method="reduced")
    assert again.escape_time[-1] == cols["escape_time"][k] and again.status[-1] == cols["status"][k]
    # predictions: tau/(2 eta) and the ODE escape time from m0 = d^-1/2
    assert cols["predicted_slope"][k] == pytest.approx(cols["tau"][k] / 1.0)
    assert cols["ode_escape_time"][k] == pytest.approx(float(np.ravel(LoRAModel("x", lr=0.5).escape_time(0.5, 120**-0.5).time)[0]))


def test_cli_sweep_writes_csv_and_reuses_the_cache(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('pairs = ["x"]\nmu = [0.5]\nd = [50]\nruns = 2\noutput = "runs.csv"\n')
    assert main(["sweep", str(spec), "--scheduler", "inline", "--format", "json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["sweep", str(spec), "--scheduler", "inline", "--format", "json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["cached_tasks"] == 0 and second["cached_tasks"] == second["tasks"] == 2
    assert second["summary"]["runs"] == [2]
    header = (tmp_path / "runs.csv").read_text().splitlines()[0].split(",")
    assert header == list(COLUMNS)


@pytest.mark.parametrize("change, message", [
    ({"mu": [-0.5]}, "'mu' must be >= 0"),
    ({"mu": "0.5"}, "'mu' must hold numbers"),
    ({"d": [10.5]}, "'d' must hold integers"),
    ({"d": [1]}, "'d' must be >= 2"),
    ({"runs": 0}, "'runs' must be >= 1"),
    ({"pairs": ["nope"]}, "unknown label 'nope'"),
    ({"pairs": [{"student": "x", "bias": 1}]}, "must have a text 'student'"),
    ({"method": "fast"}, "'method' must be"),
    ({"threshold": 1.5}, "'threshold' must be one number in"),
    ({"output": "runs.xlsx"}, "'output' must end in"),
    ({"lr": [0.5, 0.5]}, "repeats a value"),
    ({"colour": 1}, "unknown key"),
])
def test_spec_errors_name_the_key(change, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        read_spec({**SPEC, **change}, base=tmp_path)


def test_spec_file_errors(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('pairs = ["x"\n')
    with pytest.raises(ValueError, match="not valid TOML"):
        read_spec(bad)
    with pytest.raises(TypeError, match="path to a TOML file or a dict"):
        read_spec(3)
    assert main(["sweep", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not valid TOML" in err
