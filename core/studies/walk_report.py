"""What a walk reports: each fold's direction scores beside its baselines, and the backtest of
the stitched out-of-sample predictions (core.backtest, the same files and plots as `fc backtest`).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.evaluation import metrics
from fc.core.evaluation.backtest import (
    BacktestConfig,
    label_ahead,
    last_move_up,
    run_backtest,
    trade_mask,
)
from fc.core.studies.backtest_run import horizon_record
from fc.core.studies.looks import record_walk

RANGE = "walk_forward"
RANGE_TITLE = "walk-forward (out of sample: every fold predicted by a model trained before it)"


def fold_scores(
    grid: pd.DataFrame, ends: np.ndarray, p_up: np.ndarray, run: Path, horizon: int = 1
) -> dict:
    """The fold's decisions scored (where the candle H ahead is real) beside the fold's own
    class prior (its training frequency of up) and mean reversion (against the last H candles'
    move); with the validation log losses that chose its checkpoint."""
    close = grid["close"].to_numpy()
    labels, real = label_ahead(close, grid["filled"].to_numpy(), horizon)
    scored = real[ends]
    y = labels[ends][scored]
    run_metrics = json.loads((run / "metrics.json").read_text())
    prior_up = run_metrics["baselines"]["class_prior"]["p_up"]
    last_up = last_move_up(close, horizon)[ends][scored]
    return {
        "decisions": int(len(ends)),
        "scored": int(scored.sum()),
        "model": metrics.classifier(p_up[scored], y),
        "class_prior": {"p_up": prior_up, **metrics.classifier(np.full(len(y), prior_up), y)},
        "mean_reversion_accuracy": metrics.classifier(1 - last_up, y, hard=True)["accuracy"],
        "validation_log_loss": {
            "model": run_metrics["validation"]["ce"],
            "class_prior": run_metrics["baselines"]["class_prior"]["ce"],
        },
    }


def stitched_p_up(grid: pd.DataFrame, predictions: pd.DataFrame, seq_len: int) -> np.ndarray:
    """p_up per bar of the grid: the folds' predictions, NaN before the first fold. Every
    decision from the first fold on has one (the folds tile the range)."""
    p_up = np.full(len(grid), np.nan)
    p_up[grid.index.get_indexer(pd.DatetimeIndex(predictions["time"]))] = predictions["p_up"]
    decide = trade_mask(grid["filled"].to_numpy(), seq_len)
    after = grid.index >= predictions["time"].iloc[0]
    if np.isnan(p_up[decide & after]).any():
        raise AssertionError("the folds leave a decision without a prediction")
    return p_up


def stitched_backtest(
    grid: pd.DataFrame, predictions: pd.DataFrame, first_start: pd.Timestamp, base, cfg
) -> tuple[pd.DataFrame, dict]:
    """(positions, report section) of the stitched predictions backtested as one range from
    the first fold on, beside the baselines; the positions' range is named RANGE."""
    p_up = stitched_p_up(grid, predictions, base.first_decision)
    # run_backtest's "train" range is the history before the first fold (no predictions there,
    # only the class prior comes from it); its "validation" range is the stitched walk
    split = first_start.isoformat()
    positions, ranges = run_backtest(grid, p_up, base.first_decision, split, cfg, base.timeframe,
                                     horizon=base.horizon, schedule=base.schedule)  # fmt: skip
    if ranges["validation"]["discrete"]["decisions"] != len(predictions):
        raise AssertionError("the stitched walk must be one backtest range, from the first fold on")
    positions = positions[positions["range"] == "validation"].reset_index(drop=True)
    positions["range"] = RANGE
    return positions, ranges["validation"]


def write_backtest(
    walk_dir: Path,
    grid: pd.DataFrame,
    predictions: pd.DataFrame,
    first_start: pd.Timestamp,
    base,
    walk,
    cfg: BacktestConfig,
) -> dict:
    """Backtest the stitched predictions as one range from the first fold on, beside the
    baselines (the class prior is the training frequency of up before the first fold); write
    WALK/backtest/ as `fc backtest` writes RUN/backtest/. Returns the report."""
    from fc.core.evaluation.backtest_plots import drawdown_figure, equity_figure, save_figure

    positions, section = stitched_backtest(grid, predictions, first_start, base, cfg)
    split = first_start.isoformat()
    out = walk_dir / "backtest"
    out.mkdir(exist_ok=True)
    positions.to_parquet(out / "positions.parquet")
    report = {
        RANGE: section,
        "range": RANGE_TITLE,
        "class_prior": "training frequency of up before the first fold",
        "config": cfg.to_dict(),
        "walk": str(walk_dir),
        "loss": base.loss,
        "symbol": base.symbol,
        "timeframe": base.timeframe,
        **horizon_record(base),
        "first_decision": positions["time"].iloc[0].isoformat(),
        "last_decision": predictions["time"].iloc[-1].isoformat(),
    }
    # the stitched range is untouched by every fold's training: a look, in RUNS/ledger.sqlite
    record_walk(walk_dir, base, walk, grid, cfg, positions, report, RANGE)
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    title = (f"{base.symbol} {base.timeframe}, walk-forward out of sample, folds of {walk.every} "
             f"from {first_start:%Y-%m-%d}, fee {cfg.cost * 1e4:g} bps")  # fmt: skip
    fold_starts = predictions.groupby("fold")["time"].first()
    for name, figure in (("equity.png", equity_figure), ("drawdown.png", drawdown_figure)):
        fig = figure(positions, split, title)
        for start in fold_starts:  # where one fold's model hands over to the next
            fig.axes[0].axvline(start, color="grey", ls=":", lw=0.6)
        save_figure(fig, out / name)
    return report
