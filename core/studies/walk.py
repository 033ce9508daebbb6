"""Walk-forward evaluation (`fc walk`): fold by fold, train on the past only, choose the
checkpoint on the last part of that past, predict the fold, and stitch the predictions.

Each fold's model is trained by core.training.train on the grid cut at the fold's start, so no
optimiser step, validation or checkpoint choice can read the fold or anything after it. The fold
is then predicted with the window semantics on the full grid (a window ending at t reads t and
before only), exactly as `fc backtest` and the live loop would predict it.
"""

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.data.candles import utc_time
from fc.core.errors import FcError
from fc.core.evaluation.backtest import BacktestConfig, trade_mask
from fc.core.learning.config import TrainConfig
from fc.core.learning.schemes import make_series
from fc.core.studies.executor import ExecutorOptions

_UNITS = {"Y": "years", "M": "months", "W": "weeks", "D": "days"}
# on_fold(fold, event, details): event "start" (details {}) or "done" (the fold's record)
FoldEvent = Callable[["Fold", str, dict], None]


@dataclass(frozen=True)
class WalkConfig:
    """The fold plan: folds [start, start + every), ... to the end of the data; each trains
    before start - val (on the `window` before that, or all of it when window is "") and
    chooses its checkpoint on [start - val, start)."""

    start: str
    every: str = "3M"
    val: str = "3M"
    window: str = ""  # "" = expanding: everything before the validation part


@dataclass(frozen=True)
class FoldUnits:
    """How a walk's folds run: where (the executor seam's options), the walk folder to write
    or finish (None: a new one under runs), torch threads a unit (0: leave them), events."""

    executor: ExecutorOptions = ExecutorOptions()
    out: Path | None = None
    threads: int = 0
    on_event: Callable | None = None  # on_event(fold name, "start" | "done" | "failed", info)


@dataclass(frozen=True)
class Fold:
    number: int  # 1-based
    start: pd.Timestamp  # first decision time of the fold (inclusive)
    end: pd.Timestamp  # exclusive
    validation_start: pd.Timestamp  # the fold's training split
    train_start: pd.Timestamp  # first training decision time (at the earliest)

    @property
    def name(self) -> str:
        return f"fold-{self.number:02d}-{self.start:%Y-%m-%d}"

    def to_dict(self) -> dict:
        return {k: v.isoformat() if isinstance(v, pd.Timestamp) else v
                for k, v in asdict(self).items()}  # fmt: skip


def parse_duration(text: str, option: str) -> pd.DateOffset:
    """'10D', '6W', '3M', '2Y' (days, weeks, calendar months, years) as a pandas DateOffset;
    lower-case d, w, y too. Anything else, including '3m' (minutes are no fold length), is a user
    error."""
    m = re.fullmatch(r"\s*(\d+)\s*([YyMWwDd])\s*", str(text))
    if not m or int(m.group(1)) == 0:
        raise FcError(f"{option} {text!r} is not a duration; give a count and a unit: 10D, 6W, "
                      "3M (months) or 2Y")  # fmt: skip
    return pd.DateOffset(**{_UNITS[m.group(2).upper()]: int(m.group(1))})


def _times(offset: pd.DateOffset, k: int) -> pd.DateOffset:
    """k times the offset, counted from the same origin (start + 3M * k, not 3M added k times,
    which drifts at month ends: Jan 31 + 1M + 1M is Mar 28)."""
    return pd.DateOffset(**{unit: count * k for unit, count in offset.kwds.items()})


def plan_folds(grid: pd.DataFrame, walk: WalkConfig, seq_len: int, horizon: int = 1) -> list[Fold]:
    """The folds of the walk over the grid, each checked to have training and validation
    decisions after purging at the horizon; any problem is a user error before anything is
    trained."""
    every = parse_duration(walk.every, "--every")
    val = parse_duration(walk.val, "--val")
    window = parse_duration(walk.window, "--window") if walk.window else None
    start = utc_time(walk.start, "--start")
    decide = trade_mask(grid["filled"].to_numpy(), seq_len)
    if not decide.any():
        raise FcError(f"no decision in the data: it needs more than seq_len={seq_len} candles")
    times = grid.index[decide]
    if start > times[-1]:
        raise FcError(f"--start {walk.start} is past the data's last decision ({times[-1]}); "
                      "give an earlier date")  # fmt: skip
    folds, k = [], 0
    while (fold_start := start + _times(every, k)) <= times[-1]:
        end = start + _times(every, k + 1)
        k += 1
        if not ((times >= fold_start) & (times < end)).any():
            continue  # an outage longer than the fold: nothing to predict, nothing to train
        validation_start = fold_start - val
        train_start = validation_start - window if window else grid.index[0]
        fold = Fold(len(folds) + 1, fold_start, end, validation_start, train_start)
        _check_fold(grid, fold, seq_len, walk, horizon)
        folds.append(fold)
    return folds


def _check_fold(grid: pd.DataFrame, fold: Fold, seq_len: int, walk: WalkConfig, horizon=1):
    series = make_series(fold_grid(grid, fold, seq_len), seq_len, fold.validation_start,
                         horizon=horizon, end="validation->fold")  # fmt: skip
    where = f"fold {fold.number} (from {fold.start:%Y-%m-%d})"
    if not series.train.any():
        raise FcError(
            f"{where}: no training data before its validation part (from "
            f"{fold.validation_start:%Y-%m-%d} = start - --val {walk.val}; data from "
            f"{grid.index[0]:%Y-%m-%d}, seq_len {seq_len}); "
            "give a later --start, a shorter --val or a longer --window"
        )
    if not series.validation.any():
        purged = f" after purging {series.purged}" if series.purged else ""
        raise FcError(f"{where}: no validation decision in [{fold.validation_start}, "
                      f"{fold.start}){purged}; give a longer --val")  # fmt: skip


def fold_grid(grid: pd.DataFrame, fold: Fold, seq_len: int) -> pd.DataFrame:
    """What the fold's training may read: the grid cut before the fold's first bar, from seq_len
    bars before its first training decision (the warm-up its first window reads)."""
    index = grid.index
    stop = int(np.searchsorted(index, fold.start))  # bars from fold.start on are the future
    first = max(0, int(np.searchsorted(index, fold.train_start)) - seq_len)
    return grid.iloc[first:stop]


def _date_text(stamp: pd.Timestamp) -> str:
    naive = stamp.tz_convert("UTC").tz_localize(None)
    return f"{naive:%Y-%m-%d}" if naive == naive.normalize() else naive.isoformat()


def fold_config(base: TrainConfig, fold: Fold) -> TrainConfig:
    """The one place a fold's TrainConfig is made: split at the start of its validation part,
    and no test range (test_from "none"): the fold's validation runs up to the fold's start, and
    the fold itself is its test, which its training never sees (fold_grid cuts it off)."""
    return replace(base, split=_date_text(fold.validation_start), test_from="none",
                   extra={**base.extra, "walk_fold": fold.to_dict()})  # fmt: skip


def fold_decisions(grid: pd.DataFrame, fold: Fold, seq_len: int) -> np.ndarray:
    """Bar indices of the fold's decisions (trade_mask's: a full window, a real candle, a next
    bar), as `fc backtest` trades them."""
    decide = trade_mask(grid["filled"].to_numpy(), seq_len)
    inside = (grid.index >= fold.start) & (grid.index < fold.end)
    return np.flatnonzero(decide & inside)


def check_walk_options(base: TrainConfig) -> None:
    """What a walk checks before its first fold (fc walk and each unit of fc lab): the device
    resolves, the family's options and the ensemble's options are valid."""
    from fc.core.learning.ensemble import check_ensemble_options
    from fc.core.learning.family import family_of
    from fc.core.learning.training import resolve_device

    resolve_device(base.device)
    family_of(base).check(base)
    check_ensemble_options(base)


def walk_forward(
    base: TrainConfig,
    walk: WalkConfig,
    grid: pd.DataFrame,
    runs: str | Path,
    backtest: BacktestConfig = BacktestConfig(),
    on_fold: FoldEvent | None = None,
    units: FoldUnits = FoldUnits(),
) -> tuple[Path, dict]:
    """Run the walk: one run folder per fold, predictions.parquet, walk.json and the backtest
    of the stitched predictions in WALK/backtest/. Returns (walk folder, walk.json's content
    with the backtest report under "backtest"). `units` says where the folds run and which
    folder to write (or finish)."""
    from fc.core.studies.walk_report import write_backtest

    check_walk_options(base)
    folds = plan_folds(grid, walk, base.seq_len, base.horizon)  # user errors before training
    started = time.perf_counter()
    walk_dir, predictions, records = run_folds(base, walk, folds, grid, Path(runs), units, on_fold)
    t2 = time.perf_counter()
    report = write_backtest(walk_dir, grid, predictions, folds[0].start, base, walk, backtest)
    summary = {
        "walk": str(walk_dir),
        "config": {
            "walk": asdict(walk),
            "train": {**base.as_dict(), "split": "per fold: its start - val"},
            "backtest": backtest.to_dict(),
        },
        "folds": records,
        "decisions": int(len(predictions)),
        "timing": {
            "train_seconds": round(sum(r["train_seconds"] for r in records), 2),
            "predict_seconds": round(sum(r["predict_seconds"] for r in records), 2),
            "backtest_seconds": round(time.perf_counter() - t2, 2),
            "total_seconds": round(time.perf_counter() - started, 2),
        },
    }
    (walk_dir / "walk.json").write_text(json.dumps(summary, indent=2) + "\n")
    return walk_dir, {**summary, "backtest": report}


def run_folds(base, walk, folds, grid, runs: Path, units: FoldUnits, on_fold=None):
    """The walk's loop, whatever it trains (one symbol, or a pooled universe: `grid` then
    {symbol: grid}): every fold not yet finished in the walk folder runs as a unit of the
    executor (core.studies.walk_units.fold_unit), and the client writes each as it comes back;
    on_fold(fold, "start" | "done", record) around each. Returns (walk folder, every fold's
    predictions in fold order, written to WALK/predictions.parquet; the fold records)."""
    import shutil

    from fc.core.studies.executor import open_executor
    from fc.core.studies.unit_grids import grid_source
    from fc.core.studies.walk_units import (
        finished_folds,
        fold_unit,
        open_walk_dir,
        walk_plan,
        write_fold,
    )

    by_name = {fold.name: fold for fold in folds}

    def on_event(key, event: str, info: dict) -> None:
        if units.on_event:
            units.on_event(key, event, info)
        if on_fold and event == "start" and key is not None:
            on_fold(by_name[key], "start", {})

    with open_executor(units.executor, on_event) as ex:
        source = grid_source(base, grid, ex)  # each file checked where units read it
        walk_dir = open_walk_dir(units.out, runs, walk_plan(base, walk, folds, source))
        done = finished_folds(walk_dir, folds)
        todo = [fold for fold in folds if fold.name not in done]
        if ex.kind != "serial":  # the longest training first: the last to start is a short one
            todo.sort(key=lambda fold: fold.start - fold.train_start, reverse=True)
        tasks = {fold.name: {"config": fold_config(base, fold), "fold": fold, "source": source,
                             "threads": units.threads} for fold in todo}  # fmt: skip
        on_event(None, "planned", {"units": len(tasks), "finished": len(done)})
        try:
            for name, result in ex.run(fold_unit, tasks):
                done[name] = write_fold(walk_dir, by_name[name], result)
                if on_fold:
                    on_fold(by_name[name], "done", done[name][1])
        except FcError:  # a bad training option shows in the first fold: leave no empty walk
            if not done and units.out is None:
                shutil.rmtree(walk_dir)
            raise
    predictions = pd.concat([done[fold.name][0] for fold in folds], ignore_index=True)
    predictions.to_parquet(walk_dir / "predictions.parquet", index=False)
    return walk_dir, predictions, [done[fold.name][1] for fold in folds]


def new_walk_dir(runs: Path) -> Path:
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for i in range(1, 1000):
        path = runs / (f"walk-{stamp}" if i == 1 else f"walk-{stamp}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FcError(f"{runs}: cannot make a new walk folder")
