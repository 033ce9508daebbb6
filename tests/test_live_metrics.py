"""Prometheus metrics of the paper service, read back with prometheus_client's own text parser:
in process (one more decision per candle, gauges equal to the journal's rows, the latency from
the service's clock), from a running `fc paper` (faults counted by kind, the model's hash), and
the bad input (a port in use)."""

import hashlib
import socket
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import one_line_error
from live_fakes import FakeExchange, FakePredictor
from live_models import make_onnx_model
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_live_process import NotifySocket, start_paper, stop_with_sigterm
from test_live_slow import live_market  # noqa: F401  (the exchange's clock ticks with the wall)
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.evaluation.policies import POLICIES
from fc.live.clock import SimulatedClock
from fc.live.journal import Journal
from fc.live.metrics import DECISION_BUCKETS, PrometheusMetrics
from fc.live.service import PaperConfig, PaperService

TF = 30 * 60_000
SEQ = 16


def samples(text: str) -> dict:
    """{(sample name, ((label, value), ...)): value} of an exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: dict, name: str, **labels) -> float:
    return scraped[(name, tuple(sorted(labels.items())))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ms(ts) -> int:
    return int(pd.Timestamp(ts).value // 1_000_000)


def test_each_candle_adds_one_decision_and_the_gauges_are_the_journal_rows(candles_factory):
    candles = candles_factory(n=40, timeframe="30min")
    journal, clock, metrics = Journal(":memory:"), SimulatedClock(), PrometheusMetrics()
    config = PaperConfig("BTC/USDT", "30m", fee_bps=5, capital=1000.0)
    service = PaperService(config, FakeExchange(candles), FakePredictor(SEQ), journal, clock,
                           metrics)  # fmt: skip
    decided = [20, 21, 22, 23, 27]  # 24..26 missed: held when 27 is decided
    for n, i in enumerate(decided, start=1):
        close = ms(candles.index[i]) + TF
        clock.set(close + 5_000 + 250 * n)  # the service's clock, not the wall's
        assert service.decide_at() is not None
        got = samples(generate_latest(metrics.registry).decode())
        rows = journal.decisions()
        for policy in POLICIES:
            assert value(got, "fc_decisions_total", policy=policy) == n
            last = rows[rows.policy == policy].iloc[-1]
            assert value(got, "fc_wealth", policy=policy) == last.wealth
            assert value(got, "fc_position", policy=policy) == last.position
        assert value(got, "fc_p_up") == last.p_up
        assert value(got, "fc_last_candle_timestamp_seconds") == ms(candles.index[i]) / 1000
        assert value(got, "fc_last_decision_timestamp_seconds") == clock.now_ms() / 1000
    lags = np.array([5 + 0.25 * n for n in range(1, len(decided) + 1)])
    assert value(got, "fc_held_candles_total") == 3
    assert value(got, "fc_decision_seconds_count") == len(decided)
    assert value(got, "fc_decision_seconds_sum") == pytest.approx(lags.sum())
    for bound in DECISION_BUCKETS:
        want = (lags <= bound).sum()
        assert value(got, "fc_decision_seconds_bucket", le=str(float(bound))) == want
    assert "process_cpu_seconds_total" in {name for name, _ in got}

    # a restart: counters start again at 0, the gauges come back from the journal
    again = PrometheusMetrics()
    PaperService(config, FakeExchange(candles), FakePredictor(SEQ), journal, clock, again)
    restored = samples(generate_latest(again.registry).decode())
    for policy in POLICIES:
        assert value(restored, "fc_decisions_total", policy=policy) == 0
        assert value(restored, "fc_wealth", policy=policy) == value(got, "fc_wealth", policy=policy)
    assert value(restored, "fc_last_decision_timestamp_seconds") == clock.now_ms() / 1000


@pytest.fixture(scope="module")
def model_1m(tmp_path_factory):
    torch.set_num_threads(1)
    return make_onnx_model(tmp_path_factory.mktemp("m1"), seq_len=32, timeframe="1m")[0]


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return samples(answer.read().decode())


def wait_for(port: int, name: str, labels: dict, at_least: float, timeout: float) -> dict:
    end = time.monotonic() + timeout
    while True:
        got = scrape(port)
        if got.get((name, tuple(sorted(labels.items()))), 0) >= at_least:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"{name}{labels} stayed below {at_least}: {got}")
        time.sleep(0.2)


def test_a_running_service_serves_its_metrics(live_market, model_1m, tmp_path):  # noqa: F811
    # the catch-up decision's first request answers 503 (the exchange module retries after 1 s),
    # the retry a truncated answer (the service retries after 2 s)
    live_market.fail("503")
    live_market.fail("malformed")
    port = free_port()
    listener = NotifySocket(tmp_path / "notify")
    proc = start_paper(model_1m, live_market, tmp_path / "j.sqlite", listener.path,
                       "--metrics-port", str(port))  # fmt: skip
    try:
        assert listener.wait_for("READY=1", 30), proc.stderr.read() if proc.poll() else ""
        wait_for(port, "fc_decisions_total", {"policy": "discrete"}, 1, 30)
        got = scrape(port)
    finally:
        err, _ = stop_with_sigterm(proc)
    assert proc.returncode == 0, err
    rows = Journal(tmp_path / "j.sqlite", read_only=True).decisions()
    decided = rows[rows.kind == "decision"]
    last = decided.candle_ms.max()
    for policy in POLICIES:  # one per candle (two if a minute turned before the scrape)
        assert value(got, "fc_decisions_total", policy=policy) == (decided.policy == policy).sum()
    assert value(got, "fc_last_candle_timestamp_seconds") == last / 1000
    assert value(got, "fc_decision_seconds_count") == len(decided) / 2
    assert value(got, "fc_exchange_errors_total", kind="unavailable") == 1
    assert value(got, "fc_exchange_errors_total", kind="bad_data") == 1
    sha = hashlib.sha256(model_1m.read_bytes()).hexdigest()
    info = value(got, "fc_model_info", sha256=sha, seq_len="32", timeframe="1m", symbol="BTC/USDT")
    assert info == 1 and set(rows.model_sha256) == {sha}
    assert value(got, "process_resident_memory_bytes") > 0


def test_a_port_in_use_is_one_line_exit_2(model_1m, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["paper", "--model", model_1m, "--journal", tmp_path / "j.sqlite",
                "--metrics-port", port]  # fmt: skip
        out = CliRunner().invoke(app, [str(a) for a in argv])
    one_line_error(out, f"--metrics-port {port}", "free port")
    assert not (tmp_path / "j.sqlite").exists()


def test_metrics_with_a_replay_is_one_line_exit_2(model_1m, tmp_path):
    out = CliRunner().invoke(app, ["paper", "--model", str(model_1m), "--replay", "x.parquet",
                                   "--metrics-port", "9000"])  # fmt: skip
    one_line_error(out, "--metrics-port", "--replay")


def test_the_service_does_not_need_prometheus_client_when_metrics_are_off():
    from test_layers import loaded_by

    loaded = loaded_by(["fc.live.service", "fc.live.replay", "fc.live.scheduler"])
    assert "fc.live.metrics" in loaded and "prometheus_client" not in loaded
