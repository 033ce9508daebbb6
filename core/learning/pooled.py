"""One GRU pooled over a universe (`fc train --symbols A,B,C`): every symbol's decisions train
the same model, each symbol's inputs normalised with its own training statistics.

Each symbol keeps its own Series (core.learning.schemes) on the common grid; batches are rows
cut from one symbol's series only (a window or a chunk never reads another symbol) and mixed
across symbols. Ranges, checkpoints and selection are those of one symbol, the validation loss
pooled over symbols (the log loss of all their validation decisions together). With
`--target relative` a decision's label is whether the symbol's next return beats the
universe's equal-weight mean (core.data.features.horizon_labels).
"""

import math
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from fc import __version__
from fc.core.data.features import horizon_labels
from fc.core.data.presence import eligibility, lives
from fc.core.data.ranges import resolve_test_from
from fc.core.data.universe import check_pairs, symbol_specs, universe_real
from fc.core.errors import FcError
from fc.core.learning.config import TrainConfig
from fc.core.learning.evaluation import baselines, evaluate, scores, validation_sample
from fc.core.learning.schemes import (
    Batch,
    Series,
    make_series,
    rows_at,
    sequence_batches,
    steps_per_epoch,
)
from fc.core.learning.training import (
    BestCheckpoint,
    Trained,
    check_ranges,
    check_series_options,
    final_metrics,
    fit_scaling,
    purge_record,
    recorded_test_range,
    resolve_device,
    train_steps,
    with_scheme_defaults,
)


def universe_closes(grids: dict) -> np.ndarray:
    """Closes (bars, symbols) of grids on one index, one column a symbol in the given order."""
    return np.column_stack([g["close"].to_numpy(dtype=np.float64) for g in grids.values()])


def universe_series(config: TrainConfig, grids: dict):
    """({symbol: Series}, test start): each symbol's three ranges over its own candles (its
    first to its last real candle on the union grid: its decisions are where it is eligible,
    core.data.presence), the test start one time for all (from every symbol's decisions), labels
    of config.target. A symbol without a candle in the grids has no Series; a universe where
    no two symbols are ever eligible together is refused (check_pairs)."""
    check_series_options(config)
    check_pairs(grids, config.first_decision)
    split = pd.Timestamp(config.split, tz="UTC")
    index = next(iter(grids.values())).index
    lives = _lives(grids)
    after = np.zeros(len(index), dtype=bool)
    for s, life in lives.items():
        after[life] |= make_series(grids[s].iloc[life], config.seq_len, split,
                                   first=config.first_decision).validation  # fmt: skip
    start = resolve_test_from(index, after, split, config.test_from)
    end = "validation->fold" if "walk_fold" in config.extra else ""
    series = {
        s: make_series(
            grids[s].iloc[life],
            config.seq_len,
            split,
            start,
            config.first_decision,
            config.horizon,
            end,
        )  # fmt: skip
        for s, life in lives.items()
    }
    if not any(one.train.any() for one in series.values()) or not any(
        one.validation.any() for one in series.values()
    ):
        check_ranges(config, next(iter(series.values())))  # the one-symbol message
    if config.target == "next":
        return series, start
    eligible = eligibility(universe_real(grids), config.first_decision)
    labels, excess = horizon_labels(universe_closes(grids), config.horizon, "relative", eligible)
    column = {s: i for i, s in enumerate(grids)}
    return {
        s: replace(one, labels=labels[life, column[s]], returns=excess[life, column[s]])
        for (s, one), life in zip(series.items(), lives.values(), strict=True)
    }, start


def _lives(grids: dict) -> dict:
    """{symbol: slice of its first to its last real candle} for every symbol with one."""
    return {s: life for s, life in zip(grids, lives(universe_real(grids)), strict=True)
            if life.stop > life.start}  # fmt: skip


def check_universe(config: TrainConfig) -> None:
    """Options a pooled run does not take (yet), and the family's own checks, refused before
    any work. Every family pools (its fit_universe)."""
    from fc.core.learning.family import family_of

    if len(config.symbols) < 2:
        raise FcError("--symbols: give two or more symbols, e.g. BTC/USDT,ETH/USDT")
    if config.seeds != 1 or config.calibrate != "none":
        raise FcError("--seeds and --calibrate are for one symbol yet; drop them with --symbols")
    family_of(config).check(config)


def pooled_batches(series: dict, xs: dict, config: TrainConfig, rng):
    """One epoch: rows of every symbol (windows, or chunks after a burn-in), each row cut from
    one symbol's series, shuffled across symbols, config.batch_size rows a step."""
    if config.scheme == "window":
        yield from _window_rows(series, xs, config, rng)
        return
    rows = [
        row
        for s in series
        for row in sequence_batches(series[s], xs[s], config.seq_len, config.chunk, 1, rng)
    ]
    order = rng.permutation(len(rows))
    for i in range(0, len(rows), config.batch_size):
        group = [rows[j] for j in order[i : i + config.batch_size]]
        yield Batch(
            *(
                np.concatenate([getattr(b, f) for b in group])
                for f in ("x", "labels", "returns", "scored")
            )
        )


def _window_rows(series: dict, xs: dict, config: TrainConfig, rng):
    symbols = list(series)
    pairs = np.concatenate(
        [
            np.column_stack(
                [np.full(int(series[s].train.sum()), i), np.flatnonzero(series[s].train)]
            )
            for i, s in enumerate(symbols)
        ]
    )
    pairs = pairs[rng.permutation(len(pairs))]
    for i in range(0, len(pairs), config.batch_size):
        group = pairs[i : i + config.batch_size]
        parts = [
            rows_at(
                series[symbols[k]],
                xs[symbols[k]],
                group[group[:, 0] == k, 1] - config.seq_len + 1,
                config.seq_len,
            )
            for k in np.unique(group[:, 0])
        ]
        x, labels, returns = (np.concatenate([p[j] for p in parts]) for j in range(3))
        scored = np.zeros(labels.shape, dtype=bool)
        scored[:, -1] = True
        yield Batch(x, labels, returns, scored)


def pooled_result(results: dict, counts: dict, loss: str) -> dict:
    """The pooled validation: each symbol's ce, accuracy and log growth weighted by its decisions
    (so ce is the log loss of all decisions together), the loss of the run's --loss."""
    total = sum(counts.values())
    out = {
        key: float(sum(results[s][key] * counts[s] for s in results) / total)
        for key in ("ce", "accuracy", "log_growth")
    }
    out["loss"] = out["ce"] if loss == "ce" else -out["log_growth"]
    out["symbols"] = {
        s: {k: r[k] for k in ("ce", "accuracy", "log_growth")} for s, r in results.items()
    }
    return out


def fit_pooled(
    config: TrainConfig, grids: dict, on_progress=None, on_validation=None, timing=None
) -> Trained:
    """Train one GRU on every symbol of `grids` ({symbol: grid on one index}, the order of
    config.symbols); the checkpoint with the best pooled validation loss."""
    import torch

    from fc.core.learning.model import Forecast, Scaling

    check_universe(config)
    device = resolve_device(config.device)
    config = with_scheme_defaults(config)
    series, test_start = universe_series(config, grids)
    specs = symbol_specs(config.features, config.symbols)
    scalings = {s: Scaling(*v) for s, v in symbol_scalings(config, series, specs).items()}
    config = _resolved(config, series, scalings, test_start)
    series = {s: one for s, one in series.items() if one.train.any() or one.validation.any()}
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = Forecast(config.hidden, config.layers, config.n_inputs).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    xs = {s: scalings[s].apply(series[s].features).astype(np.float32) for s in series}
    cost = config.cost_bps / 1e4
    # --val-size decisions over the universe (a share a symbol): the pooled validation loss is
    # as noisy, and costs as much, as one symbol's
    validated = [s for s in series if series[s].validation.any()]
    share = math.ceil(config.val_size / len(validated))
    val_ends = {s: validation_sample(series[s], share) for s in validated}
    best = BestCheckpoint(model, on_validation)

    def validate() -> float:
        results = {
            s: evaluate(
                model,
                series[s],
                val_ends[s],
                scalings[s],
                config.seq_len,
                config.loss,
                cost,
                device,
            )
            for s in validated
        }
        counts = {s: len(val_ends[s]) for s in validated}
        return best(pooled_result(results, counts, config.loss))

    started = time.perf_counter()
    history, step = train_steps(
        model,
        optimizer,
        config,
        cost,
        device,
        lambda: pooled_batches(series, xs, config, rng),
        _per_epoch(series, config),
        validate,
        on_progress,
        timing,
        started,
    )
    best.restore()
    metrics, predictions = _final(model, series, scalings, config, cost, device, val_ends)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    metrics["steps"] = step
    metrics["test_decisions"] = int(sum(one.test.sum() for one in series.values()))
    metrics["scored_targets"] = int(history["scored"].sum()) if len(history) else 0
    metrics |= purge_record(most_purged(series))
    return Trained(config, model, history, metrics, predictions)


def symbol_scalings(config: TrainConfig, series: dict, specs: dict) -> dict:
    """{symbol: (center, scale)} for every symbol of config.symbols: fitted on its own training
    candles (core.learning.training.fit_scaling); a symbol without a training decision (listed
    after the training range, or absent from the grids) takes the universe's pooled statistics:
    fit_scaling over every trained symbol's training candles end to end, never statistics of
    validation or test candles."""
    pooled = untrained(config, series)
    trained = [s for s in config.symbols if s not in pooled]
    out = {s: fit_scaling(series[s], config.scaling, specs[s]) for s in trained}
    if pooled:
        stats = fit_scaling(_training_candles([series[s] for s in trained]), config.scaling,
                            specs[config.symbols[0]])  # fmt: skip
        out = {s: out.get(s, stats) for s in config.symbols}
    return out


def untrained(config: TrainConfig, series: dict) -> tuple:
    """The symbols of config.symbols without a training decision (or without a Series): those
    scaled with the universe's pooled training statistics."""
    return tuple(s for s in config.symbols if s not in series or not series[s].train.any())


def _training_candles(parts: list) -> Series:
    """Every part's features up to its last training decision, end to end, as one Series whose
    last bar is its one training decision: what fit_scaling reads of each part (from its index
    1, the first real change), read once over all of them."""
    cut = [p.features[1 : int(np.flatnonzero(p.train)[-1]) + 1] for p in parts]
    features = np.concatenate([parts[0].features[:1], *cut])
    train = np.zeros(len(features), dtype=bool)
    train[-1] = True
    empty = np.zeros(len(features))
    return Series(pd.DatetimeIndex(np.zeros(len(features), "datetime64[ns]")), features, empty,
                  empty, train, ~train, ~train)  # fmt: skip


def most_purged(series: dict) -> Series:
    """The series whose purge lost most decisions (on one grid every symbol's is the same)."""
    return max(series.values(), key=lambda one: sum(one.purged.values()))


def _per_epoch(series: dict, config: TrainConfig) -> int:
    if config.scheme == "window":
        return math.ceil(sum(int(one.train.sum()) for one in series.values()) / config.batch_size)
    chunks = sum(
        steps_per_epoch(one, "sequence", config.seq_len, 1, config.chunk) for one in series.values()
    )
    return max(1, math.ceil(chunks / config.batch_size))


def _resolved(config, series: dict, scalings: dict, test_start) -> TrainConfig:
    """The config as trained (universe_resolved), with each symbol's scaling (`pooled_scaling`:
    the symbols scaled with the universe's pooled training statistics) and the first symbol's
    scaling in the one-symbol fields."""
    first = config.symbols[0]
    scaling = {s: [_plain(v.center), _plain(v.scale)] for s, v in scalings.items()}
    return universe_resolved(
        config,
        series,
        test_start,
        scale_center=scalings[first].center,
        scale_scale=scalings[first].scale,
        symbol_scaling=scaling,
        pooled_scaling=untrained(config, series),
    )


def universe_resolved(config: TrainConfig, series: dict, test_start, **learnt) -> TrainConfig:
    """The config of a pooled run as trained: the first symbol in `symbol`, the feature spec,
    each range from the first decision of any symbol to the last of any (each symbol's Series
    on its own index), this fc's version, and what the fit learnt (`learnt`)."""
    spec = replace(config, symbol=config.symbols[0]).spec
    test = _span(series, "test")
    recorded = recorded_test_range(next(iter(series.values())), test_start)
    return replace(
        config,
        symbol=config.symbols[0],
        features=spec.text,
        feature_spec=spec.to_dict(),
        train_range=_span(series, "train"),
        validation_range=_span(series, "validation"),
        test_from=recorded["test_from"],
        test_range=test,
        fc_version=__version__,
        **learnt,
    )


def _span(series: dict, name: str) -> tuple:
    """(first, last) decision time of range `name` over every symbol, ISO UTC; () for none."""
    times = [one.time[getattr(one, name)] for one in series.values()]
    times = [t for t in times if len(t)]
    if not times:
        return ()
    return (min(t[0] for t in times).isoformat(), max(t[-1] for t in times).isoformat())


def _plain(value):
    return list(value) if isinstance(value, tuple | list) else value


def _final(model, series: dict, scalings: dict, config, cost, device, val_ends: dict):
    """(metrics, predictions): each symbol's final_metrics under `symbols`, the pooled
    validation and baselines at top level; predictions (time, symbol, p_up) of every symbol."""
    per_symbol, frames, p_all, y_all = {}, [], [], []
    for s in val_ends:  # the symbols with a validation decision
        one = series[s]
        per_symbol[s], frame = final_metrics(
            model, one, scalings[s], config, cost, device, val_ends[s]
        )
        if config.target == "relative":  # long the symbol alone is no baseline of a spread
            per_symbol[s]["baselines"].pop("buy_and_hold_log_growth")
        frames.append(frame.assign(symbol=s)[["time", "symbol", "p_up"]])
        p_all.append(frame["p_up"].to_numpy())
        y_all.append(one.labels[np.flatnonzero(one.validation)])
    counts = {s: m["validation"]["decisions"] for s, m in per_symbol.items()}
    pooled = pooled_result({s: m["validation"] for s, m in per_symbol.items()}, counts, config.loss)
    pooled |= scores(np.concatenate(p_all), np.concatenate(y_all))
    pooled["decisions"] = int(sum(counts.values()))
    first = next(iter(per_symbol))
    metrics = {
        "target": config.target,
        "validation": pooled,
        "baselines": pooled_baselines(series, config),
        "symbols": per_symbol,
        "validation_sample_size": int(sum(len(v) for v in val_ends.values())),
        "check": per_symbol[first]["check"],
    }
    return metrics, pd.concat(frames, ignore_index=True)


def pooled_baselines(series: dict, config: TrainConfig) -> dict:
    """The baselines on every symbol's validation decisions together (no buy and hold for the
    relative target: long the symbol alone is no baseline of a spread)."""
    out = baselines(_stacked(series), _stacked_ends(series), config.horizon)
    if config.target == "relative":
        out.pop("buy_and_hold_log_growth")
    return out


def _stacked(series: dict) -> Series:
    """Every symbol's series end to end: for pooled baselines only (each decision reads its
    own symbol's label and the label before it, never across the seam: decisions start at
    seq_len)."""
    parts = list(series.values())
    return Series(
        time=pd.DatetimeIndex(np.concatenate([p.time for p in parts])),
        features=np.concatenate([p.features for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        returns=np.concatenate([p.returns for p in parts]),
        train=np.concatenate([p.train for p in parts]),
        validation=np.concatenate([p.validation for p in parts]),
        test=np.concatenate([p.test for p in parts]),
    )


def _stacked_ends(series: dict) -> np.ndarray:
    offsets = np.cumsum([0] + [len(p.time) for p in series.values()])[:-1]
    return np.concatenate(
        [np.flatnonzero(p.validation) + o for p, o in zip(series.values(), offsets, strict=True)]
    )
