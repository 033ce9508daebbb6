"""Training cost of more input columns: one epoch of the default GRU (sequence scheme, h16 l3,
seq 512) on ../shared/data/btc_usdt_30m.parquet with `--features close` (1 column) against
`close,ret,range,body,wicks,volume,volatility` (8 columns). Goal (issue 19): 8 columns cost at
most 1.3x one. The GRU's first layer is the only part that grows (3 x hidden x columns more
weights); everything after it is the same size.

Run: .venv/bin/python bench/feature_epoch_speed.py   (interleaved repeats, medians, 1 process)"""

import statistics
import sys
import time
from pathlib import Path

import torch

from fc.core.data.candles import grid_at, load_candles
from fc.core.data.feature_set import parse_features
from fc.core.data.inputs import with_features
from fc.core.learning.config import TrainConfig
from fc.core.learning.training import fit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "btc_usdt_30m.parquet"
SPECS = {"1 column (close)": "close", "8 columns": "close,ret,range,body,wicks,volume,volatility"}
REPEATS = 3


def one_epoch(grid, features: str) -> float:
    config = TrainConfig(features=features, epochs=1, val_size=256, device="cpu")
    t0 = time.perf_counter()
    fit(config, grid)
    return time.perf_counter() - t0


def main() -> int:
    if not DATA.is_file():
        print(f"skip: {DATA} absent (../shared/data is beside the clone only in CI)")
        return 0
    torch.set_num_threads(2)
    candles = grid_at(load_candles(DATA), "30m")
    grids = {
        name: with_features(parse_features(spec, "BTC/USDT"), {"BTC/USDT": candles}, "30m")
        for name, spec in SPECS.items()
    }
    times = {name: [] for name in SPECS}
    for _ in range(REPEATS):  # interleaved, so machine noise hits both alike
        for name, spec in SPECS.items():
            times[name].append(one_epoch(grids[name], spec))
    one, eight = (statistics.median(times[name]) for name in SPECS)
    for name in SPECS:
        print(f"{name:>18}: median {statistics.median(times[name]):6.2f} s "
              f"({', '.join(f'{t:.2f}' for t in times[name])})")  # fmt: skip
    print(f"8 columns / 1 column: {eight / one:.2f}x (goal <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
