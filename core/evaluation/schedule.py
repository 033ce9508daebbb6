"""When the book is re-decided (issue 25): a horizon-H forecast traded on a cadence, or in
overlapping sleeves. The one definition for the backtest, replay and the live service.

Cadence N: the book is re-decided at decision candles only, those whose open time is a multiple
of N candles since the Unix epoch (so a backtest, a replay and a service restarted at any time
decide on the same candles), and held in between (the wealth formula with w_t = w_{t-1}).
Sleeves N: N sub-books, sleeve j re-decided on the candles of phase j (open time / timeframe
= j mod N) and held N candles; the book is their mean, so trades between sleeves net out and
the turnover is the change of the book (Jegadeesh and Titman's overlapping portfolios: no
dependence on which candle a schedule starts). Cadence 1 (the default at H = 1) decides at every
decision bar, as fc always has. Band, minimum hold and --k act inside each schedule: they see
only its decision candles (and a sleeve only its own).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fc.core.errors import FcError


def _whole(value, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise FcError(f"{option} {value!r} must be a whole number of candles >= 1, e.g. 4")
    if value < 1:
        raise FcError(f"{option} {value!r} must be a whole number of candles >= 1, e.g. 4")
    return int(value)


def check_horizon(horizon) -> int:
    """The horizon as a whole number of candles >= 1, else FcError."""
    return _whole(horizon, "--horizon")


@dataclass(frozen=True)
class Schedule:
    """cadence: the book is re-decided every `cadence` candles; sleeves: that many overlapping
    sub-books (cadence = sleeves, one sleeve re-decided each candle)."""

    cadence: int = 1
    sleeves: int = 1

    @classmethod
    def of(cls, horizon: int = 1, cadence: int | None = None, sleeves: int | None = None):
        """The schedule of a run: --cadence N, or --sleeves N, or (neither) a cadence of the
        horizon. Both, or either of 0, is a user error."""
        horizon = check_horizon(horizon)
        if cadence is not None and sleeves is not None:
            raise FcError("--cadence and --sleeves are two schedules: give one of them")
        if sleeves is not None:
            n = _whole(sleeves, "--sleeves")
            return cls(cadence=n, sleeves=n)
        return cls(cadence=horizon if cadence is None else _whole(cadence, "--cadence"))

    @property
    def is_default(self) -> bool:
        return self.cadence == 1 and self.sleeves == 1

    def to_dict(self) -> dict:
        """{"cadence": N} or {"sleeves": N}; {} for a decision at every candle."""
        if self.is_default:
            return {}
        return {"sleeves": self.sleeves} if self.sleeves > 1 else {"cadence": self.cadence}

    def phase(self, times: pd.DatetimeIndex, timeframe: str) -> np.ndarray:
        """Each candle's phase: its open time in candles since the Unix epoch, mod the cadence."""
        from fc.core.data.candles import timeframe_delta

        since = pd.DatetimeIndex(times) - pd.Timestamp(0, tz="UTC")  # any time unit
        count = np.asarray(since // timeframe_delta(timeframe), dtype=np.int64)
        return count % self.cadence

    def sleeve_masks(self, decide: np.ndarray, times, timeframe: str) -> list[np.ndarray]:
        """The decision bars of each sleeve (one mask for a cadence: its decision candles)."""
        decide = np.asarray(decide, dtype=bool)
        if self.is_default:
            return [decide]
        phase = self.phase(times, timeframe)
        return [decide & (phase == j) for j in range(self.sleeves)]

    def decision_candles(self, times, timeframe: str) -> np.ndarray:
        """Where some sleeve (or the cadence) re-decides: every candle with sleeves."""
        if self.sleeves > 1 or self.is_default:
            return np.ones(len(times), dtype=bool)
        return self.phase(times, timeframe) == 0

    def book(self, decided: Callable[[np.ndarray], np.ndarray], decide, times, timeframe: str):
        """The book held at every bar: decided(mask) gives the positions (or weights) of a
        policy deciding at the bars of `mask` and holding in between; for sleeves the mean of
        the sleeves' books. At the default schedule decided(decide) itself, bit for bit."""
        books = [decided(mask) for mask in self.sleeve_masks(decide, times, timeframe)]
        if len(books) == 1:
            return books[0]
        if isinstance(books[0], dict):  # {strategy: book}: each strategy's mean of its sleeves
            return {key: mean_book([b[key] for b in books]) for key in books[0]}
        return mean_book(books)


def mean_book(books: list):
    """The book of the sleeves: their mean, summed in sleeve order."""
    return sum(books[1:], books[0]) / len(books)
