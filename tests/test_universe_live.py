"""A pooled five-symbol model exported as one window graph and traded by one paper service: its
parity per symbol against torch, the metadata the live loop reads, and the bad input refused
in one line."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.synth import synth_candles
from fc.live.universe_model import load_universe_predictor

runner = CliRunner()
SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT", "EEE/USDT")
SPLIT, TEST = "2023-01-25", "2023-02-01"
QUICK = ["--seq-len", "32", "--hidden", "4", "--layers", "1", "--epochs", "1", "--max-steps",
         "3", "--split", SPLIT, "--test-from", TEST, "--quiet"]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def write_universe(folder: Path) -> dict[str, Path]:
    """Five symbols' 30m candles on one grid, each seeded apart."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, symbol in enumerate(SYMBOLS):
        frame = synth_candles(days=40, timeframe="30m", seed=10 + i, price=50.0 * (i + 1))
        files[symbol] = folder / f"{symbol.replace('/', '_')}.parquet"
        frame.to_parquet(files[symbol])
    return files


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(run, files, model.onnx, fc export's JSON report) of a relative-target universe, k 2."""
    root = tmp_path_factory.mktemp("universe_live")
    files = write_universe(root / "data")
    data = [a for s, p in files.items() for a in ("--data", f"{s}={p}")]
    args = ["train", "--symbols", ",".join(SYMBOLS), "--target", "relative", *data, *QUICK]
    result = runner.invoke(app, args + ["--runs", str(root / "runs")])
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    done = runner.invoke(app, ["export", str(run), "--onnx", "--k", "2", "--json"])
    assert done.exit_code == 0, done.output
    return run, files, run / "export" / "model.onnx", json.loads(done.stdout)


def test_one_graph_is_within_1e5_of_torch_for_every_symbol(exported):
    _, _, _, report = exported
    for symbol in SYMBOLS:
        assert report["windows"][f"onnx_real:{symbol}"] > 100
        assert report["max_abs_diff"][f"onnx_real:{symbol}"] <= 1e-5
    assert report["ok"] and report["step_onnx"] is None and report["torchscript"] is None


def test_metadata_carries_symbols_target_scaling_and_k(exported):
    run, _, model, _ = exported
    config = json.loads((run / "config.json").read_text())
    predictor = load_universe_predictor(model)
    assert predictor.symbols == SYMBOLS and predictor.target == "relative"
    assert predictor.portfolio_params.k == 2
    for symbol in SYMBOLS:
        assert list(predictor.scaling[symbol]) == config["symbol_scaling"][symbol]
    # the graph itself is neutral: a symbol's scaling is applied before it, in float64
    assert predictor.graph.meta["scale_center"] == (0.0,)


def test_a_row_of_symbols_equals_each_symbol_alone(exported):
    _, _, model, _ = exported
    predictor = load_universe_predictor(model)
    rng = np.random.default_rng(0)
    windows = {s: rng.normal(0, 0.01, predictor.seq_len) for s in SYMBOLS}
    row = predictor.p_up_row(windows)
    alone = [
        predictor.p_up_at(s, windows[s], np.array([predictor.seq_len - 1]))[0] for s in SYMBOLS
    ]
    assert row.tolist() == alone  # bitwise: the backtest's --model path is the live one


@pytest.mark.parametrize(
    "extra, words",
    [(["--torchscript"], ("--torchscript", "--onnx alone")), (["--k", "3"], ("--k 3", "<= 2"))],
)
def test_what_a_universe_export_does_not_take_is_one_line(exported, extra, words):
    run, _, _, _ = exported
    result = runner.invoke(app, ["export", str(run), "--onnx", *extra])
    one_line_error(result, *words)
