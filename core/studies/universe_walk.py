"""Walk-forward of a pooled multi-symbol run (`fc walk --symbols`): per fold, one model pooled
over every symbol's grid cut at the fold's start (core.studies.walk's fold plan), each symbol's
fold predicted with that model and its own scaling (the predictor backtest_universe uses), and
the stitched predictions backtested as one range: per-symbol classifier rows and the portfolio.

WALK/predictions.parquet holds (time, symbol, p_up, fold); WALK/backtest/ holds positions.parquet
and metrics.json as RUN/backtest/ of a multi-symbol run. The walk is not recorded in the ledger
yet (core.studies.looks.record_walk reads one symbol's positions).
"""

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.errors import FcError
from fc.core.evaluation.backtest import BacktestConfig, trade_mask
from fc.core.evaluation.policies import PolicyParams
from fc.core.evaluation.portfolio import BASELINES, STRATEGIES, portfolio_backtest
from fc.core.learning.config import TrainConfig
from fc.core.learning.pooled import universe_closes
from fc.core.studies.runs import read_config
from fc.core.studies.universe import _symbol_rows, train_universe, universe_p_up
from fc.core.studies.walk import (
    WalkConfig,
    _walk_dir,
    fold_config,
    fold_decisions,
    fold_grid,
    plan_folds,
)
from fc.core.studies.walk_report import RANGE, RANGE_TITLE


def walk_universe(
    base: TrainConfig,
    walk: WalkConfig,
    grids: dict,
    runs,
    backtest: BacktestConfig = BacktestConfig(),
    on_fold=None,
) -> tuple[Path, dict]:
    """Run the pooled walk; returns (walk folder, walk.json's content with the backtest report
    under "backtest"). Every fold plan error comes before any training."""
    first = next(iter(grids.values()))
    folds = plan_folds(first, walk, base.seq_len)  # the symbols share one grid
    walk_dir = _walk_dir(Path(runs))
    started, frames, records = time.perf_counter(), [], []
    for fold in folds:
        if on_fold:
            on_fold(fold, "start", {})
        t0 = time.perf_counter()
        cut = {s: fold_grid(g, fold, base.seq_len) for s, g in grids.items()}
        try:
            run = train_universe(fold_config(base, fold), cut, walk_dir)
        except FcError:  # a bad option shows in the first fold: leave no empty walk
            if not records:
                walk_dir.rmdir()
            raise
        run = run.rename(walk_dir / fold.name)
        t1 = time.perf_counter()
        ends = fold_decisions(first, fold, base.first_decision)
        p_up = fold_p_up(run, grids, ends)
        for i, symbol in enumerate(grids):
            frames.append(pd.DataFrame({"time": first.index[ends], "symbol": symbol,
                                        "p_up": p_up[:, i], "fold": fold.number}))  # fmt: skip
        record = {"fold": fold.number, **fold.to_dict(), "run": run.name,
                  "decisions": int(len(ends)), "train_seconds": round(t1 - t0, 2),
                  "predict_seconds": round(time.perf_counter() - t1, 2)}  # fmt: skip
        records.append(record)
        if on_fold:
            on_fold(fold, "done", record)
    predictions = pd.concat(frames, ignore_index=True)
    predictions.to_parquet(walk_dir / "predictions.parquet", index=False)
    t2 = time.perf_counter()
    report = write_universe_backtest(walk_dir, grids, predictions, folds[0].start, base, backtest)
    summary = {
        "walk": str(walk_dir),
        "config": {"walk": asdict(walk), "backtest": backtest.to_dict(),
                   "train": {**asdict(base), "split": "per fold: its start - val"}},
        "folds": records,
        "decisions": int(len(predictions)),
        "timing": {"train_seconds": round(sum(r["train_seconds"] for r in records), 2),
                   "backtest_seconds": round(time.perf_counter() - t2, 2),
                   "total_seconds": round(time.perf_counter() - started, 2)},
    }  # fmt: skip
    (walk_dir / "walk.json").write_text(json.dumps(summary, indent=2) + "\n")
    return walk_dir, {**summary, "backtest": report}


def fold_p_up(run: Path, grids: dict, ends: np.ndarray) -> np.ndarray:
    """p_up (len(ends), symbols) of a fold's run at the bars `ends` of the full grids: each
    symbol with its own scaling, windows reading t and before only."""
    config = read_config(run)
    need = np.zeros(len(next(iter(grids.values()))), dtype=bool)
    need[ends] = True
    return universe_p_up(run, config, grids, need, config.device)[ends]


def stitched_matrix(grids: dict, predictions: pd.DataFrame) -> np.ndarray:
    """p_up (bars, symbols) of the full grid from predictions.parquet, NaN where none."""
    index = next(iter(grids.values())).index
    p_up = np.full((len(index), len(grids)), np.nan)
    for i, symbol in enumerate(grids):
        mine = predictions[predictions["symbol"] == symbol]
        p_up[index.get_indexer(pd.DatetimeIndex(mine["time"])), i] = mine["p_up"]
    return p_up


def write_universe_backtest(walk_dir, grids, predictions, first_start, base, cfg) -> dict:
    """The stitched predictions as one range from the first fold on: the portfolio and each
    symbol's rows (the class prior from the history before the first fold)."""
    first = next(iter(grids.values()))
    p_up = stitched_matrix(grids, predictions)
    decide = trade_mask(first["filled"].to_numpy(), base.first_decision)
    inside = np.asarray(first.index >= first_start)
    if np.isnan(p_up[decide & inside]).any():
        raise AssertionError("the folds leave a decision without a prediction")
    params = PolicyParams()
    by_policy = {"discrete": params, "proportional": params, "long_short": params}
    closes = universe_closes(grids)
    symbols = list(grids)
    frame, portfolio = portfolio_backtest(first.index, closes, p_up, decide, {RANGE: inside},
                                          cfg, base.timeframe, symbols, by_policy)  # fmt: skip
    shown = STRATEGIES if base.target == "relative" else STRATEGIES[1:]
    if base.target == "next":
        frame = frame.drop(columns=[c for c in frame if "long_short" in c])
    config = replace(base, split=first_start.isoformat())
    parts = {"train": ~inside, RANGE: inside}
    rows = _symbol_rows(config, grids, p_up, closes, decide, parts, cfg, None, by_policy)
    key = "validation" if base.target == "next" else RANGE  # run_backtest's name of the walk
    out = walk_dir / "backtest"
    out.mkdir(exist_ok=True)
    frame.to_parquet(out / "positions.parquet")
    report = {
        RANGE: {"portfolio": {k: portfolio[RANGE][k] for k in (*shown, *BASELINES)},
                "symbols": {s: r[key] for s, r in rows.items() if key in r}},
        "range": RANGE_TITLE,
        "config": cfg.to_dict(),
        "walk": str(walk_dir),
        "symbols": symbols,
        "target": base.target,
        "timeframe": base.timeframe,
        "first_decision": predictions["time"].min().isoformat(),
        "last_decision": predictions["time"].max().isoformat(),
    }  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    return report
