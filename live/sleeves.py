"""A policy's sleeves in the live service (core.evaluation.schedule): N sub-books of one symbol,
the sleeve of candle t re-decided there by core.evaluation.policies.next_position from its own
position and the bars since it changed, the book their mean. The backtest's definition, one
candle at a time; a restarted service rebuilds the sleeves by replaying the journal's p_up."""

import math

from fc.core.evaluation.policies import PolicyParams, next_position


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
