"""Policy parameters in the live service: the same positions as core.policies across a restart
and downtime, and the journal's migration that records them."""

import json
import sqlite3

import numpy as np
import pandas as pd
from live_fakes import FakeExchange, FakePredictor, reference_p_up

from fc.core.data.features import price_change
from fc.core.evaluation.policies import POLICIES, PolicyParams, held_positions
from fc.live.clock import SimulatedClock
from fc.live.journal import SCHEMA_VERSION, Journal
from fc.live.service import PaperConfig, PaperService

TF = 30 * 60_000
SEQ = 16
PARAMS = {
    "discrete": PolicyParams(band=0.1, flat_inside=True, min_hold=3, cap=0.5),
    "proportional": PolicyParams(rebalance=0.15, min_hold=2),
}


def test_service_positions_equal_core_policies_across_restarts_and_downtime(
    tmp_path, candles_factory
):
    candles = candles_factory(n=90, timeframe="30min", seed=2)
    path = tmp_path / "journal.sqlite"
    clock = SimulatedClock()
    cfg = PaperConfig("BTC/USDT", "30m", capital=1.0, policy_params=PARAMS)
    down = {40, 41}  # the service is stopped: these candles are held rows after the restart
    for t in candles.index[SEQ:-1]:
        if candles.index.get_loc(t) in down:
            continue
        # a fresh service at every candle: the holding time must come back from the journal
        journal = Journal(path)
        service = PaperService(cfg, FakeExchange(candles), FakePredictor(SEQ), journal, clock)
        clock.set(int(t.value // 1_000_000) + TF + 5000)
        assert service.decide_at() is not None
        journal.close()

    bars = np.arange(len(candles))
    decide = (bars >= SEQ) & (bars < len(candles) - 1) & ~np.isin(bars, list(down))
    pc = price_change(candles["close"].to_numpy())
    p_up = np.array([reference_p_up(pc[t - SEQ + 1 : t + 1]) if t >= SEQ else 0.5 for t in bars])
    with sqlite3.connect(path) as db:
        rows = pd.read_sql("SELECT * FROM decisions ORDER BY candle_ms", db)
    for policy in POLICIES:
        want = held_positions(policy, p_up, decide, PARAMS[policy])[SEQ:-1]
        got = rows[rows.policy == policy]
        np.testing.assert_array_equal(got["position"].to_numpy(), want)
        assert list(got["kind"].iloc[40 - SEQ : 42 - SEQ]) == ["held", "held"]
        assert {json.loads(p)["min_hold"] for p in got["policy_params"]} == {
            PARAMS[policy].min_hold
        }
    # the parameters bind, so the test could tell a service that ignored them
    defaults = held_positions("discrete", p_up, decide)[SEQ:-1]
    assert not np.array_equal(defaults, rows[rows.policy == "discrete"]["position"].to_numpy())


V1_SCHEMA = """
CREATE TABLE decisions (
    symbol TEXT NOT NULL, timeframe TEXT NOT NULL, policy TEXT NOT NULL,
    candle_ms INTEGER NOT NULL, kind TEXT NOT NULL, decided_ms INTEGER NOT NULL,
    close REAL NOT NULL, p_up REAL, position REAL NOT NULL, trade REAL NOT NULL,
    wealth REAL NOT NULL, model TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (symbol, timeframe, policy, candle_ms));
CREATE TABLE events (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}');
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO decisions VALUES ('BTC/USDT', '30m', 'discrete', 0, 'decision', 5, 100.0, 0.6,
    1.0, 1.0, 1000.0, 'm.onnx');
"""


def test_a_version_1_journal_is_read_as_is_and_migrated_when_written(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
    reader = Journal(path, read_only=True)  # a health check must not change the file
    assert reader.last("BTC/USDT", "30m", "discrete").policy_params == ""
    assert list(reader.decisions()["policy_params"]) == [""]
    reader.close()
    with sqlite3.connect(path) as db:
        assert "policy_params" not in {r[1] for r in db.execute("PRAGMA table_info(decisions)")}
    writer = Journal(path)
    assert writer.last("BTC/USDT", "30m", "discrete").position == 1.0  # old rows kept
    assert writer.last_change("BTC/USDT", "30m", "discrete") == 0
    writer.close()
    with sqlite3.connect(path) as db:
        assert "policy_params" in {r[1] for r in db.execute("PRAGMA table_info(decisions)")}
        version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert version == str(SCHEMA_VERSION) == "2"
    Journal(path).close()  # a second open finds nothing to migrate
