"""The paper service as a process: SIGTERM stops it cleanly, systemd hears READY/STOPPING, a
kill -9 mid-write leaves a readable journal, and the unit file passes systemd-analyze."""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import make_candles
from live_models import make_onnx_model

from fc.live.journal import Journal
from fc.live.notify import Notifier

ROOT = Path(__file__).resolve().parents[1]
FC = [str(Path(sys.executable).parent / "fc")]


@pytest.fixture(scope="module")
def model_1m(tmp_path_factory):
    torch.set_num_threads(1)
    return make_onnx_model(tmp_path_factory.mktemp("m1"), seq_len=32, timeframe="1m")[0]


def wall_candles(n: int, timeframe: str = "1min"):
    """n candles whose last one closed at the latest minute boundary of the wall clock."""
    now = pd.Timestamp.now(tz="UTC").floor(timeframe)
    candles = make_candles(n, timeframe=timeframe, seed=11)
    candles.index = pd.date_range(end=now - pd.Timedelta(timeframe), periods=n, freq=timeframe,
                                  tz="UTC", name="timestamp", unit="ns")  # fmt: skip
    return candles.map(lambda v: float(f"{v:.8f}"))


class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET, read by a thread."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.path, self.messages = str(path), []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                pass
            except OSError:
                return

    def wait_for(self, text: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in m for m in list(self.messages)):
                return True
            time.sleep(0.05)
        return any(text in m for m in list(self.messages))


def start_paper(model, server, journal, notify_path, *extra):
    env = os.environ | {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "1000000"}
    argv = [*FC, "paper", "--model", str(model), "--exchange-url", server.url, "--journal",
            str(journal), "--window", "59", "--delay", "0", "--log-json", *extra]  # fmt: skip
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def stop_with_sigterm(proc) -> tuple[str, float]:
    """SIGTERM the service and wait up to 10 s: (its stderr, seconds it took to exit). A process
    that does not exit is killed, so a failing test never leaves it behind."""
    proc.send_signal(signal.SIGTERM)
    began = time.monotonic()
    try:
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return err, time.monotonic() - began


def test_notifier_speaks_the_sd_notify_protocol(tmp_path):
    listener = NotifySocket(tmp_path / "notify")
    notifier = Notifier(listener.path)
    assert notifier.ready("trading") and notifier.watchdog() and notifier.stopping()
    assert listener.wait_for("STOPPING=1", 2)
    assert listener.messages == ["READY=1\nSTATUS=trading", "WATCHDOG=1", "STOPPING=1"]


def test_notifier_never_blocks_on_a_full_socket(tmp_path):
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never read
    silent.bind(str(tmp_path / "silent"))
    notifier = Notifier(str(tmp_path / "silent"))
    began = time.monotonic()
    sent = [notifier.watchdog() for _ in range(1000)]
    assert time.monotonic() - began < 2 and not all(sent)
    assert not Notifier("").send("READY=1")  # outside systemd: a no-op


def test_sigterm_stops_the_service_cleanly_within_10_s(binance_server, model_1m, tmp_path):
    binance_server.timeframe = "1m"
    if 60 - time.time() % 60 < 8:  # let the minute roll first: the candles end at its start
        time.sleep(60 - time.time() % 60 + 0.5)
    binance_server.candles = wall_candles(200)
    binance_server.now_ms = int(time.time() * 1000)
    journal = tmp_path / "journal.sqlite"
    listener = NotifySocket(tmp_path / "notify")
    proc = start_paper(model_1m, binance_server, journal, listener.path)
    try:
        assert listener.wait_for("READY=1", 30), proc.stderr.read() if proc.poll() else ""
        assert listener.wait_for("WATCHDOG=1", 5)
        # the catch-up decision of the minute just closed
        assert listener.wait_for("STATUS=decided", 20), "no decision"
        err, seconds = stop_with_sigterm(proc)
        assert seconds < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert listener.wait_for("STOPPING=1", 2)
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    decision = next(e for e in events if e["event"] == "decision")
    assert {"time", "candle", "close", "p_up", "positions", "wealth"} <= set(decision)
    assert set(decision["positions"]) == {"discrete", "proportional"}
    assert events[-1]["event"] == "stop"
    book = Journal(journal)
    assert book.events().kind.tolist()[-1] == "stop" and len(book.decisions()) == 2
    assert book.integrity() == "ok"
    book.close()

    # restarted on the same journal: the catch-up run finds its candle decided (or, if the
    # minute turned meanwhile, decides the next one from the restored state); never twice
    listener = NotifySocket(tmp_path / "notify2")
    proc = start_paper(model_1m, binance_server, journal, listener.path)
    try:
        assert listener.wait_for("READY=1", 30)
        time.sleep(3)
        err, _ = stop_with_sigterm(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    rows = Journal(journal).decisions()
    assert not rows.duplicated(["policy", "candle_ms"]).any()
    assert Journal(journal).events().kind.tolist().count("start") == 2
    # the minute turning means the exchange (its clock stopped here) has no newer candle: a skip
    assert '"event": "duplicate"' in err or '"event": "skip"' in err or len(rows) == 4


WRITER = textwrap.dedent(
    """
    import sys
    from fc.live.journal import Journal, Row
    book = Journal(sys.argv[1])
    t = 0
    while True:
        rows = [Row("BTC/USDT", "1m", p, t, "decision", t, 100.0 + t, 0.5, 1.0, 0.0, 1.0)
                for p in ("discrete", "proportional")]
        book.record(rows)
        t += 60_000
        if t == 60_000 * 50:
            print("writing", flush=True)
    """
)


def test_kill_9_during_writes_leaves_a_readable_journal(tmp_path):
    path = tmp_path / "journal.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    counts = db.execute("SELECT policy, COUNT(*) FROM decisions GROUP BY policy").fetchall()
    db.close()
    # both policies' rows of a candle are one transaction: never one without the other
    assert counts[0][1] == counts[1][1] >= 50
    assert Journal(path).integrity() == "ok"


@pytest.mark.parametrize(
    ("unit_file", "verified"),
    [("fc-paper.service", "fc-paper.service"), ("fc-paper@.service", "fc-paper@btc.service")],
)
def test_unit_file_passes_systemd_analyze_verify(tmp_path, unit_file, verified):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (.ci/run installs systemd)")
    unit = (ROOT / "deploy" / unit_file).read_text()
    # verify wants ExecStart's binary to exist: point it at this checkout's fc
    fc_bin = Path(sys.executable).parent / "fc"
    (tmp_path / unit_file).write_text(unit.replace("/opt/fc/.venv/bin/fc", str(fc_bin)))
    # a template is verified as an instance: verify finds fc-paper@.service beside the name
    # fc-paper@btc.service and expands %i to btc
    out = subprocess.run([tool, "verify", str(tmp_path / verified)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    problems = [line for line in out.stderr.splitlines() if unit_file.split(".")[0] in line]
    assert out.returncode == 0 and not problems, out.stderr
