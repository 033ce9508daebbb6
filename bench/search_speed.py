"""Search throughput on CPU: the workshop's 12-run grid with `fc sweep` (layers 1,3 x hidden
8,16,32 x ce,profit; one process per core, forked) beside a 12-trial `fc tune` over the same
choices (TPE, median pruning, SQLite), in one process and as one `fc tune` worker per core
against the same study. Trials per minute, median over repeats, ratio to the sweep.

Data: a seeded SYNTHETIC 30m series (core.synth, 200 days, 9,600 bars; validation from day 160),
seq_len 128, chunks of 64, 1 epoch (4 steps, each validated on 512 decisions): a short
setting where start-up, validation and saving weigh as much as the steps themselves.

Run: .venv/bin/python bench/search_speed.py [--repeats 3] [--device cuda]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from fc.core.data.candles import to_grid
from fc.core.data.synth import START, synth_candles
from fc.core.learning.config import TrainConfig
from fc.core.studies import tune as search
from fc.core.studies import tune_study
from fc.core.studies.sweep import available_cores, run_sweep, sweep_grid

SPLIT = (START + pd.Timedelta(days=160)).strftime("%Y-%m-%d")
SHORT = dict(seq_len=128, chunk=64, epochs=1, max_steps=5, val_size=512, split=SPLIT, device="cpu")
SPACE = {"layers": "1,3", "hidden": "8,16,32", "loss": "ce,profit"}


def sweep_minutes(grid, folder: Path) -> float:
    configs = sweep_grid(TrainConfig(**SHORT), [1, 3], [8, 16, 32], ["ce", "profit"])
    start = time.perf_counter()
    run_sweep(configs, grid, folder)
    return (time.perf_counter() - start) / 60


def tune_minutes(grid, folder: Path) -> float:
    fixed, space = search.search_space(SPACE)
    base = TrainConfig(**SHORT, **fixed)
    start = time.perf_counter()
    storage = tune_study.open_storage(tune_study.storage_url("", folder))
    study = tune_study.open_study("bench", storage, "val-ce", 0, tune_study.median_pruner(4, 3))
    search.tune(study, base, space, grid, folder, "val-ce", 12, None, lambda trial: None)
    return (time.perf_counter() - start) / 60


def tune_workers_minutes(data: Path, folder: Path, workers: int) -> float:
    """`fc tune` processes (start-up included) sharing one SQLite study, 12 trials in all."""
    fc = Path(sys.executable).parent / "fc"
    args = [str(fc), "tune", "--data", str(data), "--runs", str(folder), "--study", "bench"]
    for name, value in {**SHORT, **SPACE}.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                *args,
                "--n-trials",
                str(12 // workers + (i < 12 % workers)),
                "--sampler-seed",
                str(i),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"fc tune worker failed: {err.strip().splitlines()[-1:]}")
    return (time.perf_counter() - start) / 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: runs share the GPU")
    args = parser.parse_args()
    SHORT["device"] = args.device
    torch.set_num_threads(1)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    candles = synth_candles(days=200, timeframe="30m", seed=0)
    grid = to_grid(candles, "30m")
    cores = available_cores()
    # on a GPU a few workers share the device; on CPU one per core
    workers = min(cores, 4 if args.device == "cuda" else 12)
    how = "forked processes" if args.device == "cpu" else "one process looping on the GPU"
    rows = {f"sweep (12 runs, {how})": [], "tune (12 trials, 1 process)": [],
            f"tune (12 trials, {workers} fc tune workers)": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "synth_30m.parquet"
        candles.to_parquet(data)
        for i in range(args.repeats):
            times = (
                sweep_minutes(grid, Path(tmp) / f"sweep{i}"),
                tune_minutes(grid, Path(tmp) / f"tune{i}"),
                tune_workers_minutes(data, Path(tmp) / f"workers{i}", workers),
            )
            for key, minutes in zip(rows, times, strict=True):
                rows[key].append(12 / minutes)
    print(f"\nsearch throughput on {args.device} ({cores} cores, 1 torch thread a process, "
          f"SYNTHETIC 30m, seq 128, chunk 64, 1 epoch; median of {args.repeats})")  # fmt: skip
    reference = statistics.median(next(iter(rows.values())))
    print(f"{'what':48} {'trials/min':>10} {'vs sweep':>9}")
    for key, rates in rows.items():
        rate = statistics.median(rates)
        print(f"{key:48} {rate:10.1f} {rate / reference:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
