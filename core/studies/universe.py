"""A universe's run folder: pooled training into it, and its backtest (per-symbol rows and the
portfolio of core.evaluation.portfolio).

A multi-symbol run folder is a run folder (core.studies.runs) whose config names `symbols`,
`target` and each symbol's scaling, whose `inputs` hold every symbol's candle file, and whose
metrics.json has a block per symbol beside the pooled one. Its backtest writes
RUN/backtest/positions.parquet (p_up_<SYMBOL>, weight_<policy>_<SYMBOL>, wealth_<policy>) and
metrics.json ({range: {"portfolio": {...}, "symbols": {...}}}).
"""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from fc.core.data.features import horizon_labels, relative_return
from fc.core.data.inputs import grid_features, parse_data
from fc.core.data.presence import lives
from fc.core.data.ranges import range_info
from fc.core.data.store import symbol_slug
from fc.core.data.universe import (
    check_pairs,
    universe_eligible,
    universe_frame,
    universe_grids,
    universe_real,
    universe_volumes,
)
from fc.core.errors import FcError
from fc.core.evaluation.backtest import (
    BacktestConfig,
    blocks_for,
    class_prior,
    classifier_section,
    label_ahead,
    last_move_up,
    run_backtest,
)
from fc.core.evaluation.policies import PolicyParams
from fc.core.evaluation.portfolio import BASELINES, STRATEGIES, portfolio_backtest
from fc.core.learning.config import TrainConfig
from fc.core.learning.pooled import universe_closes
from fc.core.studies.backtest_run import (
    decision_ranges,
    given_or_trained,
    horizon_record,
    with_schedule,
)
from fc.core.studies.runs import new_run_dir, read_config, save_run


def train_universe(
    config: TrainConfig, grids: dict, runs, on_progress=None, on_validation=None, timing=None
) -> Path:
    """The family's pooled fit on the grids (fit_universe), written into a new run folder under
    `runs` (removed again if writing fails: no half run is left to be loaded); on_validation as
    train()'s (fc tune's pruning)."""
    from fc.core.learning.family import family_of

    trained = family_of(config).fit_universe(config, grids, on_progress, on_validation, timing)
    run_dir = new_run_dir(Path(runs), trained.config)
    try:
        save_run(run_dir, trained)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir


def run_universe_grids(config: TrainConfig, data=None) -> dict:
    """The run's symbols on their common grid with their feature columns: --data SYMBOL=FILE
    where given, else the files the run was trained on."""
    plain, pairs = parse_data(data)
    if plain is not None:
        raise FcError(f"--data {plain}: a multi-symbol run takes SYMBOL=FILE for each symbol")
    files = {symbol: given_or_trained(config, symbol, pairs) for symbol in config.trained_files}
    grids, _ = universe_grids(config.features, config.symbols, config.timeframe, files, None)
    return grids


def universe_p_up(run_dir: Path, config: TrainConfig, grids: dict, need, device, progress=None,
                  predict=None):  # fmt: skip
    """p_up (bars, symbols), NaN where not needed (`need`: (bars,) for every symbol, or (bars,
    symbols)): the run's family predictor (the GRU: merged windows, the p_up of exact windows)
    with each symbol's own scaling, or predict(symbol, raw features, ends) (an exported graph:
    live/universe_model.py's p_up_at)."""
    from fc.core.learning.family import family_of

    need = np.asarray(need, dtype=bool)
    need = np.broadcast_to(need[:, None] if need.ndim == 1 else need, (len(need), len(grids)))
    p_up = np.full((len(need), len(grids)), np.nan)
    for i, (symbol, grid) in enumerate(grids.items()):
        ends = np.flatnonzero(need[:, i])
        if not len(ends):
            continue
        if predict is not None:
            p_up[ends, i] = predict(symbol, grid_features(grid), ends)
            continue
        mine = symbol_config(config, symbol)
        family = family_of(mine).predictor(run_dir, mine, device)
        p_up[ends, i] = family(grid_features(grid), ends, progress)
    return p_up


def symbol_config(config: TrainConfig, symbol: str) -> TrainConfig:
    """The run's config as its predictor reads one symbol: with that symbol's scaling where the
    family scales (the GRU); a run without symbol_scaling (LightGBM, logistic: raw rows) as is."""
    if not config.symbol_scaling:
        return config
    center, scale = config.symbol_scaling[symbol]
    return replace(config, scale_center=_tuple(center), scale_scale=_tuple(scale))


def _tuple(value):
    return tuple(value) if isinstance(value, list) else value


def check_k(params: dict, symbols) -> None:
    k = params["long_short"].k
    if 2 * k > len(symbols):
        raise FcError(
            f"--k {k} is more than half the universe of {len(symbols)} symbols: "
            f"give --k <= {len(symbols) // 2}"
        )


def backtest_universe(
    run_dir,
    cfg: BacktestConfig,
    data=None,
    params: PolicyParams | None = None,
    device: str = "auto",
    progress=None,
    predict=None,
    schedule: dict | None = None,
) -> dict:
    """Backtest a multi-symbol run: every symbol's rows (its policies and classifier for
    --target next; the classifier alone for relative) and the portfolio on each range.
    predict(symbol, features, ends): p_up from an exported graph instead of the torch model.
    `schedule` {"cadence": N} or {"sleeves": N}: re-scored on another schedule than the run's."""
    run_dir = Path(run_dir)
    config = with_schedule(read_config(run_dir), schedule)
    cfg = blocks_for(cfg, config.horizon)
    params = params or PolicyParams()
    by_policy = {"discrete": params, "proportional": params, "long_short": params}
    check_k(by_policy, config.symbols)
    grids = run_universe_grids(config, data)
    check_pairs(grids, config.first_decision)
    frame = universe_frame(grids, config.first_decision)  # the bars where some symbol decides
    decide, test_from, parts, need = decision_ranges(config, frame, cfg)
    real, eligible = universe_real(grids), universe_eligible(grids, config.first_decision)
    p_up = universe_p_up(run_dir, config, grids, need[:, None] & eligible, device, progress,
                         predict)  # fmt: skip
    closes = universe_closes(grids)
    frame, portfolio = portfolio_backtest(
        frame.index,
        closes,
        p_up,
        decide,
        parts,
        cfg,
        config.timeframe,
        list(config.symbols),
        by_policy,
        config.horizon,
        config.schedule,
        (real, eligible),
        universe_volumes(grids),
    )
    shown = STRATEGIES if config.target == "relative" else STRATEGIES[1:]
    if config.target == "next":
        frame = frame.drop(columns=[c for c in frame if "long_short" in c])
    symbols = symbol_rows(config, grids, p_up, closes, decide, parts, cfg, test_from, by_policy)
    decided = frame[[f"p_up_{symbol_slug(s)}" for s in config.symbols]].max(axis=1)
    info = range_info(frame.assign(p_up=decided))  # a decision bar: some symbol decided
    report = {}
    for name in parts:
        if name in portfolio:
            report[name] = {
                "range": info[name],
                "portfolio": {k: portfolio[name][k] for k in (*shown, *BASELINES)},
                "symbols": {s: rows[name] for s, rows in symbols.items() if name in rows},
            }
    out = run_dir / "backtest"
    out.mkdir(exist_ok=True)
    frame.to_parquet(out / "positions.parquet")
    result = {
        **report,
        "config": cfg.to_dict(),
        "run": str(run_dir),
        "symbols": list(config.symbols),
        "target": config.target,
        "timeframe": config.timeframe,
        "split": config.split,
        "loss": config.loss,
        "test_from": None if test_from is None else test_from.isoformat(),
        "policy_params": params.to_dict(),
        **horizon_record(config),
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def symbol_rows(config, grids, p_up, closes, decide, parts, cfg, test_from, params) -> dict:
    """{symbol: {range: section}}: for next, run_backtest of the symbol alone (its policies,
    baselines and classifier); for relative, the classifier of the relative label beside the
    class prior and the cross-sectional reversal (bet against the last relative move)."""
    out = {}
    if config.target == "next":
        spans = lives(universe_real(grids))
        for i, (symbol, grid) in enumerate(grids.items()):
            life = spans[i]
            if life.start >= life.stop:
                continue
            _, out[symbol] = run_backtest(
                grid.iloc[life],
                p_up[life, i],
                config.first_decision,
                config.split,
                cfg,
                config.timeframe,
                test_from,
                None,
                params,
                horizon=config.horizon,
                schedule=config.schedule,
            )
        return out
    h = config.horizon
    labels, last_up, scored_all = universe_labels(config, grids, closes, decide)
    scored = [scored_all[:, i] for i in range(len(grids))]
    priors = [class_prior(labels[parts["train"] & mine, i]) for i, mine in enumerate(scored)]
    sections = {}
    # range by range, symbol by symbol: the symbols present all along score as many bars in a
    # range, so each range's bootstrap indices are drawn once for all of them (metrics keeps
    # the last draw) rather than again for every symbol
    for name, part in parts.items():
        for i, symbol in enumerate(grids):
            if (part & scored[i]).any():
                sections[symbol, name] = classifier_section(
                    p_up[:, i], labels[:, i], last_up[:, i], part & scored[i], priors[i], cfg, h
                )
    return {
        symbol: {name: {"classifier": sections[symbol, name]}
                 for name in parts if (symbol, name) in sections}
        for symbol in grids
    }  # fmt: skip


def universe_labels(config: TrainConfig, grids: dict, closes: np.ndarray, decide: np.ndarray):
    """(labels (bars, symbols), 0 where the target is up; the last H candles' move up, 1.0 or
    0.0, the one-liners' input; scored (bars, symbols): a decision bar where the symbol is
    eligible and its candle H ahead is real) of config.target: the relative label against the
    eligible symbols' mean, or each symbol's own direction."""
    h = config.horizon
    real = universe_real(grids)
    eligible = universe_eligible(grids, config.first_decision)
    ahead = [label_ahead(closes[:, i], ~real[:, i], h) for i in range(closes.shape[1])]
    if config.target == "relative":
        labels = horizon_labels(closes, h, "relative", eligible)[0]
        last_up = (relative_return(closes, h, eligible) >= 0).astype(np.float64)
    else:
        labels = np.column_stack([label for label, _ in ahead])
        last_up = np.column_stack([last_move_up(closes[:, i], h) for i in range(closes.shape[1])])
    scored = np.asarray(decide, dtype=bool)[:, None] & eligible
    return labels, last_up, scored & np.column_stack([real for _, real in ahead])


def pooled_classifier(config: TrainConfig, grids: dict, p_up, closes, decide, parts: dict,
                      cfg: BacktestConfig, name: str) -> dict:  # fmt: skip
    """The direction scores of every (candle, symbol) decision of the range `name` pooled, beside
    the one-liners and the class prior of the pooled "train" part (classifier_section). The
    decisions are laid out candle by candle, and the bootstrap block holds cfg's block of
    candles (its length in decisions: the block times the mean decisions a candle), so that
    symbols moving together at one candle stay in one block."""
    labels, last_up, scored = universe_labels(config, grids, closes, decide)
    train = labels[scored & parts["train"][:, None]]
    prior = class_prior(train)
    mask = scored & parts[name][:, None]
    per_candle = mask.sum() / max(int(mask.any(axis=1).sum()), 1)
    cfg = replace(cfg, bootstrap_block=cfg.bootstrap_block * max(per_candle, 1.0))
    p = np.asarray(p_up, dtype=np.float64)
    return classifier_section(p.ravel(), labels.ravel(), last_up.ravel(), mask.ravel(), prior,
                              cfg, config.horizon)  # fmt: skip
