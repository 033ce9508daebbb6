"""Pooled tabular training speed: one LightGBM over every symbol's training rows against one
symbol's, on the shared 1h universe.

On ../shared/data/universe-1h (skipped with a message when absent): every pair, late listings
included (each on its own candles: core.data.presence), or with --listed DAY only the pairs
whose candles start by DAY (2024-09-14: the 19 present from the folder's first day), --target
relative, --seq-len 48, --lags 16. First the first symbol alone (--target next: relative needs
a universe), then the model pooled over all of them (core.learning.pooled_tabular), each timed
from its first boosting round to its last (early stopping on validation included), and as a
whole (rows cut from each symbol's Series, the fit, the validation blocks); medians of
--repeats. Printed: seconds, training rows, rounds run, and time per row and round; the ratio
pooled / one of that last is the cost of pooling beyond the rows themselves. Goal (issue 26):
the whole pooled fit under 60 s.

Run: OMP_NUM_THREADS=2 .venv/bin/python bench/pooled_tabular_speed.py [--family logistic]
[--listed 2024-09-14] [--repeats 3]
"""

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from fc.core.data.universe import universe_grids
from fc.core.learning.config import TrainConfig
from fc.core.learning.family import family_of

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "universe-1h"
GOAL_SECONDS = 60.0


def listed_by(folder: Path, day: str | None) -> dict[str, Path]:
    """{symbol: file} of the pairs whose first candle is at or before `day` (None: every pair)."""
    out = {}
    for path in sorted(folder.glob("*_USDT-1h.feather")):
        first = pd.read_feather(path, columns=["date"])["date"].min()
        if day is None or first <= pd.Timestamp(day, tz="UTC"):
            out[path.name.split("-")[0].replace("_", "/")] = path
    return out


def timed(fit, config, grids) -> tuple[float, int, int, float]:
    """(seconds first round to last, training rows, rounds run, seconds of the whole fit: rows
    cut from every symbol's Series, fit, validation blocks) of one fit."""
    stamps: dict = {}
    started = time.perf_counter()
    trained = fit(config, grids, timing=stamps)
    wall = time.perf_counter() - started
    return (stamps["last_step"] - stamps["first_step"], trained.metrics["scored_targets"],
            trained.metrics["steps"], wall)  # fmt: skip


def median_fit(fit, config, grids, repeats: int) -> tuple[float, int, int, float]:
    """timed() with the median seconds of `repeats` fits (rows and rounds: the same each fit)."""
    runs = [timed(fit, config, grids) for _ in range(repeats)]
    rows, rounds = runs[0][1:3]
    return (statistics.median(r[0] for r in runs), rows, rounds,
            statistics.median(r[3] for r in runs))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="lightgbm", choices=("lightgbm", "logistic"))
    parser.add_argument("--listed", help="Only the symbols listed by this day (default: all).")
    parser.add_argument("--split", default="2025-03-01")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: the shared 1h universe is not here ({DATA})")
        return 0
    files = listed_by(DATA, args.listed)
    symbols = tuple(files)
    grids, _ = universe_grids("close", symbols, "1h", files, None)
    base = TrainConfig(family=args.family, timeframe="1h", seq_len=48, lags=16, split=args.split,
                       symbol=symbols[0])  # fmt: skip
    family = family_of(base)
    timed(family.fit, base, grids[symbols[0]])  # untimed: the family's imports, caches
    one = median_fit(family.fit, base, grids[symbols[0]], args.repeats)
    pooled_config = replace(base, symbols=symbols, target="relative")
    pooled = median_fit(family.fit_universe, pooled_config, grids, args.repeats)
    print(f"medians of {args.repeats}:")
    for name, (seconds, rows, rounds, wall) in ((f"one symbol ({symbols[0]})", one),
                                          (f"pooled over {len(symbols)}", pooled)):  # fmt: skip
        print(
            f"{name}: {seconds:.2f} s, {rows:,} rows, {rounds} rounds, "
            f"{seconds / rows / rounds * 1e9:.1f} ns per row and round; whole fit {wall:.2f} s"
        )
    ratio = (pooled[0] / pooled[1] / pooled[2]) / (one[0] / one[1] / one[2])
    print(f"ratio pooled / one symbol, per row and round: {ratio:.2f}x")
    print(f"pooled fit {pooled[0]:.1f} s, whole {pooled[3]:.1f} s (goal < {GOAL_SECONDS:.0f} s)")
    return 0 if pooled[3] < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
