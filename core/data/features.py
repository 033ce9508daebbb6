"""Features, labels and returns: pure numpy, one definition for training, backtest, export and live.

Time index t is the candle whose close is known at decision time. The feature at t uses closes up
to t; the target of a decision at t is the direction of candle t+1.
"""

import numpy as np

FEATURE = "price_change"  # close_t / close_{t-1}, the first value 1.0
CLASSES = ("up", "down")  # class 0 = up (change >= 0: an unchanged close counts as up), 1 = down


def price_change(close: np.ndarray) -> np.ndarray:
    """close_t / close_{t-1}, causal; the first value is 1."""
    close = np.asarray(close, dtype=np.float64)
    out = np.ones_like(close)
    out[1:] = close[1:] / close[:-1]
    return out


def direction(close: np.ndarray) -> np.ndarray:
    """sign(close_t - close_{t-1}): +1 up, -1 down, 0 unchanged; the first value 0."""
    close = np.asarray(close, dtype=np.float64)
    out = np.zeros(close.shape, dtype=np.int8)
    out[1:] = np.sign(close[1:] - close[:-1]).astype(np.int8)
    return out


def direction_class(close: np.ndarray) -> np.ndarray:
    """The classifier's label of each candle: 0 = up (ties included), 1 = down; the first 0."""
    return (direction(close) < 0).astype(np.int64)


def next_return(close: np.ndarray) -> np.ndarray:
    """R_{t+1} = close_{t+1} / close_t - 1 at index t; NaN at the last index (no next candle)."""
    close = np.asarray(close, dtype=np.float64)
    out = np.full(close.shape, np.nan)
    out[:-1] = close[1:] / close[:-1] - 1.0
    return out


def decision_mask(n: int, seq_len: int, filled: np.ndarray | None = None) -> np.ndarray:
    """Indices t where a decision is made: a full window of seq_len features ends at t, a next
    candle exists, and neither t nor t+1 is a filled bar (filled bars are never traded or scored).
    The window [t-seq_len+1, t] needs t >= seq_len - 1; the first feature (1.0 by convention) is
    not a real change, so the window starts at index 1 at the earliest: t >= seq_len."""
    ok = np.zeros(n, dtype=bool)
    ok[seq_len : n - 1] = True
    if filled is not None:
        filled = np.asarray(filled, dtype=bool)
        ok[:-1] &= ~filled[:-1] & ~filled[1:]
    return ok


# A universe: closes (n bars, S symbols) on one shared grid, one column a symbol.


def next_returns(closes: np.ndarray) -> np.ndarray:
    """R_{s,t+1} of every symbol, (n, S): next_return down each column; NaN in the last row."""
    return next_return(_universe(closes))


def relative_return(closes: np.ndarray) -> np.ndarray:
    """Candle t's return of each symbol minus the equal-weight mean of the universe's:
    (close_{s,t} / close_{s,t-1} - 1) - mean_s(...), (n, S); the first row 0 (no candle before).
    Causal: row t uses closes t-1 and t only."""
    closes = _universe(closes)
    change = np.zeros_like(closes)
    change[1:] = closes[1:] / closes[:-1] - 1.0
    return change - change.mean(axis=1, keepdims=True)


def relative_direction_class(closes: np.ndarray) -> np.ndarray:
    """The relative target's label of each candle, (n, S): 0 ("up": the symbol did at least as
    well as the universe's mean, ties included, as in direction_class) else 1; the first row 0.
    As for one symbol, the target of a decision at t is the label of candle t+1."""
    return (relative_return(closes) < 0).astype(np.int64)


def _universe(closes: np.ndarray) -> np.ndarray:
    closes = np.asarray(closes, dtype=np.float64)
    if closes.ndim != 2:
        raise ValueError(f"closes of a universe are (bars, symbols), got shape {closes.shape}")
    return closes
