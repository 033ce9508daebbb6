"""A universe's inputs: several symbols, each with the same feature spec applied to it (`close`
reads each symbol's own close), for one model pooled over all of them.

Every symbol keeps all of its candles: the universe's grid is the union of their ranges (one
timeframe, the exchange's bar boundaries), and each symbol's grid is its own grid (its features
computed from its own candles) placed on that union. Where a symbol has no candle (before its
listing, after its delisting, in a gap) its bar is `filled`: close carried from its nearest real
candle (forward, and backward before its first), volume 0. core.data.presence says which
symbols are eligible at each candle; nothing is cut to the common overlap, since a universe
chosen by which coins existed all along is a universe chosen with hindsight.
"""

import numpy as np
import pandas as pd

from fc.core.data.candles import infer_timeframe
from fc.core.data.feature_set import FeatureSpec, parse_features
from fc.core.data.inputs import symbol_grids, with_features
from fc.core.data.presence import eligibility
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
    """({symbol: its grid with its feature columns, all on the union index}, {symbol: (file,
    sha256)}): each symbol from files[symbol] (--data SYMBOL=FILE), else from the store."""
    specs = symbol_specs(features, symbols)
    raw, sources = {}, {}
    for spec in specs.values():
        grids, found = symbol_grids(spec, timeframe, None, files, store)
        raw |= {s: g for s, g in grids.items() if s not in raw}
        sources |= found
    own = {s: with_features(spec, {x: raw[x] for x in spec.symbols}, timeframe)
           for s, spec in specs.items()}  # fmt: skip
    return on_union(own), sources


def on_union(grids: dict) -> dict:
    """Every grid placed on the union of their ranges; they must share one timeframe and the
    bar boundaries. A bar a symbol lacks is filled (core.data.candles.to_grid's rule, and before
    its first candle its first close carried backwards); every other column carried likewise."""
    symbols = list(grids)
    step = {s: infer_timeframe(grids[s]) for s in symbols}
    first = symbols[0]
    for s in symbols[1:]:
        if step[s] != step[first]:
            raise FcError(f"{first} candles are every {step[first]}, {s} every {step[s]}; "
                          "give every symbol the same timeframe")  # fmt: skip
    start = min(g.index[0] for g in grids.values())
    end = max(g.index[-1] for g in grids.values())
    index = pd.date_range(start, end, freq=step[first], name=grids[first].index.name)
    out = {}
    for s, grid in grids.items():
        if not grid.index.isin(index).all():
            when = grid.index[~grid.index.isin(index)][0]
            raise FcError(f"{first} and {s} are on different grids: {when} is a bar of one and "
                          "not the other; give candles of one timeframe on the exchange's bar "
                          "boundaries")  # fmt: skip
        out[s] = grid if grid.index.equals(index) else _placed(grid, index)
    return out


def _placed(grid: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    out = grid.reindex(index)
    missing = out["close"].isna().to_numpy()
    close = out["close"].ffill().bfill()
    for column in out.columns:
        if column == "filled":
            out[column] = missing | out[column].fillna(True).to_numpy(dtype=bool)
        elif column in ("open", "high", "low"):
            out[column] = out[column].fillna(close)
        elif column == "volume":
            out[column] = out[column].fillna(0.0)
        elif column != "close":
            out[column] = out[column].ffill().bfill()
    out["close"] = close
    return out


def universe_real(grids: dict) -> np.ndarray:
    """(bars, symbols): where each symbol has a real candle (not filled), in the grids' order."""
    return np.column_stack([~g["filled"].to_numpy(dtype=bool) for g in grids.values()])


def universe_volumes(grids: dict) -> np.ndarray:
    """Volumes (bars, symbols), 0 where a symbol has no candle (a filled bar's volume)."""
    return np.column_stack([g["volume"].to_numpy(dtype=np.float64) for g in grids.values()])


def universe_eligible(grids: dict, warm_up: int) -> np.ndarray:
    """(bars, symbols): where each symbol may be decided (core.data.presence.eligibility)."""
    return eligibility(universe_real(grids), warm_up)


def universe_frame(grids: dict, warm_up: int) -> pd.DataFrame:
    """The universe as one grid for what is decided once for all symbols (ranges, walk folds,
    the portfolio's decision bars): the union index, `filled` where no symbol is eligible (so
    a decision bar is one where some symbol may be decided), close 1.0 (no price of its own)."""
    index = next(iter(grids.values())).index
    filled = ~universe_eligible(grids, warm_up).any(axis=1)
    return pd.DataFrame({"close": np.ones(len(index)), "filled": filled}, index=index)


def check_pairs(grids: dict, warm_up: int) -> None:
    """FcError for a universe where no two symbols are ever eligible at the same candle: there
    is nothing to rank and no universe mean to beat."""
    if universe_eligible(grids, warm_up).sum(axis=1).max(initial=0) < 2:
        raise FcError(
            f"{', '.join(grids)}: no two of these symbols are ever eligible at the same candle "
            f"(a real candle after {warm_up} of their own); give symbols whose candles overlap"
        )
