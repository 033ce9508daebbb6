"""The candle store: one parquet file per exchange, symbol and timeframe under a folder.

Writes are atomic (a temporary file renamed over the old one), so an interrupted or refused
write never leaves a half-written or emptied file behind.
"""

import hashlib
import os
import tempfile
from pathlib import Path

import pandas as pd

from fc.core.data.candles import OHLCV, load_candles, resample, timeframe_delta, validate_candles
from fc.core.errors import FcError


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, hex: the fingerprint of a candle, model or graph file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def symbol_slug(symbol: str) -> str:
    """'BTC/USDT' → 'BTC_USDT' (freqtrade's file naming)."""
    if "/" not in symbol or not all(symbol.split("/")):
        raise FcError(f"symbol {symbol!r} is not like BTC/USDT: give BASE/QUOTE")
    return symbol.replace("/", "_").replace(":", "_").upper()


def candle_path(store: str | Path, exchange: str, symbol: str, timeframe: str) -> Path:
    timeframe_delta(timeframe)
    return Path(store) / exchange.lower() / f"{symbol_slug(symbol)}-{timeframe}.parquet"


def read_candles(path: Path) -> pd.DataFrame | None:
    """The stored frame, or None when there is no file yet."""
    return load_candles(path) if Path(path).exists() else None


def write_candles(path: Path, df: pd.DataFrame) -> None:
    validate_candles(df, source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df[OHLCV].to_parquet(tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def merge_candles(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Union by time; where both have a bar, the newer answer wins."""
    if old is None or old.empty:
        return new[OHLCV].sort_index()
    both = pd.concat([old[OHLCV], new[OHLCV]])
    return both[~both.index.duplicated(keep="last")].sort_index()


def find_candles(
    store: str | Path, symbol: str, timeframe: str, exchange: str | None = None
) -> tuple[pd.DataFrame, Path]:
    """The symbol's candles at `timeframe`: the stored file of that timeframe, else the finest
    stored timeframe that divides it, resampled. Returns the frame and the file it came from."""
    target = timeframe_delta(timeframe)
    slug = symbol_slug(symbol)
    roots = [Path(store) / exchange.lower()] if exchange else sorted(Path(store).glob("*"))
    candidates = []
    for root in roots:
        for f in root.glob(f"{slug}-*.parquet"):
            tf = f.stem[len(slug) + 1 :]
            try:
                delta = timeframe_delta(tf)
            except FcError:
                continue
            if delta <= target and target % delta == pd.Timedelta(0):
                candidates.append((delta != target, -delta.value, f, tf))
    if not candidates:
        where = f"{store}/{exchange}" if exchange else str(store)
        raise FcError(
            f"no {symbol} candles at {timeframe} or finer in {where}; "
            "run `fc data pull`, `fc data import` or `fc data synth` first"
        )
    _, _, path, tf = min(candidates)
    df = load_candles(path)
    return (df if tf == timeframe else resample(df, timeframe)), path


def import_file(
    file: str | Path, store: str | Path, exchange: str, symbol: str, timeframe: str | None = None
) -> tuple[Path, int]:
    """Validate a local candle file and merge it into the store. Returns the path and row count."""
    df = load_candles(file)
    from fc.core.data.candles import infer_timeframe

    found = infer_timeframe(df)
    if timeframe is None:
        minutes = int(found / pd.Timedelta(1, "min"))
        timeframe = f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
    elif timeframe_delta(timeframe) != found:
        raise FcError(
            f"{file}: the candles are {found} apart, not {timeframe}; "
            "pass the file's own --timeframe"
        )
    path = candle_path(store, exchange, symbol, timeframe)
    merged = merge_candles(read_candles(path), df)
    write_candles(path, merged)
    return path, len(merged)
