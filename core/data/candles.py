"""Candles: load (parquet, CSV, freqtrade feather/json/json.gz), validate, resample, regular grid.

A candle frame is indexed by `timestamp` (tz-aware UTC, the candle's open time, sorted, unique)
with float64 columns open, high, low, close, volume; a grid frame adds a bool column `filled`.
"""

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.errors import FcError

OHLCV = ["open", "high", "low", "close", "volume"]
_TIME_COLUMNS = ("timestamp", "time", "date", "datetime", "open_time")
_UNITS = {"m": "min", "h": "h", "d": "D", "w": "W"}


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """'5m', '30m', '1h', '1d' → Timedelta; anything else is a user error."""
    m = re.fullmatch(r"(\d+)([mhdw])", str(timeframe).strip())
    if not m or int(m.group(1)) == 0:
        raise FcError(f"timeframe {timeframe!r} is not like 5m, 30m, 1h or 1d: pass one of those")
    return pd.Timedelta(int(m.group(1)), _UNITS[m.group(2)])


def utc_time(value: str, option: str) -> pd.Timestamp:
    """A user's date or time (UTC unless it says otherwise); not a time is a user error."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise FcError(f"{option} {value!r} is not a date; give e.g. 2024-01-01") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def timeframe_ms(timeframe: str) -> int:
    return int(timeframe_delta(timeframe) / pd.Timedelta(1, "ms"))


# what fc reads, by the file name's ending: freqtrade writes feather, parquet, json and json.gz
CANDLE_FORMATS = (".parquet", ".csv", ".feather", ".json", ".json.gz")
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zstd", ".lz4", ".zip", ".7z", ".br", ".tgz")


def candle_format(path: str | Path) -> str:
    """The format a candle file's name gives ('.parquet', …, '.json.gz'); a compression or type
    fc does not read is a user error naming it."""
    path = Path(path)
    name = path.name.lower()
    found = next(
        (f for f in sorted(CANDLE_FORMATS, key=len, reverse=True) if name.endswith(f)), None
    )
    if found is not None:
        return found
    suffix = path.suffix.lower()
    if suffix in _COMPRESSIONS:
        inner = f" of a {path.suffixes[-2]} file" if len(path.suffixes) > 1 else ""
        raise FcError(
            f"{path}: unknown compression {suffix!r}{inner}; fc reads .json.gz and "
            "uncompressed parquet, csv, feather or json: decompress it first"
        )
    raise FcError(f"{path}: unknown type {suffix!r}; use parquet, csv, feather, json or json.gz")


def load_candles(path: str | Path) -> pd.DataFrame:
    """Read a candle file and return a validated candle frame; a bad file is an FcError."""
    path = Path(path)
    if not path.is_file():
        raise FcError(f"{path}: no such file; give a parquet, CSV, feather or json candle file")
    form = candle_format(path)
    try:
        if form == ".parquet":
            raw = pd.read_parquet(path)
        elif form == ".csv":
            raw = pd.read_csv(path)
        elif form == ".feather":
            raw = pd.read_feather(path)
        else:
            raw = _read_freqtrade_json(path, gzipped=form == ".json.gz")
    except FcError:
        raise
    except Exception as exc:  # the readers raise many types for a corrupt file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FcError(f"{path}: cannot read it ({first}); is it a whole file?") from None
    return validate_candles(_normalise(raw, path), source=str(path))


def _read_freqtrade_json(path: Path, gzipped: bool) -> pd.DataFrame:
    """freqtrade's json: `DataFrame.to_json(orient="values")`, rows of [ms, o, h, l, c, v]."""
    data = gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes()
    rows = json.loads(data)
    if not isinstance(rows, list) or (rows and len(rows[0]) < 6):
        raise FcError(f"{path}: expected a freqtrade json list of [ms, o, h, l, c, v]")
    return pd.DataFrame([r[:6] for r in rows], columns=["date", *OHLCV])


def _normalise(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    df = raw.copy()
    df.columns = [str(c).lower() for c in df.columns]
    if isinstance(df.index, pd.DatetimeIndex):
        times = df.index
    else:
        col = next((c for c in _TIME_COLUMNS if c in df.columns), None)
        if col is None:
            raise FcError(f"{path}: no time column; name one of {', '.join(_TIME_COLUMNS)}")
        times = _parse_times(df[col], path)
    missing = [c for c in OHLCV if c not in df.columns]
    if missing:
        raise FcError(f"{path}: missing column(s) {', '.join(missing)}; a candle file needs OHLCV")
    try:
        values = df[OHLCV].astype(np.float64).to_numpy()
    except (TypeError, ValueError):
        raise FcError(f"{path}: a price or volume is not a number") from None
    idx = pd.DatetimeIndex(times)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    out = pd.DataFrame(values, index=idx.as_unit("ns").rename("timestamp"), columns=OHLCV)
    if "filled" in df.columns:
        out["filled"] = df["filled"].to_numpy(dtype=bool)
    return out


def _parse_times(col: pd.Series, path: Path) -> pd.DatetimeIndex:
    try:
        if pd.api.types.is_numeric_dtype(col):
            # epoch numbers: milliseconds (ccxt, freqtrade json) or seconds
            unit = "ms" if col.abs().max() > 1e11 else "s"
            return pd.DatetimeIndex(pd.to_datetime(col, unit=unit, utc=True))
        return pd.DatetimeIndex(pd.to_datetime(col, utc=True))
    except (ValueError, TypeError, OverflowError):
        raise FcError(f"{path}: the time column has values that are not times") from None


def validate_candles(df: pd.DataFrame, source: str = "candles") -> pd.DataFrame:
    """Refuse what the model must never see (SPEC §3); return df unchanged when it is sound."""
    idx = df.index
    if idx.hasnans:
        raise FcError(f"{source}: a timestamp is missing (NaT); fix or drop that row")
    dup = idx.duplicated()
    if dup.any():
        raise FcError(
            f"{source}: {int(dup.sum())} duplicate timestamp(s), first at {idx[dup][0]}; "
            "keep one row per time"
        )
    if not idx.is_monotonic_increasing:
        bad = int(np.argmax(np.diff(idx.asi8) < 0)) + 1
        raise FcError(f"{source}: timestamps go back in time at {idx[bad]}; sort the file by time")
    values = df[OHLCV].to_numpy()
    nan_rows = np.isnan(values).any(axis=1)
    if nan_rows.any():
        raise FcError(
            f"{source}: {int(nan_rows.sum())} row(s) with NaN, first at "
            f"{idx[nan_rows][0]}; fill or drop them"
        )
    prices = values[:, :4]
    bad = (prices <= 0).any(axis=1)
    if bad.any():
        raise FcError(f"{source}: {int(bad.sum())} row(s) with a price <= 0, first {idx[bad][0]}")
    bad = values[:, 1] < values[:, 2]
    if bad.any():
        raise FcError(f"{source}: {int(bad.sum())} row(s) with high < low, first at {idx[bad][0]}")
    if (values[:, 4] < 0).any():
        raise FcError(f"{source}: a negative volume; volumes must be >= 0")
    return df


def infer_timeframe(df: pd.DataFrame) -> pd.Timedelta:
    """The most common spacing of the index."""
    if len(df) < 2:
        raise FcError("need at least two candles to tell their timeframe")
    return pd.Timedelta(int(pd.Series(np.diff(_ns(df.index))).mode().iloc[0]), "ns")


def resample(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate to a multiple of the source timeframe (SPEC §1): bins labelled by their open
    time, left-closed; open first, high max, low min, close last, volume sum. Empty bins are
    left out (to_grid makes them explicit); a bin with some source bars missing is kept."""
    target = timeframe_delta(timeframe)
    source = infer_timeframe(df)
    if target == source:
        return df[OHLCV].copy()
    if target < source or target % source != pd.Timedelta(0):
        raise FcError(
            f"cannot resample {timeframe_name(source)} candles to {timeframe}: "
            "the target must be a whole multiple of the source timeframe"
        )
    # bins aligned on the epoch, as exchanges align them (30m bins start at :00 and :30)
    key = df.index.floor(target) if target <= pd.Timedelta(1, "D") else None
    if key is None:
        key = pd.to_datetime((_ns(df.index) // target.value) * target.value, utc=True)
    grouped = df.groupby(key)
    out = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
        }
    )
    out.index.name = "timestamp"
    return out


def to_grid(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Make missing bins explicit (SPEC §3): close carried forward, open = high = low = that
    close, volume 0, filled = True. Real bars get filled = False."""
    step = timeframe_delta(timeframe)
    full = pd.date_range(df.index[0], df.index[-1], freq=step, name="timestamp")
    out = df[OHLCV].reindex(full)
    filled = out["close"].isna().to_numpy()
    close = out["close"].ffill()
    for col in ("open", "high", "low"):
        out[col] = out[col].fillna(close)
    out["close"] = close
    out["volume"] = out["volume"].fillna(0.0)
    out["filled"] = filled
    return out


def gap_report(df: pd.DataFrame, timeframe: str) -> dict:
    """Gaps (runs of missing bins) and the number of missing bins at that timeframe."""
    if len(df) < 2:
        return {"gaps": 0, "missing": 0}
    step = timeframe_delta(timeframe).value
    jumps = np.diff(_ns(df.index)) // step
    return {"gaps": int((jumps > 1).sum()), "missing": int((jumps[jumps > 1] - 1).sum())}


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Nanoseconds since the epoch, whatever the index's unit (pandas 3 defaults to us)."""
    return index.as_unit("ns").asi8


def timeframe_name(delta: pd.Timedelta) -> str:
    """Timedelta → '5m', '1h' (whole hours in h, anything else in minutes)."""
    minutes = int(delta / pd.Timedelta(1, "min"))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def grid_at(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """What the model reads: candles resampled to `timeframe` on the regular grid (filled bars
    explicit). Training, backtest and replay all start from this."""
    return to_grid(resample(df, timeframe), timeframe)
