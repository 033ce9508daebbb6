"""The paper-trading engine: at each candle close, read the closed candles, predict, decide both
policies' positions, account their wealth (SPEC §2) and journal it. Live and replay differ only
in the clock and the candle source plugged in (SPEC §8).

Accounting: the journal row of candle t holds the wealth realised at t's close,
W_t = W_{t-1} (1 + f_{t-1} R_t - c |f_{t-1} - f_{t-2}|), and the position f_t decided there.
Candles between the last row and t that were not decided (the service was down, or the exchange
had no candle) are written as 'held' rows: the last position carried through each of them and
earning its return from the closes, as the backtest holds a position through a filled bar.
A model of declared features reads candle t of every symbol its spec names (live/market_inputs.py)
and decides only when each of them is closed and present.
"""

import functools
import json
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import pandas as pd

from fc.core.data.candles import timeframe_ms, to_grid
from fc.core.errors import FcError
from fc.core.evaluation.policies import POLICIES, PolicyParams, next_position
from fc.core.evaluation.schedule import Schedule
from fc.live.clock import Clock
from fc.live.journal import Journal, Row
from fc.live.logs import LOGGER, log_event
from fc.live.market_inputs import bars_needed, decision_window, fetch_all, model_spec
from fc.live.metrics import NoMetrics
from fc.live.sleeves import Sleeves

MAX_FETCH = 5000  # candles asked at most; a longer downtime is bridged by one held step


class CandleSource(Protocol):
    def closed_candles(self, symbol: str, timeframe: str, count: int, now_ms: int): ...


class Predictor(Protocol):
    seq_len: int

    def p_up(self, window: np.ndarray) -> float: ...


_timeframe_ms = functools.lru_cache(timeframe_ms)  # read a few times a symbol each tick


@dataclass(frozen=True)
class PaperConfig:
    """Every choice behind a paper-trading run."""

    symbol: str
    timeframe: str
    fee_bps: float = 0.0  # c of the wealth formula, in basis points per unit of position change
    capital: float = 10_000.0
    delay_s: float = 5.0  # the scheduler fires this long after each close
    window_s: float | None = None  # decide within this of the close, else skip: min(tf/2, 5 min)
    backoff_s: float = 2.0  # first wait between fetch attempts, doubled up to 30 s
    model: str = ""  # the model file, journalled with each row
    policy_params: dict = field(default_factory=dict)  # {policy: PolicyParams}; absent: defaults
    model_sha256: str = ""  # and the sha256 of its bytes
    schedule: Schedule = Schedule()  # the graph's: decide on its decision candles, hold between
    deadline_s: float | None = None  # a universe: wait this long after the close for a symbol's
    # candle, then decide the others without it (None: a tenth of the candle)

    def __post_init__(self):
        if not self.fee_bps >= 0:
            raise FcError(f"--fee-bps {self.fee_bps} must be >= 0, e.g. 5 for 0.05 %")
        if not self.capital > 0:
            raise FcError(f"--capital {self.capital} must be positive, e.g. 10000")
        if not 0 <= self.delay_s < self.timeframe_ms / 1000:
            raise FcError(f"--delay {self.delay_s} must be >= 0 and less than a {self.timeframe}")
        if self.window_s is not None and not self.window_s > self.delay_s:
            raise FcError(f"--window {self.window_s} must be longer than --delay {self.delay_s}")
        if self.deadline_s is not None and not 0 <= self.deadline_s < self.timeframe_ms / 1000:
            raise FcError(
                f"--deadline {self.deadline_s} must be >= 0 seconds and less than "
                f"a {self.timeframe} candle, e.g. {self.timeframe_ms // 10_000}"
            )

    @property
    def cost(self) -> float:
        return self.fee_bps / 1e4

    def params(self, policy: str) -> PolicyParams:
        return self.policy_params.get(policy) or PolicyParams()

    @property
    def timeframe_ms(self) -> int:
        return _timeframe_ms(self.timeframe)

    @property
    def decision_window_ms(self) -> int:
        if self.window_s is not None:
            return int(self.window_s * 1000)
        return min(self.timeframe_ms // 2, 300_000)

    @property
    def deadline_ms(self) -> int:
        """How long after a candle's close a universe service waits for a symbol's candle."""
        if self.deadline_s is not None:
            return int(self.deadline_s * 1000)
        return self.timeframe_ms // 10


@dataclass
class Decision:
    candle_ms: int
    close: float
    p_up: float
    positions: dict = field(default_factory=dict)
    wealth: dict = field(default_factory=dict)
    held: int = 0  # candles carried before this decision (downtime, outages)


def iso(ms: int) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


class PaperService:
    """Decides at candle closes; `decide_at(now_ms)` is the whole job the scheduler runs."""

    def __init__(
        self,
        config: PaperConfig,
        source: CandleSource,
        predictor: Predictor,
        journal: Journal,
        clock: Clock,
        metrics=None,
    ):
        self.config, self.source, self.predictor = config, source, predictor
        self.journal, self.clock = journal, clock
        self.metrics = metrics or NoMetrics()  # live/metrics.py; off unless --metrics-port
        self.seq_len = int(predictor.seq_len)
        self.spec = model_spec(predictor)  # None: the workshop's price_change of one symbol
        self.symbols = [config.symbol] if self.spec is None else list(self.spec.symbols)
        self.bars = bars_needed(self.spec, self.seq_len)  # candles a decision reads
        self.state: dict[str, Row | None] = {}
        self.restore()
        if not config.schedule.is_default:  # what check_journal_schedule compares a model with
            from fc.live.model_file import schedule_key

            key = schedule_key(config.symbol, config.timeframe)
            journal.set_meta(key, json.dumps(config.schedule.to_dict(), sort_keys=True))

    def restore(self) -> None:
        """Positions, wealth and last candle of each policy from the journal."""
        c = self.config
        self.state = {p: self.journal.last(c.symbol, c.timeframe, p) for p in POLICIES}
        self.changed = {p: self.journal.last_change(c.symbol, c.timeframe, p) for p in POLICIES}
        self.sleeves = {p: self._restored_sleeves(p) for p in POLICIES}
        self.metrics.restored([r for r in self.state.values() if r is not None])

    def _restored_sleeves(self, policy: str):
        """With sleeves: the policy's Sleeves rebuilt from the journal's decisions (the p_up
        journalled at each) by the very rule that made them; None for a cadence."""
        c = self.config
        if c.schedule.sleeves == 1:
            return None
        rows = self.journal.decisions(c.symbol, c.timeframe)
        decided = rows.loc[(rows.policy == policy) & (rows.kind == "decision"),
                           ["candle_ms", "p_up"]].itertuples(index=False)  # fmt: skip
        return Sleeves(c.schedule.sleeves, policy, c.params(policy), c.timeframe_ms).replay(decided)

    @property
    def journal_symbol(self) -> str:
        """The symbol whose row at t says that candle t was journalled."""
        return self.config.symbol

    @property
    def last_candle_ms(self) -> int | None:
        rows = [r for r in self.state.values() if r is not None]
        return min(r.candle_ms for r in rows) if len(rows) == len(POLICIES) else None

    def last_closed(self, now_ms: int) -> int:
        """Open time of the newest candle closed at now_ms."""
        tf = self.config.timeframe_ms
        return (int(now_ms) // tf) * tf - tf

    def decide_at(self, now_ms: int | None = None) -> Decision | None:
        """Decide at the close of the newest closed candle, once: None when it was decided
        already, is too late to decide, or its candles could not be had within the window."""
        c = self.config
        now = self.clock.now_ms() if now_ms is None else int(now_ms)
        t = self.last_closed(now)
        last = self.last_candle_ms
        # the state mirrors the journal; ask it only when t may be there already
        if last is not None and t <= last and self.journal.has(self.journal_symbol, c.timeframe, t):
            log_event(logging.INFO, "duplicate", f"candle {iso(t)} already decided", candle=iso(t))
            return None
        if last is not None and t < last:
            self._skip(t, "behind", f"the journal already reaches {iso(last)}")
            return None
        deadline = t + c.timeframe_ms + c.decision_window_ms
        if now > deadline:
            self._skip(t, "late", f"{(now - t - c.timeframe_ms) / 1000:.0f} s after the close")
            return None
        inputs = self._fetch(t, deadline)
        if inputs is None:
            return None
        return self._decide(t, *inputs, now)

    def _fetch(self, t: int, deadline: int) -> tuple[pd.DataFrame, np.ndarray] | None:
        """(the decided symbol's closed candles up to t on the regular grid, the model's window),
        retried with back-off until the deadline while the exchange fails or has not closed t
        for some symbol; a symbol that answered keeps its candles between attempts."""
        c = self.config
        last = self.last_candle_ms
        missed = 0 if last is None else max(0, (t - last) // c.timeframe_ms - 1)
        count = min(self.bars + missed, MAX_FETCH)
        wait, attempt, reason, frames = c.backoff_s, 0, "", {}
        while True:
            attempt += 1
            missing = [s for s in self.symbols if s not in frames]
            now = self.clock.now_ms()
            answers = fetch_all(self.source, missing, c.timeframe, count, now,
                                lambda frame: self._check(frame, t))  # fmt: skip
            reasons = []
            for symbol, (frame, why) in zip(missing, answers, strict=True):
                if frame is not None:
                    frames[symbol] = frame
                else:  # one symbol: the reason as it always read; several: whose it is
                    reasons.append(why if len(self.symbols) == 1 else f"{symbol}: {why}")
            if not reasons:
                grid, window, why = self._inputs(frames)
                if grid is not None:
                    return grid, window
                reasons, frames = [why], {}
            reason = "; ".join(reasons)
            log_event(
                logging.WARNING,
                "retry",
                f"candle {iso(t)}: attempt {attempt} failed ({reason})",
                candle=iso(t),
                attempt=attempt,
                reason=reason,
            )
            if self.clock.stopping:
                self._skip(t, "stopping", reason)
                return None
            if self.clock.now_ms() + wait * 1000 > deadline:
                self._skip(t, "unavailable", f"{attempt} attempts; last: {reason}")
                return None
            self.clock.sleep(wait)
            wait = min(wait * 2, 30.0)

    def _inputs(self, frames: dict):
        """(grid, window, "") of the decision from every symbol's checked frame, or (None, None,
        why): live/market_inputs.decision_window (a universe service decides on all frames)."""
        c = self.config
        return decision_window(self.spec, frames, c.symbol, c.timeframe, self.seq_len)

    def _check(self, frame: pd.DataFrame, t: int) -> tuple[pd.DataFrame | None, str]:
        if frame is None or len(frame) == 0:
            return None, "no candles"
        times = frame.index.as_unit("ns").asi8 // 1_000_000
        if times[-1] > t:  # a source must not send it, but never decide on a later candle
            keep = int(np.searchsorted(times, t, side="right"))
            frame, times = frame.iloc[:keep], times[:keep]
        if len(times) == 0 or times[-1] < t:
            newest = iso(times[-1]) if len(times) else "none"
            return None, f"candle not closed yet on the exchange (newest {newest})"
        if not np.all(np.diff(times) == self.config.timeframe_ms):
            frame = to_grid(frame, self.config.timeframe)  # an outage inside: filled bars
        if len(frame) < self.bars:
            return None, f"only {len(frame)} candles, the model reads {self.bars}"
        closes = frame["close"].to_numpy(dtype=np.float64)
        if not (np.all(np.isfinite(closes)) and np.all(closes > 0)):
            return None, "a close is not a positive number"
        return frame, ""

    def is_decision_candle(self, t: int) -> bool:
        """Whether the schedule re-decides at candle t (open time, ms): its count of candles
        since the epoch is a multiple of the cadence, so a restart decides on the same ones."""
        schedule = self.config.schedule
        return schedule.sleeves > 1 or (t // self.config.timeframe_ms) % schedule.cadence == 0

    def _decide(self, t: int, grid: pd.DataFrame, window: np.ndarray, now: int) -> Decision | None:
        c = self.config
        closes = grid["close"].to_numpy(dtype=np.float64)
        times = grid.index.as_unit("ns").asi8 // 1_000_000
        decides = self.is_decision_candle(t)
        # between decision candles the book is held: no prediction, a held row
        p_up = float(self.predictor.p_up(window)) if decides else math.nan
        decision = Decision(candle_ms=t, close=float(closes[-1]), p_up=p_up)
        kind = "decision" if decides else "held"
        rows = []
        for policy in POLICIES:
            prev = self.state[policy]
            held_f = 0.0 if prev is None else prev.position
            if not decides:
                f = held_f
            elif self.sleeves.get(policy) is not None:
                f = self.sleeves[policy].step(p_up, t)
            else:
                f = self._position(policy, p_up, prev, t)
            if prev is None:
                wealth, trade = c.capital, f
            else:
                held, wealth = self._carry(prev, times, closes)
                rows += held
                decision.held = len(held)
                step = 1.0 + prev.position * (closes[-1] / held_close(prev, held) - 1.0)
                wealth = wealth * (step - c.cost * abs(held_trade(prev, held)))
                trade = f - prev.position
            rows.append(
                Row(c.symbol, c.timeframe, policy, t, kind, now, decision.close,
                    p_up if decides else None, f, trade, wealth, c.model, c.model_sha256,
                    policy_params=self._params_json(policy))
            )  # fmt: skip
            decision.positions[policy], decision.wealth[policy] = f, wealth
        if self.journal.record(rows) == 0:
            log_event(logging.INFO, "duplicate", f"candle {iso(t)} journalled by another job")
            self.restore()
            return None
        self.metrics.journalled(rows, t + c.timeframe_ms, self.clock.now_ms())
        self.state = {r.policy: r for r in rows if r.candle_ms == t}
        self.changed.update({r.policy: t for r in self.state.values() if r.trade != 0})
        self._log(decision)
        return decision

    def _position(self, policy: str, p_up: float, prev: Row | None, t: int, key=None) -> float:
        """core.policies.next_position from the position held and the bars since it changed
        (counted on the candle grid, so downtime counts as the backtest counts filled bars);
        `key` of self.changed: the policy (a universe service: (symbol, policy))."""
        held = 0.0 if prev is None else prev.position
        since = self.changed.get(policy if key is None else key)
        bars = math.inf if since is None else (t - since) // self.config.timeframe_ms
        return float(next_position(policy, p_up, held, bars, self.config.params(policy)))

    def _params_json(self, policy: str) -> str:
        return json.dumps(self.config.params(policy).to_dict(), sort_keys=True)

    def _carry(self, prev: Row, times: np.ndarray, closes: np.ndarray):
        """Held rows for the candles after prev (of its symbol) and before the last one; and the
        wealth then."""
        between = np.flatnonzero((times > prev.candle_ms) & (times < times[-1]))
        if not len(between):  # the usual candle: nothing held before it
            return [], prev.wealth
        c = replace(self.config, symbol=prev.symbol)
        if len(between) and times[between[0]] != prev.candle_ms + c.timeframe_ms:
            log_event(
                logging.WARNING,
                "gap",
                f"downtime longer than the candles fetched: {iso(prev.candle_ms)} to "
                f"{iso(times[between[0]])} is bridged by one held step",
            )
        rows, wealth, close, trade = [], prev.wealth, prev.close, prev.trade
        for i in between:
            step = 1.0 + prev.position * (closes[i] / close - 1.0)
            wealth = wealth * (step - c.cost * abs(trade))
            close, trade = float(closes[i]), 0.0
            rows.append(
                Row(c.symbol, c.timeframe, prev.policy, int(times[i]), "held",
                    self.clock.now_ms(), close, None, prev.position, 0.0, wealth, c.model,
                    c.model_sha256, policy_params=self._params_json(prev.policy))
            )  # fmt: skip
        return rows, wealth

    def _skip(self, t: int, reason: str, detail: str) -> None:
        log_event(
            logging.WARNING,
            "skip",
            f"candle {iso(t)} not decided: {reason} ({detail})",
            candle=iso(t),
            reason=reason,
            detail=detail,
        )
        self.journal.event(self.clock.now_ms(), "skip", candle=iso(t), reason=reason, detail=detail)

    def _log(self, d: Decision) -> None:
        if not logging.getLogger(LOGGER).isEnabledFor(logging.INFO):
            return  # replay benchmarks: don't format 17,520 lines nobody reads
        parts = " ".join(
            f"{p}: position {d.positions[p]:+.4f} wealth {d.wealth[p]:.2f}" for p in POLICIES
        )
        held = f" (held {d.held} candle(s) first)" if d.held else ""
        log_event(
            logging.INFO,
            "decision",
            f"decision {iso(d.candle_ms)} close {d.close:.2f} p_up {d.p_up:.4f} {parts}{held}",
            candle=iso(d.candle_ms),
            close=d.close,
            p_up=d.p_up,
            positions=d.positions,
            wealth=d.wealth,
            held=d.held,
        )


def held_close(prev: Row, held: list[Row]) -> float:
    """The close the decision's step starts from: the last held candle's, else prev's."""
    return held[-1].close if held else prev.close


def held_trade(prev: Row, held: list[Row]) -> float:
    """The trade still to pay in the decision's step: prev's own, unless a held step paid it."""
    return 0.0 if held else prev.trade
