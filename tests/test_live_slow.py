"""Slow live runs (`make test-all`): a 1m model deciding every minute for three minutes against
the fake Binance in real time, and a stop while a request hangs."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from live_models import make_onnx_model
from test_live_process import NotifySocket, start_paper, stop_with_sigterm, wall_candles

from fc.live.journal import Journal

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_1m(tmp_path_factory):
    torch.set_num_threads(1)
    return make_onnx_model(tmp_path_factory.mktemp("m1"), seq_len=32, timeframe="1m")[0]


@pytest.fixture(scope="module")
def trained_1m(tmp_path_factory):
    """A small model trained by `fc train --timeframe 1m` on `fc data synth --timeframe 1m`
    candles and exported by `fc export --onnx`, as a user would make one."""
    work = tmp_path_factory.mktemp("trained")
    fc = str(Path(sys.executable).parent / "fc")
    run = subprocess.run  # each step must succeed; check=True shows its output when not
    run([fc, "data", "synth", "--timeframe", "1m", "--days", "3", "--store", work / "s"],
        check=True, capture_output=True)  # fmt: skip
    out = run([fc, "train", "--symbol", "SYNTH/USDT", "--timeframe", "1m", "--store", work / "s",
               "--seq-len", "32", "--hidden", "8", "--layers", "1", "--epochs", "1",
               "--max-steps", "30", "--split", "2023-01-03", "--runs", work / "r", "--quiet",
               "--device", "cpu"], check=True, capture_output=True, text=True)  # fmt: skip
    run_dir = out.stdout.strip().splitlines()[-1]
    run([fc, "export", run_dir, "--onnx"], check=True, capture_output=True)
    return Path(run_dir) / "export" / "model.onnx"


@pytest.fixture
def live_market(binance_server):
    """1m candles from 200 minutes ago to 5 minutes ahead; the exchange's clock is the wall's."""
    binance_server.timeframe = "1m"
    past = wall_candles(205)
    past.index = past.index + pd.Timedelta(5, "min")
    binance_server.candles = past
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            binance_server.now_ms = int(time.time() * 1000)
            stop.wait(0.1)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    yield binance_server
    stop.set()
    ticker.join()


def test_a_1m_model_decides_every_minute_for_three_minutes(live_market, trained_1m, tmp_path):
    journal = tmp_path / "journal.sqlite"
    listener = NotifySocket(tmp_path / "notify")
    proc = start_paper(trained_1m, live_market, journal, listener.path, "--delay", "2",
                       "--window", "30")  # fmt: skip
    try:
        assert listener.wait_for("READY=1", 30)
        time.sleep(3 * 60 + 5)
        err, _ = stop_with_sigterm(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    rows = Journal(journal).decisions()
    assert set(rows.symbol) == {"SYNTH/USDT"} and set(rows.timeframe) == {"1m"}
    d = rows[(rows.policy == "discrete") & (rows.kind == "decision")]
    assert len(d) >= 3
    assert (d.candle_ms.diff().dropna() == 60_000).all()  # every minute, none missed
    lag = d.decided_ms - (d.candle_ms + 60_000)  # from the close to the journal row
    late = lag.iloc[1:] if len(d) > 3 else lag  # the first may be the catch-up run
    assert ((late >= 2000) & (late < 10_000)).all(), lag.tolist()


def test_sigterm_while_a_request_hangs_exits_0_within_10_s(live_market, model_1m, tmp_path):
    live_market.slow_s = 12.0
    journal = tmp_path / "journal.sqlite"
    listener = NotifySocket(tmp_path / "notify")
    live_market.fail("slow", times=100)
    proc = start_paper(model_1m, live_market, journal, listener.path)
    try:
        assert listener.wait_for("READY=1", 30)
        deadline = time.monotonic() + 10
        while live_market.count("/api/v3/klines") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        _, seconds = stop_with_sigterm(proc)
        assert seconds < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert Journal(journal).integrity() == "ok"
