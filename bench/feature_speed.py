"""Feature building speed: every registered feature, with its default parameters, for the five
30m files in ../shared/data (BTC decided on; ETH, SOL, XRP and BNB as inputs), built by
feature_set.build_columns against a straightforward pandas implementation of the same features
(which must agree to 1e-12). Goal: under 1 s.

Run: .venv/bin/python bench/feature_speed.py   (medians of repeats, one process)"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from timing import median_time

from fc.core.data.candles import grid_at, load_candles
from fc.core.data.feature_set import FEATURES, align_symbols, build_columns, parse_features

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NAMES = ["btc", "eth", "sol", "xrp", "bnb"]


def pandas_feature(grid: pd.DataFrame, name: str, n: int | None) -> pd.DataFrame:
    """The reference: each feature written the obvious pandas way."""
    o, h, lo, c, v = (grid[k] for k in ("open", "high", "low", "close", "volume"))
    ret = np.log(c).diff().fillna(0.0)
    if name == "close":
        return (c / c.shift(1)).fillna(1.0).to_frame()
    if name == "ret":
        return ret.to_frame()
    if name == "range":
        return (np.log(h) - np.log(lo)).to_frame()
    if name == "body":
        return (np.log(c) - np.log(o)).to_frame()
    if name == "wicks":
        span = h - lo
        upper = ((h - pd.concat([o, c], axis=1).max(axis=1)) / span).where(span > 0, 0.0)
        lower = ((pd.concat([o, c], axis=1).min(axis=1) - lo) / span).where(span > 0, 0.0)
        return pd.concat([upper, lower], axis=1)
    if name == "volume":
        logv = np.log1p(v)
        return (logv - logv.rolling(n).mean()).fillna(0.0).to_frame()
    if name == "volatility":
        vol = (ret**2).rolling(n).mean() ** 0.5
        vol.iloc[:n] = 0.0
        return vol.to_frame()
    if name == "time":
        close = grid.index + pd.Timedelta(30, "min")
        hour = 2 * np.pi * (close.hour + close.minute / 60) / 24
        week = 2 * np.pi * close.day_of_week / 7
        return pd.DataFrame({"a": np.sin(hour), "b": np.cos(hour), "c": np.sin(week),
                             "d": np.cos(week)}, index=grid.index)  # fmt: skip
    raise ValueError(f"no reference for feature {name!r}")


def pandas_columns(spec, grids: dict[str, pd.DataFrame]) -> np.ndarray:
    parts = [pandas_feature(grids[i.symbol], i.name, i.param) for i in spec.items]
    return pd.concat(parts, axis=1).to_numpy()


def main() -> int:
    paths = [DATA / f"{n}_usdt_30m.parquet" for n in NAMES]
    if not all(p.is_file() for p in paths):
        print("skip: the five 30m files are not in ../shared/data beside the clone")
        return 0
    t0 = time.perf_counter()
    grids = {f"{n.upper()}/USDT": grid_at(load_candles(DATA / f"{n}_usdt_30m.parquet"), "30m")
             for n in NAMES}  # fmt: skip
    grids, _ = align_symbols(grids)
    prepare = time.perf_counter() - t0
    every = sorted(FEATURES)
    text = ",".join(every + [f"{f}@{s}" for s in list(grids)[1:] for f in every])
    spec = parse_features(text, "BTC/USDT")
    fast = build_columns(spec, grids, "30m")
    slow = pandas_columns(spec, grids)
    diff = float(np.max(np.abs(fast - slow)))
    assert fast.shape == slow.shape and diff <= 1e-12, diff
    ours = median_time(lambda: build_columns(spec, grids, "30m"), 7)
    reference = median_time(lambda: pandas_columns(spec, grids), 5)
    n = len(grids["BTC/USDT"])
    print(f"{len(spec.items)} features, {fast.shape[1]} columns, {len(grids)} symbols x {n:,} bars"
          f" (load + grid + align {prepare:.2f} s, not timed below)")  # fmt: skip
    print(f"build_columns {ours * 1e3:.0f} ms (goal: under 1 s), pandas reference "
          f"{reference * 1e3:.0f} ms, ratio {reference / ours:.1f}x")  # fmt: skip
    print(f"max |build_columns - pandas| {diff:.1e} (must be <= 1e-12)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
