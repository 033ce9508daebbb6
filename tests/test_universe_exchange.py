"""A universe service against the stand-in Binance (the real ccxt client on loopback, one
ExchangePool): one symbol's candles withheld for three candles and one market removed. Every
other symbol is decided on time at each candle, the withheld one is journalled missing and
holds its weight, the removed one is closed once, and a crash (the service and its journal
abandoned mid-run, as kill -9 leaves them) and restart write no (symbol, candle) twice."""

import json

import numpy as np
import pandas as pd
from conftest import make_candles
from live_models import make_universe_model

from fc.live.clock import SimulatedClock
from fc.live.exchange import ExchangePool
from fc.live.journal import Journal
from fc.live.service import PaperConfig
from fc.live.universe_model import load_universe_predictor
from fc.live.universe_service import UniverseService

SYMBOLS = ("BTC/USDT", "SYNTH/USDT", "ETH/BTC", "XRP/USDT")
WITHHELD, REMOVED = "SYNTH/USDT", "XRP/USDT"
TF = 1_800_000


def decimal(value: float) -> float:
    return float(f"{value:.8f}")  # as the exchange's strings parse


def test_withheld_candles_and_a_removed_market(binance_server, tmp_path):
    server = binance_server
    server.timeframe, server.symbols = "30m", SYMBOLS
    server.candles = {s: make_candles(80, timeframe="30min", seed=i).map(decimal)
                      for i, s in enumerate(SYMBOLS)}  # fmt: skip
    opens = server.candles[SYMBOLS[0]].index.as_unit("ns").asi8 // 1_000_000
    ticks = [int(t) for t in opens[-12:]]
    held = ticks[3:6]  # WITHHELD's candles of these three ticks come only at the fourth
    removed = ticks[8]  # REMOVED is gone from the market list from this tick on
    predictor = load_universe_predictor(make_universe_model(tmp_path / "m", SYMBOLS, seq_len=32,
                                                            timeframe="30m", k=1))  # fmt: skip
    config = PaperConfig(symbol=predictor.symbol, timeframe="30m", fee_bps=2.0, deadline_s=60,
                         policy_params=predictor.meta["policy_params"])  # fmt: skip
    clock = SimulatedClock(ticks[0])
    pool = ExchangePool(SYMBOLS, "30m", url=server.url, now_ms=clock.now_ms, sleep=clock.sleep,
                        retries=0)  # fmt: skip
    pool.limiter.interval_ms = 1.0  # the loopback server needs no spacing; the bench measures it
    path = tmp_path / "journal.sqlite"
    requests = {}

    def run(part, again=()):
        journal = Journal(path)
        service = UniverseService(config, pool, predictor, journal, clock)
        for t in part:
            server.now_ms = t + TF + 5_000
            server.withheld = {WITHHELD: held[0]} if t in held else {}
            if t >= removed:
                server.symbols = SYMBOLS[:3]
            clock.set(t + TF + 5_000)
            before = server.count()
            assert (service.decide_at() is None) == (t in again)  # again: a duplicate
            requests[t] = server.count() - before
            assert clock.now_ms() <= t + TF + 60_000 + 16_000  # on time: by the deadline
        return journal

    crashed = run(ticks[:5])  # then it dies without closing anything, mid-outage
    journal = run(ticks[4:], again=ticks[4:5])  # restart: the fifth candle is decided already
    rows, absent = journal.decisions(), journal.absences()
    assert not rows.duplicated(["symbol", "policy", "candle_ms"]).any()
    assert not absent.duplicated(["symbol", "candle_ms"]).any()
    for symbol in ("BTC/USDT", "ETH/BTC"):  # every other symbol decided at every candle
        got = rows[(rows.symbol == symbol) & (rows.policy == "discrete")]
        assert got.candle_ms.tolist() == ticks and (got.kind == "decision").all()
    mine = rows[(rows.symbol == WITHHELD) & (rows.policy == "discrete")].set_index("candle_ms")
    assert mine.index.tolist() == ticks
    assert mine.index[mine.kind == "held"].tolist() == held
    assert mine.position[held].nunique() == 1 and mine.position[held[0]] == mine.position[ticks[2]]
    missing = absent[absent.reason == "missing"]
    assert list(zip(missing.symbol, missing.candle_ms, strict=True)) == [(WITHHELD, t)
                                                                         for t in held]  # fmt: skip
    gone = absent[absent.reason == "delisted"]
    assert list(zip(gone.symbol, gone.candle_ms, strict=True)) == [(REMOVED, removed)]
    assert rows[rows.symbol == REMOVED].candle_ms.max() == ticks[7]
    for strategy in ("long_short", "equal_weight_discrete", "equal_weight_proportional"):
        book = rows[(rows.symbol == "portfolio") & (rows.policy == strategy)]
        assert book.candle_ms.tolist() == ticks
        weights = pd.DataFrame([json.loads(p)["weights"] for p in book.policy_params],
                               index=book.candle_ms)  # fmt: skip
        assert (weights.loc[held, WITHHELD] == weights.loc[ticks[2], WITHHELD]).all()
        assert (weights.loc[removed:, REMOVED] == 0).all()
        trade = book.set_index("candle_ms").trade
        if weights.loc[ticks[7], REMOVED] != 0:  # closed once: its weight leaves at one candle
            assert trade[removed] >= abs(weights.loc[ticks[7], REMOVED])
    # after the first tick each symbol is asked only for the candle it lacks, in one request
    steady = [requests[t] for t in ticks[1:3]]
    assert steady == [len(SYMBOLS)] * 2
    assert np.all(server.start_times()[-3:])  # startTime on every request: only new candles
    crashed.close()
    journal.close()
