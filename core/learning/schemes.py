"""The training series and the two ways of cutting it into batches.

`window` is the workshop's loop: one row per decision, the seq_len features ending there, only the
last step scored. `sequence` (the default) cuts the training period into chunks of
seq_len - 1 + K steps: the first seq_len - 1 are a burn-in from a zero state, then every one of the
K following steps is scored, each having read at least seq_len features, as a window does. One
pass of the GRU over a chunk scores K targets instead of one.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fc.core.data.features import decision_mask, horizon_labels
from fc.core.data.inputs import grid_features


@dataclass(frozen=True)
class Series:
    """Per grid bar t: the feature, the label and return of the decision at t, and its range."""

    time: pd.DatetimeIndex
    features: np.ndarray  # raw input per bar, float64: (n,) price_change, or (n, columns)
    labels: np.ndarray  # direction class of the H candles after t (int64; H = 1: candle t+1)
    returns: np.ndarray  # close_{t+H} / close_t - 1 (0 where there is no candle H ahead)
    train: np.ndarray  # bool: a training decision
    validation: np.ndarray  # bool: a validation decision (from the split, before the test)
    test: np.ndarray  # bool: a test decision (from the test start); training never reads it
    # {boundary: decisions dropped because their label reads past it}; empty at H = 1
    purged: dict = field(default_factory=dict)


def make_series(
    grid: pd.DataFrame,
    seq_len: int,
    split: pd.Timestamp,
    test_from: pd.Timestamp | None = None,
    first: int | None = None,
    horizon: int = 1,
    end: str = "",
    purge: bool = True,
) -> Series:
    """From a grid frame (to_grid's, with `filled`, and the feature columns of core.data.inputs):
    decisions where decision_mask says and from bar `first` on (TrainConfig.first_decision; None:
    seq_len), train when their time is before the split, validation from it, test from
    `test_from` (None: no test range; see core.ranges); labels `horizon` candles ahead.

    Purging, the one place for every boundary: a decision t of a range whose next range starts
    at bar b is kept only if t + H <= b (at H = 1 every decision before b). `end` names the
    boundary at the grid's end when it is one (a walk fold's grid stops before the fold it
    predicts: "validation->fold"), counting the decisions its last H bars lose. `purge=False`
    keeps every decision: only to show what the purge prevents."""
    close = grid["close"].to_numpy(dtype=np.float64)
    n = len(close)
    labels, returns = horizon_labels(close, horizon)
    filled = grid["filled"].to_numpy(dtype=bool)
    decisions = decision_mask(n, seq_len, filled, horizon)
    decisions[: seq_len if first is None else first] = False
    before = np.asarray(grid.index < split)
    test = decisions & ~before & (grid.index >= test_from if test_from is not None else False)
    ranges = {"train": decisions & before, "validation": decisions & ~before & ~test, "test": test}
    purged = {}
    if horizon > 1:
        bar = np.arange(n)
        for name, nxt, start in (("train", "validation", split), ("validation", "test", test_from)):
            if start is None:
                continue
            b = int(np.searchsorted(grid.index, start))
            ahead = ranges[name] & (bar + horizon > b)  # the label reads past the boundary
            if purge:
                ranges[name] &= ~ahead
            purged[f"{name}->{nxt}"] = int(ahead.sum())
        if end:  # decisions an H = 1 label would keep in the grid's last H bars
            lost = decision_mask(n, seq_len, filled, 1)
            lost[: max(n - horizon, seq_len if first is None else first)] = False
            purged[end] = int((lost & (test if test_from is not None else ~before)).sum())
    return Series(
        time=grid.index,
        features=grid_features(grid),
        labels=labels,
        returns=returns,
        purged=purged,
        **ranges,
    )


@dataclass(frozen=True)
class Batch:
    """Rows of consecutive steps; `scored` marks the steps the loss reads."""

    x: np.ndarray  # (rows, time) or (rows, time, columns) float32, scaled features
    labels: np.ndarray  # (rows, time) int64
    returns: np.ndarray  # (rows, time) float32
    scored: np.ndarray  # (rows, time) bool


def rows_at(series: Series, x: np.ndarray, first: np.ndarray, width: int) -> tuple:
    """Rows of `width` steps starting at each index in `first`."""

    def view(a):
        rows = np.lib.stride_tricks.sliding_window_view(a, width, axis=0)[first]
        return rows if a.ndim == 1 else rows.swapaxes(1, 2)  # (rows, width, columns)

    return view(x), view(series.labels), view(series.returns.astype(np.float32))


def window_batches(series: Series, x: np.ndarray, seq_len: int, batch_size: int, rng):
    """The workshop's epoch: training decisions shuffled, batch_size windows per step."""
    ends = rng.permutation(np.flatnonzero(series.train))
    for i in range(0, len(ends), batch_size):
        end = ends[i : i + batch_size]
        xs, ys, rs = rows_at(series, x, end - seq_len + 1, seq_len)
        scored = np.zeros(xs.shape, dtype=bool)
        scored[:, -1] = True
        yield Batch(xs, ys, rs, scored)


def sequence_batches(
    series: Series, x: np.ndarray, seq_len: int, chunk: int, chunks_per_step: int, rng
):
    """One epoch of chunks: each covers K = `chunk` consecutive decisions after a burn-in of
    seq_len - 1 steps; a random offset per epoch moves the chunk borders, the order is shuffled."""
    decisions = np.flatnonzero(series.train)
    if len(decisions) == 0:
        return
    width = seq_len - 1 + chunk
    n = len(series.features)
    offset = int(rng.integers(0, chunk))
    starts = np.arange(decisions[0] - offset, decisions[-1] + 1, chunk)
    # a chunk's burn-in starts at index >= 1 (feature 0 is not a real change) and ends in the data
    starts = np.unique(np.clip(starts, seq_len, n - chunk))
    starts = rng.permutation(starts)
    for i in range(0, len(starts), chunks_per_step):
        first = starts[i : i + chunks_per_step] - seq_len + 1
        xs, ys, rs = rows_at(series, x, first, width)
        steps = first[:, None] + np.arange(width)[None, :]
        scored = series.train[steps]
        scored[:, : seq_len - 1] = False  # the burn-in is never scored
        yield Batch(xs, ys, rs, scored)


def steps_per_epoch(series: Series, scheme: str, seq_len: int, batch: int, chunk: int) -> int:
    n_train = int(series.train.sum())
    if scheme == "window":
        return math.ceil(n_train / batch)
    decisions = np.flatnonzero(series.train)
    span = int(decisions[-1] - decisions[0] + 1) if n_train else 0
    chunks = math.ceil(span / chunk) + 1
    return max(1, math.ceil(chunks / batch))
