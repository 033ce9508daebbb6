"""`fc backtest` keeps its predictions per run folder: a second backtest of the same model on the
same candles reads them back, and any change of a model file, the candle file or seq_len makes
them be computed again. --device, the progress bar and --json stay clean around them."""

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import one_line_error
from export_runs import synth_run
from rich.console import Console
from typer.testing import CliRunner

import fc.cli.backtest as cli_backtest
from fc.cli.main import app
from fc.core.evaluation.backtest import BacktestConfig
from fc.core.learning.model import Forecast
from fc.core.studies.backtest_run import backtest_run

runner = CliRunner()
FAST = BacktestConfig(bootstrap_reps=20)


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    """These tests are about predictions: skip drawing the PNGs (most of a small backtest)."""
    monkeypatch.setattr("fc.core.evaluation.backtest_plots.save_figure", lambda figure, path: None)
    for name in ("equity_figure", "drawdown_figure"):
        monkeypatch.setattr(f"fc.core.evaluation.backtest_plots.{name}", lambda *args: None)


@pytest.fixture
def run_dir(tmp_path):
    synth_run(tmp_path, days=14, seed=5, outage=[300, 301], seq_len=40, split="2023-01-10")
    return tmp_path


def backtest(run_dir, cfg=FAST, **kw):
    """(p_up of the decided bars, what the cache did) of one backtest."""
    report = backtest_run(run_dir, cfg, **kw)
    positions = pd.read_parquet(run_dir / "backtest" / "positions.parquet")
    return positions["p_up"].dropna().to_numpy(), report["prediction_cache"]


def test_a_second_backtest_with_other_fees_reads_the_predictions(run_dir):
    p_up, first = backtest(run_dir)
    assert first["cached"] == 0 and first["computed"] == len(p_up) > 500
    again, second = backtest(run_dir, BacktestConfig(bootstrap_reps=20, fee_bps=5))
    assert second == {"cached": len(p_up), "computed": 0, "file": first["file"]}
    np.testing.assert_array_equal(again, p_up)


def test_a_narrower_range_first_then_only_the_rest_is_computed(run_dir):
    _, part = backtest(run_dir, BacktestConfig(bootstrap_reps=20, start="2023-01-12"))
    p_up, whole = backtest(run_dir)
    assert whole["cached"] == part["computed"] > 0
    assert whole["cached"] + whole["computed"] == len(p_up)


def test_a_new_model_file_is_predicted_again(run_dir):
    p_up, _ = backtest(run_dir)
    torch.manual_seed(99)
    torch.save(Forecast(8, 2).state_dict(), run_dir / "model.pt")
    fresh, stats = backtest(run_dir)
    assert stats["cached"] == 0 and stats["computed"] == len(p_up)
    assert np.abs(fresh - p_up).max() > 1e-3


def test_a_changed_candle_file_is_predicted_again(run_dir):
    p_up, first = backtest(run_dir)
    data = run_dir / "synth-30m.parquet"
    candles = pd.read_parquet(data)
    candles.iloc[-1, candles.columns.get_loc("volume")] += 1.0  # same closes, other bytes
    candles.to_parquet(data)
    _, stats = backtest(run_dir)
    assert stats["cached"] == 0 and stats["computed"] == len(p_up)
    assert stats["file"] != first["file"]


def test_another_seq_len_is_predicted_again(run_dir):
    backtest(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config["seq_len"] = 32
    (run_dir / "config.json").write_text(json.dumps(config))
    p_up, stats = backtest(run_dir)
    assert stats["cached"] == 0 and stats["computed"] == len(p_up)


def test_a_damaged_cache_is_recomputed_not_trusted(run_dir):
    p_up, first = backtest(run_dir)
    with open(first["file"], "r+b") as f:
        f.write(b"garbage")
    again, stats = backtest(run_dir)
    assert stats["computed"] == len(p_up)
    np.testing.assert_array_equal(again, p_up)


def test_cli_json_stays_one_object_with_the_progress_bar(run_dir, monkeypatch):
    monkeypatch.setattr(cli_backtest, "PROGRESS_DELAY", 0.0)
    result = runner.invoke(app, ["backtest", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["prediction_cache"]["computed"] > 0


def test_progress_bar_only_for_slow_work(monkeypatch):
    for delay, shown in ((60.0, False), (0.0, True)):
        monkeypatch.setattr(cli_backtest, "PROGRESS_DELAY", delay)
        out = io.StringIO()
        console = Console(file=out, force_terminal=True, width=100)
        with cli_backtest.ProgressAfter("predicting p_up", console) as progress:
            for done in range(0, 11):
                progress(done, 10)
        assert ("predicting p_up" in out.getvalue()) is shown


def test_bad_device_is_one_line(run_dir):
    one_line_error(runner.invoke(app, ["backtest", str(run_dir), "--device", "tpu"]), "tpu")
    if not torch.cuda.is_available():
        result = runner.invoke(app, ["backtest", str(run_dir), "--device", "cuda"])
        one_line_error(result, "--device cuda")
