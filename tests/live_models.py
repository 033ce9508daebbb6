"""Small real ONNX models for the live tests, exported from a seeded torch Forecast (torch is
used here, in tests only; the live service never imports it)."""

from pathlib import Path

import torch

from fc.core.learning.config import TrainConfig
from fc.core.learning.model import Forecast, Scaling
from fc.export.graphs import write_window_onnx


def make_onnx_model(
    folder: Path,
    seq_len: int = 64,
    timeframe: str = "30m",
    symbol: str = "BTC/USDT",
    hidden: int = 8,
    layers: int = 2,
    seed: int = 0,
):
    """(model.onnx path, torch model, scaling): random weights, inputs scaled to order one so
    p_up moves around 0.5 and both policies change position often."""
    torch.manual_seed(seed)
    model = Forecast(hidden, layers).eval()
    scaling = Scaling(center=1.0, scale=0.003)
    config = TrainConfig(
        symbol=symbol, timeframe=timeframe, hidden=hidden, layers=layers, seq_len=seq_len,
        scale_center=scaling.center, scale_scale=scaling.scale,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = write_window_onnx(model, scaling, config, folder / "model.onnx")
    return path, model, scaling


def make_universe_model(folder: Path, symbols: tuple, seq_len: int = 32, timeframe: str = "1m",
                        k: int = 1, seed: int = 0) -> Path:  # fmt: skip
    """An untrained pooled model of `symbols` exported as `fc export` writes a universe's graph
    (export/universe_run.py): neutral scaling inside, each symbol's scaling in the metadata."""
    from fc.core.evaluation.policies import POLICIES, PolicyParams
    from fc.export.universe_run import universe_metadata

    torch.manual_seed(seed)
    scaling = {s: [0.0, 0.003 * (i + 1)] for i, s in enumerate(symbols)}
    config = TrainConfig(symbol=symbols[0], timeframe=timeframe, hidden=8, layers=2,
                         seq_len=seq_len, symbols=tuple(symbols), target="relative",
                         symbol_scaling=scaling)  # fmt: skip
    params = {p: PolicyParams(k=k) for p in POLICIES}
    folder.mkdir(parents=True, exist_ok=True)
    return write_window_onnx(Forecast(8, 2).eval(), Scaling(0.0, 1.0), config,
                             folder / "model.onnx", "legacy", params,
                             universe_metadata(config, params))  # fmt: skip
