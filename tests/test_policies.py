"""Cost-aware policies against a plain per-bar loop written from their definition, the defaults
against the workshop's policies bit for bit, and the break-even fee against hand computations."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_backtest import grid_of

from fc.core.errors import FcError
from fc.core.evaluation.backtest import BacktestConfig, run_backtest, trade_mask
from fc.core.evaluation.metrics import trade_stats
from fc.core.evaluation.policies import (
    PolicyParams,
    break_even_cost,
    held_positions,
    hold,
    position,
    sequential_positions,
)

SEQ = 8


def loop_positions(policy, p_up, filled, seq_len, params):
    """Bar by bar: decide at real bars with a full window and a next bar, once min_hold bars
    have passed since the last change; hold everywhere else. Flat before the first decision."""
    n = len(p_up)
    held, last_change, out = 0.0, None, []
    for t in range(n):
        may_decide = seq_len <= t < n - 1 and not filled[t]
        if may_decide and (last_change is None or t - last_change >= params.min_hold):
            p = p_up[t]
            if policy == "discrete":
                if p >= 0.5 + params.band:
                    new = params.cap
                elif p <= 0.5 - params.band:
                    new = -params.cap
                else:
                    new = 0.0 if params.flat_inside else held
            else:
                p_down = 1.0 - p
                target = min(params.cap, max(-params.cap, p - p_down))
                new = target if abs(target - held) > params.rebalance else held
            if new != held:
                held, last_change = new, t
        out.append(held)
    return np.array(out)


def series(seed, n, spread=0.1):
    rng = np.random.default_rng(seed)
    filled = rng.random(n) < 0.1
    p_up = np.clip(0.5 + rng.normal(0, spread, n), 0, 1)
    return p_up, filled


params_strategy = st.builds(
    PolicyParams,
    band=st.sampled_from([0.0, 0.01, 0.05, 0.2]),
    flat_inside=st.booleans(),
    rebalance=st.sampled_from([0.0, 0.05, 0.2, 1.0]),
    cap=st.sampled_from([1.0, 0.5, 0.1]),
    min_hold=st.integers(1, 12),
)


@settings(max_examples=60, deadline=None)
@given(params=params_strategy, seed=st.integers(0, 10_000), policy=st.sampled_from(["discrete",
       "proportional"]))  # fmt: skip
def test_held_positions_equal_the_per_bar_loop(params, seed, policy):
    p_up, filled = series(seed, 300)
    decide = trade_mask(filled, SEQ)
    got = held_positions(policy, p_up, decide, params)
    np.testing.assert_array_equal(got, loop_positions(policy, p_up, filled, SEQ, params))


@pytest.mark.parametrize("policy", ["discrete", "proportional"])
def test_backtest_positions_and_wealth_equal_the_loop_with_filled_bars(policy):
    n = 600
    p_up, filled = series(3, n, spread=0.05)
    filled[[100, 101, 102, 400]] = True  # outages inside both ranges
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    for i in np.flatnonzero(filled):
        close[i] = close[i - 1]
    grid = grid_of(close, filled)
    split = str(grid.index[300])
    params = PolicyParams(band=0.02, flat_inside=True, rebalance=0.03, cap=0.7, min_hold=4)
    cfg = BacktestConfig(fee_bps=5, bootstrap_reps=10)
    frame, report = run_backtest(grid, p_up, SEQ, split, cfg, "30m", params={policy: params})
    for name, inside in (("train", grid.index < split), ("validation", grid.index >= split)):
        rows = frame[frame["range"] == name]
        # each range starts flat: the loop decides only at that range's bars
        want = loop_positions(policy, p_up, filled | ~inside, SEQ, params)
        want = want[grid.index.get_indexer(rows["time"])]
        got = rows[f"position_{policy}"].to_numpy()
        np.testing.assert_array_equal(got, want)
        assert (got == 0).any() or policy == "proportional"  # flat inside the band happened
        r = close[1:] / close[:-1] - 1
        t0 = np.flatnonzero(grid.index == rows["time"].iloc[0])[0]
        w = np.cumprod(1 + got * r[t0 : t0 + len(got)] - 5e-4 * np.abs(np.diff(got, prepend=0)))
        np.testing.assert_allclose(rows[f"wealth_{policy}"], w, rtol=1e-12)
        assert report[name][policy]["policy_params"] == params.to_dict()


@pytest.mark.parametrize("policy", ["discrete", "proportional"])
def test_defaults_are_the_workshop_policies_bit_for_bit(policy):
    p_up, filled = series(5, 5000, spread=0.02)
    p_up[::50] = 0.5  # the tie goes long, as p_up >= 0.5 always did
    decide = trade_mask(filled, SEQ)
    today = hold(position(policy, p_up), decide)
    assert held_positions(policy, p_up, decide).tobytes() == today.tobytes()
    # the sequential pass, which non-default parameters take, agrees with the fast path
    assert sequential_positions(policy, p_up, decide, PolicyParams()).tobytes() == today.tobytes()


def test_break_even_fee_matches_hand_computation():
    # one trade: (1.01 - c) * 1.02 * 1.0 = 1
    f, r = np.array([1.0, 1.0, 1.0]), np.array([0.01, 0.02, 0.0])
    assert break_even_cost(f, r) == pytest.approx(1.01 - 1 / 1.02, rel=1e-12, abs=0)
    # enter and leave: (1.01 - c)(1.02)(1 - c) = 1, the smaller root of a quadratic
    f = np.array([1.0, 1.0, 0.0])
    k = 1.01 - 1 / 1.02
    c = (2.01 - math.sqrt(2.01**2 - 4 * k)) / 2
    assert break_even_cost(f, r) == pytest.approx(c, rel=1e-12, abs=0)
    stats = trade_stats(f, r)
    assert stats["trades"] == 2 and stats["mean_holding_bars"] == 1.5
    assert stats["break_even_fee_bps"] == pytest.approx(c * 1e4, rel=1e-12)
    # the wealth formula at that cost ends at 1.0
    turnover = np.abs(np.diff(f, prepend=0))
    assert np.prod(1 + f * r - c * turnover) == pytest.approx(1.0, abs=1e-12)


def test_break_even_fee_is_none_without_trades_or_without_profit():
    r = np.array([0.01, -0.02, 0.03])
    assert break_even_cost(np.zeros(3), r) is None  # never trades: the fee cannot matter
    assert break_even_cost(np.array([1.0, -1.0, 1.0]), -r) is None  # loses without fees
    assert trade_stats(np.zeros(3), r) == {
        "trades": 0, "mean_holding_bars": None, "break_even_fee_bps": None}  # fmt: skip


def test_trade_stats_count_changes_and_spells():
    f = np.array([0.0, 1.0, 1.0, 1.0, -1.0, -1.0, 0.5, 0.5])
    stats = trade_stats(f, np.zeros(len(f)))
    # changes at bars 1, 4, 6: spells of 3, 2 and 2 bars (the last cut by the range's end)
    assert stats["trades"] == 3 and stats["mean_holding_bars"] == pytest.approx(7 / 3)


@pytest.mark.parametrize(
    ("field", "value", "option"),
    [("band", 0.5, "--band"), ("band", -0.01, "--band"), ("rebalance", -0.1, "--rebalance"),
     ("cap", 0.0, "--cap"), ("cap", 1.5, "--cap"), ("min_hold", 0, "--min-hold"),
     ("min_hold", 2.5, "--min-hold")],
)  # fmt: skip
def test_bad_parameters_name_the_option(field, value, option):
    with pytest.raises(FcError, match=option):
        PolicyParams(**{field: value})


def test_82k_bars_take_well_under_a_second():
    import time

    p_up, filled = series(6, 82_000, spread=0.03)
    decide = trade_mask(filled, 512)
    params = PolicyParams(band=0.01, rebalance=0.05, min_hold=4)
    began = time.perf_counter()
    for policy in ("discrete", "proportional"):
        held_positions(policy, p_up, decide, params)
    assert time.perf_counter() - began < 1.0


def test_parameters_read_back_from_json_must_be_numbers():
    with pytest.raises(FcError, match="band"):
        PolicyParams(band="0.02")
    with pytest.raises(FcError, match="min_hold"):
        PolicyParams(min_hold=True)
