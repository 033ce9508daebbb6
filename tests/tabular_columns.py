"""Eight simple causal feature columns from candles, for the tabular families' real-data parity
test and bench/tabular_speed.py until the feature registry takes their place: log return, log
range, log body, upper and lower wick, volume z-score and rolling volatility (48 bars), hour sin.
Each value at bar t reads bars <= t; the first 48 bars are NaN (not enough history)."""

import numpy as np
import pandas as pd

NAMES = ["ret", "log_range", "log_body", "upper_wick", "lower_wick", "volume_z", "vol", "hour_sin"]
WINDOW = 48


def rolling(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the `window` values ending at each bar (NaN before the first full one)."""
    views = np.lib.stride_tricks.sliding_window_view(x, window)
    mean, std = np.full(len(x), np.nan), np.full(len(x), np.nan)
    mean[window - 1 :], std[window - 1 :] = views.mean(axis=1), views.std(axis=1)
    return mean, std


def simple_columns(candles: pd.DataFrame) -> np.ndarray:
    """(bars, 8) float64 in NAMES' order."""
    o, h, lo, c, v = (candles[k].to_numpy(np.float64) for k in ("open", "high", "low", "close",
                                                                 "volume"))  # fmt: skip
    ret = np.zeros(len(c))
    ret[1:] = np.log(c[1:] / c[:-1])
    log_volume = np.log1p(v)
    volume_mean, volume_std = rolling(log_volume, WINDOW)
    _, vol = rolling(ret, WINDOW)
    hour = candles.index.hour + candles.index.minute / 60
    columns = np.column_stack([
        ret, np.log(h / lo), np.log(c / o), np.log(h / np.maximum(o, c)),
        np.log(np.minimum(o, c) / lo), (log_volume - volume_mean) / np.where(volume_std > 0,
        volume_std, 1.0), vol, np.sin(2 * np.pi * np.asarray(hour) / 24),
    ])  # fmt: skip
    columns[: WINDOW - 1] = np.nan
    return columns
