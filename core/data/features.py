"""Features, labels and returns: pure numpy, one definition for training, backtest, export and live.

Time index t is the candle whose close is known at decision time. The feature at t uses closes up
to t; the target of a decision at t is the direction of candle t+1, or at a horizon of H candles
the sign of close_{t+H} / close_t - 1 (horizon_labels, the one label of every family and caller).
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
    return horizon_return(close, 1)


def horizon_return(close: np.ndarray, horizon: int = 1) -> np.ndarray:
    """close_{t+H} / close_t - 1 at index t (down each column of a universe's closes); NaN in
    the last H rows, which have no candle H ahead."""
    close = np.asarray(close, dtype=np.float64)
    out = np.full(close.shape, np.nan)
    if horizon < len(close):
        out[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    return out


def horizon_labels(
    closes: np.ndarray, horizon: int = 1, target: str = "next", eligible: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, returns) of the decision at each bar t, H = horizon candles ahead: the one label
    of every family, caller and horizon. The last H rows have no label (0) and return 0.

    next: label 0 ("up") when close_{t+H} >= close_t (ties up, as direction_class), else 1;
    the return close_{t+H} / close_t - 1. `closes` (bars,) or (bars, symbols).
    relative: closes (bars, symbols); the return is each symbol's H-candle return minus the
    equal-weight mean of that return over the symbols `eligible` at t (bool, (bars, symbols);
    None: every symbol), the label 0 when it is >= 0. At H = 1 these are today's labels bit
    for bit: direction_class and relative_direction_class of candle t+1."""
    closes = np.asarray(closes, dtype=np.float64)
    ahead = np.nan_to_num(horizon_return(closes, horizon), nan=0.0)
    if target == "next":
        labels = np.zeros(closes.shape, dtype=np.int64)
        labels[:-horizon] = closes[horizon:] < closes[:-horizon]
        return labels, ahead
    if target != "relative":
        raise ValueError(f"unknown target {target!r}")
    ahead = _universe(ahead)
    if eligible is None or np.all(eligible):
        excess = ahead - ahead.mean(axis=1, keepdims=True)
    else:
        excess = np.where(eligible, ahead - _mean_of(ahead, eligible), 0.0)
    return (excess < 0).astype(np.int64), excess


def decision_mask(
    n: int, seq_len: int, filled: np.ndarray | None = None, horizon: int = 1
) -> np.ndarray:
    """Indices t where a decision is made: a full window of seq_len features ends at t, the
    candle H = horizon bars ahead exists, and neither t nor t+H is a filled bar (filled bars are
    never traded or scored). The window [t-seq_len+1, t] needs t >= seq_len - 1; the first
    feature (1.0 by convention) is not a real change, so the window starts at index 1 at the
    earliest: t >= seq_len."""
    ok = np.zeros(n, dtype=bool)
    ok[seq_len : n - horizon] = True
    if filled is not None:
        filled = np.asarray(filled, dtype=bool)
        ok[:-horizon] &= ~filled[:-horizon] & ~filled[horizon:]
    return ok


# A universe: closes (n bars, S symbols) on one shared grid, one column a symbol.


def next_returns(closes: np.ndarray) -> np.ndarray:
    """R_{s,t+1} of every symbol, (n, S): next_return down each column; NaN in the last row."""
    return next_return(_universe(closes))


def relative_return(closes: np.ndarray, horizon: int = 1, eligible=None) -> np.ndarray:
    """The return of the H candles up to t of each symbol minus the equal-weight mean of the
    universe's: (close_{s,t} / close_{s,t-H} - 1) - mean_s(...), (n, S); the first H rows 0 (no
    candle H before). Causal: row t uses closes t-H and t only. eligible (bool, (n, S)): the
    mean over the symbols eligible at t only (core.data.presence), 0 for the others."""
    closes = _universe(closes)
    change = np.zeros_like(closes)
    change[horizon:] = closes[horizon:] / closes[:-horizon] - 1.0
    return change - _mean_of(change, eligible)


def _mean_of(values: np.ndarray, eligible) -> np.ndarray:
    """The equal-weight mean of each row, (n, 1), over the eligible entries (None: all); a row
    without one has mean 0."""
    if eligible is None:
        return values.mean(axis=1, keepdims=True)
    eligible = np.asarray(eligible, dtype=bool)
    count = np.maximum(eligible.sum(axis=1, keepdims=True), 1)
    return np.where(eligible, values, 0.0).sum(axis=1, keepdims=True) / count


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
