"""Presence: which symbols of a universe exist, and may be decided, at each candle (issue 26).

A universe's symbols sit on the union of their candles (core.data.universe), so a coin listed
in the middle of the range, or delisted before its end, is part of the universe exactly while
it trades. `real` (bars, symbols) marks the candles a symbol really has (not filled: before its
first candle, after its last, or in a gap). A symbol is eligible at candle t when it has a real
candle at t and at least its warm-up of its own history before t: t - first_s >= warm_up, the
first_s its first real candle (at warm_up = seq_len the window of seq_len changes ends at t and
starts after the symbol's first candle, as one symbol's first decision is at bar seq_len).

Only eligible symbols are decided, ranked and counted in the universe's mean; a symbol not
eligible keeps the weight it holds; a symbol whose candles end before the universe's do left the
market and is closed once, at its last candle (core.evaluation.portfolio). Pure numpy: training,
the backtest, replay and the live service read the same rule.
"""

import numpy as np


def first_real(real: np.ndarray) -> np.ndarray:
    """Each symbol's first real candle, (symbols,); len(real) for a symbol with none."""
    real = np.asarray(real, dtype=bool)
    return np.where(real.any(axis=0), real.argmax(axis=0), len(real))


def last_real(real: np.ndarray) -> np.ndarray:
    """Each symbol's last real candle, (symbols,); -1 for a symbol with none."""
    real = np.asarray(real, dtype=bool)
    return np.where(real.any(axis=0), len(real) - 1 - real[::-1].argmax(axis=0), -1)


def lives(real: np.ndarray) -> list:
    """Each symbol's life, its first to its last real candle, as a slice of the bars (empty for
    a symbol with none): where its own Series and its one-symbol rows are cut."""
    return [slice(int(a), int(b) + 1) for a, b in zip(first_real(real), last_real(real),
                                                      strict=True)]  # fmt: skip


def eligibility(real: np.ndarray, warm_up: int) -> np.ndarray:
    """Whether each symbol may be decided at each candle, (bars, symbols): a real candle at t
    and t - first_s >= warm_up (its own warm-up; the run's seq_len, or its first_decision)."""
    real = np.asarray(real, dtype=bool)
    bars = np.arange(len(real))[:, None]
    return real & (bars - first_real(real)[None, :] >= warm_up)


def members(real: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Whether each symbol belongs to the universe at each candle, (bars, symbols): from its
    first eligible candle (it enters) to its last real one (it leaves). A member that is not
    eligible (a gap, an outage) holds its weight; equal-weight books split the capital over the
    members, so one symbol's missing candle does not rebalance the others."""
    bars = np.arange(len(eligible))[:, None]
    return (bars >= first_real(eligible)[None, :]) & (bars <= last_real(real)[None, :])


def delisted(real: np.ndarray) -> np.ndarray:
    """Whether each symbol left the market inside the grid, (symbols,): its last real candle
    comes before the grid's last bar (a symbol with no candle never entered, so never leaves)."""
    last = last_real(real)
    return (last >= 0) & (last < len(real) - 1)


def close_delisted(weights: np.ndarray, real: np.ndarray) -> np.ndarray:
    """The weights with every delisted symbol closed at its last candle: weight 0 from its last
    real candle on (the close of that candle is its last price; the book pays the fee of the
    change there, once). Others unchanged."""
    weights = np.array(weights, dtype=np.float64)
    last = last_real(real)
    for s in np.flatnonzero(delisted(real)):
        weights[last[s] :, s] = 0.0
    return weights
