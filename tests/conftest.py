"""Shared fixtures: the real candles beside the clone (skipped when absent), synthetic builders."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from binance_fixture import binance_server  # noqa: F401  (a fake Binance on loopback)
from dask_cluster import dask_cluster  # noqa: F401  (a Dask scheduler and workers on loopback)

from fc.core.data.candles import OHLCV

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the clone: CI has it, a user's clone does not."""
    if not (SHARED_DATA / "btc_usdt_30m.parquet").is_file():
        pytest.skip("real candles absent: ../shared/data is beside the clone only in CI")
    return SHARED_DATA


def make_candles(
    n: int = 200, timeframe: str = "5min", seed: int = 0, start: str = "2024-01-01"
) -> pd.DataFrame:
    """A small random-walk candle frame with consistent OHLC (high >= open, close >= low)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, n))
    volume = rng.uniform(1, 10, n)
    index = pd.date_range(start, periods=n, freq=timeframe, tz="UTC", name="timestamp", unit="ns")
    return pd.DataFrame(
        np.column_stack([open_, high, low, close, volume]), index=index, columns=OHLCV
    )


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module's tests (identical numbers, no spinning threads on a
    busy 2-core machine), the setting restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def candles_factory():
    return make_candles


def one_line_error(result, *words):
    """A CLI result that failed as users are promised: exit 2, one `fc: error:` line on stderr
    naming `words`, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fc: error: "), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], lines[0]
