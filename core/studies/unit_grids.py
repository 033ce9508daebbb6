"""A unit's candles as a description, never a frame: the files (DataFile, by sha256) and the
options that build the grid from them, plus the grid's own digest. A worker rebuilds the grid
with the very functions the client used and refuses one whose digest differs, so a unit trains
on exactly the client's numbers; in the client's own process the grid it already holds is used.
"""

import hashlib
from dataclasses import dataclass

import pandas as pd

from fc.core.errors import FcError
from fc.core.learning.config import TrainConfig
from fc.core.studies.unit_inputs import local_path

_GRIDS: dict = {}  # GridSource -> grid (or {symbol: grid}) built or handed over in this process
_KEEP = 2  # grids a worker keeps: one walk's, one spare (a lab switches data now and then)


@dataclass(frozen=True)
class GridSource:
    symbol: str  # the decided symbol (a universe: its first)
    symbols: tuple  # () for one symbol; every symbol of a pooled universe
    features: str
    timeframe: str
    files: tuple  # ((symbol, unit_inputs.DataFile), ...) for every symbol the grid reads
    digest: str  # of the client's grid: the worker's must be the same
    frames: bool = False  # files hold the grid itself (candles made in memory), not candles


def grid_digest(grid) -> str:
    """sha256 of a grid's index and values (a universe: of each symbol's, in order)."""
    frames = grid.values() if isinstance(grid, dict) else [grid]
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
        digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


def grid_source(config: TrainConfig, grid, executor) -> GridSource:
    """The description of the grid the client built for `config`, each file shared through the
    executor (core.studies.executor: checked or sent where units read it). Candles made in
    memory (no file: tests, benches) travel as the grid itself, one parquet file a symbol."""
    paths = {config.symbol: config.data} | {s: v[0] for s, v in config.inputs.items()}
    symbols = tuple(config.symbols) if len(config.symbols) > 1 else ()
    frames = not all(paths.values())
    if frames and executor.kind != "serial":
        grids = grid if symbols else {config.symbol: grid}
        paths = {}
        for symbol, frame in grids.items():
            paths[symbol] = executor.scratch() / f"{len(paths)}.parquet"
            frame.to_parquet(paths[symbol])
    files = tuple((symbol, executor.share(path)) for symbol, path in paths.items() if path)
    source = GridSource(config.symbol, symbols, config.features, config.timeframe, files,
                        grid_digest(grid), frames)  # fmt: skip
    remember(source, grid)
    return source


def remember(source: GridSource, grid) -> None:
    while len(_GRIDS) >= _KEEP:
        _GRIDS.pop(next(iter(_GRIDS)))
    _GRIDS[source] = grid


def unit_grid(source: GridSource):
    """The grid (a universe: {symbol: grid}) the source describes, built once per process."""
    if source in _GRIDS:
        return _GRIDS[source]
    from fc.core.data.feature_set import parse_features
    from fc.core.data.inputs import symbol_grids, with_features
    from fc.core.data.universe import universe_grids

    paths = {symbol: local_path(ref) for symbol, ref in source.files}
    if source.frames:
        grids = {symbol: pd.read_parquet(path) for symbol, path in paths.items()}
        grid = grids if source.symbols else grids[source.symbol]
    elif source.symbols:
        grid, _ = universe_grids(source.features, source.symbols, source.timeframe, paths, None)
    else:
        spec = parse_features(source.features, source.symbol)
        candles, _ = symbol_grids(spec, source.timeframe, None, paths, None)
        grid = with_features(spec, candles, source.timeframe)
    if grid_digest(grid) != source.digest:
        raise FcError(
            "the candles rebuilt from the data files differ from the client's grid; give the "
            "data as --data FILE so every machine reads the same file"
        )
    remember(source, grid)
    return grid
