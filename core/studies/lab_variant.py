"""One variant of a lab once its units are done: the stitched predictions backtested at each fee
of the lab file exactly as `fc walk` backtests them (core.studies.walk_report), its looks
recorded in the ledger, and everything the report shows stored in LAB/variants/<id>/ (numbers,
intervals, the moments the deflated Sharpe reads and short series for the charts), so that
`fc lab report` re-renders without refitting or backtesting anything.
"""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.evaluation.backtest import BacktestConfig
from fc.core.evaluation.calibration import reliability
from fc.core.evaluation.policies import POLICIES
from fc.core.studies.lab_folder import write_atomic
from fc.core.studies.looks import policy_looks, record_walk
from fc.core.studies.walk import WalkConfig
from fc.core.studies.walk_report import RANGE, stitched_backtest

SERIES_POINTS = 400  # per equity line in the page: enough for its shape, small enough to embed
CURVE_FEES = 41  # points of each Sharpe-against-fee curve
# what the report keeps of each strategy at each fee
STRATEGY_KEYS = ("final_wealth", "sharpe", "sharpe_ci95", "psr", "break_even_fee_bps",
                 "turnover", "max_drawdown", "trades")  # fmt: skip
# the one-liners beside every variant; the one that follows the last move is last_direction at
# H = 1 and momentum beyond (core.evaluation.backtest.follow_name)
ONE_LINERS = ("buy_and_hold", "mean_reversion", "last_direction", "momentum", "class_prior")


def fee_name(fee: float) -> str:
    return f"{fee:g}"


def summarise_variant(
    grid: pd.DataFrame,
    base,
    walk: WalkConfig,
    slippage_bps: float,
    fees: tuple[float, ...],
    units: list[dict],
    out: Path,
    runs: Path,
    look: str,
) -> dict:
    """Stitch the units' predictions (fold order), backtest them at every fee, record the looks
    in RUNS/ledger.sqlite under the name `look`, write OUT/predictions.parquet (fc walk's file,
    byte for byte), positions-<fee>bps.parquet and variant.json; return variant.json's content."""
    units = sorted(units, key=lambda u: u["fold"]["number"])
    horizon = getattr(base, "horizon", 1)
    frames = [u["frame"] for u in units]
    predictions = pd.concat(frames, ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(out / "predictions.parquet", index=False)
    first_start = pd.Timestamp(units[0]["fold"]["start"])
    by_fee, moments, positions0 = {}, {}, None
    for fee in fees:
        cfg = BacktestConfig(fee_bps=fee, slippage_bps=slippage_bps)
        positions, section = stitched_backtest(grid, predictions, first_start, base, cfg)
        report = {RANGE: section, "first_decision": positions["time"].iloc[0].isoformat(),
                  "last_decision": predictions["time"].iloc[-1].isoformat()}  # fmt: skip
        record_walk(runs / look, base, walk, grid, cfg, positions, report, RANGE)
        positions.to_parquet(out / f"positions-{fee_name(fee)}bps.parquet")
        looks = policy_looks(positions, section, base.timeframe)
        moments[fee_name(fee)] = {p: {k: looks[p][k] for k in ("n", "sharpe", "skewness",
                                  "kurtosis")} for p in POLICIES}  # fmt: skip
        by_fee[fee_name(fee)] = {
            "strategies": {
                s: {k: section[s].get(k) for k in STRATEGY_KEYS}
                for s in (*POLICIES, *ONE_LINERS)
                if s in section
            },
            "equity": equity_series(positions),
            "variant_hash": report["ledger"]["config_hash"],
        }
        positions0 = positions if positions0 is None else positions0
    summary = {
        "folds": [_fold_row(u) for u in units],
        "decisions": int(len(predictions)),
        "first_decision": report["first_decision"],
        "last_decision": report["last_decision"],
        "data_hash": report["ledger"]["data_hash"],
        "classifier": {
            **_classifier(section["classifier"]),
            "accuracy_minus": _accuracy_minus(grid, predictions, section["classifier"], horizon),
        },
        "calibration": _calibration(grid, predictions, horizon),
        "sharpe_by_fee": _sharpe_curve(positions0, fees, slippage_bps, base.timeframe, by_fee),
        "fees": by_fee,
        "moments": moments,
        "walk": asdict(walk),
        "slippage_bps": slippage_bps,
        "fee_list": list(fees),  # a lab file with other fees re-summarises it from its units
    }
    text = json.dumps(finite(summary), indent=1, default=json_default, allow_nan=False)
    write_atomic(out / "variant.json", text + "\n")
    return summary


def _fold_row(unit: dict) -> dict:
    s = unit["scores"]
    return {"fold": unit["fold"]["number"], "start": unit["fold"]["start"],
            "end": unit["fold"]["end"], "decisions": s["decisions"],
            "accuracy": s["model"]["accuracy"], "log_loss": s["model"]["log_loss"],
            "prior_log_loss": s["class_prior"]["log_loss"],
            "mean_reversion_accuracy": s["mean_reversion_accuracy"],
            "train_seconds": unit["train_seconds"]}  # fmt: skip


def _classifier(block: dict) -> dict:
    """The stitched walk's direction scores: the model, each one-liner, the differences."""
    out = {"scored": block["scored"]}
    for name in ("model", "class_prior", "always_up", *ONE_LINERS):
        if name in block:
            out[name] = {k: block[name].get(k) for k in ("accuracy", "log_loss", "brier")}
    for other in ("prior", "mean_reversion"):
        out[f"accuracy_minus_{other}"] = block[f"accuracy_minus_{other}"]
        out[f"accuracy_minus_{other}_ci95"] = block[f"accuracy_minus_{other}_ci95"]
    return out


def _scored(grid: pd.DataFrame, predictions: pd.DataFrame, horizon: int):
    """(p_up, up, last move up) at the stitched decisions whose candle H ahead is real, as the
    classifier block scores them."""
    from fc.core.evaluation.backtest import label_ahead, last_move_up

    ends = grid.index.get_indexer(pd.DatetimeIndex(predictions["time"]))
    close = grid["close"].to_numpy()
    labels, real = label_ahead(close, grid["filled"].to_numpy(), horizon)
    scored = real[ends]
    ends = ends[scored]
    p_up = predictions["p_up"].to_numpy()[scored]
    return p_up, labels[ends] == 0, last_move_up(close, horizon)[ends] == 1.0


def _accuracy_minus(grid, predictions, block: dict, horizon: int) -> dict:
    """{one-liner: {"difference", "ci95"}}: the model's accuracy minus each one-liner's on the
    same scored decisions, with the paired stationary-bootstrap interval the backtest gives the
    mean reversion's (BacktestConfig's repetitions and block)."""
    from fc.core.evaluation.backtest import follow_name
    from fc.core.evaluation.metrics import bootstrap_cis, mean_rows

    p_up, up, last_up = _scored(grid, predictions, horizon)
    model = (p_up >= 0.5) == up
    prior_up = block["class_prior"]["p_up"] >= 0.5
    right = {"mean_reversion": ~last_up == up, follow_name(horizon): last_up == up,
             "always_up": up, "class_prior": up == prior_up}  # fmt: skip
    diffs = [model.astype(np.float64) - r.astype(np.float64) for r in right.values()]
    cfg = BacktestConfig()
    cis = bootstrap_cis(diffs, mean_rows, cfg.bootstrap_reps, cfg.bootstrap_block)
    return {name: {"difference": float(d.mean()), "ci95": list(ci)}
            for name, d, ci in zip(right, diffs, cis, strict=True)}  # fmt: skip


def equity_series(positions: pd.DataFrame) -> dict:
    """The wealth lines of the policies and the one-liners the page draws, thinned to at most
    SERIES_POINTS points (the last one always kept: the final wealth stays exact)."""
    n = len(positions)
    at = np.unique(np.linspace(0, n - 1, min(n, SERIES_POINTS)).round().astype(int))
    wealth = [c for c in positions.columns if c.startswith("wealth_")]
    return {
        "time": [t.isoformat() for t in positions["time"].iloc[at]],
        **{c[len("wealth_") :]: positions[c].to_numpy()[at].tolist() for c in wealth},
    }


def _sharpe_curve(positions, fees, slippage_bps, timeframe, by_fee) -> dict:
    """Each policy's annualised Sharpe at CURVE_FEES fees from 0 to past the largest of the
    lab's fees and break-even fees: the positions do not depend on the fee, so the growth
    factors at fee c are those at the backtest's cost less (c - cost) |Δf| a bar."""
    from fc.core.data.candles import timeframe_delta
    from fc.core.evaluation.metrics import bars_per_year, sharpe

    per_year = bars_per_year(timeframe_delta(timeframe) / pd.Timedelta(1, "min"))
    cost = (fees[0] + slippage_bps) / 1e4
    breaks = [s["break_even_fee_bps"] or 0.0 for f in by_fee.values()
              for s in (f["strategies"][p] for p in POLICIES)]  # fmt: skip
    top = max(*fees, 2 * max(breaks), 1.0)
    grid = np.linspace(0.0, top, CURVE_FEES)
    out = {"fee_bps": grid.tolist()}
    for policy in POLICIES:
        w = positions[f"wealth_{policy}"].to_numpy(dtype=np.float64)
        moved = np.abs(np.diff(positions[f"position_{policy}"].to_numpy(), prepend=0.0))
        factors = w / np.r_[1.0, w[:-1]]
        out[policy] = [sharpe(factors - 1.0 - (fee + slippage_bps - cost * 1e4) / 1e4 * moved,
                              per_year) for fee in grid]  # fmt: skip
    return out


def _calibration(grid: pd.DataFrame, predictions: pd.DataFrame, horizon: int) -> dict:
    """The reliability bins of the stitched predictions at the scored decisions."""
    p_up, up, _ = _scored(grid, predictions, horizon)
    bins = reliability(p_up, up)
    # an empty bin has no mean: null in JSON, not NaN
    return {k: [None if np.isnan(v) else v for v in np.asarray(a, dtype=np.float64).tolist()]
            for k, a in bins.items()}  # fmt: skip


def json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value))


def finite(value):
    """NaN and infinities (an interval of a range too short to bootstrap) as null: JSON has no
    NaN."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value
