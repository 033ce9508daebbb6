"""A run's inputs on one grid: the decided symbol's candles with the feature columns beside them.

The grid frame that training, walk, sweep, tune and backtest pass around carries, besides OHLCV
and `filled`, one column `f:<name>` per feature column of the spec (core.data.feature_set),
computed once over the whole aligned range from past candles only, so every cut of the frame (a
walk's fold) keeps exact values. `close` alone adds no column: its feature is price_change of
the close, as it always was. A bar filled for any symbol the spec reads is filled for the
decision.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.data.candles import grid_at, load_candles, to_grid
from fc.core.data.feature_set import FeatureSpec, align_symbols, build_columns
from fc.core.data.features import price_change
from fc.core.data.store import file_sha256
from fc.core.errors import FcError

PREFIX = "f:"


def plain_close(spec: FeatureSpec) -> bool:
    """The workshop's input: price_change of the decided symbol's close, nothing else."""
    return spec.columns == ("close",) and spec.symbols == (spec.symbol,)


def data_values(data) -> list:
    """--data as a list of its values, whether given as None, one FILE or several."""
    return [] if data is None else [data] if isinstance(data, str | Path) else list(data)


def parse_data(values) -> tuple[Path | None, dict[str, Path]]:
    """--data values (None, one, or a list): one plain FILE (the decided symbol's) and/or
    SYMBOL=FILE pairs."""
    plain, pairs = None, {}
    for value in data_values(values):
        text = str(value)
        symbol, eq, path = text.partition("=")
        if eq and "/" in symbol:
            if symbol in pairs:
                raise FcError(f"--data {symbol}=… is given twice; give each symbol once")
            pairs[symbol] = Path(path)
        elif plain is None:
            plain = Path(text)
        else:
            raise FcError(f"--data {text}: a second plain file; give the others as SYMBOL=FILE")
    return plain, pairs


def symbol_grids(spec: FeatureSpec, timeframe: str, data, files: dict, store) -> tuple[dict, dict]:
    """({symbol: grid}, {symbol: (file, sha256)}) for every symbol the spec reads: the decided
    symbol from `data` or files[symbol], the others from files[symbol], else from the store."""
    grids, sources = {}, {}
    for symbol in spec.symbols:
        path = files.get(symbol) or (data if symbol == spec.symbol else None)
        if path is not None:
            if not Path(path).is_file():
                raise FcError(f"--data {path}: no such file")
            grids[symbol] = grid_at(load_candles(path), timeframe)
        else:
            from fc.core.data.store import find_candles

            candles, path = find_candles(store, symbol, timeframe)
            grids[symbol] = to_grid(candles, timeframe)
        sources[symbol] = (str(path), file_sha256(path))
    return grids, sources


def with_features(spec: FeatureSpec, grids: dict, timeframe: str) -> pd.DataFrame:
    """The decided symbol's grid on the symbols' common range, `filled` for any of them, with
    the spec's raw columns as f:<name> (none for plain close)."""
    if plain_close(spec):
        return grids[spec.symbol]
    cut, filled = align_symbols({s: grids[s] for s in spec.symbols})
    grid = cut[spec.symbol].copy()
    grid["filled"] = filled
    columns = build_columns(spec, cut, timeframe)
    for i, name in enumerate(spec.columns):
        grid[PREFIX + name] = columns[:, i]
    return grid


def grid_features(grid: pd.DataFrame) -> np.ndarray:
    """The model's raw input per bar: (n,) for one column, (n, columns) for several."""
    names = [c for c in grid.columns if str(c).startswith(PREFIX)]
    if not names:
        return price_change(grid["close"].to_numpy())
    x = grid[names].to_numpy(dtype=np.float64)
    return x[:, 0] if len(names) == 1 else x
