"""Run folders for the export tests, as `fc train` leaves them, with seeded random weights."""

from dataclasses import replace

import numpy as np
import torch

from fc.core.data.features import price_change
from fc.core.learning.config import TrainConfig
from fc.core.learning.gru import member_dirs
from fc.core.learning.model import Ensemble, Forecast, Scaling
from fc.export import graphs


def make_run(root, hidden=8, layers=2, seq_len=32, data="", seed=0, **config):
    """A run folder as `fc train` leaves it, with seeded random weights."""
    torch.manual_seed(seed)
    model = Forecast(hidden, layers).eval()
    root.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), root / "model.pt")
    cfg = TrainConfig(hidden=hidden, layers=layers, seq_len=seq_len, data=str(data), **config)
    (root / "config.json").write_text(cfg.to_json())
    return cfg, model, Scaling(cfg.scale_center, cfg.scale_scale)


def make_ensemble_run(root, members=3, temperature=1.0, seed=0, **config):
    """An ensemble run folder as `fc train --seeds N --calibrate ...` leaves it (members/seed-<k>/
    each a run folder of seeded random weights; one member: model.pt in the folder itself), with
    the given temperature; (config, Ensemble, Scaling)."""
    calibrate = "none" if temperature == 1.0 else "temperature"
    cfg = TrainConfig(seed=seed, seeds=members, temperature=temperature, calibrate=calibrate,
                      **{**config, "data": str(config.get("data", ""))})  # fmt: skip
    forecasts = []
    folders = member_dirs(root, cfg) if members > 1 else [root]
    for k, folder in enumerate(folders):
        torch.manual_seed(seed + k)
        forecasts.append(Forecast(cfg.hidden, cfg.layers).eval())
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(forecasts[-1].state_dict(), folder / "model.pt")
        one = replace(cfg, seed=seed + k, seeds=1, calibrate="none", temperature=1.0)
        (folder / "config.json").write_text(one.to_json())
    (root / "config.json").write_text(cfg.to_json())
    return cfg, Ensemble(forecasts, temperature).eval(), Scaling(cfg.scale_center, cfg.scale_scale)


def exported(tmp_path, hidden=8, layers=2, seq_len=32, **config):
    cfg, model, scaling = make_run(tmp_path / "run", hidden, layers, seq_len, **config)
    window = graphs.write_window_onnx(model, scaling, cfg, tmp_path / "model.onnx")
    step = graphs.write_step_onnx(model, scaling, cfg, tmp_path / "model.step.onnx")
    return cfg, model, scaling, window, step


def feature_windows(candles_factory, n_bars, seq_len, seed=0):
    features = price_change(candles_factory(n_bars, "30min", seed)["close"].to_numpy())
    ends = np.arange(seq_len, n_bars)
    return (
        features,
        ends,
        np.lib.stride_tricks.sliding_window_view(features, seq_len)[ends - seq_len + 1],
    )


def synth_run(
    root, days, seed, outage, seq_len, split, symbol="BTC/USDT", members=0, temperature=1.0
):
    """A run folder (h8 l2, seeded random weights, input scaled to order one) over `days` of
    synthetic 30m candles with the bars at positions `outage` missing; returns the data file.
    members > 0: an ensemble of that many members at that temperature (make_ensemble_run)."""
    from fc.core.data.synth import synth_candles

    data = root / "synth-30m.parquet"
    df = synth_candles(days=days, timeframe="30m", seed=seed)
    df.drop(df.index[list(outage)]).to_parquet(data)
    config = dict(hidden=8, layers=2, seq_len=seq_len, data=str(data), seed=seed, symbol=symbol,
                  timeframe="30m", split=split, scale_center=1.0, scale_scale=0.003)  # fmt: skip
    if members:
        make_ensemble_run(root, members, temperature, **config)
    else:
        make_run(root, **config)
    return data
