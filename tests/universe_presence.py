"""A seeded universe whose symbols are not all present at once: one listed late (inside the test
range), one with gaps, one delisted before the end; for the live tests of the presence rule."""

from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.data.synth import synth_candles

SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT", "EEE/USDT", "FFF/USDT")
LATE, GAPPY, DELISTED = "DDD/USDT", "EEE/USDT", "FFF/USDT"
SPLIT, TEST = "2023-01-25", "2023-02-01"  # the late listing and the delisting are in the test
QUICK = ["--seq-len", "32", "--hidden", "4", "--layers", "1", "--epochs", "1", "--max-steps",
         "3", "--split", SPLIT, "--test-from", TEST, "--quiet"]  # fmt: skip
FEE_BPS, CAPITAL = 2.0, 10_000.0
STRATEGIES = ("long_short", "equal_weight_discrete", "equal_weight_proportional")


def presence_frames(days: int = 40, timeframe: str = "30m", seed: int = 7) -> dict:
    """{symbol: candles}: full symbols beside LATE (listed at a random candle of the last
    quarter), GAPPY (three random gaps of 1 to 6 candles) and DELISTED (its candles end at a
    random candle of the last eighth)."""
    rng = np.random.default_rng(seed)
    frames = {s: synth_candles(days=days, timeframe=timeframe, seed=seed + i, price=40.0 * (i + 1))
              for i, s in enumerate(SYMBOLS)}  # fmt: skip
    n = len(frames[LATE])
    frames[LATE] = frames[LATE].iloc[int(rng.integers(3 * n // 4, 7 * n // 8)) :]
    keep = np.ones(n, bool)
    for start in rng.integers(n // 2, n - 10, size=3):
        keep[start : start + int(rng.integers(1, 7))] = False
    frames[GAPPY] = frames[GAPPY][keep]
    frames[DELISTED] = frames[DELISTED].iloc[: int(rng.integers(7 * n // 8, n - 5))]
    return frames


def write_frames(frames: dict, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for symbol, frame in frames.items():
        files[symbol] = folder / f"{symbol.replace('/', '_')}.parquet"
        frame.to_parquet(files[symbol])
    return files


def times_ms(frame: pd.DataFrame) -> np.ndarray:
    return frame.index.as_unit("ns").asi8 // 1_000_000
