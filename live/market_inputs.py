"""What a decision reads: the closed candles of every symbol the model's feature spec names,
fetched concurrently, each checked to hold candle t itself (never an older one in its place),
and the model's input window built from them with core.data.feature_set.build_columns, the
function training and the backtest use.

A model of the workshop's one input (no spec, or `close` alone) reads the decided symbol only
and its window is price_change of the last seq_len + 1 closes, as it always was.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from fc.core.data.candles import to_grid
from fc.core.data.feature_set import FeatureSpec, align_symbols, build_columns
from fc.core.data.features import price_change
from fc.core.data.inputs import plain_close
from fc.core.errors import FcError


class SymbolSources:
    """A candle source per symbol behind the one CandleSource call: recorded files in replay,
    or one Exchange a symbol live (a ccxt client is not safe to share between threads: the
    answer check reads its last response)."""

    def __init__(self, sources: dict):
        self.sources = dict(sources)

    def closed_candles(self, symbol: str, timeframe: str, count: int, now_ms: int):
        return self.sources[symbol].closed_candles(symbol, timeframe, count, now_ms)

    def listed(self, symbols, now_ms: int) -> dict:
        """{symbol: whether its market is still listed} (a source that cannot tell: listed)."""
        return {s: listed_at(self.sources[s], s, now_ms) for s in symbols}


def listed_at(source, symbol: str, now_ms: int) -> bool:
    """Whether `source` still lists the market (True for a source without a market list)."""
    ask = getattr(source, "listed", None)
    return True if ask is None else bool(ask([symbol], now_ms)[symbol])


def model_spec(predictor) -> FeatureSpec | None:
    """The predictor's declared spec, None for the workshop's price_change (or `close` alone)."""
    spec = getattr(predictor, "spec", None)
    return None if spec is None or plain_close(spec) else spec


def bars_needed(spec: FeatureSpec | None, seq_len: int) -> int:
    """Candles a decision reads, t included: a full window after the features' warm-up."""
    return seq_len + 1 if spec is None else spec.first_decision(seq_len) + 1


def fetch_all(source, symbols: list[str], timeframe: str, count, now_ms: int, check,
              pool: ThreadPoolExecutor | None = None) -> list:  # fmt: skip
    """[(frame or None, reason)] for each symbol: source.closed_candles passed through
    check(frame) -> (frame or None, reason); a source's FcError is that symbol's reason. Several
    symbols are fetched at once, on threads, so a tick waits for the slowest, not their sum.
    count: candles asked of each symbol, or {symbol: count} (a universe asks each what it lacks);
    pool: the threads to use (a universe service keeps its own: none started a tick)."""

    def one(symbol: str):
        try:
            n = count[symbol] if isinstance(count, dict) else count
            return check(source.closed_candles(symbol, timeframe, n, now_ms))
        except FcError as exc:  # the exchange module's ExchangeUnavailable, BadExchangeData
            return None, f"{type(exc).__name__}: {exc}"

    if len(symbols) == 1:
        return [one(symbols[0])]
    if pool is not None:
        return list(pool.map(one, symbols))
    with ThreadPoolExecutor(max_workers=len(symbols), thread_name_prefix="fc-fetch") as pool:
        return list(pool.map(one, symbols))


def decision_window(
    spec: FeatureSpec | None, frames: dict, symbol: str, timeframe: str, seq_len: int
) -> tuple[pd.DataFrame | None, np.ndarray | None, str]:
    """(the decided symbol's grid, the model's window, "") from frames that each end at the
    decision candle, or (None, None, why). The grid's closes account the wealth."""
    if spec is None:
        grid = frames[symbol]
        closes = grid["close"].to_numpy(dtype=np.float64)
        return grid, price_change(closes[-(seq_len + 1) :])[1:], ""
    try:
        cut, filled = align_symbols({s: to_grid(frames[s], timeframe) for s in spec.symbols})
    except FcError as exc:
        return None, None, str(exc)
    need = bars_needed(spec, seq_len)
    if len(cut[symbol]) < need:
        return None, None, f"the symbols' candles overlap on {len(cut[symbol])} bars, not {need}"
    grid = cut[symbol].assign(filled=filled)
    columns = build_columns(spec, cut, timeframe)
    return grid, columns[-seq_len:], ""
