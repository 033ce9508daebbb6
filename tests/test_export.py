"""Exported graphs against torch, and the live loader's refusals of graphs that do not fit."""

import numpy as np
import onnx
import pytest
from export_runs import exported, feature_windows, make_run
from onnx import TensorProto, helper

from fc.core.errors import FcError
from fc.core.learning.model import window_p_up
from fc.export import graphs
from fc.export.parity import torch_p_up
from fc.live import predictor as live
from fc.live.predictor import load_predictor, load_step_predictor


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
