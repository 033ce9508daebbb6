"""A universe's inputs: several symbols on one common grid, each with the same feature spec
applied to it (`close` reads each symbol's own close), for one model pooled over all of them.

Every symbol is cut to the common overlap (core.data.feature_set.align_symbols: one timeframe,
the same bars) and a bar filled for any symbol is filled for every one: a decision of the
universe (and the relative target, which reads every symbol's next candle) needs all of them.
"""

import pandas as pd

from fc.core.data.feature_set import FeatureSpec, align_symbols, parse_features
from fc.core.data.inputs import symbol_grids, with_features
from fc.core.data.universe_file import SYMBOL, read_universe
from fc.core.errors import FcError


def parse_symbols(text: str | None) -> tuple[str, ...]:
    """`--symbols A,B,C` as a tuple of ccxt symbols, in the order given; empty when not given.
    An item `@FILE` stands for the symbols the universe file names (core.data.universe_file)."""
    if not text:
        return ()
    symbols = ()
    for part in str(text).split(","):
        part = part.strip()
        symbols += read_universe(part[1:]) if part.startswith("@") else (part,)
    for symbol in symbols:
        if not SYMBOL.fullmatch(symbol):
            raise FcError(f"--symbols {text!r}: {symbol!r} is not a ccxt symbol like BTC/USDT")
    if len(set(symbols)) != len(symbols):
        raise FcError(f"--symbols {text!r} names a symbol twice; give each once")
    return symbols


def symbol_specs(features: str, symbols) -> dict[str, FeatureSpec]:
    """{symbol: the --features spec applied to it}: items without @ read that symbol."""
    return {symbol: parse_features(features, symbol) for symbol in symbols}


def universe_grids(features: str, symbols, timeframe: str, files: dict, store):
    """({symbol: its grid with its feature columns, all on one index}, {symbol: (file,
    sha256)}): each symbol from files[symbol] (--data SYMBOL=FILE), else from the store."""
    specs = symbol_specs(features, symbols)
    raw, sources = {}, {}
    for spec in specs.values():
        grids, found = symbol_grids(spec, timeframe, None, files, store)
        raw |= {s: g for s, g in grids.items() if s not in raw}
        sources |= found
    cut, filled = align_symbols(raw)
    out = {}
    for symbol, spec in specs.items():
        mine = {s: _with_filled(cut[s], filled) for s in spec.symbols}
        grid = with_features(spec, mine, timeframe)
        out[symbol] = _with_filled(grid, filled)
    return out, sources


def _with_filled(grid: pd.DataFrame, filled) -> pd.DataFrame:
    grid = grid.copy()
    grid["filled"] = filled
    return grid
