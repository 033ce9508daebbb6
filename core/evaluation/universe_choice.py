"""Point-in-time universes (`--top N`): at each decision candle, the N eligible symbols that
traded the most over the trailing 30 days, read from candles up to that candle only.

Why trailing quote volume: it is what a trader can see at the time (no hindsight of which coins
grew large or were delisted later) and it ranks coins by how much can be traded at small cost.
Quote volume is approximated by close x base volume per candle: the exchange's own quote volume
sums price x amount over each trade, which the candle files do not carry; the two agree where
prices move little within a candle, and the choice needs nothing beyond OHLCV.
"""

import numpy as np
import pandas as pd

TOP_DAYS = 30  # the trailing window of --top


def trailing_quote_volume(close, volume, times, days: float = TOP_DAYS) -> np.ndarray:
    """(bars, S) sum of close x volume over each symbol's candles in the `days` days ending at
    candle t inclusive: those at times in (t - days, t]. Candle t is closed when the decision
    at t is made; nothing after t is read (each window is summed from its own candles).

    close, volume: (bars, S) on the universe's grid, `times` (bars,) its increasing candle
    times. A candle a symbol does not have (NaN close or volume: not listed yet, delisted, a
    gap) contributes 0, as does a filled bar (volume 0); a window without any real candle sums
    to 0. Sums are of the window's own candles, not differences of running totals, so equal
    windows give equal sums and a coin's early volume cannot leak rounding into later ones."""
    close = np.asarray(close, dtype=np.float64)
    volume = np.asarray(volume, dtype=np.float64)
    if close.ndim == 1:
        close, volume = close[:, None], volume[:, None]
    quote = close * volume
    quote[~np.isfinite(quote)] = 0.0
    ns = pd.DatetimeIndex(times).as_unit("ns").asi8
    if len(ns) != len(quote):
        raise ValueError(f"{len(ns)} times for {len(quote)} candles")
    if len(ns) == 0:
        return quote
    first = np.searchsorted(ns, ns - pd.Timedelta(days=days).value, side="right")
    ends = np.arange(1, len(ns) + 1)
    # reduceat sums padded[first_t:end_t] at the even places; the odd ones are discarded
    padded = np.vstack([quote, np.zeros((1, quote.shape[1]))])
    bounds = np.column_stack([first, ends]).ravel()
    return np.add.reduceat(padded, bounds, axis=0)[::2]


def top_mask(quote_volume, eligible, n: int) -> np.ndarray:
    """(bars, S) bool: at each bar the n eligible symbols with the largest trailing quote
    volume (trailing_quote_volume), every eligible one where fewer than n are. Ties go to the
    symbol listed first in the universe (a stable ranking); a NaN volume ranks as 0. Only the
    bar's own row is read, so the choice at t is as causal as the volumes given for t."""
    if isinstance(n, bool) or n != int(n) or n < 1:
        raise ValueError(f"top_mask keeps n >= 1 symbols, not {n!r}")
    volume = np.nan_to_num(np.asarray(quote_volume, dtype=np.float64), nan=0.0)
    eligible = np.asarray(eligible, dtype=bool)
    score = np.where(eligible, volume, -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")  # largest first, ties in universe order
    chosen = np.zeros(score.shape, dtype=bool)
    np.put_along_axis(chosen, order[:, : int(n)], True, axis=1)
    return chosen & eligible
