"""One pooled-universe variant of a lab once its units are done: the stitched predictions
backtested as `fc walk --symbols` backtests them (core.studies.universe_walk.universe_books,
presence and all) at each fee of the lab file and each long-short k of [report] k, without
refitting; the pooled classifier beside the class prior; everything the report shows stored in
LAB/variants/<id>/variant.json, so that `fc lab report` re-renders without backtesting anything.

At the policies' default k (fc walk's) and a fee, a variant's figures are those of fc walk
--symbols with the same options and --fee-bps: the same function on the same predictions.
"""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.evaluation.backtest import BacktestConfig, blocks_for
from fc.core.evaluation.policies import PolicyParams
from fc.core.evaluation.significance import moments
from fc.core.learning.pooled import universe_closes
from fc.core.studies.lab_folder import write_atomic
from fc.core.studies.lab_variant import equity_series, fee_name, finite, json_default
from fc.core.studies.universe import pooled_classifier
from fc.core.studies.universe_walk import stitched_walk, universe_books
from fc.core.studies.walk import WalkConfig
from fc.core.studies.walk_report import RANGE

# what the report keeps of each strategy and baseline at each (fee, k)
BOOK_KEYS = ("final_wealth", "sharpe", "sharpe_ci95", "psr", "break_even_fee_bps", "turnover",
             "max_drawdown", "k_capped")  # fmt: skip
CLASSIFIER_KEYS = ("accuracy", "log_loss", "brier")


def summarise_universe(
    grids: dict,
    base,
    walk: WalkConfig,
    slippage_bps: float,
    fees: tuple[float, ...],
    ks: tuple[int, ...],
    units: list[dict],
    out: Path,
) -> dict:
    """Stitch the units' predictions (fold order: fc walk's predictions.parquet), backtest the
    portfolio at every (fee, k), score the pooled classifier, write OUT/predictions.parquet,
    positions-<fee>bps-k<k>.parquet and variant.json; return variant.json's content."""
    units = sorted(units, key=lambda u: u["fold"]["number"])
    predictions = pd.concat([u["frame"] for u in units], ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(out / "predictions.parquet", index=False)
    first_start = pd.Timestamp(units[0]["fold"]["start"])
    books, looks, equity, shown = {}, {}, None, ()
    for fee in fees:
        cfg = BacktestConfig(fee_bps=fee, slippage_bps=slippage_bps)
        for k in ks:
            frame, portfolio, shown = universe_books(grids, predictions, first_start, base, cfg,
                                                     k_params(k))  # fmt: skip
            frame.to_parquet(out / f"positions-{fee_name(fee)}bps-k{k}.parquet")
            at = books.setdefault(fee_name(fee), {})
            at[str(k)] = {s: {key: st.get(key) for key in BOOK_KEYS} for s, st in portfolio.items()}
            looks.setdefault(fee_name(fee), {})[str(k)] = {
                s: _moments(frame[f"wealth_{s}"].to_numpy()) for s in shown
            }
            equity = equity_series(frame) if equity is None else equity
    summary = {
        "kind": "universe",
        "symbols": list(grids),
        "target": base.target,
        "horizon": base.horizon,
        "strategies": list(shown),
        "folds": [_fold_row(u) for u in units],
        "decisions": int(len(predictions)),
        "first_decision": predictions["time"].min().isoformat(),
        "last_decision": predictions["time"].max().isoformat(),
        "classifier": _classifier(grids, base, predictions, first_start),
        "books": books,
        "moments": looks,
        "equity": equity,
        "walk": asdict(walk),
        "slippage_bps": slippage_bps,
        "fee_list": list(fees),  # other fees or k re-summarise it from its units
        "k_list": list(ks),
    }
    text = json.dumps(finite(summary), indent=1, default=json_default, allow_nan=False)
    write_atomic(out / "variant.json", text + "\n")
    return summary


def k_params(k: int) -> dict:
    """{policy: PolicyParams} of fc walk --symbols with the long-short's k: k (the default k
    gives fc walk's own)."""
    default = PolicyParams()
    return {"discrete": default, "proportional": default, "long_short": PolicyParams(k=k)}


def _moments(wealth) -> dict:
    """n, per-bar Sharpe, skewness and kurtosis of a book's per-bar returns (its growth factors
    behind the wealth line): what the deflated Sharpe reads."""
    wealth = np.asarray(wealth, dtype=np.float64)
    return moments(wealth / np.r_[1.0, wealth[:-1]] - 1.0)


def _fold_row(unit: dict) -> dict:
    return {"fold": unit["fold"]["number"], "start": unit["fold"]["start"],
            "end": unit["fold"]["end"], "decisions": unit["scores"]["decisions"],
            "train_seconds": unit["train_seconds"]}  # fmt: skip


def _classifier(grids: dict, base, predictions: pd.DataFrame, first_start) -> dict:
    """The pooled direction scores of the walk's (candle, symbol) decisions beside the class
    prior of the candles before the first fold and the one-liners (pooled_classifier)."""
    _, p_up, decide, inside = stitched_walk(grids, predictions, first_start, base)
    cfg = blocks_for(BacktestConfig(), base.horizon)
    parts = {"train": ~inside, RANGE: inside}
    block = pooled_classifier(base, grids, p_up, universe_closes(grids), decide, parts, cfg, RANGE)
    out = {"scored": block["scored"]}
    for name, value in block.items():
        if isinstance(value, dict):
            out[name] = {k: value.get(k) for k in (*CLASSIFIER_KEYS, "p_up") if k in value}
        elif name.startswith("accuracy_minus"):
            out[name] = value
    return out
