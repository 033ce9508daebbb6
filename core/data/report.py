"""Reports on stored candles (what `fc data info` shows): one symbol's range, rows, gaps and
filled bars, and for several symbols whether they share one grid."""

from functools import reduce
from pathlib import Path

import pandas as pd

from fc.core.data.candles import gap_report, timeframe_delta
from fc.core.data.store import find_candles


def data_info(store: str | Path, symbol: str, timeframe: str, exchange: str | None = None) -> dict:
    return _info(symbol, timeframe, *find_candles(store, symbol, timeframe, exchange))


def _info(symbol: str, timeframe: str, df: pd.DataFrame, path: Path) -> dict:
    gaps = gap_report(df, timeframe)
    return {
        "symbol": symbol,
        "timeframe": timeframe,
        "file": str(path),
        "synthetic": path.parent.name == "synth",
        "first": df.index[0].isoformat(),
        "last": df.index[-1].isoformat(),
        "rows": int(len(df)),
        "gaps": gaps["gaps"],
        "filled": gaps["missing"],
    }


def symbols_info(
    store: str | Path, symbols: list[str], timeframe: str, exchange: str | None = None
) -> dict:
    """Each symbol's data_info with its candles counted by calendar month (UTC; a universe's
    listings show as months that start late), and whether they share one grid (see
    `shared_grid`)."""
    frames = {s: find_candles(store, s, timeframe, exchange) for s in symbols}
    grid = shared_grid({s: df.index for s, (df, _) in frames.items()}, timeframe)
    return {
        "symbols": {
            s: {**_info(s, timeframe, df, path), "months": monthly_counts(df.index)}
            for s, (df, path) in frames.items()
        },
        "one_grid": grid.pop("one_grid"),
        "grid": grid,
    }


def monthly_counts(times: pd.DatetimeIndex) -> dict[str, int]:
    """{"YYYY-MM": candles in that month}, from the first candle's month to the last's (a month
    without a candle inside the range counts 0)."""
    counts = pd.Series(1, index=times).resample("MS").sum()
    return {f"{month:%Y-%m}": int(n) for month, n in counts.items()}


def shared_grid(times: dict[str, pd.DatetimeIndex], timeframe: str) -> dict:
    """Whether several symbols' candles, all at `timeframe` (stored so or resampled), share one
    grid: their ranges overlap, and over that overlap [latest first, earliest last] every
    symbol has a real (not filled) bar at exactly the same set of times. A bin that all of them
    lack (an exchange outage) is shared and keeps the grid; bars outside the overlap do not
    count. On the regular grid a bar one symbol lacks is a filled bar of that symbol only:
    `missing` names, per symbol, how many bars of the overlap it lacks that another has, and the
    first. `bins` counts the overlap's regular bins, `bars` those where any symbol has a bar."""
    first = max(t[0] for t in times.values())
    last = min(t[-1] for t in times.values())
    if first > last:
        return {"one_grid": False, "timeframe": timeframe, "overlap": None, "missing": {}}
    inside = {s: t[(t >= first) & (t <= last)] for s, t in times.items()}
    union = reduce(pd.DatetimeIndex.union, inside.values())
    missing = {}
    for symbol, own in inside.items():
        lacks = union.difference(own)
        if len(lacks):
            missing[symbol] = {"bars": int(len(lacks)), "first": lacks[0].isoformat()}
    bins = int((last - first) // timeframe_delta(timeframe)) + 1
    return {
        "one_grid": not missing,
        "timeframe": timeframe,
        "overlap": {
            "first": first.isoformat(),
            "last": last.isoformat(),
            "bins": bins,
            "bars": int(len(union)),
        },
        "missing": missing,
    }
