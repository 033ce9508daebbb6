"""The run folder (SPEC §6): config.json + model.pt, enough on its own to reproduce predictions.

An ensemble (`--seeds N`, N > 1) keeps no model.pt of its own: each member is a run folder of its
own inside it, members/seed-<k>/ for k = seed .. seed + N - 1, whose model.pt has the workshop's
keys. A calibrated run records its temperature in config.json.
"""

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from fc.core.data.features import CLASSES, FEATURE
from fc.core.errors import FcError


@dataclass(frozen=True)
class TrainConfig:
    """Every choice behind a run; written to config.json and read back to reproduce it."""

    symbol: str = "BTC/USDT"
    timeframe: str = "30m"
    data: str = ""  # the candle file trained on
    data_sha256: str = ""
    loss: str = "ce"  # ce | profit
    hidden: int = 16
    layers: int = 3
    seq_len: int = 512
    epochs: int = 7
    batch_size: int = 0  # rows per step; 0 = the scheme's default (SCHEME_DEFAULTS in training)
    lr: float = 0.0  # Adam learning rate; 0 = the scheme's default
    split: str = "2024-01-01"  # train before, validation from
    # test range start: "" default rule, ISO date, or "none" (core.ranges); config.json holds
    # the resolved start ("none" when there is no test range)
    test_from: str = ""
    device: str = "auto"
    seed: int = 0
    scheme: str = "sequence"  # window (the workshop's loop) | sequence (default, see schemes.py)
    chunk: int = 512  # sequence scheme: scored steps per chunk after a seq_len - 1 burn-in
    grad_clip: float = 0.0  # max gradient norm, 0 = none
    max_steps: int = 0  # stop after this many optimiser steps, 0 = all epochs
    val_size: int = 2048  # validation decisions scored during training (0 = all)
    cost_bps: float = 0.0  # profit loss: cost per unit of position change
    scaling: str = "std"  # std: center 1, scale = train std of price_change | none: raw feature
    scale_center: float = 0.0  # model input = (price_change - center) / scale
    scale_scale: float = 1.0
    feature: str = FEATURE
    classes: tuple = CLASSES
    train_range: tuple = ()  # (first, last) decision times, ISO UTC
    validation_range: tuple = ()
    test_range: tuple = ()  # (first, last) test decision times, ISO UTC; () without a test range
    fc_version: str = ""
    seeds: int = 1  # members trained with seeds seed .. seed + seeds - 1, probabilities averaged
    calibrate: str = "none"  # none | temperature (fitted on validation, core/learning/ensemble.py)
    temperature: float = 1.0  # logit(p_up) = logit(mean member p_up) / temperature
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
        return cls(**values)


def save_run(run_dir: str | Path, config: TrainConfig, state_dict, history, metrics: dict):
    """Write config.json, model.pt (the state dict, keys gru.*/fc.*), history.csv and
    metrics.json into an existing run folder."""
    import torch

    run_dir = Path(run_dir)
    (run_dir / "config.json").write_text(config.to_json() + "\n")
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, run_dir / "model.pt")
    history.to_csv(run_dir / "history.csv", index=False)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def read_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FcError(f"{run_dir}: not a run folder (no config.json); give one `fc train` made")
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise FcError(f"{path}: unreadable config ({exc}); the run folder is damaged") from None


def member_dirs(run_dir: str | Path, config: TrainConfig) -> list[Path]:
    """The members' run folders of an ensemble (config.seeds > 1), in seed order."""
    return [Path(run_dir) / "members" / f"seed-{config.seed + k}" for k in range(config.seeds)]


def load_run(run_dir: str | Path, device: str = "cpu"):
    """(config, model in eval mode, Scaling) from a run folder alone. The model is the
    workshop's Forecast for a single uncalibrated run, else an Ensemble of the members with the
    run's temperature; core.model.window_p_up and export take either."""
    from fc.core.learning.model import Ensemble, Scaling

    config = read_config(run_dir)
    if not (config.seeds >= 1 and 0 < config.temperature < float("inf")):
        raise FcError(f"{run_dir}: config.json has seeds {config.seeds} and temperature "
                      f"{config.temperature}; the run folder is damaged")  # fmt: skip
    if config.seeds > 1:
        paths = [d / "model.pt" for d in member_dirs(run_dir, config)]
        model = Ensemble([_load_forecast(p, config, device) for p in paths], config.temperature)
    else:
        model = _load_forecast(Path(run_dir) / "model.pt", config, device)
        if config.temperature != 1.0:
            model = Ensemble([model], config.temperature)
    return config, model.eval(), Scaling(config.scale_center, config.scale_scale)


def _load_forecast(path: Path, config: TrainConfig, device: str):
    import torch

    from fc.core.learning.model import Forecast

    model = Forecast(config.hidden, config.layers)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FcError(f"{path}: cannot load the model ({first})") from None
    return model
