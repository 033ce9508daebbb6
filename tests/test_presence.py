"""Presence (issue 26): symbols listed late, delisted early and with gaps. The portfolio's books
recomputed independently from the weights, the candles and the eligibility rule (hypothesis);
survivorship (a coin without candles in a range leaves its figures as they were); leaks (one
symbol's candles poisoned after T move nothing at or before T); and the bad input of a universe
where no two symbols are ever eligible together."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from hypothesis import given, settings
from hypothesis import strategies as st
from test_universe import data_args, trained_universe
from typer.testing import CliRunner
from universe_presence import write_frames

from fc.cli.main import app
from fc.core.data.presence import eligibility
from fc.core.data.synth import synth_candles
from fc.core.evaluation.backtest import BacktestConfig
from fc.core.evaluation.policies import PolicyParams
from fc.core.evaluation.portfolio import portfolio_backtest, portfolio_weights

runner = CliRunner()
WARM = 3


def universe(draw_or_rng, bars: int, size: int):
    """(closes, real) of `size` symbols over `bars` candles: each listed at a random bar, some
    delisted before the end, a few gaps; closes carried over missing candles (as on the grid)."""
    rng = draw_or_rng
    real = np.zeros((bars, size), dtype=bool)
    for s in range(size):
        start = int(rng.integers(0, bars // 2))
        end = int(rng.integers(start + 1, bars + 1)) if rng.random() < 0.4 else bars
        real[start:end, s] = True
        real[rng.integers(start, end, size=2), s] = False  # gaps (or a shorter life)
        real[start, s] = True  # every symbol has candles
    steps = rng.normal(0, 0.01, (bars, size))
    closes = 100 * np.exp(np.cumsum(steps, axis=0))
    closes = pd.DataFrame(np.where(real, closes, np.nan)).ffill().bfill().to_numpy()
    return closes, real


def loop_wealth(weights, closes, cost):
    """W after each bar: W *= 1 + sum_s w R - cost sum_s |w - w_before|, from the closes."""
    w_before, wealth, out = np.zeros(weights.shape[1]), 1.0, []
    for t in range(len(weights)):
        gain = (weights[t] * (closes[t + 1] / closes[t] - 1)).sum() if t + 1 < len(closes) else 0
        wealth *= 1 + gain - cost * np.abs(weights[t] - w_before).sum()
        w_before = weights[t]
        out.append(wealth)
    return np.array(out)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(4, 6), k=st.integers(1, 2),
       band=st.sampled_from([0.0, 0.02]), min_hold=st.sampled_from([1, 3]))  # fmt: skip
def test_books_follow_the_presence_rule(seed, size, k, band, min_hold):
    rng = np.random.default_rng(seed)
    bars = 60
    closes, real = universe(rng, bars, size)
    eligible = eligibility(real, WARM)
    decide = eligible.any(axis=1)
    decide[-1] = False
    p_up = rng.uniform(0, 1, (bars, size))
    params = PolicyParams(k=k, band=band, min_hold=min_hold)
    books = portfolio_weights(p_up, closes, decide, {"long_short": params}, 1, real, eligible)
    last = [int(np.flatnonzero(real[:, s])[-1]) if real[:, s].any() else -1 for s in range(size)]
    for name, w in books.items():
        before = np.vstack([np.zeros(size), w[:-1]])
        moved = ~np.isclose(w, before, rtol=0, atol=0)
        for s in range(size):
            closed = np.arange(bars) == last[s] if last[s] < bars - 1 else np.zeros(bars, bool)
            # a weight changes only where its symbol is decided, or once where it is delisted
            assert not (moved[:, s] & ~(decide & eligible[:, s]) & ~closed).any(), (name, s)
            if last[s] < bars - 1:
                assert (w[last[s] :, s] == 0).all(), (name, s)  # closed at its last price
        np.testing.assert_allclose(
            np.cumprod(1 + (w[:-1] * (closes[1:] / closes[:-1] - 1)).sum(axis=1)),
            loop_wealth(w, closes, 0.0)[:-1], rtol=0, atol=1e-9,
        )  # fmt: skip
    if band == 0 and min_hold == 1:  # memoryless: the ranking of each decision bar
        w = books["long_short"]
        for t in np.flatnonzero(decide):
            mine = np.flatnonzero(eligible[t])
            k_t = min(k, len(mine) // 2)
            order = mine[np.argsort(-p_up[t, mine], kind="stable")]
            longs = set(order[:k_t]) if k_t else set()
            shorts = set(order[len(order) - k_t :]) if k_t else set()
            # ranked at its last candle, a delisted symbol is closed there all the same
            gone = {s for s in mine if t == last[s] < bars - 1}
            assert {s for s in mine if w[t, s] > 0} == longs - gone
            assert {s for s in mine if w[t, s] < 0} == shorts - gone


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_portfolio_wealth_columns_recompute_within_1e9(seed):
    rng = np.random.default_rng(seed)
    bars, size = 50, 4
    closes, real = universe(rng, bars, size)
    eligible = eligibility(real, WARM)
    decide = eligible.any(axis=1)
    decide[-1] = False
    times = pd.date_range("2024-01-01", periods=bars, freq="1h", tz="UTC")
    parts = {"validation": np.ones(bars, dtype=bool)}
    cfg = BacktestConfig(fee_bps=5.0, bootstrap_reps=20)
    symbols = [f"S{i}/USDT" for i in range(size)]
    p_up = rng.uniform(0, 1, (bars, size))
    frame, report = portfolio_backtest(times, closes, p_up, decide, parts, cfg, "1h", symbols,
                                       presence=(real, eligible))  # fmt: skip
    for policy in ("long_short", "equal_weight_discrete", "equal_weight_proportional"):
        w = frame[[f"weight_{policy}_S{i}_USDT" for i in range(size)]].to_numpy()
        np.testing.assert_allclose(frame[f"wealth_{policy}"], loop_wealth(w, closes, 5e-4),
                                   rtol=0, atol=1e-9)  # fmt: skip
    capped = int((decide & (eligible.sum(axis=1) // 2 < 1)).sum())
    assert report["validation"]["long_short"]["k_capped"] == capped


def test_a_coin_without_candles_in_a_range_leaves_its_figures_as_they_were():
    rng = np.random.default_rng(5)
    bars, size = 80, 4
    closes, real = universe(rng, bars, size)
    real[:, :] = True  # four symbols present throughout...
    late = np.zeros((bars, 1), dtype=bool)
    late[60:] = True  # ...and a fifth listed in the test range
    times = pd.date_range("2024-01-01", periods=bars, freq="1h", tz="UTC")
    parts = {"validation": np.arange(bars) < 55, "test": np.arange(bars) >= 55}
    cfg = BacktestConfig(fee_bps=5.0, bootstrap_reps=50)
    p_up = rng.uniform(0, 1, (bars, size + 1))
    figures = []
    for reals, n in ((real, size), (np.hstack([real, late]), size + 1)):
        eligible = eligibility(reals, WARM)
        decide = eligible.any(axis=1)
        decide[-1] = False
        more = np.hstack([closes, closes[:, :1] * 2])[:, :n]
        _, report = portfolio_backtest(times, more, p_up[:, :n], decide, parts, cfg, "1h",
                                       [f"S{i}/USDT" for i in range(n)],
                                       {"long_short": PolicyParams(k=2)},
                                       presence=(reals, eligible))  # fmt: skip
        figures.append(report)
    for book in figures[1]["validation"].values():
        assert book.pop("k_capped", 0) == 0  # reported only where presence differs
    assert json.dumps(figures[0]["validation"], sort_keys=True) == json.dumps(
        figures[1]["validation"], sort_keys=True
    )
    assert figures[0]["test"] != figures[1]["test"]  # the new coin trades in the test range


# the whole chain: a trained universe with a late listing, a delisting and a gap

SPLIT, TEST = "2023-01-20", "2023-02-01"
QUICK = ["--seq-len", "16", "--hidden", "4", "--layers", "1", "--epochs", "1", "--max-steps",
         "3", "--split", SPLIT, "--test-from", TEST, "--threads", "1", "--quiet"]  # fmt: skip
LIVES = {  # symbol: (first candle, last candle or None)
    "AAA/USDT": (None, None),
    "BBB/USDT": (None, "2023-02-05 12:00"),  # delisted in the test range
    "CCC/USDT": ("2023-01-12", None),  # listed in training
    "DDD/USDT": ("2023-01-26", None),  # listed in validation, before T: pooled scaling
    "EEE/USDT": ("2023-01-30", None),  # listed after T
}
T = pd.Timestamp("2023-01-28 09:00", tz="UTC")


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def write_files(folder: Path, lives=LIVES, poison: str | None = None) -> dict:
    """Each symbol's 30m candles over its life, one file a symbol (write_frames)."""
    frames = {}
    for i, (symbol, (first, last)) in enumerate(lives.items()):
        frame = synth_candles(days=40, timeframe="30m", seed=40 + i, price=10.0 * (i + 1))
        frame = frame.loc[pd.Timestamp(first or 0, tz="UTC") : pd.Timestamp(last or "2100",
                                                                            tz="UTC")]  # fmt: skip
        if symbol == "AAA/USDT" and len(frame) > 700:
            frame = frame.drop(frame.index[700])  # a gap
        if symbol == poison:
            frame = frame.copy()
            late = frame.index > T
            frame.loc[late, ["open", "high", "low", "close"]] *= np.linspace(2, 3, late.sum())[
                :, None
            ]
            if last is not None:  # a delisted symbol poisoned: it trades on after all
                more = synth_candles(days=40, timeframe="30m", seed=99, price=10.0)
                frame = pd.concat([frame, more.loc[frame.index[-1] + pd.Timedelta("30min") :]])
        frames[symbol] = frame
    return write_frames(frames, folder)


@pytest.fixture(scope="module")
def late_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("presence")
    run, report = trained_universe(root, write_files(root / "data"), QUICK, 5.0)
    return root, run, report


def test_late_listings_train_and_trade_without_survivorship(late_run):
    root, run, report = late_run
    config = json.loads((run / "config.json").read_text())
    assert config["pooled_scaling"] == ["DDD/USDT", "EEE/USDT"]  # no training candle of theirs
    assert config["symbol_scaling"]["DDD/USDT"] != config["symbol_scaling"]["CCC/USDT"]
    rows = pd.read_parquet(run / "backtest" / "positions.parquet").set_index("time")
    assert rows.index[0] < pd.Timestamp("2023-01-12", tz="UTC")  # not cut to the overlap
    ddd = rows["p_up_DDD_USDT"]
    first = ddd.first_valid_index()
    assert first == pd.Timestamp("2023-01-26", tz="UTC") + 16 * pd.Timedelta("30min")
    bbb = rows["weight_long_short_BBB_USDT"]
    assert (bbb[bbb.index >= pd.Timestamp("2023-02-05 12:00", tz="UTC")] == 0).all()
    assert report["test"]["portfolio"]["long_short"]["decisions"] > 0


def test_poisoning_one_symbol_after_t_moves_nothing_at_or_before_t(late_run, tmp_path):
    root, run, _ = late_run
    before = pd.read_parquet(run / "backtest" / "positions.parquet").set_index("time")
    for symbol in ("BBB/USDT", "DDD/USDT", "EEE/USDT"):  # delisted after T; listed before, after
        poisoned = write_files(tmp_path / symbol.replace("/", "_"), poison=symbol)
        done = runner.invoke(app, ["backtest", str(run), "--json", *data_args(poisoned)])
        assert done.exit_code == 0, done.output
        now = pd.read_parquet(run / "backtest" / "positions.parquet").set_index("time")
        keep = before.index[before.index <= T]
        pd.testing.assert_frame_equal(
            now.loc[keep, [c for c in now if "wealth" not in c]],
            before.loc[keep, [c for c in before if "wealth" not in c]],
        )


def test_no_two_symbols_ever_eligible_together_is_one_line(tmp_path):
    lives = {"AAA/USDT": (None, "2023-01-10"), "BBB/USDT": ("2023-01-15", None)}
    files = write_files(tmp_path / "data", lives)
    args = ["train", "--symbols", ",".join(lives), *data_args(files), *QUICK,
            "--runs", str(tmp_path / "runs")]  # fmt: skip
    one_line_error(runner.invoke(app, args), "no two", "eligible")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_top_n_and_per_symbol_fees_reach_the_books():
    """--top 2 decides only the two eligible symbols of largest trailing quote volume; a fee per
    symbol is charged on that symbol's trades (the wealth recomputed with a loop)."""
    rng = np.random.default_rng(11)
    bars, size = 60, 5
    closes, real = universe(rng, bars, size)
    volumes = np.where(real, rng.uniform(1, 100, (bars, size)), 0.0)
    eligible = eligibility(real, WARM)
    decide = eligible.any(axis=1)
    decide[-1] = False
    times = pd.date_range("2024-01-01", periods=bars, freq="1h", tz="UTC")
    symbols = [f"S{i}/USDT" for i in range(size)]
    fees = {"S1/USDT": 30.0, "S3/USDT": 12.0}
    cfg = BacktestConfig(fee_bps=5.0, bootstrap_reps=20, symbol_fees=fees, top=2)
    frame, _ = portfolio_backtest(times, closes, rng.uniform(0, 1, (bars, size)), decide,
                                  {"validation": np.ones(bars, dtype=bool)}, cfg, "1h", symbols,
                                  presence=(real, eligible), volumes=volumes)  # fmt: skip
    w = frame[[f"weight_long_short_S{i}_USDT" for i in range(size)]].to_numpy()
    quote = pd.DataFrame(closes * volumes, index=times).rolling("30D").sum().to_numpy()
    for t in np.flatnonzero(decide):
        mine = np.flatnonzero(eligible[t])
        chosen = set(mine[np.argsort(-quote[t, mine], kind="stable")][:2])
        before = w[t - 1] if t else np.zeros(size)
        moved = {s for s in range(size) if w[t, s] != before[s]}
        assert moved <= chosen | {s for s in range(size) if t == np.flatnonzero(real[:, s])[-1]}
    cost = np.array([fees.get(s, 5.0) for s in symbols]) / 1e4
    wealth, held, out = 1.0, np.zeros(size), []
    for t in range(bars):
        gain = (w[t] * (closes[t + 1] / closes[t] - 1)).sum() if t + 1 < bars else 0.0
        wealth *= 1 + gain - (cost * np.abs(w[t] - held)).sum()
        held = w[t]
        out.append(wealth)
    np.testing.assert_allclose(frame["wealth_long_short"], out, rtol=0, atol=1e-9)
