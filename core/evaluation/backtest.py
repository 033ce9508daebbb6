"""The backtest (SPEC §2): both policies and the baselines over the train and validation ranges.

A position decided at the close of candle t earns R_{t+1}. Decisions need a full window of real
price changes (t >= seq_len) and a real candle at t: at a filled bar (an exchange outage) nothing
is traded and the position held is carried, as the live service holds it through downtime.
Each range starts flat with wealth 1.0.
"""

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from fc.core.data.candles import timeframe_delta, utc_time
from fc.core.data.features import horizon_labels, next_return
from fc.core.errors import FcError
from fc.core.evaluation import metrics, significance
from fc.core.evaluation.policies import POLICIES, PolicyParams, held_positions, hold, wealth_factors
from fc.core.evaluation.schedule import Schedule

BASELINES = ("buy_and_hold", "last_direction", "mean_reversion", "class_prior")


@dataclass(frozen=True)
class BacktestConfig:
    """What a backtest charges and over which candles.

    fee_bps: the fee per unit traded of every symbol not named in symbol_fees (`--fee-bps BPS`).
    symbol_fees: {symbol: bps} of a universe's symbols that pay another fee
      (`--fee-bps SYMBOL=BPS`, repeatable: small coins cost more to trade); empty by default
      and then not written, so that every artefact without it stays as it was. Slippage is
      added to every symbol's fee alike. Where fees are swept (a lab file's [report] fees), the
      sweep moves fee_bps and the per-symbol fees stay as given.
    top: `--top N` of a universe: at each decision candle only the N eligible symbols with the
      largest trailing 30-day quote volume (core.evaluation.universe_choice); None: all.
    """

    fee_bps: float = 0.0
    slippage_bps: float = 0.0
    start: str | None = None  # first decision time (inclusive), ISO date or time, UTC
    end: str | None = None  # last decision time (exclusive)
    bootstrap_reps: int = 500
    bootstrap_block: float = 48.0  # mean block length in bars (a day of 30m bars)
    symbol_fees: dict[str, float] = field(default_factory=dict)
    top: int | None = None

    def __post_init__(self):
        for name in ("start", "end"):
            if getattr(self, name) is not None:
                utc_time(getattr(self, name), f"--{name}")
        if self.fee_bps < 0 or self.slippage_bps < 0:
            raise FcError("fees and slippage are costs: give --fee-bps/--slippage-bps >= 0")
        object.__setattr__(self, "symbol_fees", dict(self.symbol_fees))
        for symbol, bps in self.symbol_fees.items():
            number = isinstance(bps, int | float) and not isinstance(bps, bool)
            if not (number and math.isfinite(bps) and bps >= 0):
                raise FcError(f"--fee-bps {symbol}={bps}: a fee is a cost, give bps >= 0, "
                              f"e.g. {symbol}=10")  # fmt: skip
        if self.top is not None and (
            isinstance(self.top, bool) or self.top != int(self.top) or self.top < 1
        ):
            raise FcError(f"--top {self.top}: give the number of symbols to keep, >= 1, e.g. 10")
        if self.top is not None:
            object.__setattr__(self, "top", int(self.top))

    @property
    def cost(self) -> float:
        """c of the wealth formula: fee plus slippage per unit of position change (of every
        symbol not named in symbol_fees; cost_vector gives each symbol's)."""
        return (self.fee_bps + self.slippage_bps) / 1e4

    def to_dict(self) -> dict:
        """The fields as a dict; symbol_fees only when some are given and top only when set, so
        that the JSON of a run without them stays byte for byte as it was."""
        out = asdict(self)
        if not out["symbol_fees"]:
            del out["symbol_fees"]
        if out["top"] is None:
            del out["top"]
        return out


def check_universe(cfg: BacktestConfig, symbols) -> None:
    """Refuse what a backtest of `symbols` cannot honour: per-symbol fees or --top on a
    one-symbol run (a one-symbol run pays --fee-bps BPS and has nothing to choose among), or a
    per-symbol fee for a symbol outside the universe."""
    symbols = list(symbols)
    if len(symbols) <= 1:
        given = [f"--fee-bps {s}=BPS" for s in list(cfg.symbol_fees)[:1]]
        given += ["--top"] if cfg.top is not None else []
        if given:
            raise FcError(f"{' and '.join(given)} choose among a universe's symbols; this run "
                          "trades one symbol: give --fee-bps BPS and no --top")  # fmt: skip
        return
    outside = [s for s in cfg.symbol_fees if s not in symbols]
    if outside:
        named = ",".join(symbols) if len(symbols) <= 8 else ",".join(symbols[:8]) + ",…"
        raise FcError(f"--fee-bps {outside[0]}={cfg.symbol_fees[outside[0]]:g}: {outside[0]} is "
                      f"not in the run's universe of {len(symbols)} symbols ({named}); name one "
                      "of its symbols")  # fmt: skip


def cost_vector(cfg: BacktestConfig, symbols) -> np.ndarray:
    """Each symbol's cost per unit traded, (S,) in the order of `symbols`: its --fee-bps
    SYMBOL=BPS where given, else the default --fee-bps, plus --slippage-bps, in fractions (the
    c_s of policies.wealth_factors). Checked against the universe first (check_universe)."""
    check_universe(cfg, symbols)
    fees = [cfg.symbol_fees.get(s, cfg.fee_bps) + cfg.slippage_bps for s in symbols]
    return np.array(fees, dtype=np.float64) / 1e4


def blocks_for(cfg: BacktestConfig, horizon: int) -> BacktestConfig:
    """cfg with bootstrap blocks at least H bars long: labels H candles ahead overlap."""
    if cfg.bootstrap_block < horizon:
        return replace(cfg, bootstrap_block=float(horizon))
    return cfg


def trade_mask(filled: np.ndarray, seq_len: int) -> np.ndarray:
    """Bars where a decision is made: a full window of real changes, a real candle, a next bar."""
    n = len(filled)
    ok = np.zeros(n, dtype=bool)
    ok[seq_len : n - 1] = True
    return ok & ~np.asarray(filled, dtype=bool)


def segments(
    times: pd.DatetimeIndex,
    decide: np.ndarray,
    split: str,
    cfg: BacktestConfig,
    test_from: pd.Timestamp | None = None,
):
    """{'train': mask, 'validation': mask, 'test': mask} over bars, each from its first decision
    on; test from `test_from` (core.ranges.backtest_test_from; None: no test bar)."""
    t = times
    inside = np.ones(len(t), dtype=bool)
    if cfg.start:
        inside &= t >= utc_time(cfg.start, "--start")
    if cfg.end:
        inside &= t < utc_time(cfg.end, "--end")
    before = t < pd.Timestamp(split, tz="UTC")
    test = np.asarray(t >= test_from) if test_from is not None else np.zeros(len(t), bool)
    out = {}
    for name, part in (
        ("train", inside & before),
        ("validation", inside & ~before & ~test),
        ("test", inside & ~before & test),
    ):
        steps = part & decide
        if steps.any():
            first, last = np.flatnonzero(steps)[[0, -1]]
            part = part.copy()
            part[:first] = False
            part[last + 1 :] = False
        out[name] = part & (np.arange(len(t)) < len(t) - 1)
    return out


def simulate(close, positions, decide, part, cost):
    """Held positions, growth factors and wealth over one range (flat and 1.0 at its start)."""
    f = hold(np.where(part, positions, 0.0), decide & part)[part]
    r = np.nan_to_num(next_return(close))[part]
    factors = wealth_factors(f, r, cost)
    return f, r, factors


def last_move_up(close: np.ndarray, horizon: int = 1) -> np.ndarray:
    """1.0 where the H candles up to t rose (close_t >= close_{t-H}; an unchanged close counts as
    up, as in the labels), else 0.0; up where there is no candle H before. Causal."""
    close = np.asarray(close, dtype=np.float64)
    up = np.ones(len(close))
    up[horizon:] = close[horizon:] >= close[:-horizon]
    return up


def follow_name(horizon: int) -> str:
    """The baseline that bets the last move goes on: last direction at H = 1, momentum beyond."""
    return "last_direction" if horizon == 1 else "momentum"


def baseline_positions(close: np.ndarray, prior_up: bool, horizon: int = 1) -> dict:
    """The one-liners at the labels' horizon: buy and hold, with the last H candles' move
    (last direction / momentum), against it (mean reversion), the training's class prior."""
    last = 2.0 * last_move_up(close, horizon) - 1.0
    ones = np.ones(len(close))
    return {
        "buy_and_hold": ones,
        follow_name(horizon): last,
        "mean_reversion": -last,
        "class_prior": ones if prior_up else -ones,
    }


def class_prior(train_labels: np.ndarray) -> float:
    """P(up) in training: the share of class 0 ("up") among the training labels; 0.5 where
    there is none (a universe's symbol listed after the training range)."""
    return float((np.asarray(train_labels) == 0).mean()) if len(train_labels) else 0.5


def label_ahead(close: np.ndarray, filled: np.ndarray, horizon: int = 1):
    """(label of the decision at t, whether it is scored): the class H candles ahead
    (core.data.features.horizon_labels), scored where the candle t+H exists and is real."""
    real = np.zeros(len(close), dtype=bool)
    real[:-horizon] = ~np.asarray(filled, dtype=bool)[horizon:]
    return horizon_labels(close, horizon)[0], real


def run_backtest(
    grid: pd.DataFrame,
    p_up: np.ndarray,
    seq_len: int,
    split: str,
    cfg: BacktestConfig,
    timeframe: str,
    test_from: pd.Timestamp | None = None,
    prior_up: float | None = None,
    params: dict[str, PolicyParams] | None = None,
    fitted_baselines: dict[str, np.ndarray] | None = None,
    horizon: int = 1,
    schedule: Schedule = Schedule(),
):
    """Backtest both policies and the baselines. `p_up` is per bar (NaN where no decision).
    `horizon`: the candles ahead the labels read (classifier scores, one-liners at the same
    horizon, bootstrap blocks at least that long); `schedule` when the book is re-decided
    (core.evaluation.schedule), the baselines traded on it too.
    `test_from` starts the test range; `prior_up` is the class prior's P(up) when the candles
    have no training range (later candles given with --data): the run's own training prior.
    `params` {policy: PolicyParams} (default: the workshop's policies), each range from flat.
    `fitted_baselines` {name: P(up) per bar} of baselines fitted by the caller (the calibrated
    mean reversion) are scored beside the model in each range's classifier block.
    Returns (positions frame, metrics dict {range: {policy|baseline: {...}}})."""
    params = params or {}
    close = grid["close"].to_numpy()
    filled = grid["filled"].to_numpy() if "filled" in grid else np.zeros(len(grid), bool)
    decide = trade_mask(filled, seq_len)
    label_next, real = label_ahead(close, filled, horizon)
    scored = decide & real  # a filled bar H ahead is no direction to score
    cfg = blocks_for(cfg, horizon)
    per_year = metrics.bars_per_year(timeframe_delta(timeframe) / pd.Timedelta(1, "min"))
    parts = segments(grid.index, decide, split, cfg, test_from)
    train_up = label_next[parts["train"] & scored]
    prior_p = class_prior(train_up)
    if not len(train_up) and prior_up is not None:
        prior_p = float(prior_up)
    base = baseline_positions(close, prior_p >= 0.5, horizon)
    frames, report = [], {}
    for name, part in parts.items():
        if not (part & decide).any():
            continue
        rows = {"time": grid.index[part], "close": close[part]}
        rows["p_up"] = p_up[part]
        rows["p_down"] = 1.0 - p_up[part]
        strategies, held = scheduled_books(p_up, base, decide & part, params, schedule,
                                           grid.index, timeframe)  # fmt: skip
        if not schedule.is_default:
            at = schedule.decision_candles(grid.index, timeframe)[part] & (decide & part)[part]
            rows["decision"] = at
        books = {}
        for key, positions in {**strategies, **held}.items():
            books[key] = f, r, factors = simulate(close, positions, decide, part, cfg.cost)
            if key in strategies:
                rows[f"position_{key}"] = f
            if key in (*strategies, "buy_and_hold", "mean_reversion"):
                rows[f"wealth_{key}"] = np.cumprod(factors)  # at the next close
        section = strategy_statistics(books, int((part & decide).sum()), per_year, cfg)
        for key in strategies:
            section[key]["policy_params"] = (params.get(key) or PolicyParams()).to_dict()
        last_up = last_move_up(close, horizon)
        section["classifier"] = classifier_section(p_up, label_next, last_up, part & scored,
                                                   prior_p, cfg, horizon)  # fmt: skip
        for key, baseline in (fitted_baselines or {}).items():
            at = part & scored
            section["classifier"][key] = metrics.classifier(baseline[at], label_next[at])
        report[name] = section
        frame = pd.DataFrame(rows)
        frame.insert(1, "range", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), report


def scheduled_books(p_up, base: dict, decide, params: dict, schedule: Schedule, times, timeframe):
    """({policy: positions}, {baseline: positions}) held at every bar, each decided on the
    schedule's candles among `decide` (sleeves: the mean of the sleeves' books) and held in
    between; at the default schedule held_positions and hold over `decide`, as always."""
    p = np.nan_to_num(p_up, nan=0.5)

    def book(decided):
        return schedule.book(decided, decide, times, timeframe)

    strategies = {
        name: book(lambda m, name=name: held_positions(name, p, m, params.get(name)))
        for name in POLICIES
    }
    return strategies, {key: book(lambda m, v=v: hold(v, m)) for key, v in base.items()}


def strategy_statistics(books: dict, decisions: int, per_year: float, cfg: BacktestConfig):
    """{strategy: statistics} of one range from {strategy: (positions, next returns, growth
    factors)} over its bars (positions and returns (bars,) for one symbol, (bars, symbols) for a
    portfolio): metrics.performance, the decisions, PSR(0) and the Sharpe's bootstrap interval,
    the strategies bootstrapped together over the same resampled bars."""
    section = {}
    for key, (f, r, factors) in books.items():
        section[key] = metrics.performance(factors, f, r, per_year)
        section[key]["decisions"] = decisions
        psr = significance.psr(factors - 1.0)  # PSR(0), per-bar returns
        # no dispersion (a strategy that never trades): no PSR, null in JSON rather than NaN
        section[key]["psr"] = psr if np.isfinite(psr) else None
    excess = [factors - 1.0 for _, _, factors in books.values()]
    cis = metrics.bootstrap_cis(excess, metrics.sharpe_rows(per_year), cfg.bootstrap_reps,
                                cfg.bootstrap_block)  # fmt: skip
    for key, ci in zip(books, cis, strict=True):
        section[key]["sharpe_ci95"] = ci
    return section


def classifier_section(p_up, label_next, last_up, scored, prior_p, cfg, horizon: int = 1) -> dict:
    """The model's direction scores beside the baselines'. The class prior predicts the training
    frequency of up; the rule baselines predict hard 0/1, so they have no log loss. last_up per
    bar: 1.0 where the last H candles' label is up (a universe's relative target: its relative
    move), the last direction (momentum at H > 1) baseline; mean reversion bets against it."""
    y = label_next[scored]
    last_up = np.asarray(last_up, dtype=np.float64)[scored]
    model_right = (p_up[scored] >= 0.5) == (y == 0)
    out = {
        "model": metrics.classifier(p_up[scored], y),
        "class_prior": {**metrics.classifier(np.full(len(y), prior_p), y), "p_up": prior_p},
        "always_up": metrics.classifier(np.ones(len(y)), y, hard=True),
        follow_name(horizon): metrics.classifier(last_up, y, hard=True),
        "mean_reversion": metrics.classifier(1 - last_up, y, hard=True),
        "scored": int(scored.sum()),
    }
    diffs = {}
    for other, right in (
        ("prior", (y == 0) == (prior_p >= 0.5)),
        ("mean_reversion", (last_up == 0) == (y == 0)),
    ):
        diff = model_right.astype(np.float64) - right.astype(np.float64)
        out[f"accuracy_minus_{other}"] = float(diff.mean()) if len(diff) else 0.0
        out[f"accuracy_minus_{other}_ci95"] = None  # filled below, in this place
        diffs[f"accuracy_minus_{other}_ci95"] = diff
    cis = metrics.bootstrap_cis(list(diffs.values()), metrics.mean_rows, cfg.bootstrap_reps,
                                cfg.bootstrap_block)  # fmt: skip
    out.update(zip(diffs, cis, strict=True))
    return out


def scored_predictions(
    grid: pd.DataFrame, p_up: np.ndarray, seq_len: int, parts: dict, horizon: int = 1
) -> dict:
    """{range: (p_up, up)} at the decisions whose candle H ahead is real, as the classifier
    block scores them: the reliability figure's input."""
    close = grid["close"].to_numpy()
    filled = grid["filled"].to_numpy() if "filled" in grid else np.zeros(len(grid), bool)
    labels, real = label_ahead(close, filled, horizon)
    scored = trade_mask(filled, seq_len) & real
    up_next = labels == 0
    return {
        name: (p_up[part & scored], up_next[part & scored])
        for name, part in parts.items()
        if (part & scored).any()
    }
