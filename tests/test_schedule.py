"""Cadence and sleeves (issue 25): the book changes only on decision candles (each sleeve only on
its own), decision candles are fixed by the epoch, and every wealth is recomputed from
positions.parquet and the candles alone."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fc.core.errors import FcError
from fc.core.evaluation.backtest import BacktestConfig, run_backtest
from fc.core.evaluation.policies import PolicyParams, held_positions
from fc.core.evaluation.portfolio import portfolio_backtest
from fc.core.evaluation.schedule import Schedule

SEQ = 5


def grid_of(n: int, seed: int, start_bar: int, outage: float, symbols: int = 0) -> pd.DataFrame:
    """A 30m grid starting `start_bar` candles after an epoch-aligned day, random closes, a share
    `outage` of filled bars (close carried, as to_grid fills them)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC") + start_bar * pd.Timedelta("30min")
    index = pd.date_range(start, periods=n, freq="30min", name="timestamp")
    filled = rng.random(n) < outage
    filled[0] = False
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, max(symbols, 1))), axis=0))
    for t in np.flatnonzero(filled):
        close[t] = close[t - 1]
    frame = pd.DataFrame({"close": close[:, 0], "filled": filled}, index=index)
    return frame if not symbols else (frame, close)


def candles_since_epoch(index: pd.DatetimeIndex) -> np.ndarray:
    """30m candles from 1970-01-01 to each open time, counted by whole seconds."""
    seconds = np.array([int(t.timestamp()) for t in index])
    return seconds // 1800


SCHEDULES = st.one_of(
    st.builds(lambda n: {"cadence": n}, st.integers(1, 6)),
    st.builds(lambda n: {"sleeves": n}, st.integers(2, 5)),
)


@settings(max_examples=25, deadline=None)
@given(horizon=st.integers(1, 6), how=SCHEDULES, seed=st.integers(0, 10_000),
       start_bar=st.integers(0, 47), outage=st.sampled_from([0.0, 0.05]),
       hold=st.integers(1, 3))  # fmt: skip
def test_positions_change_on_decision_candles_and_wealth_recomputes(
    horizon, how, seed, start_bar, outage, hold
):
    n = 160
    grid = grid_of(n, seed, start_bar, outage)
    p_up = np.random.default_rng(seed + 1).uniform(0, 1, n)
    schedule = Schedule.of(horizon, **how)
    params = {"discrete": PolicyParams(min_hold=hold), "proportional": PolicyParams()}
    cfg = BacktestConfig(fee_bps=7, bootstrap_reps=5)
    split = grid.index[80].isoformat()
    frame, _ = run_backtest(grid, p_up, SEQ, split, cfg, "30m", params=params, horizon=horizon,
                            schedule=schedule)  # fmt: skip
    closes = grid["close"].to_numpy()
    count = candles_since_epoch(grid.index) % schedule.cadence
    for _, part in frame.groupby("range"):
        rows = grid.index.get_indexer(part["time"])
        for policy in ("discrete", "proportional"):
            f = part[f"position_{policy}"].to_numpy()
            wealth = _wealth(closes, rows, f, cfg.cost)
            np.testing.assert_allclose(part[f"wealth_{policy}"], wealth, rtol=0, atol=1e-9)
            changed = np.flatnonzero(np.diff(f, prepend=0.0) != 0)
            if schedule.sleeves == 1:
                if not schedule.is_default:  # no decision column at the default schedule
                    assert part["decision"].to_numpy()[changed].all()
                assert (count[rows[changed]] == 0).all()
                assert not grid["filled"].to_numpy()[rows[changed]].any()
            else:  # the book is the mean of the sleeves, each moving on its own candles only
                decide = np.zeros(n, dtype=bool)
                decide[rows] = ~grid["filled"].to_numpy()[rows] & (rows < n - 1) & (rows >= SEQ)
                sleeves = []
                for j in range(schedule.sleeves):
                    mine = decide & (count == j)
                    one = held_positions(policy, p_up, mine, params[policy])
                    moved = np.flatnonzero(np.diff(one[rows], prepend=0.0) != 0)
                    assert (count[rows[moved]] == j).all()
                    sleeves.append(one[rows])
                np.testing.assert_allclose(f, np.mean(sleeves, axis=0), rtol=0, atol=1e-12)


def _wealth(closes: np.ndarray, rows: np.ndarray, f: np.ndarray, cost: float) -> np.ndarray:
    """The wealth formula by hand over a range's rows: W_t = prod (1 + f R_{t+1} - c |df|)."""
    ahead = np.array([closes[t + 1] / closes[t] - 1.0 if t + 1 < len(closes) else 0.0
                      for t in rows])  # fmt: skip
    return np.cumprod(1.0 + f * ahead - cost * np.abs(np.diff(f, prepend=0.0)))


@settings(max_examples=10, deadline=None)
@given(how=SCHEDULES, seed=st.integers(0, 10_000), start_bar=st.integers(0, 47))
def test_a_portfolio_on_a_schedule_recomputes_from_its_weights(how, seed, start_bar):
    n, symbols = 120, 4
    frame, closes = grid_of(n, seed, start_bar, 0.0, symbols)
    p_up = np.random.default_rng(seed).uniform(0, 1, (n, symbols))
    decide = np.zeros(n, dtype=bool)
    decide[SEQ : n - 1] = True
    schedule = Schedule.of(4, **how)
    cfg = BacktestConfig(fee_bps=3, bootstrap_reps=5)
    parts = {"validation": np.r_[np.ones(n - 1, bool), False]}
    names = [f"S{i}/USDT" for i in range(symbols)]
    positions, _ = portfolio_backtest(frame.index, closes, p_up, decide, parts, cfg, "30m",
                                      names, None, 4, schedule)  # fmt: skip
    count = candles_since_epoch(frame.index) % schedule.cadence
    for policy in ("long_short", "equal_weight_discrete"):
        w = positions[[f"weight_{policy}_S{i}_USDT" for i in range(symbols)]].to_numpy()
        ahead = np.zeros_like(closes)
        ahead[:-1] = closes[1:] / closes[:-1] - 1.0
        moved = np.abs(np.diff(w, axis=0, prepend=0.0)).sum(axis=1)
        wealth = np.cumprod(1.0 + (w * ahead[: n - 1]).sum(axis=1) - cfg.cost * moved)
        np.testing.assert_allclose(positions[f"wealth_{policy}"], wealth, rtol=0, atol=1e-9)
        if schedule.sleeves == 1 and not schedule.is_default:
            changed = np.flatnonzero(np.abs(np.diff(w, axis=0, prepend=0.0)).sum(axis=1) > 0)
            assert (count[changed] == 0).all() and positions["decision"].to_numpy()[changed].all()


def test_decision_candles_are_fixed_by_the_epoch_not_by_where_the_data_starts():
    times = pd.date_range("2024-03-05T07:00", periods=50, freq="1h", tz="UTC")
    a = Schedule.of(24).decision_candles(times, "1h")
    b = Schedule.of(24).decision_candles(times[5:], "1h")
    assert np.array_equal(a[5:], b) and a.sum() == 2
    assert (times[a].hour == 0).all()  # 24 one-hour candles since the epoch: midnight UTC
    assert Schedule.of(3).to_dict() == {"cadence": 3} and Schedule.of(3, sleeves=3).sleeves == 3
    assert Schedule.of(1).is_default and Schedule.of(4, cadence=1).is_default


def test_bad_schedules_are_one_line_errors():
    for args, words in (
        ({"cadence": 0}, "--cadence 0"),
        ({"sleeves": 0}, "--sleeves 0"),
        ({"cadence": 2, "sleeves": 2}, "give one of them"),
        ({"cadence": 1.5}, "--cadence 1.5"),
    ):
        with pytest.raises(FcError, match=words):
            Schedule.of(4, **args)
    with pytest.raises(FcError, match="--horizon 0"):
        Schedule.of(0)
