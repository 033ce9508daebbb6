"""The paper service with a two-symbol declared-feature model against the recorded exchange
(tests/binance_fixture.py, the real ccxt client): it reads candle t of both symbols, waits for
one that arrives late, skips with its reason a candle that never arrives, and never decides on
an older candle standing in for t; each p_up equals the graph's on the backtest's own window."""

import numpy as np
import pandas as pd
import pytest
from feature_runs import OTHER, train_two_symbol_run, two_markets

from fc.core.data.candles import grid_at
from fc.core.data.inputs import grid_features, with_features
from fc.export.run import export_run
from fc.live.clock import SimulatedClock
from fc.live.exchange import Exchange
from fc.live.journal import Journal
from fc.live.market_inputs import SymbolSources
from fc.live.predictor import load_predictor
from fc.live.service import PaperConfig, PaperService

TF = 30 * 60_000
DELAY = 5000


class ExchangeClock(SimulatedClock):
    """Simulated time whose sleeps (the service's waits between retries) run `on_sleep`: what
    the exchange has published by then."""

    on_sleep = staticmethod(lambda: None)

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.on_sleep()


@pytest.fixture(scope="module")
def model(tmp_path_factory, one_torch_thread):
    run, _ = train_two_symbol_run(tmp_path_factory.mktemp("service"))
    export_run(run, windows=64, drift=False)
    return load_predictor(run / "export" / "model.onnx")


def ms(t: pd.Timestamp) -> int:
    return int(t.value // 1_000_000)


def backtest_p_up(predictor, markets: dict, t: pd.Timestamp) -> float:
    """Independently of the service: the backtest's grid (with_features over every candle up to
    t of both symbols) and the graph's p_up on its window ending at t."""
    grids = {s: grid_at(frame[frame.index <= t], "30m") for s, frame in markets.items()}
    grid = with_features(predictor.spec, grids, "30m")
    return float(predictor.p_up_at(grid_features(grid), np.array([len(grid) - 1]))[0])


def test_waits_for_a_late_candle_skips_a_missing_one_and_never_reads_a_stale_one(
    model, binance_server
):
    markets = two_markets(days=3)
    btc, eth = markets["BTC/USDT"], markets[OTHER]
    times = btc.index
    binance_server.timeframe, binance_server.symbols = "30m", ("BTC/USDT", OTHER)
    binance_server.candles = {"BTC/USDT": btc.iloc[:51], OTHER: eth.iloc[:51]}
    clock = ExchangeClock()
    sources = {s: Exchange(url=binance_server.url, now_ms=clock.now_ms, sleep=clock.sleep,
                           retries=0) for s in markets}  # fmt: skip
    journal = Journal(":memory:")
    config = PaperConfig("BTC/USDT", "30m", capital=1000.0, model="m.onnx")
    service = PaperService(config, SymbolSources(sources), model, journal, clock)

    def decide(k: int):
        clock.set(ms(times[k]) + TF + DELAY)
        return service.decide_at()

    # bar 50: both closed and present
    first = decide(50)
    assert first is not None and first.p_up == backtest_p_up(model, markets, times[50])

    # bar 51: BTC's candle is there, ETH's arrives after the service's first wait
    binance_server.candles = {"BTC/USDT": btc.iloc[:52], OTHER: eth.iloc[:51]}
    clock.on_sleep = lambda: binance_server.candles.update({OTHER: eth.iloc[:52]})
    late = decide(51)
    assert late is not None and clock.slept > 0  # it waited...
    assert late.p_up == backtest_p_up(model, markets, times[51])  # ...for ETH's own bar 51
    copy = eth.iloc[[50]].set_axis(times[[51]])  # ETH's bar 50 standing in for its bar 51
    stale = {"BTC/USDT": btc.iloc[:52], OTHER: pd.concat([eth.iloc[:51], copy])}
    assert late.p_up != backtest_p_up(model, stale, times[51])

    # bar 52: ETH's candle never comes within the decision window: skipped, with the reason
    binance_server.candles = {"BTC/USDT": btc.iloc[:53], OTHER: eth.iloc[:52]}
    clock.on_sleep = lambda: None
    assert decide(52) is None
    events = journal.events()
    skip = events[events.kind == "skip"].iloc[-1]
    assert '"reason": "unavailable"' in skip.detail and OTHER in skip.detail
    assert "not closed yet" in skip.detail and times[52].strftime("%H:%M") in skip.detail
    assert not journal.has("BTC/USDT", "30m", ms(times[52]))

    # bar 53: ETH's 52 never existed (an exchange gap), 53 did: a decision on ETH's real bars,
    # bar 52 held through as the backtest holds a position through a filled bar
    gap = eth.drop(eth.index[52])
    binance_server.candles = {"BTC/USDT": btc.iloc[:54], OTHER: gap.iloc[:53]}
    after = decide(53)
    assert after is not None and after.held == 1
    with_gap = {"BTC/USDT": btc, OTHER: gap}
    assert after.p_up == backtest_p_up(model, with_gap, times[53])
    rows = journal.decisions()
    assert list(rows[rows.policy == "discrete"].kind) == [
        "decision",
        "decision",
        "held",
        "decision",
    ]
