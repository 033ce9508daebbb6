"""The portfolio backtest of a universe (SPEC §10): weight matrices (bars x symbols) from the
policies, one wealth formula over them, and for each the statistics of one symbol's strategies.

A weight row decided at the close of bar t earns sum_s w_{s,t} R_{s,t+1}, less c sum_s |Δw_s|.
Weights change only at decision bars (portfolio_decisions: a bar filled for any symbol is none)
and are held through the others, as one symbol's positions are (core.evaluation.backtest). Each
range starts flat with wealth 1.0.
"""

import math

import numpy as np
import pandas as pd

from fc.core.data.candles import timeframe_delta
from fc.core.data.features import next_returns, relative_return
from fc.core.data.presence import close_delisted, members
from fc.core.data.store import symbol_slug
from fc.core.errors import FcError
from fc.core.evaluation import metrics
from fc.core.evaluation.backtest import (
    BacktestConfig,
    cost_vector,
    strategy_statistics,
    trade_mask,
)
from fc.core.evaluation.policies import PolicyParams, held_positions, hold, wealth_factors
from fc.core.evaluation.schedule import Schedule
from fc.core.evaluation.universe_choice import top_mask, trailing_quote_volume

STRATEGIES = ("long_short", "equal_weight_discrete", "equal_weight_proportional")
BASELINES = ("buy_and_hold", "cross_sectional_reversal", "cross_sectional_momentum")


def portfolio_decisions(filled: np.ndarray, seq_len: int) -> np.ndarray:
    """Bars where the portfolio decides, (bars,): trade_mask of "filled for any symbol" (a weight
    row is decided at once for all symbols, so a bar missing one symbol's candle is none)."""
    return trade_mask(np.asarray(filled, dtype=bool).any(axis=1), seq_len)


def symbol_positions(policy: str, p_up: np.ndarray, decide: np.ndarray, params=None,
                     eligible=None):  # fmt: skip
    """Each symbol's held position under one symbol's `policy`, (bars, symbols): held_positions
    down each column of p_up, with the portfolio's decision bars (where it is eligible)."""
    masks = _symbol_masks(decide, eligible, np.shape(p_up)[1])
    columns = [held_positions(policy, column, mask, params)
               for column, mask in zip(np.asarray(p_up).T, masks, strict=True)]  # fmt: skip
    return np.column_stack(columns)


def _symbol_masks(decide, eligible, size: int) -> list:
    """Each symbol's decision bars: the portfolio's, where the symbol is eligible."""
    decide = np.asarray(decide, dtype=bool)
    if eligible is None:
        return [decide] * size
    return [decide & column for column in np.asarray(eligible, dtype=bool).T]


def present_weights(targets: np.ndarray, decide, eligible) -> np.ndarray:
    """Weights that change only where a symbol is decided (a decision bar where it is eligible)
    and are held through the others: a symbol not eligible keeps the weight it holds."""
    masks = _symbol_masks(decide, eligible, targets.shape[1])
    return np.column_stack([hold(column, mask) for column, mask in zip(targets.T, masks,
                                                                      strict=True)])  # fmt: skip


def eligible_counts(eligible) -> np.ndarray:
    """Symbols eligible (or members) at each bar, (bars, 1), at least 1 (a bar without one
    decides none)."""
    return np.maximum(np.asarray(eligible, dtype=bool).sum(axis=1, keepdims=True), 1)


def equal_weight(positions: np.ndarray) -> np.ndarray:
    """Each symbol a 1/S slice of the capital, positioned as it would be alone."""
    positions = np.asarray(positions, dtype=np.float64)
    return positions / positions.shape[1]


def buy_and_hold(n: int, symbols: int) -> np.ndarray:
    """The universe bought in equal weights, 1/S long each, every bar."""
    return np.full((n, symbols), 1.0 / symbols)


def long_short(p_up: np.ndarray, decide: np.ndarray, params: PolicyParams | None = None,
               eligible=None):  # fmt: skip
    """Market-neutral weights, (bars, symbols): +cap/(2k) on the k highest p_up, -cap/(2k) on the
    k lowest, 0 elsewhere, decided at decision bars and held through the others.

    Ties rank the symbol listed first higher (a stable sort): preferred for a long, spared for a
    short. band (fee-aware, read cross-sectionally): a symbol held long keeps its place unless
    another's p_up beats its own by more than band, and a short likewise; ranking on p_up alone
    would trade on any reshuffle however small, and the level of p_up (0.5 + band of the
    discrete policy) means little where the target is relative, the ranking everything.
    min_hold: a symbol's weight changed at bar t may next change at a decision bar s with
    s - t >= min_hold; the book is completed from the symbols free to move, so every decision
    bar holds k longs and k shorts (weights sum to 0, gross to cap).
    eligible (bars, symbols): only eligible symbols are ranked, k capped at half of them at each
    bar (k_t, weights +-cap/(2 k_t)); a symbol not eligible keeps its weight and is not counted."""
    return ranked_book(np.nan_to_num(np.asarray(p_up, dtype=np.float64), nan=0.5), decide,
                       params or PolicyParams(), eligible)  # fmt: skip


def cross_sectional_reversal(
    closes: np.ndarray, decide: np.ndarray, k: int = 1, horizon: int = 1, eligible=None
) -> np.ndarray:
    """The relative target's mean reversion: long the k symbols whose last H candles fell most
    against the universe's mean (of the eligible symbols), short the k that rose most, weights
    +-1/(2k) (k capped as long_short's)."""
    moved = relative_return(closes, horizon, eligible)
    return ranked_book(-moved, decide, PolicyParams(k=k), eligible)


def cross_sectional_momentum(
    closes: np.ndarray, decide: np.ndarray, k: int = 1, horizon: int = 1, eligible=None
) -> np.ndarray:
    """The cross-section's momentum, the reversal's opposite bet: long the k symbols whose last
    H candles rose most against the universe's mean, short the k that fell most."""
    return ranked_book(relative_return(closes, horizon, eligible), decide, PolicyParams(k=k),
                       eligible)  # fmt: skip


def ranked_book(scores: np.ndarray, decide: np.ndarray, params: PolicyParams,
                eligible=None) -> np.ndarray:  # fmt: skip
    """long_short on any scores (higher: more wanted long); see long_short."""
    scores = np.asarray(scores, dtype=np.float64)
    n, size = scores.shape
    k = params.k
    if 2 * k > size:
        raise FcError(
            f"--k {k} is more than half the universe of {size} symbols: give --k <= {size // 2}"
        )
    decide = np.asarray(decide, dtype=bool)
    if eligible is not None:
        sides = _sequential_sides(scores, decide, params, eligible)
        k_t = k_cap(k, eligible_counts(eligible))
        return present_weights(side_weights(sides, params, k_t), decide, eligible)
    if params.band == 0 and params.min_hold == 1:  # memoryless: one ranking per bar
        sides = np.zeros((n, size))
        order = np.argsort(-scores, axis=1, kind="stable")
        np.put_along_axis(sides, order[:, :k], 1.0, axis=1)
        np.put_along_axis(sides, order[:, size - k :], -1.0, axis=1)
    else:
        sides = _sequential_sides(scores, decide, params)
    weights = side_weights(sides, params)
    return np.column_stack([hold(column, decide) for column in weights.T])


def _sequential_sides(scores: np.ndarray, decide: np.ndarray, params: PolicyParams,
                      eligible=None):  # fmt: skip
    """Sides (+1, 0, -1) per decision bar, one bar after another (next_sides): band and
    min_hold depend on the book held."""
    n, size = scores.shape
    bars = np.flatnonzero(decide)
    present = (np.ones((len(bars), size), dtype=bool) if eligible is None
               else np.asarray(eligible, dtype=bool)[bars]).tolist()  # fmt: skip
    decided = []
    side, changed = [0] * size, [-math.inf] * size  # the flat start is no held position
    for t, row, mask in zip(bars.tolist(), scores[bars].tolist(), present, strict=True):
        new = next_sides(row, side, changed, t, params, mask)
        changed = [t if new[s] != side[s] else changed[s] for s in range(size)]
        side = new
        decided.append(new)
    sides = np.zeros((n, size))
    sides[bars] = np.array(decided, dtype=np.float64).reshape(len(bars), size)
    return sides


def next_sides(row: list, side: list, changed: list, t: int, params: PolicyParams,
               eligible: list | None = None) -> list:  # fmt: skip
    """The long-short book's sides (+1, 0, -1 a symbol) decided at bar t from the scores `row`,
    the sides held and the bar where each last changed (-inf: never): the rule of long_short,
    one bar at a time (the live service calls it at each candle). Plain lists: a handful of
    symbols a bar is 10x faster than numpy calls. eligible (a bool a symbol; None: all): only
    eligible symbols are ranked and counted, k capped at half of them (k_cap); a symbol not
    eligible keeps its side (its weight is held, present_weights) and is not counted."""
    band, min_hold = params.band, params.min_hold
    symbols = range(len(row))
    eligible = [True] * len(row) if eligible is None else eligible
    k = k_cap(params.k, sum(eligible))
    free = [eligible[s] and t - changed[s] >= min_hold for s in symbols]
    new = [0 if free[s] else side[s] for s in symbols]
    for sign in (1, -1):
        # an incumbent on this side ranks band higher (for shorts: lower) than its p_up;
        # sorted is stable: among equal scores the symbol listed first ranks higher
        order = sorted(symbols, key=lambda s, g=sign: -(row[s] + g * band * (side[s] == g)))
        need = k - sum(1 for s in symbols if eligible[s] and new[s] == sign)
        for s in order if sign > 0 else reversed(order):
            if need > 0 and free[s]:
                new[s], free[s], need = sign, False, need - 1
    return new


def long_short_row(row: list, side: list, changed: list, t: int, params: PolicyParams,
                   eligible: list) -> tuple[list, np.ndarray]:  # fmt: skip
    """One candle of the long-short under presence, as the live service decides it: (the new
    sides by next_sides, their weights +-cap/(2 k_t), k_t capped over the eligible symbols).
    Where a symbol is not eligible its held weight stands instead (present_weights)."""
    new = next_sides(row, side, changed, t, params, eligible)
    return new, side_weights(new, params, k_cap(params.k, sum(eligible)))


def k_cap(k: int, eligible: int) -> int:
    """The long-short's k at a candle with `eligible` symbols (or an array of counts): at most
    half of them."""
    return np.minimum(k, np.asarray(eligible) // 2) if np.ndim(eligible) else min(k, eligible // 2)


def side_weights(sides, params: PolicyParams, k=None) -> np.ndarray:
    """The long-short's weights of its sides: +-cap/(2k) (k: the candle's capped k, or one a
    bar; a candle without a pair holds no side)."""
    k = params.k if k is None else np.maximum(k, 1)
    return np.asarray(sides, dtype=np.float64) * (params.cap / (2 * k))


def portfolio_weights(
    p_up: np.ndarray, closes: np.ndarray, decide: np.ndarray, params=None, horizon: int = 1,
    real=None, eligible=None,
):  # fmt: skip
    """{strategy: weights (bars, symbols)} of the three policies and the two baselines for the
    decision bars `decide`. params {policy: PolicyParams} for "discrete", "proportional" and
    "long_short" (absent: defaults; the baselines' k is long_short's); the cross-sectional
    reversal against the last `horizon` candles' relative move.

    With presence (core.data.presence: `real` candles and `eligible` symbols, (bars, symbols)),
    where symbols are not all present at the same candles: a symbol is decided only where it is
    eligible and holds its weight elsewhere; the equal-weight books and buy-and-hold split the
    capital over the universe's members at each decision (1/n_t: the symbols that have entered
    and not left, core.data.presence.members), the long-short ranks only the eligible ones; a
    delisted symbol is closed at its last candle."""
    params = params or {}
    p = np.nan_to_num(np.asarray(p_up, dtype=np.float64), nan=0.5)
    pair = params.get("long_short") or PolicyParams()
    if eligible is not None and not shared_presence(eligible, real):
        return _present_weights(p, closes, decide, params, horizon, real, eligible)
    return {
        "long_short": long_short(p, decide, pair),
        "equal_weight_discrete": equal_weight(
            symbol_positions("discrete", p, decide, params.get("discrete"))
        ),
        "equal_weight_proportional": equal_weight(
            symbol_positions("proportional", p, decide, params.get("proportional"))
        ),
        "buy_and_hold": buy_and_hold(*p.shape),
        "cross_sectional_reversal": cross_sectional_reversal(closes, decide, pair.k, horizon),
        "cross_sectional_momentum": cross_sectional_momentum(closes, decide, pair.k, horizon),
    }


def shared_presence(eligible, real) -> bool:
    """Whether every symbol is present at the same candles (one grid: the five 30m files), where
    the presence rule is the portfolio's decision bars and the books are computed as before."""
    same = (np.asarray(eligible) == np.asarray(eligible)[:, :1]).all()
    return bool(same and (np.asarray(real) == np.asarray(real)[:, :1]).all())


def _present_weights(p, closes, decide, params: dict, horizon: int, real, eligible) -> dict:
    pair = params.get("long_short") or PolicyParams()
    n_t = eligible_counts(members(real, eligible))
    books = {
        "long_short": long_short(p, decide, pair, eligible),
        "buy_and_hold": present_weights(np.broadcast_to(1.0 / n_t, p.shape), decide, eligible),
        "cross_sectional_reversal": cross_sectional_reversal(
            closes, decide, pair.k, horizon, eligible
        ),
        "cross_sectional_momentum": cross_sectional_momentum(
            closes, decide, pair.k, horizon, eligible
        ),
    }
    for key, policy in (("equal_weight_discrete", "discrete"),
                        ("equal_weight_proportional", "proportional")):  # fmt: skip
        held = symbol_positions(policy, p, decide, params.get(policy), eligible)
        books[key] = present_weights(held / n_t, decide, eligible)
    order = ("long_short", "equal_weight_discrete", "equal_weight_proportional", *BASELINES)
    return {key: close_delisted(books[key], real) for key in order}


def k_capped(eligible, decide, k: int) -> int:
    """Decision bars where the long-short's k was capped below --k (fewer than 2k eligible)."""
    counts = np.asarray(eligible, dtype=bool).sum(axis=1)
    return int((np.asarray(decide, dtype=bool) & (k_cap(k, counts) < k)).sum())


def portfolio_wealth(weights: np.ndarray, returns_next: np.ndarray, cost: float = 0.0):
    """W after each bar, (bars,): W_{t+1} = W_t (1 + sum_s w_{s,t} R_{s,t+1}
    - c sum_s |w_{s,t} - w_{s,t-1}|), w_{-1} = 0, W from 1.0 (policies.wealth_factors). A bar
    without a next candle (NaN) earns nothing."""
    return np.cumprod(wealth_factors(weights, np.nan_to_num(returns_next), cost))


def range_weights(weights: np.ndarray, decide: np.ndarray, part: np.ndarray) -> np.ndarray:
    """The weights held over one range's bars, (bars in part, symbols): flat until its first
    decision, as backtest.simulate holds one symbol's positions. The weights are held already
    (they change only where decided, or where a delisted symbol is closed)."""
    decided = (np.asarray(decide, dtype=bool) & part)[part]
    held = np.array(np.asarray(weights, dtype=np.float64)[part])
    held[: int(decided.argmax()) if decided.any() else len(held)] = 0.0
    return held


def book_cost(cfg: BacktestConfig, symbols):
    """The cost of trading each symbol: a scalar (cfg.cost) unless fees are given per symbol
    (--fee-bps SYMBOL=BPS: backtest.cost_vector, one a symbol)."""
    return cost_vector(cfg, symbols) if cfg.symbol_fees else cfg.cost


def range_books(weights_by_policy: dict, closes, decide, part, cost: float) -> dict:
    """{strategy: (weights, next returns, growth factors)} over one range's bars."""
    returns = np.nan_to_num(next_returns(closes))[part]
    books = {}
    for name, weights in weights_by_policy.items():
        held = range_weights(weights, decide, part)
        books[name] = held, returns, wealth_factors(held, returns, cost)
    return books


def portfolio_report(
    weights_by_range: dict,
    closes: np.ndarray,
    decide: np.ndarray,
    parts: dict,
    cfg: BacktestConfig,
    timeframe: str,
    symbols=(),
) -> dict:
    """{range: {strategy: statistics}}: each range's weights ({range: {strategy: (bars,
    symbols)}}, decided on that range's decision bars, as run_backtest decides each range's)
    with the statistics of one symbol's strategies (backtest.strategy_statistics)."""
    per_year = metrics.bars_per_year(timeframe_delta(timeframe) / pd.Timedelta(1, "min"))
    report = {}
    for name, part in parts.items():
        if name not in weights_by_range or not (part & decide).any():
            continue
        books = range_books(weights_by_range[name], closes, decide, part, book_cost(cfg, symbols))
        report[name] = strategy_statistics(books, int((part & decide).sum()), per_year, cfg)
    return report


def positions_frame(times, p_up, weights_by_policy: dict, symbols, wealth_by_policy=None):
    """One row a bar: time, p_up_<SLUG> of every symbol, weight_<policy>_<SLUG> of every policy
    and symbol, then wealth_<policy> (at the next close): enough, with the candles, to recompute
    every portfolio wealth. SLUG: BTC/USDT -> BTC_USDT."""
    slugs = [symbol_slug(s) for s in symbols]
    p_up = np.asarray(p_up, dtype=np.float64)
    columns = {"time": times}
    columns.update({f"p_up_{slug}": p_up[:, i] for i, slug in enumerate(slugs)})
    for policy, weights in weights_by_policy.items():
        columns.update({f"weight_{policy}_{slug}": weights[:, i] for i, slug in enumerate(slugs)})
    for policy, wealth in (wealth_by_policy or {}).items():
        columns[f"wealth_{policy}"] = wealth
    return pd.DataFrame(columns)


def portfolio_backtest(
    times: pd.DatetimeIndex,
    closes: np.ndarray,
    p_up: np.ndarray,
    decide: np.ndarray,
    parts: dict,
    cfg: BacktestConfig,
    timeframe: str,
    symbols: list[str],
    params: dict | None = None,
    horizon: int = 1,
    schedule: Schedule = Schedule(),
    presence: tuple | None = None,
    volumes: np.ndarray | None = None,
):
    """The portfolio of a universe over every range with a decision, as run_backtest does one
    symbol: (positions frame with a range column, {range: {strategy: statistics}}); every book
    decided on the schedule's candles (core.evaluation.schedule), held in between. presence:
    (real, eligible) (core.data.presence; None: every symbol at every decision bar); the
    long-short and the cross-sectional reversal report `k_capped`, the decision bars where
    fewer than 2k symbols were eligible (where symbols are not all present at once). cfg.top:
    only the N eligible symbols of largest trailing 30-day quote volume (`volumes`, (bars,
    symbols), with the closes; core.evaluation.universe_choice) are decided at each candle."""
    real, eligible = presence or (None, None)
    if cfg.top is not None:  # only the N most traded eligible symbols are decided
        if eligible is None:
            real = eligible = np.ones(np.shape(closes), dtype=bool)
        eligible = top_mask(trailing_quote_volume(closes, volumes, times), eligible, cfg.top)
        presence = (real, eligible)
    weights_by_range, frames = {}, []
    for name, part in parts.items():
        if not (part & decide).any():
            continue
        weights = schedule.book(
            lambda m: portfolio_weights(p_up, closes, m, params, horizon, real, eligible),
            decide & part, times, timeframe,
        )  # fmt: skip
        weights_by_range[name] = weights
        books = range_books(weights, closes, decide, part, book_cost(cfg, symbols))
        frame = positions_frame(
            times[part], np.asarray(p_up)[part],
            {key: books[key][0] for key in STRATEGIES}, symbols,
            {key: np.cumprod(factors) for key, (_, _, factors) in books.items()},
        )  # fmt: skip
        if not schedule.is_default:
            frame["decision"] = (schedule.decision_candles(times, timeframe) & decide)[part]
        frame.insert(1, "range", name)
        frames.append(frame)
    report = portfolio_report(weights_by_range, closes, decide, parts, cfg, timeframe, symbols)
    if presence is not None and not shared_presence(eligible, real):
        k = ((params or {}).get("long_short") or PolicyParams()).k
        for name, section in report.items():
            capped = k_capped(eligible, decide & parts[name], k)
            for key in ("long_short", "cross_sectional_reversal", "cross_sectional_momentum"):
                section[key]["k_capped"] = capped
    return pd.concat(frames, ignore_index=True), report
