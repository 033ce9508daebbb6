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
