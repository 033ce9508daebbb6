"""Builders for the lab tests: seeded synthetic candles in a file and lab files over them."""

from pathlib import Path

from conftest import make_candles

# 9 weeks of hourly candles from 2024-01-01; four weekly folds from 2024-02-05 (each trains on
# what comes before its week of validation)
WEEKS = 9
LAB = """\
[data]
data = "candles.parquet"
symbol = "SYNTH/USDT"
timeframe = "1h"
seq_len = 24
runs = "runs"

[walk]
start = "2024-02-05"
every = "1W"
val = "1W"

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
