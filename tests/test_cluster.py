"""fc walk and fc sweep on a real Dask cluster (a `dask scheduler` and two `dask worker`
processes on loopback, tests/dask_cluster.py): the same bytes as the serial run from two worker
processes, none of them the client; a worker killed -9 mid-fold and the walk still identical; a
client killed mid-walk and the same --out finishing without recomputing a finished fold; and the
cluster's bad input as one line, exit 2, before any training."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_candles, one_line_error
from dask_cluster import free_port
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.feature_set import parse_features
from fc.core.data.inputs import symbol_grids, with_features
from fc.core.learning.config import TrainConfig
from fc.core.studies.executor import ExecutorOptions
from fc.core.studies.walk import FoldUnits, WalkConfig, walk_forward

SYMBOL = "SYNTH/USDT"
WALK = ["--start", "2024-04-01", "--every", "9D", "--val", "20D"]  # four folds of the file below
LIGHTGBM = ["--family", "lightgbm", "--seq-len", "32", "--timeframe", "1h", "--symbol", SYMBOL]
FOLDS = 4


@pytest.fixture(scope="module")
def candle_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "candles.parquet"
    make_candles(3000, "1h", seed=3).to_parquet(path)  # 2024-01-01 .. 2024-05-05
    return path


def walk_args(candle_file, out: Path, *more) -> list[str]:
    return ["walk", "--data", str(candle_file), *WALK, *LIGHTGBM, "--out", str(out),
            "--runs", str(out.parent), "--json", *more]  # fmt: skip


def walk_in_process(candle_file, out: Path, executor: ExecutorOptions, on_event=None):
    """walk_forward on the grid and config `fc walk` builds from the file (cli.train_options)."""
    spec = parse_features("close", SYMBOL)
    candles, sources = symbol_grids(spec, "1h", candle_file, {}, None)
    grid = with_features(spec, candles, "1h")
    path, digest = sources[SYMBOL]
    base = TrainConfig(symbol=SYMBOL, timeframe="1h", data=path, data_sha256=digest,
                       family="lightgbm", seq_len=32, device="cpu")  # fmt: skip
    walk = WalkConfig(start="2024-04-01", every="9D", val="20D")
    units = FoldUnits(executor, out, threads=1, on_event=on_event)
    return walk_forward(base, walk, grid, out.parent, units=units)


def _steady(value):
    """A JSON value without what differs from run to run: timing, folder paths, the ledger."""
    if isinstance(value, dict):
        return {
            k: _steady(v)
            for k, v in value.items()
            if not k.endswith("seconds") and k not in ("walk", "timing", "ledger", "run")
        }
    return [_steady(v) for v in value] if isinstance(value, list) else value  # fmt: skip


def contents(folder: Path) -> dict:
    """{relative path: bytes, or a JSON or history file's steady content} of a walk or run
    folder; loss.png is left out (its title is the time its run was made) and so is units/ (the
    resume state)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_dir() or name.startswith("units/") or path.name == "loss.png":
            continue
        if path.suffix == ".json":
            out[name] = _steady(json.loads(path.read_text()))
        elif path.name == "history.csv":  # its elapsed_s column is timing
            out[name] = pd.read_csv(path).drop(columns="elapsed_s", errors="ignore").to_csv()
        else:
            out[name] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def serial_walk(candle_file, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("serial") / "walk"
    walk_in_process(candle_file, out, ExecutorOptions())
    return contents(out)


def test_an_unreachable_scheduler_is_one_line_exit_2_within_10_s(candle_file, tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there
    started = time.perf_counter()
    result = CliRunner().invoke(app, walk_args(candle_file, tmp_path / "walk", "--cluster",
                                               address))  # fmt: skip
    assert time.perf_counter() - started < 10
    one_line_error(result, address, "no scheduler answered")
    assert not (tmp_path / "walk").exists()


@pytest.mark.slow
def test_a_walk_on_the_cluster_is_the_serial_walk_from_two_workers(
    dask_cluster, candle_file, serial_walk, tmp_path
):
    done = []
    on_event = lambda key, event, info: event == "done" and done.append(info["worker"])  # noqa: E731
    out = tmp_path / "walk"
    walk_in_process(candle_file, out, ExecutorOptions(cluster=dask_cluster.address), on_event)
    assert contents(out) == serial_walk
    assert len(done) == FOLDS
    pids = {int(worker.rsplit(":", 1)[1].rstrip(")")) for worker in done}
    workers = {dask_cluster.name_of(worker) for worker in done}
    assert len(pids) >= 2 and os.getpid() not in pids and workers == {"w1", "w2"}
    assert pids == {p.pid for p in dask_cluster.workers.values()}


@pytest.mark.slow
def test_a_worker_killed_mid_fold_and_the_walk_is_still_the_serial_walk(
    dask_cluster, candle_file, serial_walk, tmp_path
):
    killed = []

    def on_event(key, event, info):
        if event == "start" and info["worker"] and not killed:
            killed.append(dask_cluster.name_of(info["worker"]))
            dask_cluster.kill(killed[0])  # the process running this fold, right now

    out = tmp_path / "walk"
    walk_in_process(candle_file, out, ExecutorOptions(cluster=dask_cluster.address), on_event)
    assert killed and dask_cluster.workers[killed[0]].returncode == -9
    assert contents(out) == serial_walk
    dask_cluster.add_worker(killed[0])  # back to two for the tests after this one


@pytest.mark.slow
def test_a_killed_client_resumes_with_the_same_out_and_recomputes_no_finished_fold(
    dask_cluster, candle_file, tmp_path
):
    fc = [str(Path(sys.executable).parent / "fc")]
    serial = tmp_path / "serial" / "walk"
    subprocess.run(fc + walk_args(candle_file, serial), check=True, capture_output=True)
    out = tmp_path / "cluster" / "walk"
    args = fc + walk_args(candle_file, out, "--cluster", dask_cluster.address)
    client = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = out / "units"
    while not list(records.glob("fold-*.json")) and client.poll() is None:
        time.sleep(0.05)
    client.kill()  # -9, in the middle: one fold written, the others running or queued
    client.wait()
    finished = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in records.glob("fold-*")}
    assert 1 <= len(finished) // 2 < FOLDS  # each fold: its .json and its .parquet
    subprocess.run(args, check=True, capture_output=True)
    for name, (mtime, blob) in finished.items():  # no finished fold was written again
        assert (records / name).stat().st_mtime_ns == mtime and (
            records / name
        ).read_bytes() == blob
    assert len(list(records.glob("fold-*.json"))) == FOLDS
    assert contents(out) == contents(serial)


@pytest.mark.slow
def test_a_two_run_sweep_on_the_cluster_is_the_serial_sweep(dask_cluster, candle_file, tmp_path):
    args = ["sweep", "--data", str(candle_file), "--timeframe", "1h", "--split", "2024-03-15",
            "--seq-len", "16", "--chunk", "32", "--batch-size", "8", "--epochs", "1",
            "--max-steps", "3", "--val-size", "256", "--layers", "1", "--hidden", "2,4",
            "--loss", "ce", "--device", "cpu"]  # fmt: skip
    runs = {}
    for name, more in {
        "serial": ["--workers", "1"],
        "cluster": ["--cluster", dask_cluster.address],
    }.items():
        result = CliRunner().invoke(app, [*args, "--runs", str(tmp_path / name), *more])
        assert result.exit_code == 0, result.output
        folders = sorted(p for p in (tmp_path / name).iterdir() if p.is_dir())
        runs[name] = {json.loads((p / "config.json").read_text())["hidden"]: contents(p)
                      for p in folders}  # fmt: skip
    assert sorted(runs["serial"]) == [2, 4]
    for hidden, files in runs["serial"].items():
        differ = [n for n in files if files[n] != runs["cluster"][hidden].get(n)]
        assert runs["cluster"][hidden].keys() == files.keys() and not differ, (hidden, differ)


@pytest.mark.slow
def test_a_data_root_without_the_file_or_with_another_is_one_line_before_training(
    dask_cluster, candle_file, serial_walk, tmp_path
):
    """The workers' shared folder is dask_cluster.data_root (their FC_DATA_ROOT); the client's
    is `root`: the file must be at the same relative path there, with the same sha256."""
    root = tmp_path / "root"
    (root / "btc").mkdir(parents=True)
    shutil.copy(candle_file, root / "btc" / "candles.parquet")
    theirs = dask_cluster.data_root / "btc" / "candles.parquet"
    theirs.parent.mkdir(exist_ok=True)
    theirs.unlink(missing_ok=True)
    cluster = ["--cluster", dask_cluster.address, "--data-root", str(root)]
    for problem, words in (("missing", "no such file"), ("other", "is not the client's")):
        if problem == "other":
            theirs.write_bytes(b"other candles")
        out = tmp_path / problem / "walk"
        result = CliRunner().invoke(app, walk_args(root / "btc" / "candles.parquet", out, *cluster))
        one_line_error(result, "--data-root on worker", words, "btc/candles.parquet")
        assert not list(out.glob("fold-*"))
    shutil.copy(candle_file, theirs)
    out = tmp_path / "same" / "walk"
    result = CliRunner().invoke(app, walk_args(root / "btc" / "candles.parquet", out, *cluster))
    assert result.exit_code == 0, result.output
    assert contents(out)["predictions.parquet"] == serial_walk["predictions.parquet"]


@pytest.mark.slow
def test_a_worker_with_other_fc_code_is_refused_in_one_line(dask_cluster, candle_file, tmp_path):
    """A third worker importing a copy of fc with one line more: the client names the
    difference before any fold is trained."""
    import fc

    copy = tmp_path / "site" / "fc"
    root = Path(fc.__file__).parent
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".venv", "tests", "bench", ".git",
                                                              "docs", "deploy"))  # fmt: skip
    with open(copy / "core" / "studies" / "walk.py", "a") as f:
        f.write("# another version\n")
    dask_cluster.add_worker("odd", {"PYTHONPATH": str(tmp_path / "site")})
    try:
        out = tmp_path / "walk"
        result = CliRunner().invoke(app, walk_args(candle_file, out, "--cluster",
                                                   dask_cluster.address))  # fmt: skip
        one_line_error(result, "refused: fc code (a hash of its .py files)")
        assert not list(out.glob("fold-*"))
    finally:
        dask_cluster.kill("odd")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["workers", "cluster"])
def test_tune_trials_as_units_are_each_recorded_once(dask_cluster, where, tmp_path):
    """fc tune --workers 2 | --cluster: three trials against the runs folder's SQLite study,
    each recorded once, complete, with its run folder written by the client where it says."""
    import optuna

    candles = tmp_path / "candles.parquet"
    make_candles(3000, "30min", seed=3).to_parquet(candles)
    more = ["--workers", "2"] if where == "workers" else ["--cluster", dask_cluster.address]
    args = ["tune", "--data", str(candles), "--runs", str(tmp_path / "runs"), "--study", "s",
            "--split", "2024-02-20", "--seq-len", "16", "--chunk", "32", "--batch-size", "8",
            "--layers", "1", "--val-size", "256", "--device", "cpu", "--epochs", "1",
            "--max-steps", "2", "--hidden", "2,4", "--n-trials", "3", "--pruner", "none",
            "--json", *more]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(row["number"] for row in report["table"]) == [0, 1, 2]
    study = optuna.load_study(
        study_name="s", storage=f"sqlite:///{tmp_path / 'runs' / 'tune.sqlite3'}"
    )
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    runs = [Path(t.user_attrs["run_dir"]) for t in study.trials]
    assert len(set(runs)) == 3 and all((run / "metrics.json").is_file() for run in runs)
    for trial, run in zip(study.trials, runs, strict=True):
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["validation"]["ce"] == trial.value and run.name.endswith(f"-t{trial.number}")
