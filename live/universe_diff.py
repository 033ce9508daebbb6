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
from fc.core.data.presence import eligibility
from fc.core.errors import FcError
from fc.core.evaluation.portfolio import STRATEGIES, portfolio_weights, range_books
from fc.live.diff import backtest_table, compare, journal_fee_bps, journal_table, summary
from fc.live.diff_reasons import TOLERANCE
from fc.live.universe_service import PORTFOLIO


def universe_diff(rows, config, candles_from, predictor, fee_bps: float | None) -> dict:
    """{"symbols": {symbol: diff summary}, "portfolio": {strategy: counts}, totals}: `rows`
    the journal's rows of the run's timeframe, `predictor` a UniversePredictor. Each symbol is
    compared over its own rows (from the candle it entered to its last, under the presence
    rule); the portfolio over the union of the symbols' candles."""
    symbols = list(predictor.symbols)
    traded = set(rows.symbol) - {PORTFOLIO}
    if not traded or not traded <= set(symbols) or PORTFOLIO not in set(rows.symbol):
        held = ", ".join(sorted(set(rows.symbol))) or "no rows"
        raise FcError(f"the journal holds {held}, the model trades {', '.join(symbols)}; "
                      "give the run whose model the journal traded")  # fmt: skip
    fee_journal = journal_fee_bps(rows[rows.symbol == min(traded, key=symbols.index)])
    fee = fee_bps if fee_bps is not None else (fee_journal or 0.0)
    first, last = int(rows.candle_ms.min()), int(rows.candle_ms.max())
    tf_ms = timeframe_ms(config.timeframe)
    since = first - (config.seq_len + 2) * tf_ms
    candles = {s: candles_from(s, config.timeframe, since, last + tf_ms) for s in symbols}
    params = predictor.meta["policy_params"]
    out, tables = {"symbols": {}}, {}
    for symbol in symbols:
        mine = rows[rows.symbol == symbol]
        if len(mine) == 0:  # never eligible in the journal's candles
            continue
        journal = journal_table(mine)
        capital = {p: float(journal[f"j_wealth_{p}"].dropna().iloc[0]) for p in params}

        def predict(features, ends, s=symbol):
            return predictor.p_up_at(s, features, ends)

        tables[symbol] = backtest_table(candles[symbol], predict, config.seq_len,
                                        config.timeframe, int(mine.candle_ms.min()),
                                        int(mine.candle_ms.max()), fee, capital, params, None,
                                        predictor.meta["schedule"])  # fmt: skip
        c = compare(journal, tables[symbol], seq_len=config.seq_len, model_sha256="", fee_bps=fee,
                    fee_journal=fee_journal, predictions=str(predictor.path),
                    policy_params=params)  # fmt: skip
        out["symbols"][symbol] = summary(c)
    grid = union_grid(candles, tables, since, first, last, tf_ms, config.first_decision)
    out["portfolio"] = portfolio_diff(rows[rows.symbol == PORTFOLIO], grid, predictor, fee,
                                      config.timeframe)  # fmt: skip
    differing = sum(s["differing"] for s in out["symbols"].values())
    differing += sum(p["differing"] for p in out["portfolio"].values())
    return out | {"fee_bps": fee, "differing": differing, "matches": differing == 0,
                  "tolerance": TOLERANCE}  # fmt: skip


def union_grid(candles: dict, tables: dict, since: int, first: int, last: int, tf_ms: int,
               warm_up: int) -> dict:  # fmt: skip
    """The backtest's side of the portfolio on the union of the symbols' candles from `since`
    (a warm-up before the journal's first candle) to its last: times (ms), closes (filled bars
    carried, as core.data.universe places them), real, eligible (core.data.presence), the p_up
    of each symbol's backtest table (NaN where it decided none) and the part compared."""
    times = np.arange(since, last + 1, tf_ms, dtype=np.int64)
    closes = np.full((len(times), len(candles)), np.nan)
    real = np.zeros(closes.shape, dtype=bool)
    p_up = np.full(closes.shape, np.nan)
    for i, (symbol, frame) in enumerate(candles.items()):
        opens = frame.index.as_unit("ns").asi8 // 1_000_000
        at = np.searchsorted(times, opens)
        keep = (at < len(times)) & (times[np.minimum(at, len(times) - 1)] == opens)
        closes[at[keep], i] = frame["close"].to_numpy(dtype=np.float64)[keep]
        real[at[keep], i] = True
        if symbol in tables:
            table = tables[symbol]["b_p_up"]
            p_up[np.searchsorted(times, table.index.to_numpy()), i] = table.to_numpy(float)
    closes = pd.DataFrame(closes).ffill().bfill().to_numpy()
    part = (times >= first) & (times <= last)
    return {"times": times, "closes": closes, "real": real, "p_up": p_up, "part": part,
            "eligible": eligibility(real, warm_up)}  # fmt: skip


def portfolio_diff(rows, grid: dict, predictor, fee_bps: float, timeframe: str) -> dict:
    """{strategy: {compared, differing, max_rel_wealth_diff}} of the portfolio's rows against
    core.evaluation.portfolio's books on `grid` (union_grid), decided where some symbol is
    eligible on the graph's schedule (sleeves: the mean of the sleeves' books)."""
    times = pd.to_datetime(grid["times"], unit="ms", utc=True)
    schedule = predictor.meta["schedule"]
    part, real, eligible = grid["part"], grid["real"], grid["eligible"]
    decide = eligible.any(axis=1) & part & schedule.decision_candles(times, timeframe)
    params = {"discrete": predictor.meta["policy_params"]["discrete"],
              "proportional": predictor.meta["policy_params"]["proportional"],
              "long_short": predictor.portfolio_params}  # fmt: skip
    weights = schedule.book(
        lambda m: portfolio_weights(grid["p_up"], grid["closes"], m, params, real=real,
                                    eligible=eligible),
        decide, times, timeframe,
    )  # fmt: skip
    books = range_books({q: weights[q] for q in STRATEGIES}, grid["closes"], decide, part,
                        fee_bps / 1e4)  # fmt: skip
    index = grid["times"][part]
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
