"""`fc paper diff`: after a replay the journal matches the backtest of the same candles exactly;
a hand-edited p_up, a changed close, another model, another fee, a downtime are each reported at
their candle with their reason; bad input is one line, exit 2."""

import json
import shutil
import sqlite3

import pandas as pd
import pytest
import torch
from conftest import one_line_error
from export_runs import synth_run
from live_models import make_onnx_model
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.studies.runs import read_config

runner = CliRunner()
SEQ = 32
START = "2023-01-02"  # first decision of the replays
OUTAGE = [100, 101]  # bars missing from the candle file: filled, held by both sides


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """A run exported to ONNX, and a journal of its replay over the run's candles, 5 bps fee."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("diff")
    run = root / "run"
    run.mkdir()
    data = synth_run(run, days=6, seed=4, outage=OUTAGE, seq_len=SEQ, split="2023-01-04")
    # prices as an exchange sends them (8 decimals), so the fake Binance serves the same floats
    pd.read_parquet(data).map(lambda v: float(f"{v:.8f}")).to_parquet(data)
    assert invoke("export", run, "--onnx").exit_code == 0
    journal = root / "journal.sqlite"
    out = invoke("paper", "--replay", data, "--model", run / "export" / "model.onnx", "--journal",
                 journal, "--fee-bps", 5, "--capital", 1000, "--start", START)  # fmt: skip
    assert out.exit_code == 0, out.output
    return run, data, journal


def diff(journal, run, *extra):
    out = invoke("paper", "diff", "--journal", journal, "--run", run, "--json", *extra)
    return out, (json.loads(out.stdout) if out.exit_code in (0, 1) else None)


def copy(path, tmp_path):
    return shutil.copy(path, tmp_path / path.name)


def journal_candles(journal) -> list[int]:
    with sqlite3.connect(journal) as db:
        return [t for (t,) in db.execute("SELECT DISTINCT candle_ms FROM decisions ORDER BY 1")]


def iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_replay_matches_its_backtest_exactly(replayed):
    run, data, journal = replayed
    out, r = diff(journal, run, "--data", data)
    assert out.exit_code == 0, out.output
    assert r["matches"] and r["differing"] == 0 and r["first"] is None
    assert r["compared"] == len(journal_candles(journal)) == 6 * 48 - 48
    assert r["fee_bps"] == 5 and r["fee_from"] == "journal"
    assert all(d is not None and d <= 1e-9 for d in r["max_abs_diff"].values())
    text = invoke("paper", "diff", "--journal", journal, "--run", run, "--data", data)
    assert text.exit_code == 0 and "all match" in text.stdout


def test_the_candles_can_come_from_the_exchange(replayed, binance_server):
    run, data, journal = replayed
    binance_server.timeframe = "30m"
    binance_server.candles = pd.read_parquet(data)
    out, r = diff(journal, run, "--exchange-url", binance_server.url)
    assert out.exit_code == 0, out.output
    assert r["matches"] and r["compared"] == 6 * 48 - 48


def test_a_p_up_edited_by_hand_is_exactly_that_candle(replayed, tmp_path):
    run, data, journal = replayed
    edited = copy(journal, tmp_path)
    candle = journal_candles(journal)[40]
    with sqlite3.connect(edited) as db:
        db.execute("UPDATE decisions SET p_up = p_up + 0.01 WHERE candle_ms = ? AND "
                   "policy = 'discrete'", (candle,))  # fmt: skip
    out, r = diff(edited, run, "--data", data)
    assert out.exit_code == 1, out.output
    assert r["differing"] == 1 and r["differing_candles"] == [iso(candle)]
    first = r["first"]
    assert first["candle"] == iso(candle)
    assert first["journal"]["p_up_discrete"] - first["backtest"]["p_up_discrete"] == (
        pytest.approx(0.01, abs=1e-12)
    )
    assert [x["reason"] for x in first["reasons"]] == ["journal_edited"]
    assert r["max_abs_diff"]["p_up"] == pytest.approx(0.01, abs=1e-12)


def test_a_changed_close_in_the_data_is_its_candle_with_the_reason(replayed, tmp_path):
    run, data, journal = replayed
    candles = pd.read_parquet(data)
    k = 200  # inside the journal's candles, after the outage
    candles.iloc[k, candles.columns.get_loc("close")] *= 1.001
    candles.iloc[k, candles.columns.get_loc("high")] *= 1.001
    changed = tmp_path / "changed.parquet"
    candles.to_parquet(changed)
    out, r = diff(journal, run, "--data", changed)
    assert out.exit_code == 1, out.output
    when = iso(candles.index[k].value // 1_000_000)
    assert r["first"]["candle"] == when
    reasons = {x["reason"]: x["detail"] for x in r["first"]["reasons"]}
    assert list(reasons) == ["close_different"] and when in reasons["close_different"]
    assert (
        out.stdout
        and "close_different"
        in invoke("paper", "diff", "--journal", journal, "--run", run, "--data", changed).stdout
    )


def test_another_model_and_another_fee_are_reasons(replayed, tmp_path):
    run, data, journal = replayed
    config = read_config(run)
    other = make_onnx_model(tmp_path, seq_len=SEQ, timeframe="30m", symbol=config.symbol,
                            seed=7)[0]  # fmt: skip
    out, r = diff(journal, run, "--data", data, "--model", other)
    assert out.exit_code == 1
    assert r["first"]["candle"] == iso(journal_candles(journal)[0])
    assert "model_different" in [x["reason"] for x in r["first"]["reasons"]]

    out, r = diff(journal, run, "--data", data, "--fee-bps", 0)
    assert out.exit_code == 1
    # the first candle's wealth is the capital on both sides; the fee is paid in the next step
    assert r["first"]["candle"] == iso(journal_candles(journal)[1])
    assert [x["reason"] for x in r["first"]["reasons"]] == ["fee_different"]
    assert "5 bps" in r["first"]["reasons"][0]["detail"]


def test_a_downtime_is_held_through(replayed, tmp_path):
    run, data, _ = replayed
    journal = tmp_path / "down.sqlite"
    model = run / "export" / "model.onnx"
    for span in (["--start", START, "--end", "2023-01-03T00:00"], ["--start", "2023-01-03T02:00"]):
        out = invoke("paper", "--replay", data, "--model", model, "--journal", journal,
                     "--fee-bps", 5, *span)  # fmt: skip
        assert out.exit_code == 0, out.output
    out, r = diff(journal, run, "--data", data)
    assert out.exit_code == 1
    assert (
        r["first"]["candle"] == "2023-01-03T00:00:00Z" and r["first"]["journal"]["kind"] == "held"
    )
    assert [x["reason"] for x in r["first"]["reasons"]] == ["held_through_downtime"]


def test_bad_input_is_one_line_exit_2(replayed, tmp_path):
    run, data, journal = replayed
    not_sqlite = tmp_path / "junk.sqlite"
    not_sqlite.write_bytes(b"no journal here" * 50)
    one_line_error(invoke("paper", "diff", "--journal", not_sqlite, "--run", run, "--data", data),
                   "not a readable journal")  # fmt: skip
    assert not_sqlite.read_bytes() == b"no journal here" * 50
    other_app = tmp_path / "app.sqlite"
    with sqlite3.connect(other_app) as db:
        db.execute("CREATE TABLE decisions (id INTEGER PRIMARY KEY)")
    one_line_error(invoke("paper", "diff", "--journal", other_app, "--run", run, "--data", data),
                   "not an fc journal")  # fmt: skip
    wrong = tmp_path / "eth"
    shutil.copytree(run, wrong)
    config = json.loads((wrong / "config.json").read_text())
    (wrong / "config.json").write_text(json.dumps(config | {"symbol": "ETH/BTC"}))
    one_line_error(invoke("paper", "diff", "--journal", journal, "--run", wrong, "--data", data),
                   "ETH/BTC 30m", "BTC/USDT 30m")  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    (wrong / "config.json").write_text(json.dumps(config | {"timeframe": "1h"}))
    one_line_error(invoke("paper", "diff", "--journal", journal, "--run", wrong, "--data", data),
                   "BTC/USDT 1h")  # fmt: skip
    one_line_error(invoke("paper", "diff", "--journal", tmp_path / "none.sqlite", "--run", run),
                   "no such journal")  # fmt: skip
    later = pd.read_parquet(data)
    later.index = later.index + pd.Timedelta(365, "D")
    later.to_parquet(tmp_path / "later.parquet")
    one_line_error(invoke("paper", "diff", "--journal", journal, "--run", run, "--data",
                          tmp_path / "later.parquet"), "the candles have none from")  # fmt: skip


def test_a_run_never_exported_is_predicted_by_its_torch_model(replayed, tmp_path):
    run, data, journal = replayed
    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("export"))
    out, r = diff(journal, bare, "--data", data)
    assert out.exit_code in (0, 1), out.output
    assert r["predictions"] == "torch" and r["model_sha256"] == ""
    assert r["max_abs_diff"]["p_up"] < 1e-5  # float32 torch and onnxruntime: close, not equal
    if not r["matches"]:
        assert "torch_predictions" in [x["reason"] for x in r["first"]["reasons"]]


def test_policy_parameters_follow_the_model_and_a_changed_band_is_named(replayed, tmp_path):
    """The diff backtests with the graph's policy parameters: a replay overriding the band on
    the command line differs at its first banded decision, and the recorded parameters say why;
    the same band exported into the graph and replayed matches exactly."""
    run, data, _ = replayed
    model = run / "export" / "model.onnx"
    journal = tmp_path / "banded.sqlite"
    out = invoke("paper", "--replay", data, "--model", model, "--journal", journal,
                 "--fee-bps", 5, "--capital", 1000, "--start", START, "--band", 0.3)  # fmt: skip
    assert out.exit_code == 0, out.output
    got, r = diff(journal, run, "--data", data)
    assert got.exit_code == 1 and not r["matches"]
    reasons = {x["reason"]: x["detail"] for x in r["first"]["reasons"]}
    assert "policy_params_different" in reasons and "0.3" in reasons["policy_params_different"]
    assert r["policy_params"]["discrete"]["band"] == 0.0
    banded = tmp_path / "banded-run"
    shutil.copytree(run, banded)
    assert invoke("export", banded, "--onnx", "--band", 0.3).exit_code == 0
    journal = tmp_path / "banded-graph.sqlite"
    graph = banded / "export" / "model.onnx"
    out = invoke("paper", "--replay", data, "--model", graph, "--journal", journal,
                 "--fee-bps", 5, "--capital", 1000, "--start", START)  # fmt: skip
    assert out.exit_code == 0, out.output
    got, r = diff(journal, banded, "--data", data)
    assert got.exit_code == 0 and r["matches"], json.dumps(r["first"])
    assert r["policy_params"]["discrete"]["band"] == 0.3


def test_without_data_the_runs_own_candles_are_read_when_they_cover_the_journal(replayed):
    """No --data and no --exchange-url: the run's own candle file covers the journal, so the
    diff reads it and never the exchange (none is reachable from the tests)."""
    run, data, journal = replayed
    out, r = diff(journal, run)
    assert out.exit_code == 0, out.output
    assert r["matches"] and r["compared"] == 6 * 48 - 48
