"""The paper service through the real ccxt client against a fake Binance on loopback: decisions,
every fault the exchange can make, the candle in progress, a restart in the middle."""

import numpy as np
import pytest
import torch
from binance_fixture import BinanceServer, _num
from conftest import make_candles
from live_models import make_onnx_model

from fc.core.data.features import price_change
from fc.core.evaluation.policies import POLICIES
from fc.live.clock import SimulatedClock
from fc.live.exchange import Exchange
from fc.live.journal import Journal
from fc.live.predictor import load_predictor
from fc.live.service import PaperConfig, PaperService

TF = 1_800_000
SEQ = 64
N = 120
FIRST = 80  # the first candle decided in these tests


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.set_num_threads(1)
    return make_onnx_model(tmp_path_factory.mktemp("model"), seq_len=SEQ)[0]


class ExchangeClock(SimulatedClock):
    """Simulated time shared with the fake exchange: a sleep moves both."""

    def __init__(self, server: BinanceServer, lag_ms: int = 0):
        super().__init__(0)
        self.server, self.lag_ms = server, lag_ms  # the exchange's clock runs lag_ms behind

    def set(self, now_ms: int) -> None:
        super().set(now_ms)
        self.server.now_ms = now_ms - self.lag_ms

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.server.now_ms = self.now_ms() - self.lag_ms


@pytest.fixture
def market(binance_server):
    binance_server.timeframe = "30m"
    # prices as the wire carries them (8 decimals), so closes compare exactly
    binance_server.candles = make_candles(N, timeframe="30min", seed=7).map(_num).astype(float)
    # answer with the candle in progress whatever endTime says, as a careless exchange might
    binance_server.klines = lambda params, s=binance_server: BinanceServer.klines(
        s, {k: v for k, v in params.items() if k != "endTime"}
    )
    return binance_server


def open_ms(candles, i) -> int:
    return int(candles.index[i].value // 1_000_000)


def build(market, model_path, journal, window_s=None):
    clock = ExchangeClock(market)
    exchange = Exchange(url=market.url, timeout_ms=300, retries=2, backoff_s=0.05,
                        sleep=clock.sleep)  # fmt: skip
    predictor = load_predictor(model_path, symbol="BTC/USDT")
    config = PaperConfig("BTC/USDT", predictor.timeframe, fee_bps=2.0, window_s=window_s)
    return PaperService(config, exchange, predictor, journal, clock), clock


def decide(service, clock, candles, i, delay_s=5):
    clock.set(open_ms(candles, i) + TF + delay_s * 1000)
    return service.decide_at()


def test_several_decisions_read_closed_candles_only(market, model_path):
    journal = Journal(":memory:")
    service, clock = build(market, model_path, journal)
    predictor = service.predictor
    closes = market.candles["close"].to_numpy()
    pc = price_change(closes)
    for i in range(FIRST, FIRST + 5):
        d = decide(service, clock, market.candles, i)
        assert d.candle_ms == open_ms(market.candles, i) and d.close == closes[i]
        assert d.p_up == pytest.approx(predictor.p_up(pc[i - SEQ + 1 : i + 1]), abs=0)
    rows = journal.decisions()
    assert len(rows) == 10 and set(rows.policy) == set(POLICIES)
    assert market.count("/api/v3/klines") == 5  # one request each: 65 candles fit a page


@pytest.mark.parametrize(
    "fault",
    ["429", "500", "502", "503", "slow", "malformed", "missing_fields", "non_numeric",
     "high_low", "non_positive", "shifted"],
)  # fmt: skip
def test_each_fault_is_retried_then_decided(market, model_path, fault):
    market.slow_s = 0.6
    journal = Journal(":memory:")
    service, clock = build(market, model_path, journal)
    clean = Journal(":memory:")
    reference, rclock = build(market, model_path, clean)
    market.fail(fault, times=3)  # more than the exchange's own retries for network faults
    d = decide(service, clock, market.candles, FIRST)
    assert d is not None and d.close == market.candles["close"].iloc[FIRST]
    assert market.count("/api/v3/klines") >= 2
    assert d.p_up == decide(reference, rclock, market.candles, FIRST).p_up


def test_persistent_fault_is_skipped_and_the_next_close_decided(market, model_path):
    journal = Journal(":memory:")
    service, clock = build(market, model_path, journal, window_s=60)
    market.fail("503", times=1000)
    assert decide(service, clock, market.candles, FIRST) is None
    assert clock.now_ms() <= open_ms(market.candles, FIRST) + TF + 60_000
    assert journal.events().kind.tolist() == ["skip"]
    market.faults.clear()
    assert decide(service, clock, market.candles, FIRST + 1) is not None


def test_candle_not_closed_on_the_exchange_is_waited_for(market, model_path):
    journal = Journal(":memory:")
    service, clock = build(market, model_path, journal)
    clock.lag_ms = 8000  # the exchange's clock is 8 s behind ours: t is not closed there yet
    d = decide(service, clock, market.candles, FIRST)
    assert d is not None and d.candle_ms == open_ms(market.candles, FIRST)
    assert clock.slept >= 2.0


def test_restart_in_the_middle_continues_without_duplicates(market, model_path, tmp_path):
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    service, clock = build(market, model_path, journal)
    for i in range(FIRST, FIRST + 4):
        decide(service, clock, market.candles, i)
    journal.close()
    journal = Journal(path)  # restarted: down for candles FIRST+4 and FIRST+5
    service, clock = build(market, model_path, journal)
    assert decide(service, clock, market.candles, FIRST + 3) is None  # already journalled
    for i in range(FIRST + 6, FIRST + 9):
        assert decide(service, clock, market.candles, i) is not None
    rows = journal.decisions()
    assert not rows.duplicated(["policy", "candle_ms"]).any()
    d = rows[rows.policy == "discrete"]
    assert d.kind.tolist() == ["decision"] * 4 + ["held"] * 2 + ["decision"] * 3
    held = d[d.kind == "held"]
    assert (held.position == d.position.iloc[3]).all()
    # the held candles earned their own returns: wealth is the formula's, candle by candle
    closes = market.candles["close"].to_numpy()[FIRST : FIRST + 9]
    f = d.position.to_numpy()
    step = 1 + f[:-1] * (closes[1:] / closes[:-1] - 1) - 2e-4 * np.abs(np.diff(f, prepend=0))[:-1]
    np.testing.assert_allclose(d.wealth.to_numpy()[1:], 10_000 * np.cumprod(step), rtol=1e-12)
