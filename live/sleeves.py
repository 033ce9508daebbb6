"""A policy's sleeves in the live service (core.evaluation.schedule): N sub-books of one symbol,
the sleeve of candle t re-decided there by core.evaluation.policies.next_position from its own
position and the bars since it changed, the book their mean. The backtest's definition, one
candle at a time; a restarted service rebuilds the sleeves by replaying the journal's p_up."""

import math

import numpy as np

from fc.core.evaluation.policies import PolicyParams, next_position
from fc.core.evaluation.portfolio import long_short_row
from fc.core.evaluation.schedule import mean_book


class Sleeves:
    """One (symbol, policy)'s sleeves: `positions[k]` and the candle each last changed."""

    def __init__(self, count: int, policy: str, params: PolicyParams, timeframe_ms: int):
        self.policy, self.params, self.tf = policy, params, timeframe_ms
        self.positions = [0.0] * count
        self.changed: list[int | None] = [None] * count  # None: never held a position

    def step(self, p_up: float, t: int) -> float:
        """Re-decide the sleeve of candle t (open time, ms); the book's position after."""
        k = (t // self.tf) % len(self.positions)
        since = self.changed[k]
        bars = math.inf if since is None else (t - since) // self.tf
        f = float(next_position(self.policy, p_up, self.positions[k], bars, self.params))
        if f != self.positions[k]:
            self.positions[k], self.changed[k] = f, t
        return self.book()

    def book(self) -> float:
        """The sleeves' mean, summed in sleeve order as core.evaluation.schedule sums them."""
        total = self.positions[0]
        for other in self.positions[1:]:
            total = total + other
        return total / len(self.positions)

    def replay(self, decided) -> "Sleeves":
        """The sleeves after the journal's decisions: (candle_ms, p_up) pairs, oldest first."""
        for t, p_up in decided:
            self.step(float(p_up), int(t))
        return self


class BookSleeves:
    """A universe's books in sleeves: each sleeve's long-short sides (and the candle each last
    changed, for min_hold) and each strategy's weights, the sleeve of candle t re-decided there
    as core.evaluation.portfolio decides one sleeve's book in the backtest (portfolio_weights
    on that sleeve's decision candles, under the presence rule): an eligible symbol takes its
    new weight, the long-short's k capped at half the eligible symbols at t and an equal-weight
    book giving it the sleeve's position / the members at t; any other symbol holds the
    sleeve's weight; a closing market is 0 in every sleeve from then on (close_delisted)."""

    def __init__(self, count: int, size: int, params: PolicyParams, timeframe_ms: int,
                 strategies: tuple):  # fmt: skip
        self.params, self.tf = params, timeframe_ms
        self.sleeves = [{"sides": [0] * size, "changed": [None] * size,
                         "weights": {q: np.zeros(size) for q in strategies}}
                        for _ in range(count)]  # fmt: skip

    def sleeve(self, t: int) -> int:
        """The sleeve re-decided at candle t (open time, ms)."""
        return (t // self.tf) % len(self.sleeves)

    def step(self, t: int, p_up, eligible: list, member: list, closing: list,
             positions: dict) -> dict:  # fmt: skip
        """{strategy: book weights} after the sleeve of candle t re-decides. positions:
        {equal-weight strategy: the symbols' positions in the sleeve of t, an array}."""
        mine, tf, params = self.sleeves[self.sleeve(t)], self.tf, self.params
        since = [-math.inf if m is None else m // tf for m in mine["changed"]]
        new, targets = long_short_row(np.nan_to_num(p_up, nan=0.5).tolist(), mine["sides"],
                                      since, t // tf, params, eligible)  # fmt: skip
        mine["changed"] = [t if a != b else m for a, b, m in
                           zip(new, mine["sides"], mine["changed"], strict=True)]  # fmt: skip
        mine["sides"] = new
        decided = {"long_short": targets}
        n = max(sum(member), 1)
        decided |= {q: np.asarray(held, dtype=np.float64) / n for q, held in positions.items()}
        for strategy, weights in decided.items():
            mine["weights"][strategy] = np.where(eligible, weights, mine["weights"][strategy])
        for sleeve in self.sleeves:
            for weights in sleeve["weights"].values():
                weights[np.asarray(closing, dtype=bool)] = 0.0
        return {q: mean_book([s["weights"][q] for s in self.sleeves]) for q in decided}
