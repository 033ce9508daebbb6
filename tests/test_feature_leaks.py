"""The leak test of issue 19: poisoning every candle after T (random OHLCV, of the decided symbol
and of every input symbol) changes no feature value at or before T. It covers every registered
feature by iterating the registry, alone and read from another symbol, and is shown to catch two
deliberately leaking features (the next close; a z-score over the whole range)."""

import numpy as np
import pandas as pd
import pytest
from conftest import make_candles

from fc.core.data.candles import OHLCV, grid_at, load_candles, to_grid
from fc.core.data.feature_set import (
    FEATURES,
    Feature,
    align_symbols,
    build_columns,
    parse_features,
)

BTC, ETH, XRP = "BTC/USDT", "ETH/USDT", "XRP/USDT:USDT"


def poisoned(grid: pd.DataFrame, cut: int, rng: np.random.Generator) -> pd.DataFrame:
    """The grid with every candle after index `cut` replaced by random, valid OHLCV (some zero
    volumes), at another price level so that any read of them shows."""
    out = grid.copy()
    m = len(grid) - cut - 1
    close = rng.uniform(0.5, 50.0, m) * grid["close"].iloc[cut]
    open_ = rng.uniform(0.5, 50.0, m) * grid["close"].iloc[cut]
    high = np.maximum(open_, close) * rng.uniform(1.0, 1.1, m)
    low = np.minimum(open_, close) * rng.uniform(0.9, 1.0, m)
    volume = rng.uniform(0, 1e4, m) * (rng.uniform(size=m) > 0.1)
    out.iloc[cut + 1 :, [out.columns.get_loc(k) for k in OHLCV]] = np.column_stack(
        [open_, high, low, close, volume]
    )
    return out


def leaking_columns(spec, grids: dict, timeframe: str, cut: int, seed: int = 0) -> list[str]:
    """The spec's columns whose values at or before `cut` change when every candle after it, of
    every symbol, is poisoned; [] for causal features."""
    rng = np.random.default_rng(seed)
    before = build_columns(spec, grids, timeframe)
    dirty = {s: poisoned(g, cut, rng) for s, g in grids.items()}
    changed = {s: not dirty[s][OHLCV].iloc[cut + 1 :].equals(g[OHLCV].iloc[cut + 1 :]) for s, g
               in grids.items()}  # fmt: skip
    assert all(changed.values()), "the poison must reach every symbol"
    after = build_columns(spec, dirty, timeframe)
    same = (before[: cut + 1] == after[: cut + 1]).all(axis=0)
    return [column for column, ok in zip(spec.columns, same, strict=True) if not ok]


def seeded_grids(n: int = 300) -> dict[str, pd.DataFrame]:
    """Three symbols on one 5m grid, with filled bars at different places."""
    grids = {}
    for seed, (symbol, drop) in enumerate([(BTC, [40, 41]), (ETH, [100]), (XRP, [7])]):
        candles = make_candles(n, seed=seed)
        grids[symbol] = to_grid(candles.drop(candles.index[drop]), "5m")
    return align_symbols(grids)[0]


def texts(name: str) -> list[str]:
    """The feature alone with its default, and with a short rolling length where it takes one."""
    feature = FEATURES[name]
    return [name] if feature.default is None else [name, f"{name}:3"]


ALL = [text for name in sorted(FEATURES) for text in texts(name)]


@pytest.mark.parametrize("cut", [0, 5, 60, 298])
@pytest.mark.parametrize("text", ALL)
def test_no_registered_feature_reads_the_future(text, cut):
    assert leaking_columns(parse_features(text, BTC), seeded_grids(), "5m", cut) == []


@pytest.mark.parametrize("cut", [5, 150])
@pytest.mark.parametrize("symbol", [ETH, XRP])
@pytest.mark.parametrize("text", ALL)
def test_no_feature_of_another_symbol_reads_the_future(text, symbol, cut):
    spec = parse_features(f"close,{text}@{symbol}", BTC)
    assert spec.symbols == (BTC, symbol)
    assert leaking_columns(spec, seeded_grids(), "5m", cut) == []


def _next_close(grid, param, step):  # reads candle t+1: the classic leak
    close = grid["close"].to_numpy()
    return np.append(close[1:] / close[:-1], 1.0)[:, None]


def _whole_range_zscore(grid, param, step):  # FreqAI users' trap: statistics of all rows
    close = grid["close"].to_numpy()
    return ((close - close.mean()) / close.std())[:, None]


@pytest.mark.parametrize("leak", [_next_close, _whole_range_zscore])
def test_the_leak_check_catches_a_leaking_feature(monkeypatch, leak):
    monkeypatch.setitem(FEATURES, "peek", Feature("peek", leak, lambda param: 0))
    grids = seeded_grids()
    spec = parse_features("close,peek,ret,peek@ETH/USDT", BTC)
    for cut in (5, 150):
        assert leaking_columns(spec, grids, "5m", cut) == ["peek", "peek@ETH/USDT"]


@pytest.mark.shared_data
def test_no_feature_leaks_on_the_five_real_30m_files(shared_data):
    names = ["btc", "eth", "sol", "xrp", "bnb"]
    grids = {
        f"{n.upper()}/USDT": grid_at(load_candles(shared_data / f"{n}_usdt_30m.parquet"), "30m")
        for n in names
    }
    cut, filled = align_symbols(grids)
    assert np.array_equal(filled, grids[BTC]["filled"].to_numpy())  # one index, same gaps
    every = ",".join(sorted(FEATURES))
    text = ",".join([every] + [f"{f}@{s}" for s in list(cut)[1:] for f in sorted(FEATURES)])
    spec = parse_features(text, BTC)
    assert len(spec.symbols) == 5
    n = len(cut[BTC])
    for t in (100, n // 2, n - 2):
        assert leaking_columns(spec, cut, "30m", t, seed=t) == []
