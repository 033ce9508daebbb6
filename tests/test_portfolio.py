"""The portfolio backtest against plain loops over rows, one symbol's backtest and hand cases."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_backtest import grid_of

from fc.core.data.features import next_returns
from fc.core.errors import FcError
from fc.core.evaluation.backtest import BacktestConfig, run_backtest, segments, simulate, trade_mask
from fc.core.evaluation.policies import PolicyParams, held_positions
from fc.core.evaluation.portfolio import (
    STRATEGIES,
    _sequential_sides,
    buy_and_hold,
    cross_sectional_momentum,
    cross_sectional_reversal,
    equal_weight,
    long_short,
    portfolio_backtest,
    portfolio_decisions,
    portfolio_report,
    portfolio_wealth,
    portfolio_weights,
    range_weights,
    ranked_book,
    symbol_positions,
)

SEQ = 3
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "BNB/USDT"]


def universe(seed: int, n: int, size: int, fill: float = 0.1):
    """Closes (n, size) on one grid with random filled bars (the close carried forward)."""
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, size)), axis=0))
    filled = rng.random((n, size)) < fill
    filled[0] = False
    for t, s in zip(*np.nonzero(filled), strict=True):
        closes[t, s] = closes[t - 1, s]
    times = pd.date_range("2024-01-01", periods=n, freq="30min", tz="UTC", unit="ns")
    return times, closes, filled


def loop_wealth(rows: pd.DataFrame, policy: str, slugs, closes, times, cost) -> list[float]:
    """W after each row from the parquet's weights and the grid's closes, a bar at a time."""
    at = {t: i for i, t in enumerate(times)}
    w, held, out = 1.0, [0.0] * len(slugs), []
    for _, row in rows.iterrows():
        i = at[row["time"]]
        weights = [row[f"weight_{policy}_{slug}"] for slug in slugs]
        gain = sum(x * (closes[i + 1, s] / closes[i, s] - 1) for s, x in enumerate(weights))
        w *= 1 + gain - cost * sum(abs(x - h) for x, h in zip(weights, held, strict=True))
        held = weights
        out.append(w)
    return out


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    size=st.integers(2, 5),
    n=st.integers(30, 90),
    k_share=st.floats(0, 1),
    fee_bps=st.floats(0, 50),
    band=st.sampled_from([0.0, 0.0, 0.05]),
    min_hold=st.sampled_from([1, 1, 3]),
    coarse=st.booleans(),
)
def test_wealth_recomputed_from_the_parquet_and_long_short_is_neutral(
    seed, size, n, k_share, fee_bps, band, min_hold, coarse
):
    times, closes, filled = universe(seed, n, size)
    rng = np.random.default_rng(seed + 1)
    p_up = rng.random((n, size))
    if coarse:  # many ties
        p_up = np.round(p_up, 1)
    k = 1 + int(k_share * (size // 2 - 1))
    symbols = SYMBOLS[:size]
    slugs = [s.replace("/", "_") for s in symbols]
    cfg = BacktestConfig(fee_bps=fee_bps, bootstrap_reps=10)
    decide = portfolio_decisions(filled, SEQ)
    parts = segments(times, decide, str(times[n // 2]), cfg, times[3 * n // 4])
    params = {"long_short": PolicyParams(k=k, band=band, min_hold=min_hold)}
    frame, report = portfolio_backtest(times, closes, p_up, decide, parts, cfg, "30m",
                                       symbols, params)  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        frame.to_parquet(Path(folder) / "positions.parquet")
        back = pd.read_parquet(Path(folder) / "positions.parquet")
    decided = set(times[decide])
    for name in report:
        rows = back[back["range"] == name]
        assert rows["time"].map(lambda t: t in decided).iloc[0]  # each range from its decision
        for policy in STRATEGIES:
            want = loop_wealth(rows, policy, slugs, closes, times, cfg.cost)
            np.testing.assert_allclose(rows[f"wealth_{policy}"], want, rtol=0, atol=1e-9)
            assert report[name][policy]["final_wealth"] == pytest.approx(want[-1], abs=1e-9)
        book = rows[[f"weight_long_short_{slug}" for slug in slugs]].to_numpy()
        on = rows["time"].map(lambda t: t in decided).to_numpy()
        np.testing.assert_allclose(book[on].sum(axis=1), 0.0, atol=1e-15)
        np.testing.assert_allclose(np.abs(book[on]).sum(axis=1), 1.0, rtol=1e-15)
        assert ((book[on] > 0).sum(axis=1) == k).all() and ((book[on] < 0).sum(axis=1) == k).all()
        # through a filled bar (of any symbol) every weight is held
        held = np.flatnonzero(~on)
        held = held[held > 0]
        np.testing.assert_array_equal(book[held], book[held - 1])


def test_one_symbol_equal_weight_is_the_single_symbol_backtest():
    times, closes, filled = universe(3, 600, 1, fill=0.05)
    grid = grid_of(closes[:, 0], filled[:, 0])
    p_up = np.random.default_rng(4).random((600, 1))
    cfg = BacktestConfig(fee_bps=5, bootstrap_reps=40)
    split, test_from = str(grid.index[250]), grid.index[450]
    params = {"discrete": PolicyParams(band=0.1, min_hold=3), "proportional": PolicyParams()}
    _, single = run_backtest(grid, p_up[:, 0], SEQ, split, cfg, "30m", test_from, None, params)
    decide = portfolio_decisions(filled, SEQ)
    np.testing.assert_array_equal(decide, trade_mask(filled[:, 0], SEQ))
    parts = segments(grid.index, decide, split, cfg, test_from)
    weights = {
        name: {
            "equal_weight_discrete": equal_weight(
                symbol_positions("discrete", p_up, decide & part, params["discrete"])
            ),
            "equal_weight_proportional": equal_weight(
                symbol_positions("proportional", p_up, decide & part)
            ),
            "buy_and_hold": buy_and_hold(600, 1),
        }
        for name, part in parts.items()
    }
    report = portfolio_report(weights, closes, decide, parts, cfg, "30m")
    assert set(report) == set(single) == {"train", "validation", "test"}
    for name, section in report.items():
        for mine, theirs in (("equal_weight_discrete", "discrete"),
                             ("equal_weight_proportional", "proportional"),
                             ("buy_and_hold", "buy_and_hold")):  # fmt: skip
            expected = {k: v for k, v in single[name][theirs].items() if k != "policy_params"}
            assert section[mine] == expected  # every statistic, to the bit
        part = parts[name]
        alone = held_positions("discrete", p_up[:, 0], decide & part, params["discrete"])
        _, _, factors = simulate(closes[:, 0], alone, decide, part, cfg.cost)
        held = range_weights(weights[name]["equal_weight_discrete"], decide, part)
        wealth = portfolio_wealth(held, next_returns(closes)[part], cfg.cost)
        np.testing.assert_allclose(wealth, np.cumprod(factors), rtol=1e-12, atol=0)


def test_k_of_more_than_half_the_universe_is_one_line():
    p_up = np.random.default_rng(0).random((10, 5))
    with pytest.raises(FcError) as err:
        long_short(p_up, np.ones(10, bool), PolicyParams(k=3))
    assert str(err.value) == "--k 3 is more than half the universe of 5 symbols: give --k <= 2"
    for bad in (0, 1.5, -1):
        with pytest.raises(FcError, match="--k"):
            PolicyParams(k=bad)


def test_k_is_a_policy_parameter_that_one_symbol_runs_never_see():
    assert "k" not in PolicyParams().to_dict()  # one-symbol JSON, metadata, journal unchanged
    assert PolicyParams(k=2).to_dict()["k"] == 2
    assert PolicyParams(k=2).is_default("discrete")
    assert PolicyParams(k=2, min_hold=4).label("long_short") == "hold 4 k 2"


def test_cross_sectional_reversal_by_hand():
    closes = np.array(
        [
            [100.0, 100.0, 100.0],
            [101.0, 99.0, 100.0],  # A +1 %, B -1 %, C 0: long B, short A
            [101.0, 99.0, 102.0],  # C +2 %: long A or B (both 0 %; A listed first), short C
            [101.0, 99.0, 102.0],  # a filled bar: held
            [100.0, 100.0, 102.0],  # A -0.99 %, B +1.01 %, C 0: long A, short B
        ]
    )
    decide = np.array([False, True, True, False, True])
    got = cross_sectional_reversal(closes, decide, k=1)
    want = [[0, 0, 0], [-0.5, 0.5, 0], [0.5, 0, -0.5], [0.5, 0, -0.5], [0.5, -0.5, 0]]
    np.testing.assert_array_equal(got, want)
    # momentum bets the other way: long the last relative winner (ties: the one listed first
    # ranks higher, so at bar 2 B, not A, is the short)
    momentum = cross_sectional_momentum(closes, decide, k=1)
    want = [[0, 0, 0], [0.5, -0.5, 0], [0, -0.5, 0.5], [0, -0.5, 0.5], [-0.5, 0.5, 0]]
    np.testing.assert_array_equal(momentum, want)


def test_long_short_ties_band_and_min_hold_by_hand():
    p = np.array([[0.6, 0.6, 0.4, 0.4], [0.55, 0.6, 0.4, 0.5], [0.5, 0.7, 0.45, 0.3]])
    every = np.ones(3, bool)
    # ties: the symbol listed first ranks higher, long A (not B), short D (not C)
    np.testing.assert_array_equal(long_short(p[:1], every[:1]), [[0.5, 0, 0, -0.5]])
    # band 0.1: B beats A by 0.05 only, A stays long; D is 0.1 above C, not more: D stays short
    banded = long_short(p, every, PolicyParams(band=0.1))
    np.testing.assert_array_equal(banded[1], [0.5, 0, 0, -0.5])
    # bar 2: B beats A by 0.2 and takes the long; D lowest anyway
    np.testing.assert_array_equal(banded[2], [0, 0.5, 0, -0.5])
    # min_hold 3: nothing set at bar 0 moves before bar 3; no band: bar 1 wants long B, short C
    held = long_short(p, every, PolicyParams(min_hold=3))
    np.testing.assert_array_equal(held, [[0.5, 0, 0, -0.5]] * 3)
    # min_hold 2, k 2 of 4: all four are held; at bar 2 the book is ranked afresh, cap 0.5
    book = long_short(p, every, PolicyParams(k=2, min_hold=2, cap=0.5))
    np.testing.assert_array_equal(book[2], [0.125, 0.125, -0.125, -0.125])


@pytest.mark.parametrize("size", [2, 3, 5])
def test_sequential_book_equals_the_vectorised_one_without_band_or_hold(size):
    _, closes, filled = universe(11, 300, size)
    decide = portfolio_decisions(filled, SEQ)
    scores = np.round(np.random.default_rng(5).random((300, size)), 1)  # ties too
    for k in range(1, size // 2 + 1):
        fast = ranked_book(scores, decide, PolicyParams(k=k))
        sides = _sequential_sides(scores, decide, PolicyParams(k=k))
        np.testing.assert_array_equal(sides[decide] / (2 * k), fast[decide])
        # flat before the first decision, held through every other bar
        first = np.flatnonzero(decide)[0]
        between = np.flatnonzero(~decide[first:]) + first
        assert (fast[:first] == 0).all() and len(between)
        np.testing.assert_array_equal(fast[between], fast[between - 1])


def test_weights_at_t_read_nothing_after_t():
    times, closes, filled = universe(21, 200, 4)
    decide = portfolio_decisions(filled, SEQ)
    p_up = np.random.default_rng(2).random((200, 4))
    params = {"long_short": PolicyParams(k=2, band=0.05, min_hold=3)}
    before = portfolio_weights(p_up, closes, decide, params)
    t = 120
    poisoned_p, poisoned_c = p_up.copy(), closes.copy()
    poisoned_p[t + 1 :] = 1 - poisoned_p[t + 1 :]
    poisoned_c[t + 1 :] *= np.random.default_rng(3).uniform(0.5, 2, poisoned_c[t + 1 :].shape)
    after = portfolio_weights(poisoned_p, poisoned_c, decide, params)
    for name, weights in before.items():
        np.testing.assert_array_equal(after[name][: t + 1], weights[: t + 1])
        assert not np.array_equal(after[name], weights) or name == "buy_and_hold"


def test_turnover_trades_and_break_even_fee_of_a_portfolio_from_the_frame():
    times, closes, filled = universe(31, 400, 5)
    p_up = np.random.default_rng(6).random((400, 5))
    cfg = BacktestConfig(bootstrap_reps=10)
    decide = portfolio_decisions(filled, SEQ)
    parts = segments(times, decide, str(times[200]), cfg)
    frame, report = portfolio_backtest(times, closes, p_up, decide, parts, cfg, "30m",
                                       SYMBOLS, {"long_short": PolicyParams(k=2)})  # fmt: skip
    slugs = [s.replace("/", "_") for s in SYMBOLS]
    for name in ("train", "validation"):
        rows = frame[frame["range"] == name]
        for policy in STRATEGIES:
            stats = report[name][policy]
            book = rows[[f"weight_{policy}_{slug}" for slug in slugs]].to_numpy()
            moves = np.abs(np.diff(book, axis=0, prepend=0.0))
            assert stats["turnover"] == pytest.approx(moves.sum(axis=1).mean(), rel=1e-12)
            assert stats["trades"] == int((moves > 0).sum())
            assert stats["exposure"] == pytest.approx(np.abs(book).sum(axis=1).mean(), rel=1e-12)
            fee = stats["break_even_fee_bps"]
            if fee is not None:  # the wealth at that fee is 1.0, by the plain row loop
                wealth = loop_wealth(rows, policy, slugs, closes, times, fee / 1e4)
                assert wealth[-1] == pytest.approx(1.0, abs=1e-9)
            else:
                assert loop_wealth(rows, policy, slugs, closes, times, 0.0)[-1] <= 1.0
