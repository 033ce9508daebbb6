"""`fc backtest RUN` on every range of btc_usdt_30m.parquet (82k decisions): the reference (each
window run whole through torch in batches, as fc backtest did before) against the default path
(merged windows, core/learning/merged_windows.py), side by side in one run, with the max |Δ p_up|
over every decision; then a second backtest that reads the cached predictions; then the prediction
options on a sample of windows (torch batch sizes and threads, onnxruntime's window graph, merged
windows with one and two workers).

The run: `--run RUN` (a trained run folder), else a short one trained here in a temp folder
(`--epochs 1 --max-steps 2`). Unlike the reference, the merged path's work depends on the weights
(how fast the GRU forgets), so it prints the layer steps it ran beside whole windows' count.

Run: .venv/bin/python bench/full_backtest_speed.py [--run RUN] [--repeats 3]"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import fc.core.evaluation.backtest_plots  # noqa: F401  (matplotlib imported: neither side pays it)
from fc.core.data.candles import grid_at, load_candles
from fc.core.data.features import price_change
from fc.core.evaluation.backtest import BacktestConfig
from fc.core.learning.merged_windows import merged_window_p_up
from fc.core.learning.model import window_p_up
from fc.core.studies.backtest_run import backtest_run, torch_predict
from fc.core.studies.runs import load_run

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "btc_usdt_30m.parquet"
SAMPLE = 8192  # windows for the options table


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f}"


def short_run(root: Path) -> Path:
    """A run trained for two steps: real shapes and config, weights that barely moved."""
    cmd = [sys.executable, "-m", "fc", "train", "--data", str(DATA), "--epochs", "1",
           "--max-steps", "2", "--val-size", "64", "--runs", str(root)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return Path(out.stdout.strip().splitlines()[-1])


def timed_backtest(run: Path, cfg: BacktestConfig, predict=None) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    backtest_run(run, cfg, predict=predict)
    wall = time.perf_counter() - t0
    return wall, pd.read_parquet(run / "backtest" / "positions.parquet")["p_up"].to_numpy()


def full_backtests(run: Path, repeats: int) -> None:
    cfg = BacktestConfig()
    threads = torch.get_num_threads()
    reference, p_ref = timed_backtest(run, cfg, torch_predict(run))  # no cache: no key
    walls = []
    for _ in range(repeats):
        for old in (run / "backtest").glob("predictions-*.parquet"):
            old.unlink()
        wall, p_new = timed_backtest(run, cfg)
        walls.append(wall)
    new = statistics.median(walls)
    decided = ~np.isnan(p_ref)
    diff = np.abs(p_new[decided] - p_ref[decided]).max()
    cached, _ = timed_backtest(run, BacktestConfig(fee_bps=5))
    print(f"fc backtest RUN, all ranges ({decided.sum():,} decisions), wall seconds:")
    print(f"  reference, whole windows (torch batch 2048, {threads} threads)  {reference:7.1f}")
    print(f"  merged windows (median of {repeats})                       {new:7.1f}")
    print(f"  ratio reference/merged: {reference / new:.1f}x (goal >= 5x, <= 15 s on 2 cores)")
    print(f"  max |delta p_up| over every decision: {diff:.1e} (bound 1e-6)")
    print(f"  second backtest, --fee-bps 5, predictions from the cache   {cached:7.1f}")


def options(run: Path) -> None:
    """windows/s of each way to predict, on SAMPLE validation windows of the run's model."""
    from fc.export.graphs import write_window_onnx
    from fc.live.predictor import load_predictor

    config, model, scaling = load_run(run)
    grid = grid_at(load_candles(DATA), "30m")
    features = price_change(grid["close"].to_numpy())
    ends = np.arange(len(features) - SAMPLE - 1, len(features) - 1)
    onnx = write_window_onnx(model, scaling, config, Path(tempfile.mkdtemp()) / "model.onnx")
    stats = {}

    def torch_whole(threads, batch):
        torch.set_num_threads(threads)
        return lambda: window_p_up(model, features, ends, config.seq_len, scaling, batch)

    def merged(workers):
        torch.set_num_threads(1)
        return lambda: merged_window_p_up(model, features, ends, config.seq_len, scaling,
                                          workers=workers, stats=stats)  # fmt: skip

    def ort(threads):
        predictor = load_predictor(onnx, threads=threads)
        return lambda: predictor.p_up_at(features, ends)

    reference = window_p_up(model, features, ends, config.seq_len, scaling)
    rows = [("torch whole windows, batch 2048, 2 threads (reference)", (torch_whole, 2, 2048)),
            ("torch whole windows, batch 2048, 1 thread", (torch_whole, 1, 2048)),
            ("torch whole windows, batch 512, 2 threads", (torch_whole, 2, 512)),
            ("onnxruntime window graph, batched, 1 thread", (ort, 1)),
            ("onnxruntime window graph, batched, 2 threads", (ort, 2)),
            ("merged windows, 1 worker", (merged, 1)),
            ("merged windows, 2 workers (default)", (merged, 2))]  # fmt: skip
    print(
        f"ways to predict {SAMPLE:,} windows of {config.seq_len} (h{config.hidden} "
        f"l{config.layers}), windows/s (wall) and max |delta p_up| vs the reference:"
    )
    for name, (setup, *args) in rows:
        predict = setup(*args)  # threads set, graph loaded: not timed
        t0 = time.perf_counter()
        p_up = predict()
        wall = time.perf_counter() - t0
        print(f"  {name:<56} {SAMPLE / wall:7.0f}   {np.abs(p_up - reference).max():.1e}")
    print(
        f"  merged windows ran {stats['layer_steps'] / stats['whole_window_layer_steps']:.0%} "
        "of whole windows' layer steps (leaders included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, help="a trained run folder on btc_usdt_30m.parquet")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not DATA.is_file():
        sys.exit(f"skipped: {DATA.name} is not beside the clone (../shared/data)")
    print(f"{os.cpu_count()} cores, {load()} at start")
    with tempfile.TemporaryDirectory() as tmp:
        if args.run:  # backtest a copy: the bench deletes caches
            run = Path(shutil.copytree(args.run, Path(tmp) / args.run.name, ignore=_no_backtest))
        else:
            run = short_run(Path(tmp))
        full_backtests(run, args.repeats)
        options(run)
    print(load(), "at end")


def _no_backtest(folder, names):
    return [n for n in names if n in ("backtest", "export")]


if __name__ == "__main__":
    main()
