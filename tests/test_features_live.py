"""A declared-feature, two-symbol model through to the exported graphs and the paper service:
ONNX against torch on every validation window, the step graph against the window graph, the
spec in the graph's metadata, `fc paper --replay` over both symbols equal to `fc backtest
--model`, `fc paper diff` with no difference, and a graph whose spec this fc does not know
refused in one line."""

import hashlib
import json
import sqlite3

import numpy as np
import onnx
import pandas as pd
import pytest
from conftest import one_line_error
from feature_runs import COLUMNS, FEATURES, OTHER, SEQ, SPLIT, train_two_symbol_run
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.feature_set import parse_features
from fc.core.evaluation.backtest import trade_mask
from fc.core.studies.backtest_run import run_grid
from fc.core.studies.runs import load_run
from fc.export.run import export_run
from fc.live.predictor import load_predictor, load_step_predictor

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def exported(tmp_path_factory, one_torch_thread):
    """The trained two-symbol run, exported with parity over all its validation windows."""
    run, files = train_two_symbol_run(tmp_path_factory.mktemp("features-live"))
    report = export_run(run, torchscript=True, windows=0)
    return run, files, report


def validation_ends(run):
    """Independently of export/parity.py: every validation decision bar of the run's grid."""
    config, _, _ = load_run(run)
    grid = run_grid(config)
    decide = trade_mask(grid["filled"].to_numpy(), config.first_decision)
    return grid, np.flatnonzero(decide & (grid.index >= pd.Timestamp(SPLIT, tz="UTC")))


def test_export_parity_on_every_validation_window(exported):
    run, _, report = exported
    assert report.ok, report.to_dict()
    _, ends = validation_ends(run)
    assert report.windows["onnx_real"] == len(ends) > 300
    assert report.max_abs_diff["onnx_real"] <= 1e-5
    assert report.max_abs_diff["onnx_random"] <= 1e-5
    assert report.max_abs_diff["torchscript"] <= 1e-5


def test_step_graph_streams_every_validation_window_as_the_window_graph(exported):
    run, _, report = exported
    window = load_predictor(run / "export" / "model.onnx")
    step = load_step_predictor(run / "export" / "model.step.onnx")
    grid, ends = validation_ends(run)
    columns = grid[[c for c in grid.columns if c.startswith("f:")]].to_numpy()
    assert columns.shape[1] == window.columns == step.columns == COLUMNS
    windows = np.stack([columns[t - SEQ + 1 : t + 1] for t in ends])
    by_window = window.p_up_batch(windows)
    assert np.abs(step.p_up_batch(windows) - by_window).max() <= 1e-6
    np.testing.assert_array_equal(window.p_up_at(columns, ends), by_window)
    assert 0 < by_window.min() < by_window.max() < 1


def test_the_graph_carries_the_spec_and_its_hash(exported):
    run, _, _ = exported
    spec = parse_features(FEATURES, "BTC/USDT")
    for name in ("model.onnx", "model.step.onnx"):
        graph = onnx.load(str(run / "export" / name))
        meta = {p.key: p.value for p in graph.metadata_props}
        assert meta["feature"] == "features"
        assert json.loads(meta["feature_spec"]) == spec.to_dict()
        assert meta["feature_hash"] == spec.hash
        assert len(json.loads(meta["scale_center"])) == COLUMNS
        (given,) = [i for i in graph.graph.input if i.name != "hidden"]
        assert given.name == "features"
        assert given.type.tensor_type.shape.dim[2].dim_value == COLUMNS
    predictor = load_predictor(run / "export" / "model.onnx")
    assert predictor.spec == spec and predictor.spec.symbols == ("BTC/USDT", OTHER)


def unknown_feature_graph(run, tmp_path, name="orderflow"):
    """The run's graph with a spec naming a feature this fc does not have, hash made to fit."""
    graph = onnx.load(str(run / "export" / "model.onnx"))
    props = {p.key: p for p in graph.metadata_props}
    spec = json.loads(props["feature_spec"].value)
    spec["features"][1]["name"] = name
    body = json.dumps({k: v for k, v in spec.items() if k != "hash"}, sort_keys=True,
                      separators=(",", ":"))  # fmt: skip
    spec["hash"] = hashlib.sha256(body.encode()).hexdigest()[:16]
    props["feature_spec"].value = json.dumps(spec, sort_keys=True)
    props["feature_hash"].value = spec["hash"]
    path = tmp_path / "unknown.onnx"
    onnx.save(graph, str(path))
    return path


def test_a_graph_whose_spec_names_an_unknown_feature_is_refused(exported, tmp_path):
    run, files, _ = exported
    bad = unknown_feature_graph(run, tmp_path)
    one_line_error(invoke("backtest", run, "--model", bad), "orderflow", "unknown.onnx")
    assert not (run / "backtest").exists()


def replayed_journal(model, tmp_path, *sources):
    journal = tmp_path / "replay.sqlite"
    out = invoke("paper", *sources, "--model", model, "--journal", journal, "--fee-bps", 5,
                 "--capital", 1, "--start", SPLIT, "--json")  # fmt: skip
    assert out.exit_code == 0, out.output
    with sqlite3.connect(journal) as db:
        return journal, pd.read_sql("SELECT * FROM decisions ORDER BY candle_ms", db)


def test_replay_over_both_symbols_equals_the_backtest_of_the_same_graph(exported, tmp_path):
    run, files, _ = exported
    model = run / "export" / "model.onnx"
    out = invoke("backtest", run, "--model", model, "--fee-bps", 5, "--start", SPLIT, "--json")
    assert out.exit_code == 0, out.output
    backtest = pd.read_parquet(run / "backtest" / "positions.parquet")
    assert set(backtest["range"]) == {"validation", "test"}
    _, rows = replayed_journal(model, tmp_path, "--replay", files["BTC/USDT"], "--replay",
                               f"{OTHER}={files[OTHER]}")  # fmt: skip
    # BTC's two missing bars and ETH's one: no decision there, the position held (both sides)
    assert (rows["kind"] == "held").sum() == 2 * 3
    times = pd.DatetimeIndex(backtest["time"]).as_unit("ns").asi8 // 1_000_000
    for policy in ("discrete", "proportional"):
        got = rows[rows.policy == policy].set_index("candle_ms")
        assert list(got.index[:-1]) == list(times)  # one row per bar, the last closes the range
        np.testing.assert_array_equal(
            got["position"].to_numpy()[:-1], backtest[f"position_{policy}"].to_numpy()
        )
        # journal row t+1 holds the wealth the backtest's row t does (validation: both from 1);
        # the backtest's test range starts again from 1, flat, so there the growth after its
        # first step (the journal did not pay that entry fee) is compared
        wealth, want = got["wealth"].to_numpy(), backtest[f"wealth_{policy}"].to_numpy()
        ranges = backtest["range"].to_numpy()
        valid, test = np.flatnonzero(ranges == "validation"), np.flatnonzero(ranges == "test")
        np.testing.assert_allclose(wealth[valid + 1], want[valid], rtol=1e-9, atol=0)
        np.testing.assert_allclose(wealth[test + 1] / wealth[test[0] + 1],
                                   want[test] / want[test[0]], rtol=1e-9, atol=0)  # fmt: skip


def test_replay_reads_the_other_symbol_from_a_store_and_diff_finds_no_difference(
    exported, tmp_path
):
    run, files, _ = exported
    store = tmp_path / "store" / "binance"
    store.mkdir(parents=True)
    pd.read_parquet(files[OTHER]).to_parquet(store / "ETH_USDT-30m.parquet")
    model = run / "export" / "model.onnx"
    journal, rows = replayed_journal(model, tmp_path, "--replay", f"BTC/USDT={files['BTC/USDT']}",
                                     "--store", tmp_path / "store")  # fmt: skip
    decided = rows[rows.kind == "decision"]
    assert len(decided) > 2 * 300 and decided.p_up.between(0, 1).all()
    # the run's own files for both symbols (--data FILE), and both named (--data SYMBOL=FILE)
    both = ["--data", f"BTC/USDT={files['BTC/USDT']}", "--data", f"{OTHER}={files[OTHER]}"]
    for data in (["--data", files["BTC/USDT"]], both):
        out = invoke("paper", "diff", "--journal", journal, "--run", run, "--json", *data)
        assert out.exit_code == 0, out.output
        result = json.loads(out.stdout)
        assert result["matches"] and result["differing"] == 0
        assert result["compared"] == len(rows) // 2
        assert result["max_abs_diff"]["p_up"] == 0.0


def test_a_changed_candle_of_the_other_symbol_is_a_difference(exported, tmp_path):
    """The diff reads ETH: one ETH close moved changes p_up of the decisions whose window holds
    it, and the diff says so (a test of the test above: it can fail)."""
    run, files, _ = exported
    model = run / "export" / "model.onnx"
    journal, rows = replayed_journal(model, tmp_path, "--replay", files["BTC/USDT"], "--replay",
                                     f"{OTHER}={files[OTHER]}")  # fmt: skip
    other = pd.read_parquet(files[OTHER])
    when = pd.Timestamp(int(rows.candle_ms.iloc[200]), unit="ms", tz="UTC")
    other.loc[when, ["close", "high"]] *= 1.01
    moved = tmp_path / "eth-moved.parquet"
    other.to_parquet(moved)
    out = invoke("paper", "diff", "--journal", journal, "--run", run, "--json",
                 "--data", f"{OTHER}={moved}")  # fmt: skip
    assert out.exit_code == 1, out.output
    assert json.loads(out.stdout)["first"]["candle"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_replay_refuses_missing_or_extra_symbols_and_unknown_features(exported, tmp_path):
    run, files, _ = exported
    model = run / "export" / "model.onnx"
    one_line_error(invoke("paper", "--replay", files["BTC/USDT"], "--model", model), OTHER,
                   "--replay ETH/USDT=FILE")  # fmt: skip
    extra = ["--replay", f"{OTHER}={files[OTHER]}", "--replay", f"SOL/USDT={files[OTHER]}"]
    one_line_error(invoke("paper", "--replay", files["BTC/USDT"], *extra, "--model", model),
                   "SOL/USDT")  # fmt: skip
    bad = unknown_feature_graph(run, tmp_path)
    journal = tmp_path / "never.sqlite"
    out = invoke("paper", "--replay", files["BTC/USDT"], "--replay", f"{OTHER}={files[OTHER]}",
                 "--model", bad, "--journal", journal)  # fmt: skip
    one_line_error(out, "orderflow", "unknown.onnx")
    assert not journal.exists()
