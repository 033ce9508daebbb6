"""Backtest a run folder: predictions with the window semantics, then core.backtest, then files.

Writes RUN/backtest/positions.parquet, metrics.json, equity.png, drawdown.png and
calibration.png, and chosen_policy.json when a grid of policy parameters was chosen on
validation; keeps the predictions in RUN/backtest/predictions-*.parquet for the next backtest
(core.predictions)."""

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.data.candles import grid_at, load_candles
from fc.core.data.inputs import grid_features, parse_data, symbol_grids, with_features
from fc.core.data.ranges import backtest_test_from, range_info
from fc.core.errors import FcError
from fc.core.evaluation.backtest import (
    BacktestConfig,
    label_ahead,
    run_backtest,
    scored_predictions,
    segments,
    trade_mask,
)
from fc.core.evaluation.calibration import calibration_figure
from fc.core.evaluation.policies import POLICIES, params_by_policy
from fc.core.evaluation.policy_grid import PolicyGrid, choose_on_validation, write_chosen
from fc.core.learning.family import in_blocks
from fc.core.studies.looks import record_run_test
from fc.core.studies.predictions import (
    PredictionCache,
    cached_p_up,
    prediction_key,
    run_predictor,
)
from fc.core.studies.runs import read_config


def candle_file(config, data: str | Path | None = None) -> Path:
    """--data if given, else the file the run was trained on."""
    if data is None and not Path(config.data or "").is_file():
        raise FcError(f"the run's candle file {config.data!r} is not here; pass --data FILE")
    return Path(data or config.data)


def run_files(config, data=None) -> tuple[Path, dict[str, Path]]:
    """(the decided symbol's candle file, {other symbol: file}) for a run: --data values (FILE
    and/or SYMBOL=FILE, a str or a list of them) where given, else the files it trained on."""
    plain, pairs = parse_data(data)
    plain = pairs.pop(config.symbol, plain)
    unread = sorted(set(pairs) - set(config.spec.symbols))
    if unread:
        raise FcError(f"--data {unread[0]}=…: the run does not read {unread[0]} (its features "
                      f"read {', '.join(config.spec.symbols)}); drop it")  # fmt: skip
    files = {symbol: given_or_trained(config, symbol, pairs) for symbol in config.spec.symbols[1:]}
    return candle_file(config, plain), files


def given_or_trained(config, symbol: str, pairs: dict) -> Path:
    """The candle file of `symbol`: its --data SYMBOL=FILE, else the one the run trained on
    (FcError when that is not here)."""
    trained = config.trained_files.get(symbol, "")
    if symbol not in pairs and not Path(trained).is_file():
        raise FcError(f"the run reads {symbol} but its candle file {trained!r} is not here; "
                      f"pass --data {symbol}=FILE")  # fmt: skip
    return Path(pairs.get(symbol) or trained)


def run_grid(config, data=None) -> pd.DataFrame:
    """The run's candles on its grid with its feature columns (core.data.inputs): --data if
    given, else the files it was trained on."""
    plain, files = run_files(config, data)
    if not files and config.spec.columns == ("close",):
        return grid_at(load_candles(plain), config.timeframe)
    grids, _ = symbol_grids(config.spec, config.timeframe, plain, files, None)
    return with_features(config.spec, grids, config.timeframe)


def torch_predict(run_dir: str | Path):
    """The reference: the run's model in torch as predict(features, ends) -> p_up, window
    semantics, each window run whole in batches (what `fc backtest` did before the merged
    windows of core.predictions; bench/full_backtest_speed.py times both)."""
    from fc.core.learning.model import window_p_up
    from fc.core.studies.runs import load_run

    config, model, scaling = load_run(run_dir)
    return lambda features, ends: window_p_up(model, features, ends, config.seq_len, scaling)


def with_schedule(config, schedule: dict | None):
    """The run's config with `fc backtest --cadence N | --sleeves N` in place of its own
    schedule (checked: a bad one is one line)."""
    if not schedule or all(v is None for v in schedule.values()):
        return config
    config = replace(config, cadence=schedule.get("cadence"), sleeves=schedule.get("sleeves"))
    config.schedule  # noqa: B018  (checks the values)
    return config


def horizon_record(config) -> dict:
    """The report's horizon and schedule, only when not the default (H = 1, every candle)."""
    if config.horizon == 1 and config.schedule.is_default:
        return {}
    return {"horizon": config.horizon, **config.schedule.to_dict()}


def decision_ranges(config, grid: pd.DataFrame, cfg: BacktestConfig):
    """(decision bars, test start, {range: bar mask}, bars to predict) of a run's backtest on
    `grid`; FcError when the chosen range holds no decision."""
    decide = trade_mask(grid["filled"].to_numpy(), config.first_decision)
    test_from = backtest_test_from(config)
    parts = segments(grid.index, decide, config.split, cfg, test_from)
    need = decide & np.logical_or.reduce(list(parts.values()))
    if not need.any():
        raise FcError(
            "no decision in the chosen range: it needs more than seq_len candles; "
            "widen --start/--end"
        )
    return decide, test_from, parts, need


def predict_bars(predict, grid: pd.DataFrame, need: np.ndarray) -> np.ndarray:
    """p_up per bar (NaN where not needed), each from its own window of seq_len features."""
    p_up = np.full(len(grid), np.nan)
    ends = np.flatnonzero(need)
    p_up[ends] = predict(grid_features(grid), ends)
    return p_up


def backtest_run(
    run_dir: str | Path,
    cfg: BacktestConfig,
    data: str | Path | None = None,
    predict=None,
    predictions: str = "torch",
    policies=None,
    device: str = "auto",
    progress=None,
    predictor_key: str | None = None,
    importance: bool = False,
    schedule: dict | None = None,
) -> dict:
    """Backtest a run folder. `predict(features, ends) -> p_up` defaults to the run's torch model
    on `device`; an exported graph's predictor gives the live service's own numbers. Predictions
    are cached under `predictor_key` ("onnx:<sha256>" for a graph; a predict without a key is not
    cached); progress(done, total) is called while predicting. `policies` (a
    core.policy_grid.PolicyGrid) sets the policy parameters; a grid of several settings is
    chosen on validation and written to RUN/backtest/chosen_policy.json. `importance`: the
    permutation importance of each feature group on every range (core.studies.importance),
    under "importance" and in importance.png. `schedule` {"cadence": N} or {"sleeves": N}
    re-scores the run on another schedule than its own (no retraining)."""
    from fc.core.evaluation.backtest_plots import drawdown_figure, equity_figure, save_figure

    run_dir = Path(run_dir)
    config = with_schedule(read_config(run_dir), schedule)
    data_file, input_files = run_files(config, data)
    grid = run_grid(config, data)
    decide, test_from, parts, need = decision_ranges(config, grid, cfg)
    out = run_dir / "backtest"
    out.mkdir(exist_ok=True)
    if predict is None:
        predictor_key, predict_ends = "torch", run_predictor(run_dir, device)
    else:
        predict_ends = partial(in_blocks, predict)
    cache = None
    if predictor_key is not None:
        key = prediction_key(run_dir, config, data_file, predictor_key, input_files)
        cache = PredictionCache(out, key)
    p_up, cached = cached_p_up(predict_ends, grid, need, cache, progress)
    policies = policies or PolicyGrid()
    chosen = None
    if policies.is_grid:
        chosen = choose_on_validation(grid, p_up, decide, parts["validation"], cfg,
                                      config.timeframe, policies)  # fmt: skip
        params = params_by_policy(chosen["chosen"])
    else:
        params = dict.fromkeys(POLICIES, policies.single())
    fitted = calibrated_mean_reversion(config, grid)
    positions, report = run_backtest(
        grid, p_up, config.first_decision, config.split, cfg, config.timeframe, test_from,
        _training_prior(run_dir), params,
        None if fitted is None else {"calibrated_mean_reversion": fitted},
        config.horizon, config.schedule,
    )  # fmt: skip
    for name, info in range_info(positions).items():
        report[name]["range"] = info
    # a look at the untouched test range, in RUNS/ledger.sqlite (an unwritable ledger fails
    # the backtest before any of its files is replaced)
    looked = record_run_test(run_dir, config, data_file, cfg, positions, report)
    if chosen is not None:
        write_chosen(out, chosen)
    positions.to_parquet(out / "positions.parquet")
    result = {
        **report,
        "config": cfg.to_dict(),
        "run": str(run_dir),
        "loss": config.loss,
        "symbol": config.symbol,
        "timeframe": config.timeframe,
        "split": config.split,
        "test_from": None if test_from is None else test_from.isoformat(),
        "predictions": predictions,
        "prediction_cache": cached,
        "policy_params": {p: params[p].to_dict() for p in POLICIES},
        **horizon_record(config),
        **({"policy_grid": chosen} if chosen else {}),
        **looked,
    }
    if importance:
        result["importance"] = _importance(config, grid, p_up, decide, parts, predict_ends, out)
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    title = f"{config.symbol} {config.timeframe}, {config.loss} loss, fee {cfg.cost * 1e4:g} bps"
    for name, figure in (("equity.png", equity_figure), ("drawdown.png", drawdown_figure)):
        save_figure(figure(positions, config.split, title), out / name)
    prior = report[next(iter(report))]["classifier"]["class_prior"]["p_up"]
    scored = scored_predictions(grid, p_up, config.first_decision, parts, config.horizon)
    save_figure(calibration_figure(scored, prior, title=f"Reliability of p_up: {title}"),
                out / "calibration.png")  # fmt: skip
    return result


def _importance(config, grid, p_up, decide, parts, predict, out: Path) -> dict:
    """Permutation importance per feature group on the decisions each range scores (a real
    next candle), test first; its bar plot in importance.png."""
    from fc.core.evaluation.backtest_plots import save_figure
    from fc.core.evaluation.importance import importance_figure
    from fc.core.studies.importance import permutation_importance

    labels, real = label_ahead(grid["close"].to_numpy(), grid["filled"].to_numpy(), config.horizon)
    scored = decide & real
    masks = {name: part & scored for name, part in parts.items()}
    report = permutation_importance(predict, grid_features(grid), labels, p_up, masks,
                                    config.spec)  # fmt: skip
    title = f"{config.symbol} {config.timeframe}: permutation importance of {config.features}"
    save_figure(importance_figure(report, title), out / "importance.png")
    return report


def calibrated_mean_reversion(config, grid: pd.DataFrame) -> np.ndarray | None:
    """P(up) per bar of the calibrated mean reversion (issue 21): a LogisticModel on one column,
    the sign of the last H candles' change (+1, -1, 0; H the run's horizon), fitted on the
    run's training decisions of these candles, its C chosen on their validation decisions. None
    when the candles hold no training or validation decision (later candles given with --data)."""
    from fc.core.learning.logistic_model import LogisticModel
    from fc.core.learning.training import checked_series

    try:
        series, _ = checked_series(config, grid)
        sign = last_move_sign(grid["close"].to_numpy(), config.horizon)[:, None]
        train, val = np.flatnonzero(series.train), np.flatnonzero(series.validation)
        model = LogisticModel().fit(
            sign[train], series.labels[train] == 0, sign[val], series.labels[val] == 0
        )
    except FcError:
        return None
    return model.p_up(sign)


def last_move_sign(close: np.ndarray, horizon: int) -> np.ndarray:
    """sign(close_t - close_{t-H}) (0 before the H-th candle); at H = 1 features.direction."""
    close = np.asarray(close, dtype=np.float64)
    out = np.zeros(len(close))
    out[horizon:] = np.sign(close[horizon:] - close[:-horizon])
    return out


def _training_prior(run_dir: Path) -> float | None:
    """P(up) over the run's training decisions, from its metrics.json (None if absent)."""
    path = run_dir / "metrics.json"
    try:
        return float(json.loads(path.read_text())["baselines"]["class_prior"]["p_up"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
