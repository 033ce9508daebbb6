"""The registry of named causal features: each maps one symbol's candle grid to float64 columns
where the value at t reads candles up to t only (feature_set.py builds a spec's columns from it).

Index t is the decision candle, closed at open time + timeframe. Before a feature's warm-up its
values are placeholders (0, or 1.0 for `close`'s first), finite so that every array stays finite.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from fc.core.data.features import price_change

_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class Feature:
    """One named feature: `compute(grid, param, step)` returns (n, len(outputs) or 1) float64;
    `warmup(param)` is the first index where its value is real."""

    name: str
    compute: Callable[[pd.DataFrame, int | None, pd.Timedelta], np.ndarray]
    warmup: Callable[[int | None], int]
    outputs: tuple[str, ...] = ()  # column suffixes; () for a single column
    default: int | None = None  # the rolling length when none is given; None: takes no param
    centred_on_one: bool = False  # normalised like today's price_change (center 1.0)


FEATURES: dict[str, Feature] = {}


def register(feature: Feature) -> Feature:
    """Add a feature to the registry; the leak test covers every registered feature."""
    FEATURES[feature.name] = feature
    return feature


def _column(grid: pd.DataFrame, name: str) -> np.ndarray:
    return grid[name].to_numpy(dtype=np.float64)


def log_return(close: np.ndarray) -> np.ndarray:
    """log(close_t / close_{t-1}); the first 0."""
    out = np.zeros_like(close)
    out[1:] = np.log(close[1:] / close[:-1])
    return out


def trailing_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of x[t-n+1 .. t] at t >= n-1 (0 before): each window summed on its own, so a value
    never depends on what came before its window (no running-sum drift, no future)."""
    out = np.zeros_like(x)
    if len(x) >= n:
        out[n - 1 :] = sliding_window_view(x, n).mean(axis=1)
    return out


def _close(grid, param, step):
    return price_change(_column(grid, "close"))[:, None]


def _ret(grid, param, step):
    return log_return(_column(grid, "close"))[:, None]


def _range(grid, param, step):
    return np.log(_column(grid, "high") / _column(grid, "low"))[:, None]


def _body(grid, param, step):
    return np.log(_column(grid, "close") / _column(grid, "open"))[:, None]


def _wicks(grid, param, step):
    """Upper and lower wick as fractions of the high-low range; a bar with no range (a filled
    bar, or one trade) has no wicks: 0."""
    o, h, lo, c = (_column(grid, k) for k in ("open", "high", "low", "close"))
    span = h - lo
    wicks = np.column_stack([h - np.maximum(o, c), np.minimum(o, c) - lo])
    return np.divide(wicks, span[:, None], out=np.zeros_like(wicks), where=span[:, None] > 0)


def _volume(grid, param, step):
    """log1p(volume) minus its mean over the last `param` bars. log1p, not log: a filled bar
    has volume 0, where log is -inf; for the volumes of a traded bar (>> 1 unit of the base
    currency on the exchanges fc reads) log1p(v) is log(v) within 1/v."""
    v = np.log1p(_column(grid, "volume"))
    out = v - trailing_mean(v, param)
    out[: param - 1] = 0.0
    return out[:, None]


def _volatility(grid, param, step):
    """Realised volatility: the root mean square of `ret` over the last `param` bars (no mean
    subtracted, as realised volatility is defined; per bar, so lengths compare)."""
    r = log_return(_column(grid, "close"))
    out = np.sqrt(trailing_mean(r * r, param))
    out[:param] = 0.0  # the window must start at index 1, the first real change
    return out[:, None]


def _time(grid, param, step):
    """Hour of day and day of week of the decision candle's CLOSE time (open time + timeframe),
    as sine and cosine so that 23:30 sits next to 00:00 and Sunday next to Monday."""
    close_ns = grid.index.as_unit("ns").asi8 + step.value
    day = close_ns // _NS_PER_DAY
    hour = 2 * np.pi * (close_ns - day * _NS_PER_DAY) / _NS_PER_DAY
    weekday = 2 * np.pi * ((day + 3) % 7) / 7  # 1970-01-01 was a Thursday; Monday = 0
    return np.column_stack([np.sin(hour), np.cos(hour), np.sin(weekday), np.cos(weekday)])


def _fixed(first: int) -> Callable[[int | None], int]:
    return lambda param: first


register(Feature("close", _close, _fixed(1), centred_on_one=True))
register(Feature("ret", _ret, _fixed(1)))
register(Feature("range", _range, _fixed(0)))
register(Feature("body", _body, _fixed(0)))
register(Feature("wicks", _wicks, _fixed(0), outputs=("upper", "lower")))
register(Feature("volume", _volume, lambda n: n - 1, default=48))
register(Feature("volatility", _volatility, lambda n: n, default=48))
register(
    Feature("time", _time, _fixed(0), outputs=("hour_sin", "hour_cos", "week_sin", "week_cos"))
)
