"""`fc export`: files, parity report, exit codes; `fc paper` refusing models in one line."""

import json

import onnx
import pandas as pd
import pytest
from export_runs import exported, feature_windows, make_run
from onnx import TensorProto, helper
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.learning.model import window_p_up
from fc.live.predictor import load_predictor

runner = CliRunner()


def test_paper_replay_refuses_a_bad_model_in_one_line(tmp_path, candles_factory):
    """The live service's own entry point gives the loader's refusals as `fc: error:` lines."""
    *_, window, step = exported(tmp_path)
    candles = tmp_path / "candles.parquet"
    candles_factory(200, "30min", 1).to_parquet(candles)
    data = window.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[:-100])
    plain = helper.make_model(
        helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])],
            "other",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    for model, extra, words in (
        (tmp_path / "cut.onnx", [], "not a readable ONNX file"),
        (tmp_path / "plain.onnx", [], "not a graph fc exported"),
        (step, [], "a step graph, not a window graph"),
        (window, ["--symbol", "ETH/USDT"], "exported for BTC/USDT 30m, not ETH/USDT 30m"),
    ):
        args = ["paper", "--replay", str(candles), "--model", str(model), *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("fc: error: ") and result.stderr.count("\n") == 1
        assert words in result.stderr


def synthetic_run(tmp_path, candles_factory, **config):
    data = tmp_path / "candles.parquet"
    candles_factory(700, "30min", 3).to_parquet(data)
    run = tmp_path / "run"
    _, model, scaling = make_run(run, 8, 2, 24, data=data, split="2024-01-08", **config)
    return run, model, scaling


def test_export_cli_writes_graphs_and_reports_parity(tmp_path, candles_factory):
    run, *_ = synthetic_run(tmp_path, candles_factory, scale_center=1.0, scale_scale=0.002)
    result = runner.invoke(app, ["export", str(run), "--onnx", "--torchscript", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["onnx"] == str(run / "export" / "model.onnx")
    assert report["step_onnx"] == str(run / "export" / "model.step.onnx")
    assert report["torchscript"] == str(run / "export" / "model.torchscript.pt")
    diffs = report["max_abs_diff"]
    assert set(diffs) == {"onnx_real", "onnx_random", "step_onnx", "torchscript"}
    assert all(0 <= d < 1e-5 for d in diffs.values())
    # validation decisions: from the split (bar 7 * 48) to the last bar but one
    assert report["windows"]["onnx_real"] == 700 - 1 - 7 * 48
    assert load_predictor(report["onnx"], "BTC/USDT", "30m").seq_len == 24
    assert 0 <= report["carried_state_drift"] < 1  # measured, not bounded: see the README
    assert json.loads((run / "export" / "parity.json").read_text()) == report


def test_export_cli_exit_1_when_parity_exceeds_the_tolerance(tmp_path, candles_factory):
    run, *_ = synthetic_run(tmp_path, candles_factory)
    result = runner.invoke(app, ["export", str(run), "--onnx", "--tolerance", "1e-15", "--json"])
    diffs = json.loads(result.stdout)["max_abs_diff"]
    assert max(diffs.values()) > 1e-15  # onnxruntime's GRU is not bitwise torch's
    assert result.exit_code == 1 and json.loads(result.stdout)["ok"] is False


def test_export_checks_the_backtest_p_up_and_fails_on_a_different_one(tmp_path, candles_factory):
    run, model, scaling = synthetic_run(tmp_path, candles_factory)
    features, ends, _ = feature_windows(candles_factory, 700, 24, seed=3)
    times = candles_factory(700, "30min", 3).index
    p_up = window_p_up(model, features, ends[:-1], 24, scaling)
    (run / "backtest").mkdir()
    positions = pd.DataFrame({"time": times[ends[:-1]], "p_up": p_up})
    positions.to_parquet(run / "backtest" / "positions.parquet")
    result = runner.invoke(app, ["export", str(run), "--onnx", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["max_abs_diff"]["onnx_backtest"] < 1e-5
    assert report["windows"]["onnx_backtest"] == report["windows"]["onnx_real"]
    positions.assign(p_up=p_up + 1e-3).to_parquet(run / "backtest" / "positions.parquet")
    result = runner.invoke(app, ["export", str(run), "--onnx"])
    assert result.exit_code == 1 and "FAIL" in result.stdout


def test_export_cli_bad_input_exit_2_one_line(tmp_path, candles_factory):
    run, *_ = synthetic_run(tmp_path, candles_factory)
    for args, words in (
        ([str(tmp_path / "nowhere"), "--onnx"], "not a run folder"),
        ([str(run)], "nothing to export"),
        ([str(run), "--onnx", "--data", str(tmp_path / "none.parquet")], "no such file"),
        ([str(run), "--onnx", "--tolerance", "0"], "must be positive"),
        ([str(run), "--onnx", "--exporter", "tf2onnx"], "not one of legacy, dynamo"),
    ):
        result = runner.invoke(app, ["export", *args])
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and words in result.stderr


def test_export_without_the_runs_candles_skips_the_real_check(tmp_path):
    run = tmp_path / "run"
    make_run(run, 4, 1, 8, data=tmp_path / "gone.parquet")
    result = runner.invoke(app, ["export", str(run), "--onnx", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["max_abs_diff"]["onnx_real"] is None
    assert "real-window checks skipped" in report["notes"][0]


@pytest.mark.slow
def test_real_validation_range_equals_the_backtest_p_up(tmp_path, shared_data):
    """Every validation decision of the real 30m file: the exported graph's p_up against the
    p_up `fc backtest` wrote (SPEC §2: the same number everywhere)."""
    run = tmp_path / "run"
    data = shared_data / "btc_usdt_30m.parquet"
    make_run(run, 16, 3, 512, data=data, scale_center=1.0, scale_scale=0.0055)
    backtest = runner.invoke(app, ["backtest", str(run), "--start", "2024-01-01", "--json"])
    assert backtest.exit_code == 0, backtest.output
    result = runner.invoke(app, ["export", str(run), "--onnx", "--windows", "0", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"]
    assert report["windows"]["onnx_backtest"] == report["windows"]["onnx_real"] > 20_000
    assert report["max_abs_diff"]["onnx_backtest"] < 1e-5
