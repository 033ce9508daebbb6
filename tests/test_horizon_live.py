"""A horizon-4 graph traded on a cadence of 4 (issue 25): its metadata says so, `fc paper`
decides on decision candles only and journals the candles between as held, a replay equals
`fc backtest --model` (positions exact, wealth 1e-9, `fc paper diff` 0 differences), a service
restarted in the middle of a holding period decides on the same candles, and a journal decided
on another cadence is refused in one line."""

import json
import sqlite3

import numpy as np
import onnx
import pandas as pd
import pytest
from conftest import one_line_error
from export_runs import make_run
from test_replay_parity import assert_policy_equals_backtest
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.synth import synth_candles

runner = CliRunner()
SEQ, SPLIT, H = 24, "2023-01-12", 4


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def h4_graph(tmp_path_factory):
    root = tmp_path_factory.mktemp("h4")
    data = root / "synth-30m.parquet"
    frame = synth_candles(days=16, timeframe="30m", seed=2)
    frame.drop(frame.index[[600, 601]]).to_parquet(data)  # an outage in the replayed range
    config = dict(hidden=8, layers=2, seq_len=SEQ, data=str(data), timeframe="30m", split=SPLIT,
                  scale_center=1.0, scale_scale=0.003, horizon=H, cadence=H)  # fmt: skip
    make_run(root / "run", **config)
    make_run(root / "sleeves", **{**config, "cadence": None, "sleeves": H})
    make_run(root / "every", **{**config, "horizon": 1, "cadence": None})
    for run in ("run", "sleeves", "every"):
        out = invoke("export", root / run, "--onnx", "--json")
        assert out.exit_code == 0, out.output
    return root, data


def journal_rows(journal):
    with sqlite3.connect(journal) as db:
        return pd.read_sql("SELECT * FROM decisions ORDER BY candle_ms", db)


def replay(data, model, journal, *extra):
    return invoke("paper", "--replay", data, "--model", model, "--journal", journal, "--fee-bps",
                  5, "--capital", 1, "--start", SPLIT, *extra)  # fmt: skip


def test_the_graph_carries_horizon_and_cadence(h4_graph):
    root, _ = h4_graph
    meta = {
        p.key: p.value for p in onnx.load(root / "run" / "export" / "model.onnx").metadata_props
    }
    assert meta["horizon"] == "4" and meta["cadence"] == "4" and "sleeves" not in meta
    plain = onnx.load(root / "every" / "export" / "model.onnx").metadata_props
    assert not {"horizon", "cadence", "sleeves"} & {p.key for p in plain}


@pytest.mark.parametrize("name", ["run", "sleeves"])
def test_replay_equals_backtest_on_a_schedule_and_diff_finds_nothing(h4_graph, tmp_path, name):
    """--cadence 4 (run) and --sleeves 4: the journal's book is the backtest's."""
    root, data = h4_graph
    run, model = root / name, root / name / "export" / "model.onnx"
    out = invoke("backtest", run, "--model", model, "--fee-bps", 5, "--start", SPLIT, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["cadence" if name == "run" else "sleeves"] == H
    backtest = pd.read_parquet(run / "backtest" / "positions.parquet")
    journal = tmp_path / "j.sqlite"
    out = replay(data, model, journal)
    assert out.exit_code == 0, out.output
    rows = journal_rows(journal)
    for policy in ("discrete", "proportional"):
        got = rows[rows.policy == policy].reset_index(drop=True)
        assert_policy_equals_backtest(got, backtest, policy)
        decided = got[got.kind == "decision"]
        steps = (decided.candle_ms // 1_800_000) % H
        if name == "run":  # decisions on decision candles only
            assert len(decided) > 50 and (steps == 0).all()
            assert got.loc[got.kind == "held", "p_up"].isna().all()
        else:  # a sleeve re-decides at every candle: the book moves at most 1/4 at a time
            assert set(steps) == set(range(H))
            moves = got["position"].diff().abs().dropna()
            assert moves.max() <= 2 / H + 1e-12 and (moves > 0).any()
    diff = invoke("paper", "diff", "--journal", journal, "--run", run, "--data", data, "--json")
    assert diff.exit_code == 0, diff.output
    report = json.loads(diff.stdout)
    assert report["differing"] == 0 and report["compared"] == len(rows) // 2


@pytest.mark.parametrize("name", ["run", "sleeves"])
def test_a_restart_mid_holding_decides_on_the_same_candles(h4_graph, tmp_path, name):
    root, data = h4_graph
    model = root / name / "export" / "model.onnx"
    whole, parts = tmp_path / "whole.sqlite", tmp_path / "parts.sqlite"
    assert replay(data, model, whole).exit_code == 0
    stop = "2023-01-14T01:30:00"  # 3 candles after a decision candle (01:00 - 1.5 h)
    assert replay(data, model, parts, "--end", stop).exit_code == 0
    out = invoke("paper", "--replay", data, "--model", model, "--journal", parts, "--fee-bps", 5,
                 "--capital", 1, "--start", stop)  # fmt: skip
    assert out.exit_code == 0, out.output
    a, b = journal_rows(whole), journal_rows(parts)
    columns = ["policy", "candle_ms", "kind", "position", "p_up"]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    pd.testing.assert_series_equal(a["wealth"], b["wealth"], rtol=1e-12)


def test_a_journal_of_another_cadence_is_refused_and_kept(h4_graph, tmp_path):
    root, data = h4_graph
    journal = tmp_path / "j.sqlite"
    assert replay(data, root / "run" / "export" / "model.onnx", journal, "--end",
                  "2023-01-13").exit_code == 0  # fmt: skip
    before = journal.read_bytes()
    out = replay(data, root / "every" / "export" / "model.onnx", journal, "--new-model")
    one_line_error(out, "a cadence of 4 candles", "a cadence of 1 candles")
    assert journal.read_bytes() == before


@pytest.mark.parametrize("how", ["cadence", "sleeves"])
def test_a_five_symbol_universe_replays_its_backtest_on_a_schedule(tmp_path, how):
    """A pooled relative model at H = 4, --cadence 4 or --sleeves 4: the journal's books equal
    fc backtest --model's (weights exact, wealth 1e-9), a cadence's decisions only on decision
    candles, paper diff 0."""
    from test_universe_live import CAPITAL, QUICK, SYMBOLS, write_universe

    files = write_universe(tmp_path / "data")
    data = [a for s, p in files.items() for a in ("--data", f"{s}={p}")]
    args = ["train", "--symbols", ",".join(SYMBOLS), "--target", "relative", "--horizon", H,
            f"--{how}", H, *data, *QUICK, "--threads", 1, "--runs", tmp_path / "runs"]  # fmt: skip
    out = invoke(*args)
    assert out.exit_code == 0, out.output
    run = tmp_path / "runs" / out.stdout.strip().splitlines()[-1].split("/")[-1]
    assert invoke("export", run, "--onnx").exit_code == 0
    model = run / "export" / "model.onnx"
    out = invoke("backtest", run, "--model", model, "--fee-bps", 2, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[how] == H
    test = pd.read_parquet(run / "backtest" / "positions.parquet")
    test = test[test["range"] == "test"].reset_index(drop=True)
    journal = tmp_path / "paper.sqlite"
    replay_args = [a for s, p in files.items() for a in ("--replay", f"{s}={p}")]
    start = test.time.iloc[0].strftime("%Y-%m-%dT%H:%M")
    out = invoke("paper", *replay_args, "--model", model, "--journal", journal, "--fee-bps", 2,
                 "--capital", CAPITAL, "--start", start)  # fmt: skip
    assert out.exit_code == 0, out.output
    rows = journal_rows(journal)
    book = rows[(rows.symbol == "portfolio") & (rows.policy == "long_short")].reset_index()
    want = np.r_[1.0, test["wealth_long_short"].to_numpy()]
    np.testing.assert_allclose(book.wealth / CAPITAL, want, rtol=0, atol=1e-9)
    weights = np.array([[json.loads(p)["weights"][s] for s in SYMBOLS]
                        for p in book.policy_params.iloc[:-1]])  # fmt: skip
    columns = [f"weight_long_short_{s.replace('/', '_')}" for s in SYMBOLS]
    np.testing.assert_array_equal(weights, test[columns].to_numpy())
    decided = book[book.kind == "decision"]
    phases = set((decided.candle_ms // 1_800_000) % H)
    assert len(decided) > 20 and phases == ({0} if how == "cadence" else set(range(H)))
    assert set(book.kind) == ({"decision", "held"} if how == "cadence" else {"decision"})
    diff = invoke("paper", "diff", "--run", run, "--journal", journal, *data, "--json")
    assert diff.exit_code == 0, diff.output
    assert json.loads(diff.stdout)["differing"] == 0
    # a service restarted in the middle of a holding period continues the same books
    parts, stop = tmp_path / "parts.sqlite", (test.time.iloc[0] + pd.Timedelta("41h")).isoformat()
    common = [*replay_args, "--model", model, "--journal", parts, "--fee-bps", 2, "--capital",
              CAPITAL]  # fmt: skip
    assert invoke("paper", *common, "--start", start, "--end", stop).exit_code == 0
    assert invoke("paper", *common, "--start", stop).exit_code == 0
    columns = ["symbol", "policy", "candle_ms", "kind", "position", "p_up", "policy_params"]
    both = [
        journal_rows(j).sort_values(["symbol", "policy", "candle_ms"]) for j in (journal, parts)
    ]
    pd.testing.assert_frame_equal(*(b[columns].reset_index(drop=True) for b in both))
