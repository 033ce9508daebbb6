"""A seeded synthetic candle series, so that everything runs offline.

Returns follow a GARCH(1,1)-like volatility process with Student-t shocks (fat tails, clustered
volatility) plus a weak planted signal: each 5m return leans against the previous one by `kappa`
(mean reversion, the effect a one-liner baseline also sees). It is clearly not market data.
"""

import numpy as np
import pandas as pd

from fc.core.data.candles import OHLCV, timeframe_delta

START = pd.Timestamp("2023-01-01", tz="UTC")


def synth_candles(
    days: int = 400,
    timeframe: str = "5m",
    seed: int = 0,
    kappa: float = -0.08,
    start: pd.Timestamp = START,
    price: float = 20_000.0,
) -> pd.DataFrame:
    step = timeframe_delta(timeframe)
    n = int(pd.Timedelta(days, "D") / step)
    rng = np.random.default_rng(seed)
    shocks = rng.standard_t(df=4, size=n) / np.sqrt(2.0)  # unit variance
    base_var = (0.0015 * np.sqrt(step / pd.Timedelta(5, "min"))) ** 2
    omega, alpha, beta = base_var * 0.05, 0.08, 0.87
    var, prev, rets = base_var, 0.0, np.empty(n)
    for i in range(n):
        var = omega + alpha * prev**2 + beta * var
        prev = kappa * prev + np.sqrt(var) * shocks[i]
        rets[i] = prev
    close = price * np.exp(np.cumsum(rets))
    open_ = np.concatenate([[price], close[:-1]])
    wiggle = np.abs(rng.normal(0, np.sqrt(base_var) / 2, size=(2, n)))
    high = np.maximum(open_, close) * (1 + wiggle[0])
    low = np.minimum(open_, close) * (1 - wiggle[1])
    volume = np.round(rng.gamma(2.0, 50.0, size=n) * (1 + 200 * np.abs(rets)), 6)
    index = pd.date_range(start, periods=n, freq=step, name="timestamp", unit="ns")
    return pd.DataFrame(
        np.column_stack([open_, high, low, close, volume]), index=index, columns=OHLCV
    )
