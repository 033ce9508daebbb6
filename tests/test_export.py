"""Exported graphs against torch, the live loader's refusals, and `fc export`'s exit codes."""

import json

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from onnx import TensorProto, helper
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.errors import FcError
from fc.core.features import price_change
from fc.core.model import Forecast, Scaling, window_p_up
from fc.core.runs import TrainConfig
from fc.export import graphs
from fc.export.parity import torch_p_up
from fc.live import predictor as live
from fc.live.predictor import load_predictor, load_step_predictor

runner = CliRunner()


def make_run(root, hidden=8, layers=2, seq_len=32, data="", seed=0, **config):
    """A run folder as `fc train` leaves it, with seeded random weights."""
    torch.manual_seed(seed)
    model = Forecast(hidden, layers).eval()
    root.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), root / "model.pt")
    cfg = TrainConfig(hidden=hidden, layers=layers, seq_len=seq_len, data=str(data), **config)
    (root / "config.json").write_text(cfg.to_json())
    return cfg, model, Scaling(cfg.scale_center, cfg.scale_scale)


def exported(tmp_path, hidden=8, layers=2, seq_len=32, **config):
    cfg, model, scaling = make_run(tmp_path / "run", hidden, layers, seq_len, **config)
    window = graphs.write_window_onnx(model, scaling, cfg, tmp_path / "model.onnx")
    step = graphs.write_step_onnx(model, scaling, cfg, tmp_path / "model.step.onnx")
    return cfg, model, scaling, window, step


def feature_windows(candles_factory, n_bars, seq_len, seed=0):
    features = price_change(candles_factory(n_bars, "30min", seed)["close"].to_numpy())
    ends = np.arange(seq_len, n_bars)
    return (
        features,
        ends,
        np.lib.stride_tricks.sliding_window_view(features, seq_len)[ends - seq_len + 1],
    )


@pytest.mark.parametrize(
    "hidden, layers, seq_len", [(16, 3, 512), (8, 1, 33), (32, 2, 100), (4, 2, 7)]
)
def test_graphs_equal_torch_window_p_up(tmp_path, candles_factory, hidden, layers, seq_len):
    # a real scaling (center near 1, small scale) is where a float32 input would lose digits
    cfg, model, scaling, window, step = exported(
        tmp_path, hidden, layers, seq_len, scale_center=1.0001, scale_scale=0.004
    )
    features, ends, windows = feature_windows(candles_factory, seq_len + 120, seq_len)
    reference = window_p_up(model, features, ends, seq_len, scaling)
    predictor = load_predictor(window, "BTC/USDT", "30m")
    assert np.abs(predictor.p_up_batch(windows) - reference).max() < 1e-5
    assert np.array_equal(predictor.p_up_at(features, ends), predictor.p_up_batch(windows))
    streamed = load_step_predictor(step).p_up_batch(windows[:16])
    assert np.abs(streamed - reference[:16]).max() < 1e-5
    traced = graphs.load_torchscript(
        graphs.write_torchscript(model, scaling, cfg, tmp_path / "m.pt")
    )
    assert np.abs(torch_p_up(traced[0], windows) - reference).max() < 1e-5
    assert traced[1]["seq_len"] == str(seq_len)


def test_window_graph_has_dynamic_axes_and_gru_ops(tmp_path):
    cfg, model, scaling, window, _ = exported(tmp_path, 8, 2, 16)
    proto = onnx.load(str(window))
    assert [n.op_type for n in proto.graph.node].count("GRU") == 2
    assert {o.version for o in proto.opset_import if o.domain == ""} == {17}
    session = load_predictor(window).session
    for n, length in ((1, 1), (9, 16), (3, 40)):
        x = 1 + 0.01 * np.random.default_rng(n).standard_normal((n, length))
        logits, probabilities = session.run(None, {"price_change": x[:, :, None]})
        expected = torch_p_up(graphs.WindowGraph(model, scaling), x)
        assert np.abs(live.p_up_from_logits(logits) - expected).max() < 1e-6
        assert np.allclose(probabilities[:, 0], expected, atol=1e-6)


def test_batch_evaluation_is_bitwise_the_single_window_value(
    tmp_path, candles_factory, monkeypatch
):
    """The replay/backtest may score many windows in one call: each p_up must be the very number
    the live loop gets from that window alone."""
    *_, window, _ = exported(tmp_path, 16, 3, 64, scale_center=1.0, scale_scale=0.005)
    _, _, windows = feature_windows(candles_factory, 400, 64)
    predictor = load_predictor(window)
    batch = predictor.p_up_batch(windows)
    single = np.array([predictor.p_up(w) for w in windows])
    assert np.array_equal(batch, single)
    assert np.array_equal(load_predictor(window, threads=2).p_up_batch(windows), single)
    monkeypatch.setattr(live, "_BATCH_CHUNK", 7)  # chunk edges change nothing either
    assert np.array_equal(predictor.p_up_batch(windows), single)


def test_metadata_travels_in_the_graph(tmp_path):
    cfg, *_, window, step = exported(
        tmp_path, train_range=("2020-01-01T00:00:00+00:00", "2023-12-31T23:30:00+00:00")
    )
    meta = load_predictor(window).meta
    assert (meta["symbol"], meta["timeframe"], meta["seq_len"]) == ("BTC/USDT", "30m", 32)
    assert meta["feature"] == "price_change" and meta["classes"] == ["up", "down"]
    assert meta["train_range"] == list(cfg.train_range) and meta["graph"] == "window"
    assert (meta["hidden"], meta["layers"]) == (8, 2)
    step_predictor = load_step_predictor(step)
    assert step_predictor.meta["graph"] == "step" and step_predictor.zero_state(3).shape == (
        2,
        3,
        8,
    )


def refusal(path, loader=load_predictor, **kwargs) -> str:
    with pytest.raises(FcError) as err:
        loader(path, **kwargs)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def rewritten(src, dst, edit):
    proto = onnx.load(str(src))
    edit(proto)
    onnx.save(proto, str(dst))
    return dst


def test_loader_refuses_missing_truncated_and_non_onnx_files(tmp_path):
    *_, window, _ = exported(tmp_path)
    assert "no such model file" in refusal(tmp_path / "absent.onnx")
    data = window.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    assert "not a readable ONNX file" in refusal(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_text("symbol,timeframe\nBTC/USDT,30m\n")
    assert "not a readable ONNX file" in refusal(tmp_path / "text.onnx")


def test_loader_refuses_other_markets_and_wrong_metadata(tmp_path):
    *_, window, step = exported(tmp_path)
    assert "exported for BTC/USDT 30m, not ETH/USDT 30m" in refusal(window, symbol="ETH/USDT")
    assert "not BTC/USDT 1h" in refusal(window, symbol="BTC/USDT", timeframe="1h")
    assert "a step graph, not a window graph" in refusal(step)
    assert "a window graph, not a step graph" in refusal(window, load_step_predictor)

    def drop(key):
        return lambda m: m.metadata_props.remove(next(p for p in m.metadata_props if p.key == key))

    def set_value(key, value):
        return lambda m: setattr(next(p for p in m.metadata_props if p.key == key), "value", value)

    no_symbol = rewritten(window, tmp_path / "a.onnx", drop("symbol"))
    assert "metadata symbol missing" in refusal(no_symbol)
    closes = rewritten(window, tmp_path / "b.onnx", set_value("feature", "close"))
    assert "made for feature close" in refusal(closes)
    bad_len = rewritten(window, tmp_path / "c.onnx", set_value("seq_len", "many"))
    assert "damaged fc metadata" in refusal(bad_len)


def test_loader_refuses_old_opsets_and_graphs_of_other_models(tmp_path):
    *_, window, _ = exported(tmp_path)

    def opset(version):
        def edit(m):
            next(o for o in m.opset_import if o.domain == "").version = version

        return edit

    assert "opset 13 is not supported" in refusal(rewritten(window, tmp_path / "o.onnx", opset(13)))
    # a plain ONNX graph of another model: other input and output names
    node = helper.make_node("Relu", ["x"], ["y"])
    other = helper.make_model(
        helper.make_graph(
            [node],
            "other",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    onnx.save(other, str(tmp_path / "plain.onnx"))
    assert "not a graph fc exported" in refusal(tmp_path / "plain.onnx")
    # the same graph carrying copied fc metadata is still not the model fc reads
    for p in onnx.load(str(window)).metadata_props:
        other.metadata_props.add(key=p.key, value=p.value)
    onnx.save(other, str(tmp_path / "dressed.onnx"))
    assert "graph inputs are ['x'], fc expects ['price_change']" in refusal(
        tmp_path / "dressed.onnx"
    )


def test_loader_refuses_a_float32_input_and_a_fixed_batch(tmp_path):
    """A float32 price_change would round the feature before scaling; a graph with a fixed
    batch could not score the backtest's windows in one call."""
    *_, window, _ = exported(tmp_path)

    def to_float(m):
        m.graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT

    def fixed_batch(m):
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1

    message = refusal(rewritten(window, tmp_path / "f32.onnx", to_float))
    assert "input price_change is tensor(float)" in message and "expects tensor(double)" in message
    message = refusal(rewritten(window, tmp_path / "b1.onnx", fixed_batch))
    assert "input price_change is tensor(double) [1, 'time', 1]" in message


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
def test_dynamo_exporter_writes_an_equal_graph(tmp_path, candles_factory):
    """The fallback for a torch without the legacy exporter: opset 18, same numbers."""
    cfg, model, scaling = make_run(tmp_path / "run", 8, 2, 24, scale_center=1.0, scale_scale=0.003)
    window = graphs.write_window_onnx(model, scaling, cfg, tmp_path / "w.onnx", "dynamo")
    step = graphs.write_step_onnx(model, scaling, cfg, tmp_path / "s.onnx", "dynamo")
    features, ends, windows = feature_windows(candles_factory, 200, 24)
    reference = window_p_up(model, features, ends, 24, scaling)
    assert np.abs(load_predictor(window).p_up_batch(windows) - reference).max() < 1e-5
    assert np.abs(load_step_predictor(step).p_up_batch(windows) - reference).max() < 1e-5


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
