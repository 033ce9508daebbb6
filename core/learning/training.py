"""Training the Forecast model: data, scaling, the loop, validation (the GRU family's fit).

The loop is plain: batches from a scheme (schemes.py), Adam, a loss (losses.py), and about ten
times an epoch a validation with the window semantics of SPEC §2 (window_p_up), keeping the
checkpoint with the best validation loss. fit() returns what was learnt; core.studies.train
writes it into a run folder.
"""

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from fc import __version__
from fc.core.data.candles import grid_at, load_candles, to_grid
from fc.core.data.ranges import recorded, resolve_test_from
from fc.core.data.store import file_sha256
from fc.core.errors import FcError
from fc.core.learning.config import TrainConfig
from fc.core.learning.evaluation import baselines, evaluate, validation_sample
from fc.core.learning.losses import LOSSES, training_loss
from fc.core.learning.schemes import (
    Series,
    make_series,
    sequence_batches,
    steps_per_epoch,
    window_batches,
)

SCHEMES = ("sequence", "window")
# (rows per step, learning rate). window: the workshop's 64 windows at 1e-3. sequence: 32 chunks
# of 512 scored steps (16k targets a step, so far less gradient noise and far fewer steps) at
# 3e-2, chosen by measurement on the 30m file (docs/training.md).
SCHEME_DEFAULTS = {"window": (64, 1e-3), "sequence": (32, 3e-2)}


# on_progress(step, total_steps, train_loss, val_loss or None)
Progress = Callable[[int, int, float, float | None], None]


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise FcError("--device cuda: no CUDA device here; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise FcError(f"--device {device!r}: use auto, cpu or cuda")
    return device


def prepare_data(data, symbol: str, timeframe: str, store) -> tuple[pd.DataFrame, Path, str]:
    """(grid, source file, its sha256): from `data` when given, else the store's file for the
    symbol (any stored timeframe that resamples to `timeframe`)."""
    if data is None:
        from fc.core.data.store import find_candles

        candles, path = find_candles(store, symbol, timeframe)
        return to_grid(candles, timeframe), path, file_sha256(path)
    return grid_at(load_candles(data), timeframe), Path(data), file_sha256(data)


def fit_scaling(series: Series, mode: str, spec=None) -> tuple:
    """(center, scale): 'std' centres price_change on 1 and divides by its training std, so the
    GRU sees inputs of order 1; 'none' feeds the raw feature as the workshop did. Any other
    feature spec: per column, core.data.feature_set.fit_normalisation, as tuples."""
    from fc.core.data.inputs import plain_close

    if spec is not None and not plain_close(spec):
        from fc.core.data.feature_set import fit_normalisation

        columns = series.features.reshape(len(series.features), -1)
        last = int(np.flatnonzero(series.train)[-1])
        center, scale = fit_normalisation(columns, spec, last, mode)
        if columns.shape[1] == 1:
            return float(center[0]), float(scale[0])
        return tuple(float(c) for c in center), tuple(float(v) for v in scale)
    if mode == "none":
        return 0.0, 1.0
    if mode != "std":
        raise FcError(f"--scaling {mode!r}: use std or none")
    # every feature a training window can read: index 1 (the first real change) to the last
    last = int(np.flatnonzero(series.train)[-1]) + 1
    std = float(np.std(series.features[1:last]))
    return 1.0, std if std > 0 else 1.0


def with_scheme_defaults(config: TrainConfig) -> TrainConfig:
    """The config with batch_size and lr filled in from its scheme where they are 0."""
    if config.scheme not in SCHEMES:
        raise FcError(f"--scheme {config.scheme!r}: use one of {', '.join(SCHEMES)}")
    batch, lr = SCHEME_DEFAULTS[config.scheme]
    return replace(config, batch_size=config.batch_size or batch, lr=config.lr or lr)


TARGETS = ("next", "relative")


def check_target(config: TrainConfig) -> None:
    """The label asked for: relative needs a universe (--symbols), and the profit loss trades
    one symbol's own return, so it is refused with relative for now; the horizon and schedule
    (core.evaluation.schedule), and the profit loss only at H = 1 (defined for one candle)."""
    config.schedule  # noqa: B018  (a bad horizon, cadence or sleeves is one line here)
    if config.loss == "profit" and config.horizon > 1:
        raise FcError(f"--loss profit with --horizon {config.horizon}: the profit loss is "
                      "defined for one candle; use --loss ce")  # fmt: skip
    if config.target not in TARGETS:
        raise FcError(f"--target {config.target!r}: use next or relative")
    if config.target == "relative" and len(config.symbols) < 2:
        raise FcError("--target relative compares a symbol with its universe: give several "
                      "symbols with --symbols A,B,…")  # fmt: skip
    if config.target == "relative" and config.loss == "profit":
        raise FcError("--loss profit with --target relative is not supported yet; use --loss ce")


def _check_gru(config: TrainConfig) -> None:
    """The GRU's options, its batch size and learning rate resolved (with_scheme_defaults)."""
    if config.loss not in LOSSES:
        raise FcError(f"--loss {config.loss!r}: use one of {', '.join(LOSSES)}")
    if min(config.hidden, config.layers, config.seq_len, config.batch_size, config.chunk) < 1:
        raise FcError("--hidden, --layers, --seq-len, --batch-size and --chunk must be >= 1")


def check_ranges(config: TrainConfig, series: Series) -> None:
    """FcError for ranges that leave no training or no validation decision."""
    if not series.train.any() or not series.validation.any():
        raise FcError(
            f"split {config.split}: need training decisions before it and validation decisions "
            f"from it (data {series.time[0]} .. {series.time[-1]}, seq_len {config.seq_len}"
            + (
                f", horizon {config.horizon}: decisions purged {series.purged})"
                if series.purged
                else ")"
            )  # fmt: skip
        )


def three_ranges(
    grid: pd.DataFrame,
    seq_len: int,
    split: pd.Timestamp,
    test_from: str,
    first: int | None = None,
    horizon: int = 1,
    end: str = "",
):
    """(series with train, validation and test masks, test start or None) per core.ranges;
    decisions from bar `first` on (TrainConfig.first_decision), labels `horizon` candles ahead,
    purged at each boundary (make_series; `end` names the grid's end when it is a boundary)."""
    after = make_series(grid, seq_len, split, first=first).validation  # every decision from split
    start = resolve_test_from(grid.index, after, split, test_from)
    return make_series(grid, seq_len, split, start, first, horizon, end), start


def series_of(config: TrainConfig, grid: pd.DataFrame):
    """three_ranges of a run's config: its split, test start, first decision and horizon (a walk
    fold's grid ends at the fold it predicts: that end is a boundary too)."""
    split = pd.Timestamp(config.split, tz="UTC")
    end = "validation->fold" if "walk_fold" in config.extra else ""
    return three_ranges(grid, config.seq_len, split, config.test_from, config.first_decision,
                        config.horizon, end)  # fmt: skip


def purge_record(series: Series) -> dict:
    """metrics.json's `purged` (decisions dropped at each boundary), only when H > 1."""
    return {"purged": dict(series.purged)} if series.purged else {}


def recorded_test_range(series: Series, start) -> dict:
    """config.json's record of the test range: resolved start and (first, last) decision."""
    t = np.flatnonzero(series.test)
    first_last = (series.time[t[0]].isoformat(), series.time[t[-1]].isoformat()) if len(t) else ()
    return {"test_from": recorded(start), "test_range": first_last}


def check_config(config: TrainConfig, grid: pd.DataFrame) -> None:
    """Raise FcError for a config that train() would refuse on this grid, before any training
    (fc tune checks a whole search space this way before it touches the study)."""
    resolve_device(config.device)
    config = with_scheme_defaults(config)
    if config.lr < 0 or config.cost_bps < 0:
        raise FcError("--lr and --cost-bps must be >= 0")
    _check_gru(config)
    series, _ = checked_series(config, grid)
    fit_scaling(series, config.scaling, config.spec)


def checked_series(config: TrainConfig, grid: pd.DataFrame):
    """(Series, test start) of the config's three ranges on the grid, or FcError for a split
    that is no date or ranges that leave no training or validation decision."""
    check_series_options(config)
    series, test_start = series_of(config, grid)
    check_ranges(config, series)
    return series, test_start


def check_series_options(config: TrainConfig) -> None:
    """FcError for a target, --seq-len or --split that no grid could make ranges of."""
    check_target(config)
    if config.seq_len < 1:
        raise FcError(f"--seq-len {config.seq_len} must be >= 1")
    try:
        pd.Timestamp(config.split, tz="UTC")
    except ValueError:
        raise FcError(f"--split {config.split!r} is not a date; give one like 2024-01-01") from None


def resolved(config: TrainConfig, series: Series, test_start, **learnt) -> TrainConfig:
    """The config as config.json records it: the feature spec, the three ranges' decision
    times, this fc's version, and what the fit learnt (`learnt`: the GRU's scaling, ...)."""
    spec = config.spec
    t_train, t_val = np.flatnonzero(series.train), np.flatnonzero(series.validation)
    return replace(
        config,
        features=spec.text,
        feature_spec=spec.to_dict(),
        train_range=(series.time[t_train[0]].isoformat(), series.time[t_train[-1]].isoformat()),
        validation_range=(series.time[t_val[0]].isoformat(), series.time[t_val[-1]].isoformat()),
        **recorded_test_range(series, test_start),
        fc_version=__version__,
        **learnt,
    )


@dataclass
class Trained:
    """What a fit learnt: the config as resolved (scaling, ranges, version), the model at its
    best validation checkpoint, the loss history, metrics.json's content and the model's p_up
    at every validation decision (columns time, p_up)."""

    config: TrainConfig
    model: object
    history: pd.DataFrame
    metrics: dict
    predictions: pd.DataFrame


def fit(
    config: TrainConfig,
    grid: pd.DataFrame,
    on_progress: Progress | None = None,
    on_validation: Callable[[int, dict], None] | None = None,
    timing: dict | None = None,
) -> Trained:
    """Train per config on a grid frame; the checkpoint with the best validation loss.

    on_validation(k, result) sees the k-th validation's full result (ce, log_growth, loss, ...);
    an exception it raises (fc tune's pruning) stops training. `timing`, when given, receives
    wall-clock stamps (time.time()) `first_step` and `last_step`."""
    import torch

    device = resolve_device(config.device)
    config = with_scheme_defaults(config)
    _check_gru(config)
    series, test_start = checked_series(config, grid)
    center, scale = fit_scaling(series, config.scaling, config.spec)
    config = resolved(config, series, test_start, scale_center=center, scale_scale=scale)

    from fc.core.learning.model import Forecast, Scaling

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = Forecast(config.hidden, config.layers, config.n_inputs).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scaling = Scaling(center, scale)
    x = scaling.apply(series.features).astype(np.float32)
    cost = config.cost_bps / 1e4
    val_ends = validation_sample(series, config.val_size)

    per_epoch = steps_per_epoch(
        series, config.scheme, config.seq_len, config.batch_size, config.chunk
    )
    best = BestCheckpoint(model, on_validation)

    def validate() -> float:
        return best(evaluate(
            model, series, val_ends, scaling, config.seq_len, config.loss, cost, device
        ))  # fmt: skip

    def epoch_batches():
        if config.scheme == "window":
            return window_batches(series, x, config.seq_len, config.batch_size, rng)
        return sequence_batches(series, x, config.seq_len, config.chunk, config.batch_size, rng)

    started = time.perf_counter()
    history, step = train_steps(model, optimizer, config, cost, device, epoch_batches,
                                per_epoch, validate, on_progress, timing, started)  # fmt: skip
    best.restore()
    metrics, predictions = final_metrics(model, series, scaling, config, cost, device, val_ends)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    metrics["steps"] = step
    metrics["test_decisions"] = int(series.test.sum())  # a count of dates: no test price read
    metrics["scored_targets"] = int(history["scored"].sum()) if len(history) else 0
    metrics |= purge_record(series)
    return Trained(config, model, history, metrics, predictions)


class BestCheckpoint:
    """Called with each validation's result: keeps the state dict of the lowest `loss`, passes
    the result to on_validation (whose exception, fc tune's pruning, stops training)."""

    def __init__(self, model, on_validation=None):
        self.model, self.on_validation = model, on_validation
        self.loss, self.state, self.count = math.inf, None, 0

    def __call__(self, result: dict) -> float:
        if result["loss"] < self.loss:
            self.loss, self.state = result["loss"], copy.deepcopy(self.model.state_dict())
        self.count += 1
        if self.on_validation:
            self.on_validation(self.count, result)
        return result["loss"]

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)


def train_steps(model, optimizer, config, cost, device, epoch_batches, per_epoch: int,
                validate, on_progress, timing, started: float):  # fmt: skip
    """The loop: config.epochs passes of epoch_batches() (a fresh iterator of batches each
    epoch), one optimiser step a batch, validate() about ten times an epoch and after the last
    step; stops at --max-steps. Returns (history, steps). `timing` (or None) receives
    `first_step` and `last_step` stamps."""
    limit = config.max_steps or math.inf
    # total is for the progress bar (a sequence epoch may differ by a chunk)
    total = int(min(per_epoch * config.epochs, limit))
    val_every = max(1, per_epoch // 10)
    rows, step = [], 0
    stamps = timing if timing is not None else {}
    for epoch in range(config.epochs):
        for batch in epoch_batches():
            if step >= limit:
                break
            stamps.setdefault("first_step", time.time())
            loss = _optimiser_step(model, optimizer, batch, config, cost, device)
            step += 1
            val = validate() if step % val_every == 0 else None
            rows.append({"step": step, "epoch": epoch + 1, "train_loss": loss,
                         "scored": int(batch.scored.sum()), "val_loss": val,
                         "elapsed_s": time.perf_counter() - started})  # fmt: skip
            if on_progress:
                on_progress(step, max(total, step), loss, val)
    if rows and rows[-1]["val_loss"] is None:  # always score the last step
        rows[-1]["val_loss"] = validate()
        rows[-1]["elapsed_s"] = time.perf_counter() - started
    stamps["last_step"] = time.time()
    return pd.DataFrame(rows), step


def _optimiser_step(model, optimizer, batch, config: TrainConfig, cost: float, device) -> float:
    import torch

    model.train()
    xb, yb, rb, mb = (
        torch.from_numpy(np.ascontiguousarray(a)).to(device)
        for a in (batch.x, batch.labels, batch.returns, batch.scored)
    )
    x = xb if xb.dim() == 3 else xb.unsqueeze(-1)  # rows of one feature get a column axis
    loss = training_loss(config.loss, model(x), yb, rb, mb, cost)
    optimizer.zero_grad()
    loss.backward()
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return loss.item()


def final_metrics(model, series, scaling, config, cost, device, val_ends):
    """(metrics, predictions): the best checkpoint on every validation decision (exact windows)
    beside the baselines, `check` holding a few predictions so a reload can prove it reproduces
    them; and those validation p_up as a frame (time, p_up) for VALIDATION_P_UP."""
    ends = np.flatnonzero(series.validation)
    result = evaluate(
        model, series, ends, scaling, config.seq_len, config.loss, cost, device, keep_p_up=True
    )
    predictions = pd.DataFrame({"time": series.time[ends], "p_up": result.pop("p_up")})
    check_ends = val_ends[:8]
    from fc.core.learning.model import window_p_up

    check = window_p_up(model, series.features, check_ends, config.seq_len, scaling, device=device)
    metrics = {
        "validation": {**result, "decisions": int(len(ends))},
        "validation_sample_size": int(len(val_ends)),
        "baselines": baselines(series, ends, config.horizon),
        "check": {
            "time": [series.time[i].isoformat() for i in check_ends],
            "p_up": [float(p) for p in check],
        },
    }
    return metrics, predictions
