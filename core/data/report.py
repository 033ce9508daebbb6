"""Reports on stored candles (what `fc data info` shows)."""

from pathlib import Path

from fc.core.data.candles import gap_report
from fc.core.data.store import find_candles


def data_info(store: str | Path, symbol: str, timeframe: str, exchange: str | None = None) -> dict:
    df, path = find_candles(store, symbol, timeframe, exchange)
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
