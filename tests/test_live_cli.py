"""`fc paper` through Typer's runner: replay, report (table and --json), status exit codes,
one-line errors."""

import json

import numpy as np
import pytest
import torch
from conftest import one_line_error
from live_models import make_onnx_model
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.synth import synth_candles
from fc.live.journal import Journal, Row

runner = CliRunner()
SEQ = 32


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.set_num_threads(1)
    return make_onnx_model(tmp_path_factory.mktemp("model"), seq_len=SEQ)[0]


@pytest.fixture
def candle_file(tmp_path):
    path = tmp_path / "candles.parquet"
    synth_candles(days=3, timeframe="30m", seed=2).to_parquet(path)
    return path


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_replay_then_report_json(model, candle_file, tmp_path):
    journal = tmp_path / "j.sqlite"
    out = invoke("paper", "--replay", candle_file, "--model", model, "--journal", journal,
                 "--fee-bps", 5, "--json")  # fmt: skip
    assert out.exit_code == 0, out.output
    replayed = json.loads(out.stdout)
    assert replayed["replay"]["decisions"] == 3 * 48 - SEQ
    out = invoke("paper", "report", "--journal", journal, "--json")
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    rows = Journal(journal).decisions()
    for policy in ("discrete", "proportional"):
        r = report[policy]
        got = rows[rows.policy == policy]
        assert r["final_wealth"] == got.wealth.iloc[-1] and r["decisions"] == len(got)
        assert r["first"] == "2023-01-01T16:00:00Z" and r["last"] == "2023-01-03T23:30:00Z"
        w = got.wealth.to_numpy()
        assert r["max_drawdown"] == pytest.approx((1 - w / np.maximum.accumulate(w)).max())
        assert replayed[policy] == r
    assert report["downtime"] == {"held_candles": 0, "seconds": 0.0, "periods": []}


def test_report_table_and_downtime(tmp_path):
    journal = tmp_path / "j.sqlite"
    book = Journal(journal)
    tf = 1_800_000
    for i, kind in enumerate(["decision", "held", "held", "decision"]):
        book.record([Row("BTC/USDT", "30m", p, i * tf, kind, i * tf, 100.0, 0.6, 1.0, 0.0,
                         1000.0 + i) for p in ("discrete", "proportional")])  # fmt: skip
    out = invoke("paper", "report", "--journal", journal)
    assert out.exit_code == 0, out.output
    assert "discrete" in out.stdout and "1,003.00" in out.stdout
    assert "held through 2 candle(s)" in out.stdout and "1.0 h in 1 period(s)" in out.stdout


def test_status_exit_code_says_late_or_not(model, candle_file, tmp_path):
    journal = tmp_path / "j.sqlite"
    assert invoke("paper", "--replay", candle_file, "--model", model, "--journal", journal)
    out = invoke("paper", "status", "--journal", journal, "--json")
    assert out.exit_code == 1  # the replayed candles are of 2023: long overdue now
    state = json.loads(out.stdout)
    assert state["late"] and state["last_candle"] == "2023-01-03T23:30:00Z"
    book = Journal(journal)
    now = int(np.datetime64("now", "ms").astype(np.int64))
    book.record([Row("BTC/USDT", "30m", p, now - now % 1_800_000, "decision", now, 1.0, 0.5, 0.0,
                     0.0, 1.0) for p in ("discrete", "proportional")])  # fmt: skip
    out = invoke("paper", "status", "--journal", journal)
    assert out.exit_code == 0, out.output
    assert "on time" in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["paper", "report", "--journal", "{tmp}/none.sqlite"], "no such journal"),
        (["paper", "status", "--journal", "{tmp}/none.sqlite"], "no such journal"),
        (["paper", "--replay", "{tmp}/c.parquet"], "no model"),
        (["paper", "--replay", "{tmp}/none.parquet", "--model", "{model}"], "no such file"),
        (["paper", "--replay", "{tmp}/c.parquet", "--model", "{model}", "--symbol", "ETH/BTC"],
         "not ETH/BTC"),
        (["paper", "--replay", "{tmp}/c.parquet", "--model", "{model}", "--capital", "0"],
         "--capital"),
        (["paper", "--replay", "{tmp}/c.parquet", "--model", "{tmp}/c.parquet"], "c.parquet"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(args, message, model, candle_file, tmp_path):
    argv = [a.format(tmp=tmp_path, model=model) for a in args]
    candle_file.rename(tmp_path / "c.parquet")
    out = runner.invoke(app, argv)
    assert out.exit_code == 2, out.output
    assert out.stderr.startswith("fc: error: ") and out.stderr.count("\n") == 1
    assert message in out.stderr and "Traceback" not in out.output


def test_help_shows_examples():
    for args in (["paper", "--help"], ["paper", "report", "--help"], ["paper", "status", "--help"]):
        out = invoke(*args)
        assert out.exit_code == 0 and "Example: fc paper" in out.stdout


def test_a_file_that_is_not_a_journal_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not sqlite at all" * 100)
    out = invoke("paper", "report", "--journal", bad)
    assert out.exit_code == 2 and "not a readable journal" in out.stderr
    assert bad.read_bytes() == b"not sqlite at all" * 100  # nothing written beside or into it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.sqlite"]


def test_replay_start_that_is_not_a_date_is_one_line(model, candle_file, tmp_path):
    journal = tmp_path / "j.sqlite"
    one_line_error(invoke("paper", "--replay", candle_file, "--model", model, "--start", "foo",
                          "--journal", journal), "--start 'foo' is not a date")  # fmt: skip
