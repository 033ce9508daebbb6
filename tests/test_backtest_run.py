"""`fc backtest` on a run folder: files, JSON contract, and predictions equal to a fresh
window-by-window evaluation (no look-ahead, the live loop's semantics)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from export_runs import make_run
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.model import Forecast
from fc.core.synth import synth_candles

runner = CliRunner()
SEQ = 48


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with seeded random weights over 40 days of synthetic 30m candles."""
    root = tmp_path_factory.mktemp("run")
    data = root / "synth-30m.parquet"
    df = synth_candles(days=40, timeframe="30m", seed=3)
    df.drop(df.index[[700, 701, 702]]).to_parquet(data)  # an outage: three filled bars
    make_run(
        root,
        hidden=8,
        layers=2,
        seq_len=SEQ,
        data=data,
        seed=0,
        symbol="SYNTH/USDT",
        timeframe="30m",
        split="2023-01-25",
        scale_center=1.0,
        scale_scale=0.003,
    )
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
    result = runner.invoke(app, ["backtest", str(run_dir), "--data", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "no such file" in result.stderr
