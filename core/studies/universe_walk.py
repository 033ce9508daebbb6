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

from fc.core.data.universe import (
    check_pairs,
    universe_eligible,
    universe_frame,
    universe_real,
    universe_volumes,
)
from fc.core.evaluation.backtest import BacktestConfig, blocks_for, trade_mask
from fc.core.evaluation.policies import PolicyParams
from fc.core.evaluation.portfolio import BASELINES, STRATEGIES, portfolio_backtest
from fc.core.learning.config import TrainConfig
from fc.core.learning.pooled import universe_closes
from fc.core.studies.backtest_run import horizon_record
from fc.core.studies.runs import read_config
from fc.core.studies.universe import symbol_rows, universe_p_up
from fc.core.studies.walk import FoldUnits, WalkConfig, plan_folds, run_folds
from fc.core.studies.walk_report import RANGE, RANGE_TITLE


def walk_universe(
    base: TrainConfig,
    walk: WalkConfig,
    grids: dict,
    runs,
    backtest: BacktestConfig = BacktestConfig(),
    on_fold=None,
    units: FoldUnits = FoldUnits(),
) -> tuple[Path, dict]:
    """Run the pooled walk (its folds run as walk_forward's, through `units`); returns (walk
    folder, walk.json's content with the backtest report under "backtest"). Every fold plan
    error comes before any training."""
    check_pairs(grids, base.first_decision)
    frame = universe_frame(grids, base.first_decision)  # where some symbol may be decided
    folds = plan_folds(frame, walk, base.seq_len, base.horizon)
    started = time.perf_counter()
    walk_dir, predictions, records = run_folds(base, walk, folds, grids, Path(runs), units, on_fold)
    t2 = time.perf_counter()
    report = write_universe_backtest(walk_dir, grids, predictions, folds[0].start, base, backtest)
    summary = {
        "walk": str(walk_dir),
        "config": {"walk": asdict(walk), "backtest": backtest.to_dict(),
                   "train": {**base.as_dict(), "split": "per fold: its start - val"}},
        "folds": records,
        "decisions": int(len(predictions)),
        "timing": {"train_seconds": round(sum(r["train_seconds"] for r in records), 2),
                   "backtest_seconds": round(time.perf_counter() - t2, 2),
                   "total_seconds": round(time.perf_counter() - started, 2)},
    }  # fmt: skip
    (walk_dir / "walk.json").write_text(json.dumps(summary, indent=2) + "\n")
    return walk_dir, {**summary, "backtest": report}


def fold_p_up(run: Path, grids: dict, ends: np.ndarray) -> np.ndarray:
    """p_up (len(ends), symbols) of a fold's run at the bars `ends` of the full grids, NaN where
    a symbol is not eligible: each symbol with its own scaling, windows reading t and before."""
    config = read_config(run)
    need = np.zeros(len(next(iter(grids.values()))), dtype=bool)
    need[ends] = True
    eligible = universe_eligible(grids, config.first_decision)
    return universe_p_up(run, config, grids, need[:, None] & eligible, config.device)[ends]


def stitched_matrix(grids: dict, predictions: pd.DataFrame) -> np.ndarray:
    """p_up (bars, symbols) of the full grid from predictions.parquet, NaN where none."""
    index = next(iter(grids.values())).index
    p_up = np.full((len(index), len(grids)), np.nan)
    for i, symbol in enumerate(grids):
        mine = predictions[predictions["symbol"] == symbol]
        p_up[index.get_indexer(pd.DatetimeIndex(mine["time"])), i] = mine["p_up"]
    return p_up


def stitched_walk(grids, predictions, first_start, base):
    """(the universe's frame, p_up (bars, symbols), decision bars, bars of the walk) of the
    stitched predictions; every eligible decision of the walk has its prediction."""
    first = universe_frame(grids, base.first_decision)
    p_up = stitched_matrix(grids, predictions)
    decide = trade_mask(first["filled"].to_numpy(), base.first_decision)
    inside = np.asarray(first.index >= first_start)
    eligible = universe_eligible(grids, base.first_decision)
    if np.isnan(p_up[(decide & inside)[:, None] & eligible]).any():
        raise AssertionError("the folds leave a decision without a prediction")
    return first, p_up, decide, inside


def universe_books(grids, predictions, first_start, base, cfg, params=None):
    """(positions frame, {strategy: statistics}, the strategies shown) of the stitched
    predictions as one range from the first fold on: the portfolio fc walk --symbols reports
    (the long-short for the relative target, the equal-weight books for next, and the
    baselines), with `params` {policy: PolicyParams} (default: the policies' defaults; a lab's
    [report] k moves the long-short's). The one portfolio backtest of a pooled walk."""
    first, p_up, decide, inside = stitched_walk(grids, predictions, first_start, base)
    eligible = universe_eligible(grids, base.first_decision)
    if params is None:
        params = PolicyParams()
        params = {"discrete": params, "proportional": params, "long_short": params}
    frame, portfolio = portfolio_backtest(first.index, universe_closes(grids), p_up, decide,
                                          {RANGE: inside}, blocks_for(cfg, base.horizon),
                                          base.timeframe, list(grids), params, base.horizon,
                                          base.schedule, (universe_real(grids), eligible),
                                          universe_volumes(grids))  # fmt: skip
    shown = STRATEGIES if base.target == "relative" else STRATEGIES[1:]
    if base.target == "next":
        frame = frame.drop(columns=[c for c in frame if "long_short" in c])
    return frame, {k: portfolio[RANGE][k] for k in (*shown, *BASELINES)}, shown


def write_universe_backtest(walk_dir, grids, predictions, first_start, base, cfg) -> dict:
    """The stitched predictions as one range from the first fold on: the portfolio and each
    symbol's rows (the class prior from the history before the first fold)."""
    frame, portfolio, _ = universe_books(grids, predictions, first_start, base, cfg)
    _, p_up, decide, inside = stitched_walk(grids, predictions, first_start, base)
    params = PolicyParams()
    by_policy = {"discrete": params, "proportional": params, "long_short": params}
    closes = universe_closes(grids)
    symbols = list(grids)
    cfg = blocks_for(cfg, base.horizon)
    config = replace(base, split=first_start.isoformat())
    parts = {"train": ~inside, RANGE: inside}
    rows = symbol_rows(config, grids, p_up, closes, decide, parts, cfg, None, by_policy)
    key = "validation" if base.target == "next" else RANGE  # run_backtest's name of the walk
    out = walk_dir / "backtest"
    out.mkdir(exist_ok=True)
    frame.to_parquet(out / "positions.parquet")
    report = {
        RANGE: {"portfolio": portfolio,
                "symbols": {s: r[key] for s, r in rows.items() if key in r}},
        "range": RANGE_TITLE,
        "config": cfg.to_dict(),
        "walk": str(walk_dir),
        "symbols": symbols,
        "target": base.target,
        "timeframe": base.timeframe,
        **horizon_record(base),
        "first_decision": predictions["time"].min().isoformat(),
        "last_decision": predictions["time"].max().isoformat(),
    }  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    return report
