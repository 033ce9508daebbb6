"""The paper-trading engine of a pooled universe model: one service, every symbol at each close.

It is live/service.py's PaperService with another decision, under the backtest's presence rule
(core.data.presence): every symbol's newest closed candles are fetched concurrently, each symbol
asked only for the candles it lacks (a cache of its closes is kept between ticks). A symbol is
eligible at candle t when its candle t has come by the deadline (`--deadline` after the close)
and it has its warm-up of its own candles (seq_len) before t. Eligible symbols are decided on
time, p_up of them all from one onnxruntime call; a member (a symbol that has been eligible and
is still listed) whose candle has not come is journalled as an absence (`missing`) with held rows
and keeps its weight; a market the exchange no longer lists is closed once, at its last price,
and journalled as an absence (`delisted`); a freshly listed coin enters when first eligible.
The journal gets one row per (symbol, policy, candle) of each member, as a one-symbol service
writes them, plus the portfolio's rows; (symbol, candle) is written at most once.

Portfolio rows: symbol `portfolio`, policy = each strategy of core.evaluation.portfolio
(long_short, equal_weight_discrete, equal_weight_proportional), p_up NULL, close 0.0 (a book has
no price), position = the gross exposure sum_s |w_s|, trade = the turnover sum_s |Δw_s|, wealth
W_t = W_{t-1} (1 + sum_s w_{s,t-1} R_{s,t} - c sum_s |w_{s,t-1} - w_{s,t-2}|) realised at t's
close (the journal's convention), and policy_params the JSON {"params": …, "weights": {symbol:
w}, "changed": {symbol: candle_ms}} (changed: where the long-short last moved the symbol, for
min_hold). Weights come from core.evaluation.portfolio (long_short_row; a symbol not eligible
holds its weight, as present_weights holds it): the backtest's definitions; an equal-weight
book holds each member's position / the member count.
"""

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from fc.core.data.features import price_change
from fc.core.evaluation.policies import POLICIES, book_moves
from fc.core.evaluation.portfolio import STRATEGIES, long_short_row
from fc.live.journal import Absence, Row
from fc.live.logs import log_event
from fc.live.market_inputs import fetch_all
from fc.live.service import MAX_FETCH, Decision, PaperService, held_close, held_trade, iso
from fc.live.sleeves import BookSleeves, Sleeves

PORTFOLIO = "portfolio"  # the journal's symbol of the portfolio's rows
EQUAL_WEIGHT = {"equal_weight_discrete": "discrete", "equal_weight_proportional": "proportional"}
EMPTY = np.zeros(0, dtype=np.int64)


@dataclass
class Tick:
    """What the fetch of candle t found: the symbols whose candle t came by the deadline, why
    each other one's did not, and the markets the exchange no longer lists."""

    real: set
    reasons: dict = field(default_factory=dict)
    unlisted: set = field(default_factory=set)


class UniverseService(PaperService):
    """Decides every symbol of a UniversePredictor (live/universe_model.py) at candle closes."""

    def __init__(self, config, source, predictor, journal, clock, metrics=None):
        self.universe = list(predictor.symbols)
        self.tf = config.timeframe_ms
        self.cache = {}  # {symbol: (open times ms, closes)}: its real candles, oldest first
        self.first_seen = {}  # {symbol: its first candle the service has seen}
        self.answered = set()  # symbols the source has answered (with candles or none yet)
        self.unlisted = set()  # markets not listed at the last look (not waited for)
        super().__init__(config, source, predictor, journal, clock, metrics)
        self.symbols = self.universe
        self.warm_up = self.bars - 1  # candles of its own a symbol needs before t
        self.pool = ThreadPoolExecutor(max_workers=min(len(self.universe), 64),
                                       thread_name_prefix="fc-fetch")  # fmt: skip
        self.params_json = {p: PaperService._params_json(self, p) for p in POLICIES}

    def _params_json(self, policy: str) -> str:
        return self.params_json[policy]  # the same text on every row: made once

    @property
    def journal_symbol(self) -> str:
        return PORTFOLIO  # written at every candle journalled, whoever was absent

    def restore(self) -> None:
        """Every (symbol, policy)'s last row, and the portfolio's, from the journal; the members
        (symbols with rows) and the markets closed as delisted."""
        c, j = self.config, self.journal
        self.state = {(s, p): j.last(s, c.timeframe, p) for s in self.universe for p in POLICIES}
        self.state |= {(PORTFOLIO, q): j.last(PORTFOLIO, c.timeframe, q) for q in STRATEGIES}
        self.changed = {
            (s, p): j.last_change(s, c.timeframe, p) for s in self.universe for p in POLICIES
        }
        self.entered = j.symbols(c.timeframe) & set(self.universe)
        absent = j.absences(c.timeframe)
        self.gone = set(absent[absent.reason == "delisted"].symbol) & set(self.universe)
        self.book_sleeves = None
        if c.schedule.sleeves > 1:
            self._rebuild_sleeves()
        self.metrics.restored([r for r in self.state.values() if r is not None])

    def _rebuild_sleeves(self) -> None:
        """With sleeves: every symbol's and every book's sleeve states, rebuilt by replaying
        the journal's candles through _sleeve_candle: at each, the symbols decided there (a
        finite p_up) are the eligible ones, those with a row the members, the markets
        journalled delisted there the closing ones."""
        c = self.config
        self.symbol_sleeves = {(s, p): Sleeves(c.schedule.sleeves, p, c.params(p), self.tf)
                               for s in self.universe for p in POLICIES}  # fmt: skip
        self.book_sleeves = BookSleeves(c.schedule.sleeves, len(self.universe),
                                        self.predictor.portfolio_params, self.tf,
                                        STRATEGIES)  # fmt: skip
        rows = self.journal.decisions(timeframe=c.timeframe)
        mine = rows[(rows.policy == POLICIES[0]) & rows.symbol.isin(self.universe)]
        table = mine.pivot(index="candle_ms", columns="symbol", values="p_up")
        p_up = table.reindex(columns=self.universe).to_numpy(dtype=np.float64)
        member = mine.assign(one=1).pivot(index="candle_ms", columns="symbol", values="one")
        member = member.reindex(columns=self.universe).notna().to_numpy()
        absent = self.journal.absences(c.timeframe)
        gone = absent[absent.reason == "delisted"]
        for i, t in enumerate(table.index.tolist()):
            closing = set(gone.symbol[gone.candle_ms == t])
            present = (np.isfinite(p_up[i]).tolist(), member[i].tolist(),
                       [s in closing for s in self.universe])  # fmt: skip
            self._sleeve_candle(int(t), p_up[i], present)

    def _sleeve_candle(self, t: int, p_up, present: tuple) -> tuple[dict, dict]:
        """({(symbol, policy): book position}, {strategy: weights}) at candle t with sleeves:
        the sleeve of t re-decides (each eligible symbol by next_position, the books by
        BookSleeves), every book is the mean of its sleeves' (core.evaluation.schedule).
        present: (eligible, member, closing) a symbol, as _decide finds them."""
        eligible = present[0]
        positions = {}
        for i, symbol in enumerate(self.universe):
            for policy in POLICIES:
                sleeves = self.symbol_sleeves[symbol, policy]
                positions[symbol, policy] = (sleeves.step(float(p_up[i]), t) if eligible[i]
                                             else sleeves.book())  # fmt: skip
        j = self.book_sleeves.sleeve(t)
        held = {strategy: [self.symbol_sleeves[s, policy].positions[j] for s in self.universe]
                for strategy, policy in EQUAL_WEIGHT.items()}  # fmt: skip
        return positions, self.book_sleeves.step(t, p_up, *present, held)

    @property
    def last_candle_ms(self) -> int | None:
        rows = [self.state[PORTFOLIO, q] for q in STRATEGIES]
        return None if None in rows else min(r.candle_ms for r in rows)

    # -- fetching: each symbol the candles it lacks, until the deadline ---------------------

    def _fetch(self, t: int, deadline: int):
        """(Tick,) of candle t: every listed symbol asked concurrently for the candles it lacks,
        the ones still without candle t asked again with back-off until the decision deadline
        (t's close + --deadline; a symbol not eligible at t anyway is asked once). None (a
        skip, as a one-symbol service skips) when no symbol has candle t by the window's end."""
        c = self.config
        due = min(t + c.timeframe_ms + c.deadline_ms, deadline)
        wanted = [s for s in self.universe if s not in self.gone]
        wait, attempt, reasons = c.backoff_s, 0, {}
        while True:
            attempt += 1
            missing = [s for s in wanted if not self._has(s, t)]
            if missing:
                counts = {s: self._lacking(s, t) for s in missing}
                answers = fetch_all(self.source, missing, c.timeframe, counts,
                                    self.clock.now_ms(), lambda frame: (frame, ""),
                                    self.pool)  # fmt: skip
                for symbol, (frame, why) in zip(missing, answers, strict=True):
                    if frame is not None:
                        self.answered.add(symbol)
                        self._merge(symbol, frame, t)
                    if not self._has(symbol, t):  # the reason's text only where it is read
                        reasons[symbol] = why or self._stale(symbol)
            reasons = {s: why for s, why in reasons.items() if not self._has(s, t)}
            waiting = [s for s in reasons if self._expected(s, t)]
            some = len(reasons) < len(wanted)  # some symbol has candle t
            if not waiting and some:
                break
            reason = "; ".join(f"{s}: {reasons[s]}" for s in waiting or reasons) or "no symbols"
            log_event(logging.WARNING, "retry", f"candle {iso(t)}: attempt {attempt} failed "
                      f"({reason})", candle=iso(t), attempt=attempt, reason=reason)  # fmt: skip
            if self.clock.stopping:
                self._skip(t, "stopping", reason)
                return None
            if self.clock.now_ms() + wait * 1000 > (due if some else deadline):
                if some:
                    break
                self._skip(t, "unavailable", f"{attempt} attempts; last: {reason}")
                return None
            self.clock.sleep(wait)
            wait = min(wait * 2, 30.0)
        real = {s for s in wanted if self._has(s, t)}
        self.unlisted = self._unlisted(wanted)
        return (Tick(real, reasons, self.unlisted),)

    def _unlisted(self, wanted: list) -> set:
        """The markets among `wanted` the source says are no longer listed (a source without a
        market list: none)."""
        ask = getattr(self.source, "listed", None)
        if ask is None:
            return set()
        listed = ask(wanted, self.clock.now_ms())
        return {s for s in wanted if not listed.get(s, True)}

    def _has(self, symbol: str, t: int) -> bool:
        opens = self.cache.get(symbol, (EMPTY, EMPTY))[0]
        i = int(np.searchsorted(opens, t))
        return i < len(opens) and opens[i] == t

    def _lacking(self, symbol: str, t: int) -> int:
        """Candles to ask of the symbol at candle t: from its newest cached one to t (usually
        one), or a full window and the candles missed since the last decision when none."""
        tf = self.tf
        opens = self.cache.get(symbol, (EMPTY, EMPTY))[0]
        if len(opens):
            return int(min(max(1, (t - opens[-1]) // tf), MAX_FETCH))
        last = self.last_candle_ms
        missed = 0 if last is None else max(0, (t - last) // tf - 1)
        return min(self.bars + missed, MAX_FETCH)

    def _merge(self, symbol: str, frame, t: int) -> None:
        """The answer's candles up to t, with sound closes, into the symbol's cache (kept to
        the longest of a window and what was just asked)."""
        index = frame.index  # as_unit copies even when the unit is ns already: 10 us a symbol
        opens = (index.asi8 if index.unit == "ns" else index.as_unit("ns").asi8) // 1_000_000
        closes = close_column(frame)
        keep = (opens <= t) & np.isfinite(closes) & (closes > 0)
        opens, closes = opens[keep], closes[keep]
        if not len(opens):
            return
        old_opens, old_closes = self.cache.get(symbol, (EMPTY, EMPTY))
        size = max(self.bars + 1, len(opens) + 1)
        if len(old_opens) and opens[0] > old_opens[-1]:  # the usual tick: newer candles only
            opens = np.concatenate([old_opens, opens])
            closes = np.concatenate([old_closes, closes])
        else:  # a first answer, or one that fills in older candles too
            new = ~np.isin(opens, old_opens)
            opens = np.concatenate([old_opens, opens[new]])
            closes = np.concatenate([old_closes, closes[new]])
            order = np.argsort(opens, kind="stable")
            opens, closes = opens[order], closes[order]
        self.cache[symbol] = (opens[-size:], closes[-size:])
        first = int(opens[0])
        self.first_seen[symbol] = min(self.first_seen.get(symbol, first), first)

    def _stale(self, symbol: str) -> str:
        opens = self.cache.get(symbol, (EMPTY, EMPTY))[0]
        newest = iso(int(opens[-1])) if len(opens) else "none"
        return f"candle not closed yet on the exchange (newest {newest})"

    def _expected(self, symbol: str, t: int) -> bool:
        """Whether the symbol may be eligible at t if its candle comes: a member, a symbol whose
        warm-up ends by t, or one never answered yet (an error is no answer). A coin warming up,
        or answered without candles (not trading yet), or not listed, is not waited for."""
        if self._member(symbol, t) or self._warm(symbol, t):
            return True
        return symbol not in self.answered and symbol not in self.unlisted

    def _member(self, symbol: str, t: int) -> bool:
        """Whether the symbol has entered by t: rows in the journal, or a real candle cached
        after its own warm-up (core.data.presence.members: from its first eligible candle)."""
        if symbol in self.entered:
            return True
        first = self.first_seen.get(symbol)
        if first is None:
            return False
        opens = self.cache[symbol][0]
        return bool(((opens >= first + self.warm_up * self.tf)
                     & (opens <= t)).any())  # fmt: skip

    def _closes(self, symbol: str, times: np.ndarray, base: float | None = None) -> np.ndarray:
        """The symbol's closes at `times` (a regular grid): its candle's close where it has one,
        else the last one before carried forward (core.data.candles.to_grid's filled bar);
        NaN before its first. base: the close the journal holds at times[0], carried from."""
        opens, closes = self.cache.get(symbol, (EMPTY, EMPTY))
        if not len(opens):
            opens, closes = np.array([-1], dtype=np.int64), np.array([np.nan])
        i = np.searchsorted(opens, times, side="right") - 1
        at = np.maximum(i, 0)
        if base is None:
            return np.where(i >= 0, closes[at], np.nan)
        values = np.where((i >= 0) & (opens[at] == times), closes[at], np.nan)
        values[0] = base
        filled = np.maximum.accumulate(np.where(np.isfinite(values), np.arange(len(times)), 0))
        return values[filled]

    def _window(self, symbol: str, t: int) -> np.ndarray | None:
        """The model's window of the symbol at t (price_change of its last seq_len + 1 closes on
        the grid), None where its candles do not reach back that far."""
        tf, bars = self.tf, self.bars
        opens, cached = self.cache.get(symbol, (EMPTY, EMPTY))
        if len(opens) >= bars and opens[-1] == t and opens[-bars] == t - (bars - 1) * tf:
            closes = cached[-bars:]  # the usual tick: every candle of the window is real
        else:
            closes = self._closes(symbol, t - tf * np.arange(bars - 1, -1, -1, dtype=np.int64))
        if not np.isfinite(closes).all():
            return None
        return price_change(closes[-(self.seq_len + 1) :])[1:]

    # -- deciding ----------------------------------------------------------------------------

    def _decide(self, t: int, tick: Tick, now: int) -> Decision | None:
        c, tf = self.config, self.tf
        decides = self.is_decision_candle(t)  # between decision candles every book is held
        windows = {}
        for symbol in self.universe:
            if symbol in tick.real and (symbol in self.entered or self._warm(symbol, t)):
                window = self._window(symbol, t)
                if window is not None:
                    windows[symbol] = window
        eligible = [s in windows for s in self.universe]
        entered = self.entered | set(windows)
        closing = tick.unlisted & entered - self.gone
        member = [s in entered and s not in self.gone and (s not in tick.unlisted
                  or s in tick.real) for s in self.universe]  # fmt: skip
        p_up = np.full(len(self.universe), np.nan)
        if decides and windows:
            p_up[eligible] = self.predictor.p_up_row(windows)
        present = (eligible, member, [s in closing for s in self.universe])
        self.sleeve_books = None
        if self.book_sleeves is not None:  # sleeves: every candle re-decides one of them
            self.sleeve_positions, self.sleeve_books = self._sleeve_candle(t, p_up, present)
        rows, positions, absences = [], {}, []
        for i, symbol in enumerate(self.universe):
            if not member[i]:
                continue
            start = self.state[symbol, POLICIES[0]]
            times = self._times(t, t if start is None else start.candle_ms)
            closes = self._closes(symbol, times, None if start is None else start.close)
            for policy in POLICIES:
                row, held = self._symbol_row(symbol, policy, float(p_up[i]), t, times, closes,
                                             now, decides and eligible[i])  # fmt: skip
                rows += held + [row]
                positions[symbol, policy] = row.position
            if not eligible[i] and symbol not in closing:
                why = tick.reasons.get(symbol, f"the candles do not reach {self.bars} back")
                absences.append(Absence(symbol, c.timeframe, t, "missing", why, now))
        for symbol in sorted(closing):
            absences.append(Absence(symbol, c.timeframe, t, "delisted",
                                    "the exchange no longer lists the market: closed at its "
                                    "last price", now))  # fmt: skip
        rows += self._portfolio_rows(t, p_up, positions, now, decides, present)
        if self.journal.record(rows, absences) == 0:
            log_event(logging.INFO, "duplicate", f"candle {iso(t)} journalled by another job")
            self.restore()
            return None
        self.metrics.journalled(rows, t + tf, self.clock.now_ms())
        self.state.update({(r.symbol, r.policy): r for r in rows if r.candle_ms == t})
        self.changed.update({(r.symbol, r.policy): t for r in rows if r.candle_ms == t
                             and r.trade != 0 and r.symbol != PORTFOLIO})  # fmt: skip
        self.entered, self.gone = entered, self.gone | closing
        for absence in absences:
            log_event(logging.WARNING, absence.reason, f"candle {iso(t)}: {absence.symbol} not "
                      f"decided ({absence.reason}: {absence.detail})", candle=iso(t),
                      symbol=absence.symbol, reason=absence.reason)  # fmt: skip
        book = {r.policy: r for r in rows if r.symbol == PORTFOLIO and r.candle_ms == t}
        mean = float(np.mean(p_up[eligible])) if decides and any(eligible) else float("nan")
        decision = Decision(candle_ms=t, close=0.0, p_up=mean)
        decision.positions = {q: r.position for q, r in book.items()}
        decision.wealth = {q: r.wealth for q, r in book.items()}
        log_event(logging.INFO, "decision", f"decision {iso(t)} of {sum(eligible)} of "
                  f"{len(self.universe)} symbols", candle=iso(t),
                  p_up={s: float(p_up[i]) for i, s in enumerate(self.universe) if eligible[i]},
                  wealth=decision.wealth)  # fmt: skip
        return decision

    def _warm(self, symbol: str, t: int) -> bool:
        first = self.first_seen.get(symbol)
        return first is not None and t - first >= self.warm_up * self.tf

    def _times(self, t: int, since: int) -> np.ndarray:
        """The candles from `since` (a last row's) to t, open times; a downtime longer than
        MAX_FETCH candles is bridged from `since` to the first of the last MAX_FETCH."""
        tf = self.tf
        if since >= t:
            return np.array([t], dtype=np.int64)
        first = max(since + tf, t - (MAX_FETCH - 1) * tf)
        return np.r_[np.int64(since), np.arange(first, t + 1, tf, dtype=np.int64)]

    def _symbol_row(self, symbol, policy, p_up, t, times, closes, now, decides=True):
        """A one-symbol service's row of (symbol, policy) at t and the held rows before it: a
        decision, or (not a decision candle, or not eligible) the position held."""
        c, prev = self.config, self.state[symbol, policy]
        if not decides:
            f = 0.0 if prev is None else prev.position
        elif self.book_sleeves is not None:
            f = self.sleeve_positions[symbol, policy]
        else:
            f = self._position(policy, p_up, prev, t, key=(symbol, policy))
        held, wealth, trade = [], c.capital, f
        if prev is not None:
            held, wealth = self._carry(prev, times, closes)
            step = 1.0 + prev.position * (closes[-1] / held_close(prev, held) - 1.0)
            wealth = wealth * (step - c.cost * abs(held_trade(prev, held)))
            trade = f - prev.position
        params = self._params_json(policy)
        kind, p_up = ("decision", p_up) if decides else ("held", None)
        row = Row(symbol, c.timeframe, policy, t, kind, now, float(closes[-1]), p_up, f,
                  trade, wealth, c.model, c.model_sha256, policy_params=params)  # fmt: skip
        return row, held

    def _portfolio_rows(self, t, p_up, positions: dict, now, decides, present):
        """Each strategy's held rows since its last row and its row at t (a decision, or the
        book held on a candle the schedule does not decide). present: (eligible, member,
        closing) a symbol; a closing market's weight goes to 0 at t whatever was decided."""
        c, rows = self.config, []
        kind = "decision" if decides else "held"
        closing = np.array(present[2], dtype=bool)
        paths = None
        for strategy in STRATEGIES:
            prev = self.state[PORTFOLIO, strategy]
            before = _book(prev, self.universe)
            if not decides:
                weights, changed = before["weights"].copy(), list(before["changed"])
            elif self.sleeve_books is not None:
                weights = self.sleeve_books[strategy]
                moved = zip(weights != before["weights"], before["changed"], strict=True)
                changed = [t if m else old for m, old in moved]
            else:
                weights, changed = self._weights(strategy, p_up, positions, before, t, present)
            weights = np.where(closing, 0.0, weights)
            changed = [t if shut else old for shut, old in zip(closing, changed, strict=True)]
            wealth = c.capital
            if prev is not None:
                if paths is None or paths[0][0] != prev.candle_ms:
                    paths = self._book_paths(t, prev.candle_ms)
                held, wealth = self._carry_book(prev, before["weights"], *paths, now)
                rows += held
            turnover = float(np.abs(weights - before["weights"]).sum())
            detail = {"params": self._book_params(strategy),
                      "weights": dict(zip(self.universe, weights.tolist(), strict=True)),
                      "changed": dict(zip(self.universe, changed, strict=True))}  # fmt: skip
            text = json.dumps(detail, sort_keys=True)
            rows.append(Row(PORTFOLIO, c.timeframe, strategy, t, kind, now, 0.0, None,
                            float(np.abs(weights).sum()), turnover, wealth, c.model,
                            c.model_sha256, policy_params=text))  # fmt: skip
        return rows

    def _book_paths(self, t: int, since: int):
        """(times, closes (times, symbols)) from the book's last row to t: each symbol's closes
        from the close its own row holds at `since` (NaN where it has none: a weight of 0)."""
        times = self._times(t, since)
        columns = []
        for symbol in self.universe:
            row = self.state[symbol, POLICIES[0]]
            base = row.close if row is not None and row.candle_ms == since else None
            columns.append(self._closes(symbol, times, base))
        return times, np.column_stack(columns)

    def _weights(self, strategy, p_up, positions, before, t, present):
        """(weights at t, candle_ms each symbol last changed) of one strategy: only eligible
        symbols move, every other one holds its weight (core.evaluation.portfolio's
        present_weights); an equal-weight book gives each eligible symbol its position / the
        members, the long-short ranks the eligible ones with k capped at half of them."""
        eligible, member = present[0], present[1]
        held = before["weights"]
        if strategy in EQUAL_WEIGHT:
            n = max(sum(member), 1)
            row = [positions[s, EQUAL_WEIGHT[strategy]] / n if eligible[i] else held[i]
                   for i, s in enumerate(self.universe)]  # fmt: skip
            weights = np.array(row, dtype=np.float64)
            moved = weights != held
        else:
            params, tf = self.predictor.portfolio_params, self.tf
            side = np.sign(held).astype(int).tolist()
            since = [-np.inf if m is None else m // tf for m in before["changed"]]
            new, targets = long_short_row(np.nan_to_num(p_up, nan=0.5).tolist(), side, since,
                                          t // tf, params, eligible)  # fmt: skip
            weights = np.where(eligible, targets, held)
            moved = np.array(new) != np.array(side)
        changed = [t if m else old for m, old in zip(moved, before["changed"], strict=True)]
        return weights, changed

    def _carry_book(self, prev: Row, weights, times, closes, now):
        """Held rows of a strategy for the candles after prev and before t; the wealth at t. A
        symbol without a close (never held) earns nothing."""
        c = self.config
        if times[0] != prev.candle_ms or (len(times) > 1 and times[1] - times[0]
                                          != c.timeframe_ms):  # fmt: skip
            # downtime longer than the candles fetched (MAX_FETCH): the book earns one step
            # across it, as one symbol's bridge is one held step
            log_event(logging.WARNING, "gap", f"{prev.policy}: downtime from {iso(prev.candle_ms)} "
                      f"to {iso(int(times[1]))} bridged by one step")  # fmt: skip
        rows, wealth, turnover = [], prev.wealth, prev.trade
        for j in range(1, len(times)):
            with np.errstate(invalid="ignore", divide="ignore"):
                returns = np.nan_to_num(closes[j] / closes[j - 1] - 1.0)
            pnl, _ = book_moves(weights[None], returns[None])
            wealth = wealth * (1.0 + float(pnl[0]) - c.cost * turnover)
            turnover = 0.0
            if j < len(times) - 1:
                rows.append(Row(PORTFOLIO, c.timeframe, prev.policy, int(times[j]), "held", now,
                                0.0, None, prev.position, 0.0, wealth, c.model, c.model_sha256,
                                policy_params=prev.policy_params))  # fmt: skip
        return rows, wealth

    def _book_params(self, strategy: str) -> dict:
        if strategy in EQUAL_WEIGHT:
            return self.config.params(EQUAL_WEIGHT[strategy]).to_dict()
        return self.predictor.portfolio_params.to_dict() | {"k": self.predictor.portfolio_params.k}


def close_column(frame) -> np.ndarray:
    """frame["close"] as float64, without building a Series: an answer of a candle or two, 35
    a tick, spent 30 us each in pandas' column lookup against 3 us from the frame's values
    (one float block for OHLCV; a frame of mixed columns converts through object, the same
    numbers)."""
    values = frame.to_numpy()[:, frame.columns.get_loc("close")]
    return values.astype(np.float64, copy=False)


def _book(row: Row | None, symbols: list) -> dict:
    """The weights and last changes a portfolio row holds; flat and never changed before."""
    if row is None:
        return {"weights": np.zeros(len(symbols)), "changed": [None] * len(symbols)}
    detail = json.loads(row.policy_params)
    return {"weights": np.array([detail["weights"][s] for s in symbols], dtype=np.float64),
            "changed": [detail["changed"][s] for s in symbols]}  # fmt: skip
