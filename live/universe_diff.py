"""`fc paper diff` of a universe service's journal: every symbol's rows against the one-symbol
backtest of the same candles (live/diff.py, with the universe graph's p_up of that symbol), and
the portfolio's rows against core.evaluation.portfolio's weights and wealth over those bars.

The portfolio is recomputed from the backtest's side only (its p_up, closes and decision bars):
portfolio_weights, then range_books' growth factors compounded in the journal's convention
(the row at t holds the wealth realised at t's close), from the journal's first capital.
"""

import numpy as np
import pandas as pd

from fc.core.data.candles import timeframe_ms
from fc.core.errors import FcError
from fc.core.evaluation.portfolio import STRATEGIES, portfolio_weights, range_books
from fc.live.diff import backtest_table, compare, journal_fee_bps, journal_table, summary
from fc.live.diff_reasons import TOLERANCE
from fc.live.universe_service import PORTFOLIO


def universe_diff(rows, config, candles_from, predictor, fee_bps: float | None) -> dict:
    """{"symbols": {symbol: diff summary}, "portfolio": {strategy: counts}, totals}: `rows`
    the journal's rows of the run's timeframe, `predictor` a UniversePredictor."""
    symbols = list(predictor.symbols)
    if set(rows.symbol) - {PORTFOLIO} != set(symbols):
        held = ", ".join(sorted(set(rows.symbol))) or "no rows"
        raise FcError(f"the journal holds {held}, the model trades {', '.join(symbols)}; "
                      "give the run whose model the journal traded")  # fmt: skip
    fee_journal = journal_fee_bps(rows[rows.symbol == symbols[0]])
    fee = fee_bps if fee_bps is not None else (fee_journal or 0.0)
    first, last = int(rows.candle_ms.min()), int(rows.candle_ms.max())
    tf_ms = timeframe_ms(config.timeframe)
    params = predictor.meta["policy_params"]
    out, tables = {"symbols": {}}, {}
    for symbol in symbols:
        mine = rows[rows.symbol == symbol]
        journal = journal_table(mine)
        capital = {p: float(journal[f"j_wealth_{p}"].dropna().iloc[0]) for p in params}
        candles = candles_from(symbol, config.timeframe, first - (config.seq_len + 2) * tf_ms,
                               last + tf_ms)  # fmt: skip

        def predict(features, ends, s=symbol):
            return predictor.p_up_at(s, features, ends)

        tables[symbol] = backtest_table(candles, predict, config.seq_len, config.timeframe, first,
                                        last, fee, capital, params, None,
                                        predictor.meta["schedule"])  # fmt: skip
        c = compare(journal, tables[symbol], seq_len=config.seq_len, model_sha256="", fee_bps=fee,
                    fee_journal=fee_journal, predictions=str(predictor.path),
                    policy_params=params)  # fmt: skip
        out["symbols"][symbol] = summary(c)
    out["portfolio"] = portfolio_diff(rows[rows.symbol == PORTFOLIO], tables, predictor, fee,
                                      config.timeframe)  # fmt: skip
    differing = sum(s["differing"] for s in out["symbols"].values())
    differing += sum(p["differing"] for p in out["portfolio"].values())
    return out | {"fee_bps": fee, "differing": differing, "matches": differing == 0,
                  "tolerance": TOLERANCE}  # fmt: skip


def portfolio_diff(rows, tables: dict, predictor, fee_bps: float, timeframe: str) -> dict:
    """{strategy: {compared, differing, max_rel_wealth_diff}} of the portfolio's rows, the
    books decided on the graph's schedule (sleeves: the mean of the sleeves' books)."""
    symbols = list(tables)
    index = tables[symbols[0]].index
    p_up = np.column_stack([tables[s]["b_p_up"].to_numpy(float) for s in symbols])
    closes = np.column_stack([tables[s]["b_close"].to_numpy(float) for s in symbols])
    decide = tables[symbols[0]]["b_decided"].to_numpy(bool)  # the schedule's decision candles
    part = np.ones(len(index), bool)
    book = predictor.portfolio_params
    params = {"discrete": predictor.meta["policy_params"]["discrete"],
              "proportional": predictor.meta["policy_params"]["proportional"],
              "long_short": book}  # fmt: skip
    times = pd.to_datetime(index, unit="ms", utc=True)
    weights = predictor.meta["schedule"].book(
        lambda m: portfolio_weights(p_up, closes, m, params), decide, times, timeframe
    )
    books = range_books({q: weights[q] for q in STRATEGIES}, closes, decide, part, fee_bps / 1e4)
    out = {}
    for strategy in STRATEGIES:
        got = rows[rows.policy == strategy].set_index("candle_ms").sort_index()
        got = got.reindex(index)
        capital = float(got.wealth.dropna().iloc[0]) if got.wealth.notna().any() else 1.0
        held, _, factors = books[strategy]
        want = capital * np.r_[1.0, np.cumprod(factors)[:-1]]
        j = got.wealth.to_numpy(float)
        wealth_ok = np.abs(j - want) <= TOLERANCE * np.abs(j)
        gross_ok = np.abs(got.position.to_numpy(float) - np.abs(held).sum(axis=1)) <= TOLERANCE
        ok = wealth_ok & gross_ok
        rel = np.abs(j - want) / np.abs(j)
        out[strategy] = {
            "compared": len(index),
            "differing": int((~ok).sum()),
            "max_rel_wealth_diff": None if np.isnan(rel).all() else float(np.nanmax(rel)),
        }
    return out
