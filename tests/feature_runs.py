"""A two-symbol declared-feature run for the export, replay, diff and live tests: synthetic
30m candles of BTC/USDT (core.data.synth) and of a second market made from them by a seeded
transform, each with an outage of its own, and a GRU trained on them by `fc train --features`."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.synth import synth_candles

DAYS, SEQ, SPLIT = 20, 24, "2023-01-14"
OTHER = "ETH/USDT"
FEATURES = f"close,ret,range,wicks,volume:8,time,ret@{OTHER},volatility:6@{OTHER}"
COLUMNS = 12  # close, ret, range, wicks x2, volume, time x4, ret@, volatility@
OUTAGES = {"BTC/USDT": [700, 701], OTHER: [800]}  # bar positions missing from each file


def exchange_prices(frame: pd.DataFrame) -> pd.DataFrame:
    """Prices and volumes with 8 decimals, as an exchange sends them, so a fake exchange serving
    the file hands the service the very floats the file holds."""
    return frame.map(lambda v: float(f"{v:.8f}"))


def two_markets(days: int = DAYS, seed: int = 5) -> dict[str, pd.DataFrame]:
    """{symbol: candles}: BTC/USDT from core.data.synth; the other market BTC's bars times a
    seeded random walk (one factor a bar, so every bar's high >= open, close >= low holds) with
    its own volumes. Both with every bar present."""
    btc = synth_candles(days=days, timeframe="30m", seed=seed)
    rng = np.random.default_rng(seed + 100)
    walk = 0.07 * np.exp(np.cumsum(rng.normal(0.0, 0.002, len(btc))))
    other = btc.copy()
    for column in ("open", "high", "low", "close"):
        other[column] = btc[column] * walk
    other["volume"] = btc["volume"] * rng.lognormal(2.0, 0.5, len(btc))
    return {"BTC/USDT": exchange_prices(btc), OTHER: exchange_prices(other)}


def write_markets(folder: Path, markets: dict[str, pd.DataFrame]) -> dict[str, Path]:
    """Each market's candles less its OUTAGES bars, as parquet files; {symbol: file}."""
    files = {}
    for symbol, frame in markets.items():
        files[symbol] = folder / f"{symbol.replace('/', '_')}-30m.parquet"
        frame.drop(frame.index[OUTAGES[symbol]]).to_parquet(files[symbol])
    return files


def train_two_symbol_run(folder: Path) -> tuple[Path, dict[str, Path]]:
    """(run folder, {symbol: file}): `fc train --features FEATURES` on both files, a few steps."""
    files = write_markets(folder, two_markets())
    result = CliRunner().invoke(
        app,
        ["train", "--data", str(files["BTC/USDT"]), "--data", f"{OTHER}={files[OTHER]}",
         "--symbol", "BTC/USDT", "--features", FEATURES, "--hidden", "8", "--layers", "2",
         "--seq-len", str(SEQ), "--epochs", "1", "--max-steps", "4", "--split", SPLIT,
         "--runs", str(folder / "runs"), "--threads", "1", "--quiet", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["run"]), files
