"""A three-symbol universe service as a process against the recorded Binance (the real ccxt
client on loopback) with every fifth klines request failing: killed with SIGKILL after its
first decision and restarted on the same journal, it decides every symbol once, on the same
candle, and writes nothing twice."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_candles
from live_models import make_universe_model

from fc.live.journal import Journal

FC = [str(Path(sys.executable).parent / "fc")]
SYMBOLS = ("BTC/USDT", "SYNTH/USDT", "ETH/BTC")  # markets the fake Binance lists


def wall_candles(n: int, seed: int) -> pd.DataFrame:
    """n 1m candles whose last one closed at the latest minute boundary of the wall clock."""
    now = pd.Timestamp.now(tz="UTC").floor("1min")
    candles = make_candles(n, timeframe="1min", seed=seed)
    candles.index = pd.date_range(end=now - pd.Timedelta("1min"), periods=n, freq="1min",
                                  tz="UTC", name="timestamp", unit="ns")  # fmt: skip
    return candles.map(lambda v: float(f"{v:.8f}"))


def start(model: Path, url: str, journal: Path) -> subprocess.Popen:
    argv = [*FC, "paper", "--model", str(model), "--exchange-url", url, "--journal",
            str(journal), "--window", "59", "--delay", "0", "--log-json"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("FC_")}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def wait_rows(journal: Path, n: int, timeout: float) -> pd.DataFrame:
    """The journal's rows once it holds at least n (read-only, beside the writer)."""
    end, rows = time.monotonic() + timeout, pd.DataFrame()
    while time.monotonic() < end:
        if journal.is_file():
            book = Journal(journal, read_only=True)
            rows = book.decisions()
            book.close()
            if len(rows) >= n:
                return rows
        time.sleep(0.2)
    return rows


@pytest.mark.slow
def test_kill_9_and_restart_decide_every_symbol_once(binance_server, tmp_path):
    binance_server.timeframe = "1m"
    if 60 - time.time() % 60 < 35:  # the whole test inside one minute: one candle to decide
        time.sleep(60 - time.time() % 60 + 0.5)
    binance_server.candles = {s: wall_candles(200, seed=i) for i, s in enumerate(SYMBOLS)}
    binance_server.now_ms = int(time.time() * 1000)
    for i in range(60):  # 20 %: every fifth klines request answers 503, the second one first
        binance_server.fail("503" if i % 5 == 1 else "ok")
    model = make_universe_model(tmp_path / "m", SYMBOLS)
    journal = tmp_path / "journal.sqlite"
    proc = start(model, binance_server.url, journal)
    try:
        rows = wait_rows(journal, 3 * 2 + 3, 30)
    finally:
        proc.kill()  # SIGKILL: no stop event, no clean close
        _, err = proc.communicate()
    assert len(rows) == 9, err
    assert len(binance_server.faults) <= 56  # three symbols and the 503's retry at least
    proc = start(model, binance_server.url, journal)
    try:
        time.sleep(6)  # the catch-up run: the candle is decided already
        assert proc.poll() is None, proc.stderr.read()
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    book = Journal(journal, read_only=True)
    after, events = book.decisions(), book.events()
    assert book.integrity() == "ok"
    book.close()
    assert not after.duplicated(["symbol", "policy", "candle_ms"]).any()
    assert len(after) == 9 and set(after.symbol) == {*SYMBOLS, "portfolio"}
    assert after.candle_ms.nunique() == 1  # one candle, decided for every symbol together
    assert '"event": "duplicate"' in err
    assert events.kind.tolist().count("start") == 2
