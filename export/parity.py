"""Parity of the exported graphs with torch: each check returns the max absolute difference of
p_up (the number every policy reads) between an exported graph and its reference.

References: core.model.window_p_up on real windows (what training evaluation and the backtest
compute), the torch WindowGraph on random and odd-length inputs, the window graph for the
streamed step graph, and the backtest's own positions.parquet when the run has one. Windows are
(n, seq_len) of price_change, or (n, seq_len, columns) of a declared feature spec's raw columns,
built by the backtest's own run_grid from every symbol the spec reads.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fc.core.data.inputs import grid_features
from fc.core.errors import FcError
from fc.core.evaluation.backtest import trade_mask
from fc.core.learning.config import TrainConfig
from fc.core.learning.model import Ensemble, Forecast, Scaling, window_p_up
from fc.export.graphs import window_graph
from fc.live.predictor import OnnxPredictor, OnnxStepPredictor, p_up_from_logits


class RealWindows:
    """Validation decisions of the run's candles: windows (n, seq_len[, columns]) of the raw
    features ending at `ends` (grid positions) at `times`, plus the whole feature series for
    window_p_up, and `first`: the first index the model's windows read (carried_state_drift)."""

    def __init__(self, features: np.ndarray, ends: np.ndarray, times: pd.DatetimeIndex, L: int,
                 first: int = 1):  # fmt: skip
        self.features, self.ends, self.times, self.first = features, ends, times, first
        windows = np.lib.stride_tricks.sliding_window_view(features, L, axis=0)[ends - L + 1]
        self.windows = windows.swapaxes(1, 2) if features.ndim == 2 else windows


def real_windows(
    config: TrainConfig, data: str | Path | None, limit: int
) -> tuple[RealWindows | None, str]:
    """Up to `limit` (0: all) validation decisions, evenly spread; (None, why) when the run's
    own candle file is not readable. A --data file the user names must be readable."""
    from fc.core.studies.backtest_run import run_grid

    source = data or config.data
    try:
        grid = run_grid(config, data)
    except FcError as exc:
        if data is not None:
            raise
        why = f"real-window checks skipped: the run's candles {config.data!r} are not readable"
        return None, f"{why} ({str(exc).split(';')[0]}); pass --data FILE"
    decide = trade_mask(grid["filled"].to_numpy(), config.first_decision)
    split = pd.Timestamp(config.split, tz="UTC") if config.split else grid.index[0]
    ends = np.flatnonzero(decide & (grid.index >= split))
    where = "validation"
    if len(ends) == 0:  # a file that ends before the split: its train decisions still test
        ends, where = np.flatnonzero(decide), "all"
    if len(ends) == 0:
        return None, f"real-window checks skipped: {source} has no full window of {config.seq_len}"
    if limit and len(ends) > limit:
        ends = ends[np.linspace(0, len(ends) - 1, limit).round().astype(np.int64)]
    features = grid_features(grid)
    note = f"real windows: {len(ends)} {where} decisions of {source}"
    first = config.first_decision - config.seq_len + 1
    return RealWindows(features, ends, grid.index[ends], config.seq_len, first), note


def random_windows(config: TrainConfig, n: int, length: int, seed: int = 0) -> np.ndarray:
    """Raw inputs whose scaled values are standard normal: the graph's whole working range;
    (n, length) for one column, (n, length, columns) for a declared spec's several."""
    rng = np.random.default_rng(seed)
    center, scale = np.asarray(config.scale_center), np.asarray(config.scale_scale)
    shape = (n, length) if center.ndim == 0 else (n, length, len(center))
    return center + scale * rng.standard_normal(shape)


def graph_input(windows: np.ndarray) -> np.ndarray:
    """Windows (n, time) or (n, time, columns) as a graph reads them: (n, time, columns)."""
    return np.ascontiguousarray(windows[:, :, None] if windows.ndim == 2 else windows)


@torch.no_grad()
def torch_p_up(graph: torch.nn.Module, windows: np.ndarray) -> np.ndarray:
    """p_up of a window_graph module (torch eager or TorchScript) on raw windows."""
    logits, _ = graph(torch.from_numpy(graph_input(windows)))
    return p_up_from_logits(logits.numpy())


def onnx_vs_torch_real(
    model: Forecast | Ensemble, scaling: Scaling, predictor: OnnxPredictor, real: RealWindows
) -> tuple[float, int]:
    reference = window_p_up(model, real.features, real.ends, predictor.seq_len, scaling)
    return float(np.abs(predictor.p_up_batch(real.windows) - reference).max()), len(reference)


def onnx_vs_torch_random(
    model: Forecast | Ensemble, scaling: Scaling, config: TrainConfig, predictor: OnnxPredictor
) -> tuple[float, int]:
    """seq_len windows through the predictor, and other batch sizes and lengths (the axes are
    dynamic) through the raw session."""
    graph = window_graph(model, scaling)
    windows = random_windows(config, 64, config.seq_len, seed=1)
    diff = np.abs(predictor.p_up_batch(windows) - torch_p_up(graph, windows)).max()
    for n, length in ((1, 1), (3, 7), (5, config.seq_len + 13)):
        x = random_windows(config, n, length, seed=length)
        logits = predictor.session.run(["logits"], {predictor.input: graph_input(x)})[0]
        diff = max(diff, np.abs(p_up_from_logits(logits) - torch_p_up(graph, x)).max())
    return float(diff), 64 + 1 + 3 + 5


def step_vs_window(
    step: OnnxStepPredictor, predictor: OnnxPredictor, config: TrainConfig, real: RealWindows | None
) -> tuple[float, int]:
    """The step graph streamed over each window from a zero state against the window graph."""
    windows = random_windows(config, 16, config.seq_len, seed=2)
    if real is not None:
        windows = np.vstack([windows, real.windows[:: max(1, len(real.windows) // 32)]])
    diff = np.abs(step.p_up_batch(windows) - predictor.p_up_batch(windows)).max()
    return float(diff), len(windows)


def torchscript_vs_torch(
    model: Forecast | Ensemble,
    scaling: Scaling,
    config: TrainConfig,
    traced,
    real: RealWindows | None,
) -> tuple[float, int]:
    graph = window_graph(model, scaling)
    windows = random_windows(config, 32, config.seq_len, seed=3)
    diff = np.abs(torch_p_up(traced, windows) - torch_p_up(graph, windows)).max()
    short = random_windows(config, 3, 5, seed=4)  # traced with another length: time is dynamic
    diff = max(diff, np.abs(torch_p_up(traced, short) - torch_p_up(graph, short)).max())
    sample = real.windows[:256] if real is not None else windows[:0]
    if len(sample):
        diff = max(diff, np.abs(torch_p_up(traced, sample) - torch_p_up(graph, sample)).max())
    return float(diff), len(windows) + len(short) + len(sample)


def onnx_vs_backtest(
    predictor: OnnxPredictor, positions_path: Path, real: RealWindows
) -> tuple[float | None, int]:
    """The backtest's p_up (RUN/backtest/positions.parquet) at the real windows' times."""
    positions = pd.read_parquet(positions_path, columns=["time", "p_up"]).dropna()
    backtest = pd.Series(positions["p_up"].to_numpy(), index=pd.DatetimeIndex(positions["time"]))
    backtest = backtest[~backtest.index.duplicated()]
    mine = pd.Series(predictor.p_up_batch(real.windows), index=real.times)
    both = mine.index.intersection(backtest.index)
    if len(both) == 0:
        return None, 0
    return float(np.abs(mine[both].to_numpy() - backtest[both].to_numpy()).max()), len(both)


@torch.no_grad()
def carried_state_drift(
    model: Forecast | Ensemble, scaling: Scaling, predictor: OnnxPredictor, real: RealWindows
) -> float:
    """Not a parity check but the number that says whether a live loop may carry the step
    graph's state (O(1) per candle) instead of reading windows: the model run once over the whole
    series from a zero state, its p_up at the real windows' ends against the window graph's."""
    # from the first real value on: index 0 of price_change is the 1.0 placeholder, and a
    # declared feature's values before its warm-up are placeholders too
    x = graph_input(scaling.apply(real.features[real.first :])[None]).astype(np.float32)
    logits = model(torch.from_numpy(x))[0]
    carried = p_up_from_logits(logits.numpy())[real.ends - real.first]
    return float(np.abs(carried - predictor.p_up_batch(real.windows)).max())
