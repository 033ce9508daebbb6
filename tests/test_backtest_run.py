"""`fc backtest` on a run folder: files, JSON contract, and predictions equal to a fresh
window-by-window evaluation (no look-ahead, the live loop's semantics)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from export_runs import synth_run
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.learning.model import Forecast

runner = CliRunner()
SEQ = 48


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with seeded random weights over 40 days of synthetic 30m candles."""
    root = tmp_path_factory.mktemp("run")
    # an outage: three filled bars
    synth_run(root, days=40, seed=3, outage=[700, 701, 702], seq_len=SEQ, split="2023-01-25",
              symbol="SYNTH/USDT")  # fmt: skip
    return root


def test_backtest_json_contract_and_files(run_dir):
    result = runner.invoke(app, ["backtest", str(run_dir), "--fee-bps", "5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for section in ("train", "validation"):
        for key in (
            "discrete",
            "proportional",
            "buy_and_hold",
            "mean_reversion",
            "last_direction",
            "class_prior",
        ):
            for field in ("final_wealth", "sharpe", "max_drawdown", "decisions"):
                assert field in report[section][key], (section, key, field)
    for name in ("positions.parquet", "metrics.json", "equity.png", "drawdown.png"):
        assert (run_dir / "backtest" / name).stat().st_size > 0
    positions = pd.read_parquet(run_dir / "backtest" / "positions.parquet")
    for section in ("train", "validation"):
        part = positions[positions["range"] == section]
        assert report[section]["discrete"]["final_wealth"] == pytest.approx(
            part["wealth_discrete"].iloc[-1], rel=1e-12
        )


def test_predictions_equal_a_fresh_window_by_window_evaluation(run_dir):
    assert runner.invoke(app, ["backtest", str(run_dir), "--json"]).exit_code == 0
    positions = pd.read_parquet(run_dir / "backtest" / "positions.parquet")
    candles = pd.read_parquet(run_dir / "synth-30m.parquet")
    grid_close = (
        candles["close"]
        .reindex(pd.date_range(candles.index[0], candles.index[-1], freq="30min"))
        .ffill()
    )
    model = Forecast(hidden=8, layers=2)
    model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True))
    decided = positions.dropna(subset=["p_up"])
    rng = np.random.default_rng(0)
    for i in rng.choice(len(decided), size=100, replace=False):
        row = decided.iloc[i]
        t = grid_close.index.get_loc(row["time"])
        closes = grid_close.to_numpy()[t - SEQ : t + 1]  # seq_len + 1 closes: nothing after t
        x = (closes[1:] / closes[:-1] - 1.0) / 0.003
        with torch.no_grad():
            logits = model(torch.tensor(x, dtype=torch.float32).view(1, SEQ, 1))[0, -1]
        p_up = torch.softmax(logits.double(), dim=0)[0].item()
        assert row["p_up"] == pytest.approx(p_up, abs=1e-5)


def test_backtest_bad_input_is_one_line(run_dir, tmp_path):
    result = runner.invoke(app, ["backtest", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.stderr
    result = runner.invoke(app, ["backtest", str(run_dir), "--start", "foo"])
    assert result.exit_code == 2 and "--start 'foo' is not a date" in result.stderr
    result = runner.invoke(app, ["backtest", str(run_dir), "--data", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_compare_two_runs_table_and_plot(run_dir, tmp_path):
    assert runner.invoke(app, ["backtest", str(run_dir), "--json"]).exit_code == 0
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    assert runner.invoke(app, ["backtest", str(other), "--fee-bps", "10", "--json"]).exit_code == 0
    plot = tmp_path / "compare.png"
    result = runner.invoke(app, ["compare", str(run_dir), str(other), "--out", str(plot),
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [(r["run"], r["policy"]) for r in rows] == [
        (run_dir.name, "discrete"), (run_dir.name, "proportional"),
        ("other", "discrete"), ("other", "proportional"),
    ]  # fmt: skip
    fee_free = json.loads((run_dir / "backtest" / "metrics.json").read_text())
    assert rows[0]["final_wealth"] == fee_free["validation"]["discrete"]["final_wealth"]
    assert rows[2]["final_wealth"] < rows[0]["final_wealth"]  # same positions, 10 bps a trade
    assert plot.stat().st_size > 10_000
    missing = runner.invoke(app, ["compare", str(tmp_path)])
    assert missing.exit_code == 2 and "no backtest yet" in missing.stderr


def test_explore_writes_the_workshop_plots(run_dir, tmp_path):
    out = tmp_path / "explore"
    data = run_dir / "synth-30m.parquet"
    result = runner.invoke(app, ["explore", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["change_histogram.png", "class_counts.png", "direction_scatter.png",
                     "price_change.png"]  # fmt: skip
