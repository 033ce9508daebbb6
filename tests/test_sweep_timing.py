"""fc train --json (where a process spends its time) and fc sweep --device (the runs of a sweep on
one GPU, or in spawned processes, give what one process looping over them gives)."""

import json
import subprocess
import sys
import time

import pytest
import torch
from conftest import make_candles, one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import to_grid
from fc.core.learning.config import TrainConfig
from fc.core.learning.timing import train_timing
from fc.core.studies.executor import ExecutorOptions
from fc.core.studies.sweep import run_sweep, sweep_grid

SPLIT = "2024-02-20"
TINY = ["--split", SPLIT, "--seq-len", "16", "--chunk", "32", "--batch-size", "8", "--layers",
        "1", "--hidden", "4", "--val-size", "256", "--device", "cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def candle_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "walk.parquet"
    make_candles(3000, "30min", seed=3).to_parquet(path)
    return path


def test_timing_splits_the_process_at_the_first_and_last_step():
    stamps = {"imported": 102.0, "data_loaded": 102.5, "first_step": 103.0, "last_step": 110.0}
    assert train_timing(100.0, stamps, now=112.25) == {
        "import_seconds": 2.0, "data_seconds": 0.5, "prepare_seconds": 0.5,
        "startup_seconds": 3.0, "training_seconds": 7.0, "finish_seconds": 2.25,
        "total_seconds": 12.25,
    }  # fmt: skip


def test_process_start_is_read_from_the_system_not_from_an_import():
    code = "from fc.core.learning.timing import process_started; import time; print(process_started(), time.time())"  # noqa: E501
    before = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    started, printed = map(float, out.stdout.split())
    # /proc counts in clock ticks (10 ms): the start lies between Popen and the print
    assert before - 0.02 <= started <= printed


def test_train_json_is_one_object_with_the_run_and_its_timing(candle_file, tmp_path):
    args = ["train", "--data", str(candle_file), *TINY, "--epochs", "1", "--max-steps", "3"]
    result = CliRunner().invoke(app, [*args, "--runs", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # the whole of stdout is one JSON object
    metrics = json.loads((tmp_path / out["run"].split("/")[-1] / "metrics.json").read_text())
    assert out["validation"] == metrics["validation"] and out["steps"] == 3
    parts = ("startup_seconds", "training_seconds", "finish_seconds")
    assert sum(out[p] for p in parts) == pytest.approx(out["total_seconds"], abs=0.002)
    startup = ("import_seconds", "data_seconds", "prepare_seconds")
    assert sum(out[p] for p in startup) == pytest.approx(out["startup_seconds"], abs=0.002)
    assert all(out[p] > 0 for p in (*parts, *startup))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_sweep_cuda_without_cuda_is_one_line_exit_2(candle_file, tmp_path):
    args = ["sweep", "--data", str(candle_file), "--device", "cuda", "--runs", str(tmp_path)]
    one_line_error(CliRunner().invoke(app, args), "CUDA")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_spawned_sweep_workers_train_what_one_looping_process_trains(tmp_path):
    """The start method fc sweep uses on a GPU (spawn: no CUDA context crosses a fork), checked
    on CPU, where runs with the same seed are bit for bit the same."""
    grid = to_grid(make_candles(3000, "30min", seed=3), "30m")
    base = TrainConfig(seq_len=16, chunk=32, batch_size=8, epochs=1, max_steps=3, split=SPLIT,
                       val_size=256, device="cpu")  # fmt: skip
    configs = sweep_grid(base, [1], [2, 4], ["ce"])
    looped = run_sweep(configs, grid, tmp_path / "looped", ExecutorOptions(workers=1), threads=1)
    spawned = run_sweep(configs, grid, tmp_path / "spawned", ExecutorOptions(workers=2))
    for a, b in zip(looped, spawned, strict=True):
        assert a["config"] == b["config"]
        sa = torch.load(f"{a['run']}/model.pt", weights_only=True)
        sb = torch.load(f"{b['run']}/model.pt", weights_only=True)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
