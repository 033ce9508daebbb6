"""The backtest against plain per-bar loops and hand-checkable cases."""

import numpy as np
import pandas as pd
import pytest

from fc.core.data.candles import to_grid
from fc.core.evaluation.backtest import BacktestConfig, run_backtest, trade_mask

SEQ = 8


def grid_of(close, filled=None, start="2023-12-31 20:00"):
    n = len(close)
    index = pd.date_range(start, periods=n, freq="30min", tz="UTC", name="timestamp", unit="ns")
    df = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": np.ones(n)},
        index=index,
    )
    df["filled"] = np.zeros(n, bool) if filled is None else filled
    return df


def loop_wealth(close, p_up, filled, seq_len, policy, cost, in_range):
    """The plain per-bar loop: decide at real bars with a full window, hold otherwise."""
    w, f_prev, out = 1.0, 0.0, []
    started = False
    for t in range(len(close) - 1):
        if not in_range[t]:
            continue
        decide = t >= seq_len and not filled[t]
        if not started and not decide:
            continue
        started = True
        f = f_prev
        if decide:
            f = (1.0 if p_up[t] >= 0.5 else -1.0) if policy == "discrete" else 2 * p_up[t] - 1
        r = close[t + 1] / close[t] - 1
        w *= 1 + f * r - cost * abs(f - f_prev)
        f_prev = f
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("fee_bps", [0.0, 7.5])
def test_vectorised_equals_per_bar_loop(fee_bps):
    rng = np.random.default_rng(1)
    n = 400
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    filled = rng.random(n) < 0.05
    filled[0] = False
    for i in np.flatnonzero(filled):
        close[i] = close[i - 1]
    p_up = rng.random(n)
    grid = grid_of(close, filled)
    cfg = BacktestConfig(fee_bps=fee_bps, bootstrap_reps=20)
    split = str(grid.index[200])
    positions, report = run_backtest(grid, p_up, SEQ, split, cfg, "30m")
    for name, in_range in (("train", grid.index < split), ("validation", grid.index >= split)):
        rows = positions[positions["range"] == name]
        for policy in ("discrete", "proportional"):
            expected = loop_wealth(close, p_up, filled, SEQ, policy, cfg.cost, in_range)
            got = rows[f"wealth_{policy}"].to_numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
            assert report[name][policy]["final_wealth"] == pytest.approx(expected[-1], rel=1e-12)


def test_always_long_without_fee_is_close_ratio():
    rng = np.random.default_rng(2)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, 100)))
    grid = grid_of(close)
    _, report = run_backtest(
        grid, np.ones(100), SEQ, "2030-01-01", BacktestConfig(bootstrap_reps=10), "30m"
    )
    # first decision at t = SEQ, last at n - 2: it earns close[n-1] / close[SEQ]
    assert report["train"]["discrete"]["final_wealth"] == pytest.approx(
        close[-1] / close[SEQ], rel=1e-12
    )
    assert report["train"]["buy_and_hold"]["final_wealth"] == pytest.approx(
        close[-1] / close[SEQ], rel=1e-12
    )


def test_short_gains_exactly_when_price_falls():
    close = np.r_[np.full(SEQ + 1, 100.0), 90.0, 99.0]
    grid = grid_of(close)
    positions, _ = run_backtest(
        grid, np.zeros(len(close)), SEQ, "2030-01-01", BacktestConfig(bootstrap_reps=10), "30m"
    )
    # short at t = SEQ (100 -> 90: +10 %), then at t = SEQ + 1 (90 -> 99: -10 %)
    np.testing.assert_allclose(positions["wealth_discrete"], [1.1, 1.1 * 0.9], rtol=1e-15)
    assert (positions["position_discrete"] == -1).all()


def test_first_decision_needs_a_full_window():
    filled = np.zeros(30, bool)
    mask = trade_mask(filled, SEQ)
    assert np.flatnonzero(mask)[0] == SEQ and not mask[-1]
    close = np.linspace(100, 130, 30)
    positions, _ = run_backtest(
        grid_of(close), np.ones(30), SEQ, "2030-01-01", BacktestConfig(bootstrap_reps=10), "30m"
    )
    assert positions["time"].iloc[0] == grid_of(close).index[SEQ]


def test_filled_bars_hold_the_position(candles_factory):
    df = candles_factory(n=40, timeframe="30min")
    grid = to_grid(df.drop(df.index[[20, 21]]), "30m")
    assert grid["filled"].sum() == 2
    p_up = np.where(np.arange(40) < 20, 0.9, 0.1)
    positions, _ = run_backtest(
        grid, p_up, SEQ, "2030-01-01", BacktestConfig(bootstrap_reps=5), "30m"
    )
    pos = positions.set_index("time")["position_discrete"]
    assert pos.loc[grid.index[19]] == 1 and pos.loc[grid.index[20]] == 1  # held through the gap
    assert pos.loc[grid.index[21]] == 1 and pos.loc[grid.index[22]] == -1


def test_a_strategy_that_never_trades_has_no_psr_and_the_report_is_strict_json():
    """A band no p_up leaves: the discrete policy stays flat, its returns have no dispersion, so
    PSR is undefined: null, not NaN (which strict JSON readers such as jq refuse)."""
    import json

    from fc.core.evaluation.policies import PolicyParams

    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    grid = grid_of(close)
    p_up = np.clip(0.5 + rng.normal(0, 0.01, 200), 0.45, 0.55)
    params = {"discrete": PolicyParams(band=0.2)}
    cfg = BacktestConfig(bootstrap_reps=20)
    _, report = run_backtest(grid, p_up, SEQ, str(grid.index[100]), cfg, "30m", params=params)
    for part in report.values():
        assert part["discrete"]["trades"] == 0 and part["discrete"]["final_wealth"] == 1.0
        assert part["discrete"]["psr"] is None
        assert part["proportional"]["psr"] is not None
    json.dumps(report, allow_nan=False)
