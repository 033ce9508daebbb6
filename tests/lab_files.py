"""Builders for the lab tests: seeded synthetic candles in a file and lab files over them."""

from pathlib import Path

import pandas as pd
from conftest import make_candles

# 9 weeks of hourly candles from 2024-01-01; four weekly folds from 2024-02-05 (each trains on
# what comes before its week of validation)
WEEKS = 9
# the lab files' shared [data] tail and [walk]: weekly folds from 2024-02-05
WALK = """\
timeframe = "1h"
seq_len = 24
runs = "runs"

[walk]
start = "2024-02-05"
every = "1W"
val = "1W"
"""
LAB = (
    """\
[data]
data = "candles.parquet"
symbol = "SYNTH/USDT"
"""
    + WALK
    + """
[report]
fees = [0, 2]

[grid]
family = ["logistic"]
lags = [4, 8]

[[variant]]
name = "lightgbm"
family = "lightgbm"
lags = 4
min-data-in-leaf = 20
"""
)


def candle_file(folder: Path, seed: int = 7, weeks: int = WEEKS) -> Path:
    """Hourly candles from 2024-01-01: `weeks` - 5 weekly folds from 2024-02-05."""
    path = folder / "candles.parquet"
    make_candles(weeks * 7 * 24, timeframe="1h", seed=seed).to_parquet(path)
    return path


def lab_file(folder: Path, text: str = LAB, name: str = "study.toml", weeks: int = WEEKS) -> Path:
    """A lab file in `folder` beside its candles (made once)."""
    if not (folder / "candles.parquet").is_file():
        candle_file(folder, weeks=weeks)
    path = folder / name
    path.write_text(text)
    return path


# a pooled universe of four symbols at 1h from 2024-01-01, DDD listed late (inside the second
# fold): two weekly folds from 2024-02-05, each a pooled LightGBM (relative) or logistic (next)
UNIVERSE = ("AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT")
LATE = "2024-02-14 05:00"  # DDD's first candle
UNIVERSE_LAB = (
    """\
[data]
symbols = "@universe.txt"
data = ["AAA/USDT=AAA.parquet", "BBB/USDT=BBB.parquet", "CCC/USDT=CCC.parquet",
        "DDD/USDT=DDD.parquet"]
"""
    + WALK
    + """
[report]
fees = [0, 5]
{k}
[[variant]]
name = "LightGBM relative"
family = "lightgbm"
target = "relative"
lags = 4
min-data-in-leaf = 20

[[variant]]
name = "logistic next"
family = "logistic"
lags = 4
"""
)


def universe_lab(folder: Path, k: str = "", weeks: int = 4 + 3) -> Path:
    """A lab file of a pooled universe over four seeded symbols (DDD listed at LATE) beside its
    candle files and its universe file (a text list); `k`: a [report] k line."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, symbol in enumerate(UNIVERSE):
        frame = make_candles(weeks * 7 * 24, timeframe="1h", seed=20 + i)
        if symbol == "DDD/USDT":
            frame = frame[frame.index >= pd.Timestamp(LATE, tz="UTC")]
        frame.to_parquet(folder / f"{symbol.split('/')[0]}.parquet")
    (folder / "universe.txt").write_text("# the test universe\n" + "\n".join(UNIVERSE) + "\n")
    path = folder / "universe.toml"
    path.write_text(UNIVERSE_LAB.replace("{k}", k))
    return path
