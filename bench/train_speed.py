"""Training speed on the real 30m candles: the workshop's window scheme against the default
sequence scheme, same model (h16, l3, seq 512), same machine, one process, 2 torch threads.

1. Scored targets per second: median over repeats of timed optimiser steps (no validation).
2. Time to quality: the window scheme trains one epoch; its best validation loss (exact windows,
   the fixed 2048-decision sample) is the target; the sequence scheme trains its default 7 epochs
   and we report the wall time (validation included) until its validation loss first reaches it.
   `--quick N` stops the window scheme after N steps instead: the target is then an estimate.

Run: .venv/bin/python bench/train_speed.py [--quick 200]
"""

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fc.core.data.candles import grid_at, load_candles
from fc.core.learning.config import TrainConfig
from fc.core.learning.losses import training_loss
from fc.core.learning.model import Forecast, Scaling
from fc.core.learning.schemes import make_series, sequence_batches, window_batches
from fc.core.learning.training import fit_scaling, with_scheme_defaults
from fc.core.studies.train import train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "btc_usdt_30m.parquet"


def targets_per_second(config: TrainConfig, grid: pd.DataFrame, steps: int, repeats: int):
    """(median seconds per step, scored targets per step, targets per second)."""
    series = make_series(grid, config.seq_len, pd.Timestamp(config.split, tz="UTC"))
    x = Scaling(*fit_scaling(series, "std")).apply(series.features).astype(np.float32)
    torch.manual_seed(0)
    model = Forecast(config.hidden, config.layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = np.random.default_rng(0)
    if config.scheme == "window":
        batches = list(window_batches(series, x, config.seq_len, config.batch_size, rng))
    else:
        batches = list(
            sequence_batches(series, x, config.seq_len, config.chunk, config.batch_size, rng)
        )
    batches = [b for b in batches if b.x.shape[0] == config.batch_size][:steps]
    timings, scored = [], []
    for _ in range(repeats):
        for batch in batches:
            xb, yb, rb, mb = (torch.from_numpy(np.ascontiguousarray(a)) for a in
                              (batch.x, batch.labels, batch.returns, batch.scored))  # fmt: skip
            start = time.perf_counter()
            loss = training_loss(config.loss, model(xb.unsqueeze(-1)), yb, rb, mb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            timings.append(time.perf_counter() - start)
            scored.append(int(batch.scored.sum()))
    per_step = statistics.median(timings)
    per_batch = statistics.median(scored)
    return per_step, per_batch, per_batch / per_step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", type=int, default=0, help="window scheme: stop after N steps")
    # two threads per process spin against each other when the cores are busy (seen: 20x
    # slower); pass --threads 1 on a shared machine
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"skip: {DATA.name} not found in ../shared/data beside the clone")
        return 0
    torch.set_num_threads(args.threads)
    grid = grid_at(load_candles(DATA), "30m")
    default = TrainConfig(device="cpu", hidden=16, layers=3, seq_len=512, loss="ce")
    window = with_scheme_defaults(replace(default, scheme="window"))
    default = with_scheme_defaults(default)

    rows = []
    for name, config, steps in (("window", window, 10), (default.scheme, default, 3)):
        per_step, per_batch, rate = targets_per_second(config, grid, steps, repeats=3)
        rows.append((name, config.batch_size, per_batch, per_step, rate))
    print(f"\nscored targets per second (median of timed steps, {args.threads} threads)")
    print(f"{'scheme':10} {'rows/step':>9} {'targets/step':>12} {'s/step':>8} {'targets/s':>10}")
    for name, rows_, per_batch, per_step, rate in rows:
        print(f"{name:10} {rows_:9d} {per_batch:12.0f} {per_step:8.3f} {rate:10.0f}")
    ratio = rows[1][4] / rows[0][4]
    print(f"ratio {default.scheme}/window: {ratio:.0f}x (target >= 100x)")

    with tempfile.TemporaryDirectory() as tmp:
        window_cfg = replace(window, epochs=1, max_steps=args.quick)
        w = pd.read_csv(train(window_cfg, grid, tmp) / "history.csv")
        s = pd.read_csv(train(default, grid, tmp) / "history.csv")
    wv, sv = w.dropna(subset=["val_loss"]), s.dropna(subset=["val_loss"])
    target = wv["val_loss"].min()
    what = f"after {args.quick} steps (ESTIMATE)" if args.quick else "after one epoch"
    print(f"\nwindow scheme {what}: best val loss {target:.5f} "
          f"({len(w)} steps, {w['elapsed_s'].iloc[-1]:.0f} s)")  # fmt: skip
    reached = sv[sv["val_loss"] <= target]
    if len(reached):
        first = reached.iloc[0]
        print(f"{default.scheme} scheme reaches it at step {int(first['step'])} (epoch "
              f"{int(first['epoch'])}) after {first['elapsed_s']:.1f} s; "
              f"speed-up {w['elapsed_s'].iloc[-1] / first['elapsed_s']:.0f}x")  # fmt: skip
    else:
        print(f"{default.scheme} scheme does NOT reach it; its best is {sv['val_loss'].min():.5f}")
    print(f"{default.scheme} scheme, {default.epochs} epochs: best val loss "
          f"{sv['val_loss'].min():.5f} in {s['elapsed_s'].iloc[-1]:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
