"""The paper-trading engine of a pooled universe model: one service, every symbol at each close.

It is live/service.py's PaperService with another decision: every symbol's closed candle is
fetched concurrently (a symbol still missing after the bounded retries skips the whole tick,
journalled with its reason, so every symbol is decided on the same candles), p_up of all symbols
comes from one onnxruntime call, and the journal gets one row per (symbol, policy, candle), as a
one-symbol service writes them, plus the portfolio's rows.

Portfolio rows: symbol `portfolio`, policy = each strategy of core.evaluation.portfolio
(long_short, equal_weight_discrete, equal_weight_proportional), p_up NULL, close 0.0 (a book has
no price), position = the gross exposure sum_s |w_s|, trade = the turnover sum_s |Δw_s|, wealth
W_t = W_{t-1} (1 + sum_s w_{s,t-1} R_{s,t} - c sum_s |w_{s,t-1} - w_{s,t-2}|) realised at t's
close (the journal's convention), and policy_params the JSON {"params": …, "weights": {symbol:
w}, "changed": {symbol: candle_ms}} (changed: where the long-short last moved the symbol, for
min_hold). Weights come from core.evaluation.portfolio (next_sides, side_weights, equal_weight):
the backtest's definitions.
"""

import json
import logging

import numpy as np

from fc.core.data.features import price_change
from fc.core.evaluation.policies import POLICIES, book_moves
from fc.core.evaluation.portfolio import STRATEGIES, equal_weight, next_sides, side_weights
from fc.core.evaluation.schedule import mean_book
from fc.live.journal import Row
from fc.live.logs import log_event
from fc.live.service import Decision, PaperService, held_close, held_trade, iso
from fc.live.sleeves import Sleeves

PORTFOLIO = "portfolio"  # the journal's symbol of the portfolio's rows
EQUAL_WEIGHT = {"equal_weight_discrete": "discrete", "equal_weight_proportional": "proportional"}


class UniverseService(PaperService):
    """Decides every symbol of a UniversePredictor (live/universe_model.py) at candle closes."""

    def __init__(self, config, source, predictor, journal, clock, metrics=None):
        self.universe = list(predictor.symbols)
        super().__init__(config, source, predictor, journal, clock, metrics)
        self.symbols = self.universe  # _fetch asks each of them, concurrently

    def restore(self) -> None:
        """Every (symbol, policy)'s last row, and the portfolio's, from the journal."""
        c, j = self.config, self.journal
        self.state = {(s, p): j.last(s, c.timeframe, p) for s in self.universe for p in POLICIES}
        self.state |= {(PORTFOLIO, q): j.last(PORTFOLIO, c.timeframe, q) for q in STRATEGIES}
        self.changed = {
            (s, p): j.last_change(s, c.timeframe, p) for s in self.universe for p in POLICIES
        }
        self.book_sleeves = None
        if c.schedule.sleeves > 1:
            self._rebuild_sleeves()
        self.metrics.restored([r for r in self.state.values() if r is not None])

    def _rebuild_sleeves(self) -> None:
        """With sleeves: every symbol's and the long-short's sleeve states, rebuilt by replaying
        the journal's decided candles (each symbol's p_up there) through _sleeve_candle."""
        c = self.config
        n, size = c.schedule.sleeves, len(self.universe)
        self.symbol_sleeves = {(s, p): Sleeves(n, p, c.params(p), c.timeframe_ms)
                               for s in self.universe for p in POLICIES}  # fmt: skip
        self.book_sleeves = [{"sides": [0] * size, "changed": [None] * size} for _ in range(n)]
        rows = self.journal.decisions(timeframe=self.config.timeframe)
        mine = rows[(rows.policy == POLICIES[0]) & (rows.kind == "decision")
                    & rows.symbol.isin(self.universe)]  # fmt: skip
        table = mine.pivot(index="candle_ms", columns="symbol", values="p_up")
        table = table.reindex(columns=self.universe).dropna()  # a fresh journal: nothing
        for t, p_up in zip(table.index, table.to_numpy(dtype=np.float64), strict=True):
            self._sleeve_candle(int(t), p_up)

    def _sleeve_candle(self, t: int, p_up) -> tuple[dict, dict]:
        """({(symbol, policy): book position}, {strategy: weights}) at candle t with sleeves:
        the sleeve of t re-decides (each symbol by next_position, the long-short by
        next_sides), every book is the mean of its sleeves' (core.evaluation.schedule)."""
        positions = {}
        for i, symbol in enumerate(self.universe):
            for policy in POLICIES:
                positions[symbol, policy] = self.symbol_sleeves[symbol, policy].step(
                    float(p_up[i]), t
                )
        tf, params = self.config.timeframe_ms, self.predictor.portfolio_params
        mine = self.book_sleeves[(t // tf) % len(self.book_sleeves)]
        since = [-np.inf if m is None else m // tf for m in mine["changed"]]
        new = next_sides(np.nan_to_num(p_up, nan=0.5).tolist(), mine["sides"], since, t // tf,
                         params)  # fmt: skip
        mine["changed"] = [t if a != b else m for a, b, m in
                           zip(new, mine["sides"], mine["changed"], strict=True)]  # fmt: skip
        mine["sides"] = new
        books = {"long_short": mean_book([side_weights(b["sides"], params)
                                          for b in self.book_sleeves])}  # fmt: skip
        for strategy, policy in EQUAL_WEIGHT.items():
            books[strategy] = mean_book([
                equal_weight(np.array([[self.symbol_sleeves[s, policy].positions[k]
                                        for s in self.universe]]))[0]
                for k in range(len(self.book_sleeves))
            ])  # fmt: skip
        return positions, books

    @property
    def last_candle_ms(self) -> int | None:
        rows = list(self.state.values())
        return None if None in rows else min(r.candle_ms for r in rows)

    def _inputs(self, frames: dict):
        """(times and closes (bars, symbols) on the bars all symbols share, {symbol: window})."""
        common = frames[self.universe[0]].index
        for s in self.universe[1:]:
            common = common.intersection(frames[s].index)
        if len(common) < self.bars or common[-1] != frames[self.universe[0]].index[-1]:
            return None, None, f"the symbols' candles overlap on {len(common)} bars"
        closes = np.column_stack([frames[s].loc[common, "close"].to_numpy(np.float64)
                                  for s in self.universe])  # fmt: skip
        windows = {s: price_change(closes[-(self.seq_len + 1) :, i])[1:]
                   for i, s in enumerate(self.universe)}  # fmt: skip
        return (common.as_unit("ns").asi8 // 1_000_000, closes), windows, ""

    def _decide(self, t: int, grid, windows: dict, now: int) -> Decision | None:
        times, closes = grid
        # between decision candles every book is held: no prediction, held rows
        decides = self.is_decision_candle(t)
        p_up = self.predictor.p_up_row(windows) if decides else np.full(len(self.universe), np.nan)
        self.sleeve_books = None
        if self.book_sleeves is not None:  # sleeves: every candle re-decides one of them
            self.sleeve_positions, self.sleeve_books = self._sleeve_candle(t, p_up)
        rows, positions = [], {}
        for i, symbol in enumerate(self.universe):
            for policy in POLICIES:
                row, held = self._symbol_row(symbol, policy, float(p_up[i]), t, times,
                                             closes[:, i], now, decides)  # fmt: skip
                rows += held + [row]
                positions[symbol, policy] = row.position
        rows += self._portfolio_rows(t, times, closes, p_up, positions, now, decides)
        if self.journal.record(rows) == 0:
            log_event(logging.INFO, "duplicate", f"candle {iso(t)} journalled by another job")
            self.restore()
            return None
        self.metrics.journalled(rows, t + self.config.timeframe_ms, self.clock.now_ms())
        self.state = {(r.symbol, r.policy): r for r in rows if r.candle_ms == t}
        self.changed.update({k: t for k, r in self.state.items() if r.trade != 0})
        book = {r.policy: r for r in rows if r.symbol == PORTFOLIO and r.candle_ms == t}
        decision = Decision(candle_ms=t, close=0.0, p_up=float(np.mean(p_up)))
        decision.positions = {q: r.position for q, r in book.items()}
        decision.wealth = {q: r.wealth for q, r in book.items()}
        log_event(logging.INFO, "decision", f"decision {iso(t)} of {len(self.universe)} symbols",
                  candle=iso(t), p_up=dict(zip(self.universe, p_up.tolist(), strict=True)),
                  wealth=decision.wealth)  # fmt: skip
        return decision

    def _symbol_row(self, symbol, policy, p_up, t, times, closes, now, decides=True):
        """A one-symbol service's row of (symbol, policy) at t and the held rows before it: a
        decision, or (not a decision candle) the position held."""
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

    def _portfolio_rows(self, t, times, closes, p_up, positions: dict, now, decides=True):
        """Each strategy's held rows since its last row and its row at t (a decision, or the
        book held on a candle the schedule does not decide)."""
        c, rows = self.config, []
        kind = "decision" if decides else "held"
        for strategy in STRATEGIES:
            prev = self.state[PORTFOLIO, strategy]
            before = _book(prev, self.universe)
            if not decides:
                weights, changed = before["weights"], before["changed"]
            elif self.sleeve_books is not None:
                weights = self.sleeve_books[strategy]
                moved = zip(weights != before["weights"], before["changed"], strict=True)
                changed = [t if m else old for m, old in moved]
            else:
                weights, changed = self._weights(strategy, p_up, positions, before, t)
            wealth = c.capital
            if prev is not None:
                held, wealth = self._carry_book(prev, before["weights"], times, closes, now)
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

    def _weights(self, strategy, p_up, positions, before, t):
        """(weights at t, candle_ms each symbol last changed) of one strategy."""
        if strategy in EQUAL_WEIGHT:
            row = [positions[s, EQUAL_WEIGHT[strategy]] for s in self.universe]
            weights = equal_weight(np.array([row]))[0]
        else:
            params, tf = self.predictor.portfolio_params, self.config.timeframe_ms
            side = np.sign(before["weights"]).astype(int).tolist()
            since = [-np.inf if m is None else m // tf for m in before["changed"]]
            new = next_sides(np.nan_to_num(p_up, nan=0.5).tolist(), side, since, t // tf, params)
            weights = side_weights(new, params)
        moved = weights != before["weights"]
        changed = [t if m else old for m, old in zip(moved, before["changed"], strict=True)]
        return weights, changed

    def _carry_book(self, prev: Row, weights, times, closes, now):
        """Held rows of a strategy for the candles after prev and before t; the wealth at t."""
        c = self.config
        start = int(np.searchsorted(times, prev.candle_ms))
        if start >= len(times) or times[start] != prev.candle_ms:
            # downtime longer than the candles fetched (MAX_FETCH): the book earns nothing
            # until the first candle fetched, as one symbol's bridge is one held step
            log_event(logging.WARNING, "gap", f"{prev.policy}: downtime from {iso(prev.candle_ms)} "
                      f"to {iso(int(times[0]))} bridged without the book's return")  # fmt: skip
            start = 0
        rows, wealth, turnover = [], prev.wealth, prev.trade
        for j in range(start + 1, len(times)):
            returns = closes[j] / closes[j - 1] - 1.0
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


def _book(row: Row | None, symbols: list) -> dict:
    """The weights and last changes a portfolio row holds; flat and never changed before."""
    if row is None:
        return {"weights": np.zeros(len(symbols)), "changed": [None] * len(symbols)}
    detail = json.loads(row.policy_params)
    return {"weights": np.array([detail["weights"][s] for s in symbols], dtype=np.float64),
            "changed": [detail["changed"][s] for s in symbols]}  # fmt: skip
