"""A declared-feature, two-symbol model through to the exported graphs and the paper service:
ONNX against torch on every validation window, the step graph against the window graph, the
spec in the graph's metadata, `fc paper --replay` over both symbols equal to `fc backtest
--model`, `fc paper diff` with no difference, and a graph whose spec this fc does not know
refused in one line."""

import hashlib
import json

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
