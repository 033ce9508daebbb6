"""The candle store: one parquet file per exchange, symbol and timeframe under a folder.

Writes are atomic (a temporary file renamed over the old one), so an interrupted or refused
write never leaves a half-written or emptied file behind.
"""

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
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
    staged = stage_candles(path, df)
    try:
        os.replace(staged, path)
    finally:
        if staged.exists():
            staged.unlink()


def stage_candles(path: Path, df: pd.DataFrame) -> Path:
    """Write the frame to a temporary file beside `path` and return it: `os.replace` onto
    `path` makes it the stored file in one step, unlinking it leaves the store as it was."""
    validate_candles(df, source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df[OHLCV].to_parquet(tmp, compression="zstd")
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def first_disagreement(old: pd.DataFrame, new: pd.DataFrame) -> tuple | None:
    """(time, column, old value, new value) of the earliest candle both frames hold whose OHLCV
    differ, or None. Exact comparison: parquet stores float64 bit for bit, so a candle read back
    from the store equals the one written, and any difference is another answer."""
    times = old.index.intersection(new.index)
    if times.empty:
        return None
    a, b = old.loc[times, OHLCV].to_numpy(), new.loc[times, OHLCV].to_numpy()
    rows, cols = np.nonzero(a != b)
    if rows.size == 0:
        return None
    r, c = rows[0], cols[0]  # np.nonzero is row-major: the earliest time, its first column
    return times[r], OHLCV[c], a[r, c], b[r, c]


def merge_candles(
    old: pd.DataFrame | None, new: pd.DataFrame, source: str = "new candles", stored: str = "store"
) -> pd.DataFrame:
    """Union by time. Where both hold a candle they must agree exactly; otherwise an FcError
    names the first differing time. Imports and pulls alike: a pull starts after the last stored
    candle and never stores the candle in progress, so it never overlaps in normal operation,
    and a differing closed candle means the exchange rewrote history or a bug: either way the
    user should hear of it, not find a run's candles silently replaced."""
    if old is None or old.empty:
        return new[OHLCV].sort_index()
    differs = first_disagreement(old, new)
    if differs is not None:
        when, column, was, now = differs
        raise FcError(
            f"{source}: the candle at {when.isoformat()} differs from the one in {stored} "
            f"({column} {float(now)!r} against {float(was)!r} stored); nothing was written: "
            "import it into another --store, or delete the stored file to replace it"
        )
    both = pd.concat([old[OHLCV], new[OHLCV]])
    return both[~both.index.duplicated()].sort_index()


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
