"""In-memory stand-ins for the exchange and the ONNX predictor, for the live service's tests."""

import numpy as np
import pandas as pd

from fc.core.data.candles import timeframe_ms
from fc.core.errors import FcError


class FakePredictor:
    """p_up from the window alone: a smooth function of the last few changes, in (0, 1)."""

    def __init__(self, seq_len: int = 16, timeframe: str = "30m", symbol: str = "BTC/USDT"):
        self.seq_len, self.timeframe, self.symbol = seq_len, timeframe, symbol
        self.windows = []

    def p_up(self, window: np.ndarray) -> float:
        window = np.asarray(window, dtype=np.float64)
        assert window.shape == (self.seq_len,)
        self.windows.append(window.copy())
        return reference_p_up(window)

    def p_up_batch(self, windows: np.ndarray) -> np.ndarray:
        return np.array([reference_p_up(w) for w in windows])


def reference_p_up(window: np.ndarray) -> float:
    score = -300.0 * (window[-1] - 1.0) + 50.0 * (window.mean() - 1.0)
    return float(1.0 / (1.0 + np.exp(-score)))


class FakeExchange:
    """Answers like the exchange module: the closed candles as of now_ms. `faults` is a queue of
    exceptions to raise or 'stale' (answer as if the newest candle had not closed yet);
    `in_progress` adds the candle still open, which the service must ignore."""

    def __init__(self, candles: pd.DataFrame, timeframe: str = "30m", in_progress: bool = False):
        self.candles, self.tf = candles, timeframe_ms(timeframe)
        self.open_ms = candles.index.as_unit("ns").asi8 // 1_000_000
        self.faults: list = []
        self.in_progress = in_progress
        self.calls: list[tuple[int, int]] = []

    def closed_candles(self, symbol, timeframe, count, now_ms):
        self.calls.append((count, now_ms))
        closed = int(np.searchsorted(self.open_ms, now_ms - self.tf, side="right"))
        if self.faults:
            fault = self.faults.pop(0)
            if fault == "stale":
                closed -= 1
            elif isinstance(fault, BaseException):
                raise fault
        end = closed + 1 if self.in_progress else closed
        return self.candles.iloc[max(0, closed - count) : end]


class ExchangeUnavailable(FcError):
    """Stands in for live/exchange.py's error after its own retries."""
