"""The paper engine against an in-memory exchange: decisions, accounting, restarts, faults."""

import numpy as np
import pandas as pd
import pytest
from live_fakes import ExchangeUnavailable, FakeExchange, FakePredictor, reference_p_up

from fc.core.data.features import next_return, price_change
from fc.core.evaluation.policies import POLICIES, position, wealth_factors
from fc.live.clock import SimulatedClock
from fc.live.journal import Journal
from fc.live.service import PaperConfig, PaperService

TF = 30 * 60_000
SEQ = 16


def ms(ts) -> int:
    return int(pd.Timestamp(ts).value // 1_000_000)


@pytest.fixture
def candles(candles_factory):
    return candles_factory(n=60, timeframe="30min")


def build(candles, journal, fee_bps=0.0, **source_args):
    clock = SimulatedClock()
    source = FakeExchange(candles, **source_args)
    cfg = PaperConfig("BTC/USDT", "30m", fee_bps=fee_bps, capital=1000.0)
    return PaperService(cfg, source, FakePredictor(SEQ), journal, clock), clock, source


def run(service, clock, candles, first, last):
    """decide_at 5 s after the close of candles[first..last]."""
    out = []
    for t in candles.index[first : last + 1]:
        clock.set(ms(t) + TF + 5000)
        out.append(service.decide_at())
    return out


def expected(candles, first, cost=0.0, decided=None):
    """Independent accounting: positions decided at each bar from `first` (held where not in
    `decided`), wealth after each bar's step, per policy."""
    close = candles["close"].to_numpy()
    pc = price_change(close)
    bars = np.arange(first, len(close))
    p = np.array([reference_p_up(pc[t - SEQ + 1 : t + 1]) for t in bars])
    decided = np.ones(len(bars), bool) if decided is None else decided
    out = {}
    for policy in POLICIES:
        f = position(policy, p)
        held = f.copy()
        for i in range(1, len(held)):
            if not decided[i]:
                held[i] = held[i - 1]
        factors = wealth_factors(held, next_return(close)[bars], cost)
        out[policy] = (held, np.cumprod(factors))
    return out


def test_decisions_positions_and_wealth_match_the_formula(candles):
    journal = Journal(":memory:")
    service, clock, _ = build(candles, journal, fee_bps=5.0)
    decisions = run(service, clock, candles, SEQ, len(candles) - 1)
    assert all(d is not None for d in decisions)
    rows = journal.decisions()
    want = expected(candles, SEQ, cost=5e-4)
    for policy in POLICIES:
        got = rows[rows.policy == policy]
        f, w = want[policy]
        assert len(got) == len(candles) - SEQ
        np.testing.assert_array_equal(got.position.to_numpy(), f)
        # the row at t+1 holds the wealth after the step decided at t
        np.testing.assert_allclose(got.wealth.to_numpy()[1:], 1000.0 * w[:-1], rtol=1e-12)
        assert got.wealth.iloc[0] == 1000.0
    assert (rows.kind == "decision").all()


def test_window_is_the_last_seq_len_changes_ending_at_the_close(candles):
    journal = Journal(":memory:")
    service, clock, _ = build(candles, journal)
    run(service, clock, candles, 30, 30)
    pc = price_change(candles["close"].to_numpy())
    np.testing.assert_array_equal(service.predictor.windows[0], pc[30 - SEQ + 1 : 31])


def test_same_candle_is_never_decided_twice(candles):
    journal = Journal(":memory:")
    service, clock, _ = build(candles, journal)
    first = run(service, clock, candles, 20, 20)[0]
    clock.advance(30)
    assert first is not None and service.decide_at() is None
    assert len(journal.decisions()) == 2


def test_restart_restores_state_and_continues_exactly(candles, tmp_path):
    path = tmp_path / "paper.sqlite"
    journal = Journal(path)
    service, clock, _ = build(candles, journal)
    run(service, clock, candles, SEQ, 35)
    journal.close()
    journal = Journal(path)  # a new process: state from the journal alone
    service, clock, _ = build(candles, journal)
    assert service.last_candle_ms == ms(candles.index[35])
    run(service, clock, candles, 30, len(candles) - 1)  # re-runs 30..35: no duplicates
    rows = journal.decisions()
    assert not rows.duplicated(["policy", "candle_ms"]).any()
    uninterrupted = Journal(":memory:")
    other, oclock, _ = build(candles, uninterrupted)
    run(other, oclock, candles, SEQ, len(candles) - 1)
    pd.testing.assert_frame_equal(
        rows.drop(columns="decided_ms"), uninterrupted.decisions().drop(columns="decided_ms")
    )


def test_downtime_is_accounted_as_the_position_held(candles):
    journal = Journal(":memory:")
    service, clock, _ = build(candles, journal, fee_bps=3.0)
    run(service, clock, candles, SEQ, 30)
    run(service, clock, candles, 36, len(candles) - 1)  # down for candles 31..35
    rows = journal.decisions()
    decided = ~np.isin(np.arange(SEQ, len(candles)), np.arange(31, 36))
    want = expected(candles, SEQ, cost=3e-4, decided=decided)
    for policy in POLICIES:
        got = rows[rows.policy == policy]
        f, w = want[policy]
        np.testing.assert_array_equal(got.position.to_numpy(), f)
        np.testing.assert_allclose(got.wealth.to_numpy()[1:], 1000.0 * w[:-1], rtol=1e-12)
        held = got[got.kind == "held"]
        assert list(held.candle_ms) == [ms(t) for t in candles.index[31:36]]
        assert held.p_up.isna().all() and (held.trade == 0).all()


def test_exchange_outage_inside_the_window_is_gridded(candles):
    journal = Journal(":memory:")
    gappy = candles.drop(candles.index[[25, 26]])
    service, clock, _ = build(gappy, journal)
    run(service, clock, candles, 30, 30)
    close = candles["close"].to_numpy().copy()
    close[25:27] = close[24]  # filled bars carry the close forward
    pc = price_change(close)
    np.testing.assert_array_equal(service.predictor.windows[0], pc[30 - SEQ + 1 : 31])


def test_faults_are_retried_with_backoff_then_decided(candles):
    journal = Journal(":memory:")
    service, clock, source = build(candles, journal)
    source.faults = [ExchangeUnavailable("HTTP 503"), "stale", ExchangeUnavailable("timeout")]
    d = run(service, clock, candles, 20, 20)[0]
    assert d is not None and d.candle_ms == ms(candles.index[20])
    assert clock.slept == 2 + 4 + 8
    assert len(source.calls) == 4


def test_persistent_fault_is_skipped_within_the_window_and_logged(candles, caplog):
    journal = Journal(":memory:")
    service, clock, source = build(candles, journal)
    source.faults = [ExchangeUnavailable("HTTP 429")] * 100
    assert run(service, clock, candles, 20, 20)[0] is None
    close = ms(candles.index[20]) + TF
    assert clock.now_ms() <= close + service.config.decision_window_ms
    assert len(journal.decisions()) == 0
    events = journal.events()
    assert list(events.kind) == ["skip"] and "unavailable" in events.detail[0]
    source.faults = []
    assert run(service, clock, candles, 21, 21)[0] is not None  # the process keeps going


def test_in_progress_candle_is_never_used(candles):
    journal = Journal(":memory:")
    service, clock, source = build(candles, journal, in_progress=True)
    d = run(service, clock, candles, 20, 20)[0]
    assert d.candle_ms == ms(candles.index[20])
    assert d.close == candles["close"].iloc[20]


def test_late_job_does_not_decide(candles):
    journal = Journal(":memory:")
    service, clock, _ = build(candles, journal)
    clock.set(ms(candles.index[20]) + TF + service.config.decision_window_ms + 1000)
    assert service.decide_at() is None
    assert journal.events().kind.tolist() == ["skip"]


def test_trigger_fires_delay_seconds_after_each_boundary():
    import datetime as dt

    from fc.live.scheduler import decision_trigger

    now = ms("2024-05-01 10:17:42")
    trigger = decision_trigger(TF, 5.0, now)
    first = trigger.get_next_fire_time(None, pd.Timestamp(now, unit="ms", tz="UTC"))
    assert first == dt.datetime(2024, 5, 1, 10, 30, 5, tzinfo=dt.timezone.utc)
    second = trigger.get_next_fire_time(first, first)
    assert second - first == dt.timedelta(minutes=30)
