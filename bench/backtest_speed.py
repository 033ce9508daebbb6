"""Backtest speed: the vectorised wealth computation against a plain per-bar loop, and the full
validation range of btc_usdt_30m.parquet (predictions + both policies + baselines) end to end.

Run: .venv/bin/python bench/backtest_speed.py   (medians of repeats; 2 torch threads)"""

import sys
from pathlib import Path

import numpy as np
import torch
from timing import median_time

from fc.core.data.candles import grid_at, load_candles
from fc.core.evaluation.backtest import BacktestConfig, run_backtest, trade_mask
from fc.core.evaluation.policies import wealth
from fc.core.learning.model import Forecast, Scaling, window_p_up
from fc.core.studies.backtest_run import predict_bars

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "btc_usdt_30m.parquet"
SPLIT = "2024-01-01"


def loop_wealth(positions, close, cost):
    out, w, prev = [], 1.0, 0.0
    for t in range(len(positions)):
        w *= 1 + positions[t] * (close[t + 1] / close[t] - 1) - cost * abs(positions[t] - prev)
        prev = positions[t]
        out.append(w)
    return out


def main() -> None:
    torch.set_num_threads(2)
    if not DATA.is_file():
        sys.exit(f"skipped: {DATA.name} is not beside the clone (../shared/data)")
    grid = grid_at(load_candles(DATA), "30m")
    close = grid["close"].to_numpy()
    rng = np.random.default_rng(0)
    f = rng.uniform(-1, 1, len(close) - 1)
    r = close[1:] / close[:-1] - 1
    vec = median_time(lambda: wealth(f, r, 5e-4), 20)
    loop = median_time(lambda: loop_wealth(f, close, 5e-4), 3)
    np.testing.assert_allclose(wealth(f, r, 5e-4), loop_wealth(f, close, 5e-4), rtol=1e-12)
    print(
        f"wealth over {len(f):,} bars: vectorised {vec * 1e3:.2f} ms, per-bar loop "
        f"{loop * 1e3:.1f} ms, ratio {loop / vec:.0f}x"
    )

    torch.manual_seed(0)
    model = Forecast(16, 3)
    scaling = Scaling(1.0, 0.005)
    validation = grid.index >= SPLIT
    need = trade_mask(grid["filled"].to_numpy(), 512) & validation

    def full_validation():
        p_up = predict_bars(lambda f, e: window_p_up(model, f, e, 512, scaling), grid, need)
        run_backtest(grid, p_up, 512, SPLIT, BacktestConfig(start=SPLIT), "30m")

    wall = median_time(full_validation, 3)
    print(
        f"full validation range ({need.sum():,} decisions, h16 l3, seq 512): predictions + "
        f"both policies + baselines + bootstrap in {wall:.1f} s (median of 3; target <= 15 s)"
    )


if __name__ == "__main__":
    main()
