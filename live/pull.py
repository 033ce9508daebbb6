"""Pull an exchange's candles into the store, resumably: start after the last stored candle and
write every few pages atomically, so an interruption loses at most the pages not yet written.
"""

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fc.core.data.candles import timeframe_ms
from fc.core.data.store import candle_path, merge_candles, read_candles, write_candles
from fc.core.errors import FcError
from fc.live.exchange import Exchange

FLUSH_PAGES = 10  # pages per write: rewriting a years-long file after every page costs O(n²)


def pull_candles(
    store: str | Path,
    exchange: str | Exchange,
    symbol: str,
    timeframe: str = "5m",
    since: str = "2017-08-17",
    url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    flush_pages: int = FLUSH_PAGES,
) -> dict:
    """Fetch the closed candles after the stored ones (from `since` when nothing is stored) and
    merge them into the store. `progress(done, total)` counts candles. Returns a summary."""
    ex = Exchange(exchange, url=url) if isinstance(exchange, str) else exchange
    path = candle_path(store, ex.id, symbol, timeframe)
    stored = read_candles(path)
    step = timeframe_ms(timeframe)
    if stored is not None and len(stored):
        start = int(stored.index[-1].value // 1_000_000) + step
    else:
        start = _since_ms(since)
    ex.check_market(symbol, timeframe)
    now = ex.now()
    total = max(0, (now - step - start) // step + 1)

    state = {"current": stored, "pending": [], "added": 0}

    def write_pending() -> None:
        if state["pending"]:
            fetched = pd.concat(state["pending"])
            source = f"{ex.id} {symbol} {timeframe} candles"
            state["current"] = merge_candles(state["current"], fetched, source, str(path))
            write_candles(path, state["current"])
            state["pending"].clear()

    def on_page(page: pd.DataFrame) -> None:
        state["pending"].append(page)
        state["added"] += len(page)
        if len(state["pending"]) >= flush_pages:
            write_pending()
        if progress is not None:
            progress(state["added"], max(total, state["added"]))

    try:
        ex.fetch_candles(symbol, timeframe, start, on_page=on_page, now_ms=now)
    finally:
        # what came before a failure is sound (every page was validated): keep it
        write_pending()
    current = state["current"]
    return {
        "exchange": ex.id,
        "symbol": symbol,
        "timeframe": timeframe,
        "path": str(path),
        "added": state["added"],
        "rows": 0 if current is None else len(current),
        "first": None if current is None or current.empty else current.index[0].isoformat(),
        "last": None if current is None or current.empty else current.index[-1].isoformat(),
    }


def open_markets(
    exchange: str | Exchange, symbols: list[str], timeframe: str, url: str | None = None
) -> Exchange:
    """The exchange, once every symbol's market at `timeframe` is known to exist: a typo in the
    last of several symbols is refused before the first one's pull, not an hour after."""
    ex = Exchange(exchange, url=url) if isinstance(exchange, str) else exchange
    for symbol in symbols:
        ex.check_market(symbol, timeframe)
    return ex


def _since_ms(since: str) -> int:
    try:
        ts = pd.Timestamp(since)
    except (ValueError, TypeError):
        raise FcError(f"--since {since!r} is not a date; give one like 2017-08-17") from None
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)
