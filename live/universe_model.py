"""A pooled universe's exported model (export/universe_run.py): one window graph read with a
neutral scaling, each symbol's raw window scaled here first, in float64, as core's Scaling.apply
scales it (so p_up is window_p_up's). No torch here.

Metadata beside fc's usual keys: `symbols` (JSON list), `target`, `symbol_scaling`
({symbol: [center, scale]}) and `portfolio_params` ({"long_short": {parameter: value}}, k too).
"""

import json
from pathlib import Path

import numpy as np

from fc.core.errors import FcError
from fc.core.evaluation.policies import PolicyParams
from fc.live.predictor import OnnxPredictor, load_predictor

UNIVERSE_KEYS = ("symbols", "target", "symbol_scaling", "portfolio_params")


def is_universe(predictor) -> bool:
    """Whether a loaded window graph is a universe's: its metadata holds each symbol's scaling
    (a row graph's `symbols` are the ones its features read, not a universe)."""
    return "symbol_scaling" in getattr(predictor, "meta", {})


class UniversePredictor:
    """p_up of every symbol of a universe from its one window graph."""

    def __init__(self, graph: OnnxPredictor):
        meta = graph.meta
        try:
            self.symbols = tuple(json.loads(meta["symbols"]))
            scaling = json.loads(meta["symbol_scaling"])
            self.scaling = {s: (float(scaling[s][0]), float(scaling[s][1])) for s in self.symbols}
            book = json.loads(meta["portfolio_params"])["long_short"]
            self.portfolio_params = PolicyParams(**book)
        except (KeyError, ValueError, TypeError, IndexError, FcError) as exc:
            raise FcError(
                f"{graph.path}: damaged universe metadata ({exc}); export it again"
            ) from None
        if len(self.symbols) < 2 or graph.columns != 1:
            raise FcError(f"{graph.path}: damaged universe metadata; export it again")
        self.graph, self.meta, self.path = graph, meta, graph.path
        self.target: str = meta["target"]
        self.seq_len, self.timeframe = graph.seq_len, graph.timeframe
        self.symbol, self.spec = self.symbols[0], None
        self.policy_params = meta["policy_params"]

    def scaled(self, symbol: str, features: np.ndarray) -> np.ndarray:
        center, scale = self.scaling[symbol]
        return (np.asarray(features, dtype=np.float64) - center) / scale

    def p_up_at(self, symbol: str, features: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """OnnxPredictor.p_up_at of one symbol's raw features (the backtest's --model path)."""
        return self.graph.p_up_at(self.scaled(symbol, features), ends)

    def p_up_row(self, windows: dict) -> np.ndarray:
        """p_up of each symbol of `windows` ({symbol: raw window (seq_len,)}), in its order: one
        onnxruntime call for all (a row's value does not depend on the others); the symbols
        decided at a candle, all or some."""
        if not windows:
            return np.zeros(0)
        batch = np.stack([self.scaled(s, w) for s, w in windows.items()])
        return self.graph.p_up_batch(batch)


def load_universe_predictor(path: str | Path, threads: int = 1) -> UniversePredictor:
    """The universe window graph at `path`; a one-symbol graph is refused in one line."""
    graph = load_predictor(path, threads=threads)
    if not is_universe(graph):
        raise FcError(f"{path}: a one-symbol model ({graph.symbol}), not a universe's")
    return UniversePredictor(graph)


def load_model(path: str | Path, symbol: str | None = None, threads: int = 1):
    """The window graph the paper service trades: a universe's (`symbol`, when given, must name
    all of its symbols, comma-separated, in any order) or one symbol's (load_predictor)."""
    graph = load_predictor(path, threads=threads)
    if not is_universe(graph):
        return load_predictor(path, symbol=symbol, threads=threads)
    universe = UniversePredictor(graph)
    asked = set() if symbol is None else {s.strip() for s in symbol.split(",")}
    if asked and asked != set(universe.symbols):
        raise FcError(
            f"--symbol {symbol}: the model trades {','.join(universe.symbols)} together in one "
            "service; drop --symbol (or name all of them)"
        )
    return universe
