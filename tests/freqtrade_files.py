"""Candle files written the way freqtrade writes them, and a fingerprint of a whole store."""

import gzip
import hashlib
import json
from pathlib import Path

import pandas as pd

from fc.core.data.candles import OHLCV


def write_freqtrade(df: pd.DataFrame, path: Path) -> Path:
    """freqtrade's formats: feather and parquet with columns date, open, high, low, close,
    volume (date a UTC datetime); json a list of [ms, o, h, l, c, v] rows, json.gz that
    gzipped (json.dumps keeps every float exact, where pandas' to_json keeps 10 digits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = df[OHLCV].reset_index().rename(columns={"timestamp": "date"})
    if path.name.endswith(".feather"):
        table.to_feather(path, compression="lz4")
    elif path.name.endswith(".parquet"):
        table.to_parquet(path)
    else:
        ms = df.index.as_unit("ms").asi8.tolist()
        rows = [[t, *values] for t, values in zip(ms, df[OHLCV].to_numpy().tolist(), strict=True)]
        text = json.dumps(rows).encode()
        path.write_bytes(gzip.compress(text) if path.name.endswith(".gz") else text)
    return path


def store_state(store: Path) -> dict[str, str]:
    """Every file under the store (hidden ones too) and the sha256 of its bytes."""
    if not store.exists():
        return {}
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file()
    }
