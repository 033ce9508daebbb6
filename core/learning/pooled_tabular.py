"""LightGBM or logistic regression pooled over a universe (`fc train --family lightgbm --symbols
A,B,C`): one model fitted on every symbol's lagged rows.

Each symbol's rows are cut from its own Series (core.learning.pooled.universe_series: its own
candles, its labels of config.target) at its own training decisions only, so a row never reads
another symbol's candles; the rows of all symbols are stacked in the order of config.symbols and
the model chooses (LightGBM's boosting round, the logistic model's L2 strength) on the stacked
validation rows, as the family does on one symbol's (core.learning.tabular_family). No symbol
identifier is a feature: one function of a row for every symbol, so the exported graph is one
graph for all of them. These families read raw features (trees need no scaling, the logistic
model standardises inside), so the run records no per-symbol scaling.
"""

import time

import numpy as np
import pandas as pd

from fc.core.learning.config import TrainConfig
from fc.core.learning.evaluation import scores
from fc.core.learning.pooled import (
    check_universe,
    most_purged,
    pooled_baselines,
    pooled_result,
    universe_resolved,
    universe_series,
)
from fc.core.learning.training import Trained, purge_record


def fit_tabular_universe(family, config: TrainConfig, grids: dict, on_progress=None,
                         on_validation=None, timing=None) -> Trained:  # fmt: skip
    """Fit `family` (a TabularFamily) on every symbol of `grids` ({symbol: grid}, the order of
    config.symbols): metrics with the pooled validation at top level and a block per symbol
    with validation decisions under `symbols`; predictions (time, symbol, p_up) of every
    validation decision."""
    check_universe(config)
    stamps = timing if timing is not None else {}
    started = time.perf_counter()
    series, test_start = universe_series(config, grids)
    config = family.with_lr(universe_resolved(config, series, test_start))
    model = family.fit_rows(config, list(series.values()), stamps)
    per_symbol, frames = {}, []
    for symbol, one in series.items():
        if not one.validation.any():  # listed after the validation range: nothing to score
            continue
        per_symbol[symbol], p_up = family.symbol_block(model, one, config)
        if config.target == "relative":  # long the symbol alone is no baseline of a spread
            per_symbol[symbol]["baselines"].pop("buy_and_hold_log_growth")
        val = np.flatnonzero(one.validation)
        frames.append(pd.DataFrame({"time": one.time[val], "symbol": symbol, "p_up": p_up}))
    pooled = _pooled_validation(series, per_symbol, frames)
    history = family.history(model)
    family.report_fit(history, pooled, on_progress, on_validation)
    metrics = {
        "target": config.target,
        "validation": pooled,
        "baselines": pooled_baselines(series, config),
        "symbols": per_symbol,
        "validation_sample_size": pooled["decisions"],  # every one: the fit chose on all
        "check": next(iter(per_symbol.values()))["check"],
        **family.fit_record(model, history, started, list(series.values())),
        **purge_record(most_purged(series)),
    }
    return Trained(config, model, history, metrics, pd.concat(frames, ignore_index=True))


def _pooled_validation(series: dict, per_symbol: dict, frames: list) -> dict:
    """pooled_result of the symbols' validation blocks (each weighted by its decisions), log
    loss and accuracy of all their decisions together, and their count."""
    counts = {s: block["validation"]["decisions"] for s, block in per_symbol.items()}
    results = {s: block["validation"] for s, block in per_symbol.items()}
    pooled = pooled_result(results, counts, "ce")
    labels = np.concatenate([series[s].labels[series[s].validation] for s in per_symbol])
    pooled |= scores(np.concatenate([f["p_up"].to_numpy() for f in frames]), labels)
    pooled["decisions"] = int(sum(counts.values()))
    return pooled
