"""One model per journal: every row carries the model file's sha256, another model is refused
(journal byte for byte untouched) unless --new-model, the report splits by model, and journals
written before the column existed are migrated."""

import hashlib
import json
import sqlite3

import pytest
import torch
from conftest import one_line_error
from live_models import make_onnx_model
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.synth import synth_candles
from fc.live.journal import SCHEMA_VERSION, Journal, Row

runner = CliRunner()
SEQ = 32
HALF = "2023-01-03T00:00:00"  # where the second model takes over


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("models")
    return [make_onnx_model(root / name, seq_len=SEQ, seed=seed)[0]
            for name, seed in (("a", 0), ("b", 1))]  # fmt: skip


@pytest.fixture
def candle_file(tmp_path):
    path = tmp_path / "candles.parquet"
    synth_candles(days=4, timeframe="30m", seed=3).to_parquet(path)
    return path


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_rows(path):
    book = Journal(path, read_only=True)
    try:
        return book.decisions()
    finally:
        book.close()


def replay(candles, model, journal, *extra):
    return runner.invoke(app, ["paper", "--replay", str(candles), "--model", str(model),
                               "--journal", str(journal), *map(str, extra)])  # fmt: skip


def test_a_second_model_is_refused_then_continues_with_new_model(models, candle_file, tmp_path):
    a, b = models
    journal = tmp_path / "j.sqlite"
    assert replay(candle_file, a, journal, "--end", HALF).exit_code == 0
    rows = journal_rows(journal)
    assert len(rows) and set(rows.model_sha256) == {sha(a)} and set(rows.model) == {str(a)}

    before = journal.read_bytes()
    refused = replay(candle_file, b, journal, "--start", HALF)
    one_line_error(refused, "--new-model", sha(a)[:12], sha(b)[:12])
    assert journal.read_bytes() == before
    assert (
        replay(candle_file, a, journal, "--start", HALF, "--end", "2023-01-03T06:00").exit_code == 0
    )

    out = replay(candle_file, b, journal, "--start", "2023-01-03T06:00", "--new-model", "--json")
    assert out.exit_code == 0, out.output
    rows = journal_rows(journal)
    assert rows.groupby("model_sha256").size().to_dict() == {
        sha(a): 2 * (96 + 12 - SEQ), sha(b): 2 * (36 + 48)}  # fmt: skip
    report = json.loads(runner.invoke(app, ["paper", "report", "--journal", str(journal),
                                            "--json"]).stdout)  # fmt: skip
    assert {"symbol", "timeframe", "discrete", "proportional", "downtime"} <= set(report)
    models_seen = report["by_model"]
    assert list(models_seen) == [sha(a), sha(b)]
    assert models_seen[sha(b)]["first"] == "2023-01-03T06:00:00Z"
    for policy in ("discrete", "proportional"):
        whole = report[policy]
        parts = [models_seen[s][policy] for s in (sha(a), sha(b))]
        assert sum(p["decisions"] for p in parts) == whole["decisions"]
        assert sum(p["trades"] for p in parts) == whole["trades"]
        # the two models' returns compound to the journal's
        growth = (1 + parts[0]["return"]) * (1 + parts[1]["return"])
        assert growth == pytest.approx(1 + whole["return"], rel=1e-12)
    text = runner.invoke(app, ["paper", "report", "--journal", str(journal)]).stdout
    assert "by model" in text and sha(a)[:12] in text and sha(b)[:12] in text


def test_a_v1_journal_is_migrated_and_still_read(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE decisions (symbol TEXT NOT NULL, timeframe TEXT NOT NULL,
            policy TEXT NOT NULL, candle_ms INTEGER NOT NULL, kind TEXT NOT NULL,
            decided_ms INTEGER NOT NULL, close REAL NOT NULL, p_up REAL, position REAL NOT NULL,
            trade REAL NOT NULL, wealth REAL NOT NULL, model TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (symbol, timeframe, policy, candle_ms));
        CREATE TABLE events (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        INSERT INTO decisions VALUES ('BTC/USDT', '30m', 'discrete', 0, 'decision', 5, 100.0,
            0.6, 1.0, 1.0, 1000.0, 'old.onnx');
        """
    )
    db.commit()
    db.close()
    reader = Journal(path, read_only=True)  # a reader never migrates: the default shows
    assert reader.last("BTC/USDT", "30m", "discrete").model_sha256 == ""
    reader.close()
    book = Journal(path)
    assert book.decisions().model_sha256.tolist() == [""]
    version = book.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),) and SCHEMA_VERSION == 2
    book.record([Row("BTC/USDT", "30m", "discrete", 1800_000, "decision", 9, 101.0, 0.4, -1.0,
                     -2.0, 1010.0, "new.onnx", "ab" * 32)])  # fmt: skip
    assert book.decisions().model_sha256.tolist() == ["", "ab" * 32]


def test_a_sqlite_file_that_is_not_a_journal_is_left_alone(models, candle_file, tmp_path):
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE decisions (id INTEGER PRIMARY KEY, what TEXT)")
    db.commit()
    db.close()
    before = other.read_bytes()
    one_line_error(replay(candle_file, models[0], other), "not an fc journal")
    one_line_error(runner.invoke(app, ["paper", "report", "--journal", str(other)]),
                   "not an fc journal")  # fmt: skip
    assert other.read_bytes() == before
