"""fc backtest over three ranges: the JSON contract, PSR and ECE recomputed from the files it
writes, later candles reported as test, and fc compare's best of N with its deflated Sharpe."""

import json
import math
import shutil

import numpy as np
import pandas as pd
import paper_formulas as paper
import pytest
from export_runs import synth_run
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import to_grid
from fc.core.data.ranges import backtest_test_from
from fc.core.data.synth import synth_candles
from fc.core.evaluation.backtest import BASELINES, BacktestConfig, segments, trade_mask
from fc.core.learning.config import TrainConfig

runner = CliRunner()
SEQ = 48
TEST_FROM = "2023-02-03T00:00:00+00:00"
STRATEGIES = ("discrete", "proportional", *BASELINES)
PREDICTORS = ("model", "class_prior", "always_up", "last_direction", "mean_reversion")


def _set_config(run_dir, **values):
    path = run_dir / "config.json"
    config = json.loads(path.read_text())
    config.update(values)
    path.write_text(json.dumps(config))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """40 days of synthetic 30m candles from 2023-01-01, an outage, split 2023-01-25, test from
    2023-02-03, seeded random weights; backtested once."""
    root = tmp_path_factory.mktemp("run")
    synth_run(root, days=40, seed=3, outage=[700, 701, 702], seq_len=SEQ, split="2023-01-25",
              symbol="SYNTH/USDT")  # fmt: skip
    _set_config(root, test_from=TEST_FROM)
    result = runner.invoke(app, ["backtest", str(root), "--fee-bps", "5"], terminal_width=200)
    assert result.exit_code == 0, result.output
    (root / "tables.txt").write_text(result.stdout)
    return root


def _report(run_dir) -> dict:
    return json.loads((run_dir / "backtest" / "metrics.json").read_text())


def test_json_has_three_ranges_each_with_strategies_psr_and_classifier(run_dir):
    report = _report(run_dir)
    assert report["test_from"] == TEST_FROM
    for name in ("train", "validation", "test"):
        part = report[name]
        for key in STRATEGIES:
            for field in ("final_wealth", "sharpe", "psr", "max_drawdown", "decisions"):
                assert field in part[key], (name, key, field)
            assert 0.0 <= part[key]["psr"] <= 1.0
        for key in PREDICTORS:
            for field in ("accuracy", "log_loss", "brier", "ece"):
                assert field in part["classifier"][key], (name, key, field)
    assert report["test"]["range"]["role"] == "untouched by training and selection"
    assert report["test"]["range"]["first"] == TEST_FROM
    assert report["validation"]["range"]["last"] < TEST_FROM
    for name in ("equity.png", "drawdown.png", "calibration.png"):
        assert (run_dir / "backtest" / name).stat().st_size > 10_000


def test_tables_name_the_test_range_untouched(run_dir):
    tables = (run_dir / "tables.txt").read_text()
    assert "test (untouched by training and selection) 2023-02-03" in tables
    assert "PSR(0)" in tables and "ECE" in tables


def test_psr_recomputed_from_positions_file(run_dir):
    report = _report(run_dir)
    positions = pd.read_parquet(run_dir / "backtest" / "positions.parquet")
    for name in ("train", "validation", "test"):
        for policy in ("discrete", "proportional"):
            wealth = positions.loc[positions["range"] == name, f"wealth_{policy}"].tolist()
            returns = [w / p - 1 for w, p in zip(wealth, [1.0, *wealth[:-1]], strict=True)]
            s, g3, g4 = paper.sharpe_skew_kurtosis(returns)
            expected = paper.psr(s, g3, g4, len(returns))
            assert report[name][policy]["psr"] == pytest.approx(expected, abs=1e-9)
            assert report[name][policy]["sharpe"] == pytest.approx(s * math.sqrt(17520), rel=1e-9)


def test_model_ece_on_the_test_range_recomputed_by_hand(run_dir):
    positions = pd.read_parquet(run_dir / "backtest" / "positions.parquet")
    last_close = pd.read_parquet(run_dir / "synth-30m.parquet")["close"].iloc[-1]
    test = positions[positions["range"] == "test"]
    close = [*test["close"].tolist(), last_close]  # the test range runs to the data's end
    p_up, up = test["p_up"].tolist(), [b >= a for a, b in zip(close[:-1], close[1:], strict=True)]
    bins = [[] for _ in range(10)]
    for p, u in zip(p_up, up, strict=True):
        bins[min(int(p * 10), 9)].append((p, u))
    ece = sum(abs(sum(u for _, u in b) - sum(p for p, _ in b)) for b in bins if b) / len(p_up)
    classifier = _report(run_dir)["test"]["classifier"]
    assert classifier["model"]["ece"] == pytest.approx(ece, abs=1e-12)
    prior = classifier["class_prior"]["p_up"]
    assert classifier["class_prior"]["ece"] == pytest.approx(abs(np.mean(up) - prior))


def test_later_candles_are_test_after_a_warm_up_of_seq_len_bars(run_dir, tmp_path):
    later = tmp_path / "later.parquet"
    candles = synth_candles(days=5, timeframe="30m", seed=9, start=pd.Timestamp("2023-03-01",
                            tz="UTC"))  # fmt: skip
    candles.to_parquet(later)
    (run_dir / "metrics.json").write_text(json.dumps({"baselines": {"class_prior":
                                                      {"p_up": 0.53}}}))  # fmt: skip
    result = runner.invoke(app, ["backtest", str(run_dir), "--data", str(later), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "train" not in report and "validation" not in report
    assert report["test"]["range"]["first"] == candles.index[SEQ].isoformat()
    assert report["test"]["discrete"]["decisions"] == len(candles) - SEQ - 1
    assert report["test"]["classifier"]["class_prior"]["p_up"] == 0.53  # the run's training prior


def test_an_old_run_has_no_test_range_on_its_data_and_later_candles_are_test(run_dir, tmp_path):
    config = TrainConfig(
        timeframe="30m", validation_range=("2023-01-25T00:00:00+00:00", "2023-02-09T23:00:00+00:00")
    )
    assert backtest_test_from(config) == pd.Timestamp("2023-02-09T23:30:00", tz="UTC")
    assert backtest_test_from(TrainConfig()) is None  # nothing recorded: no test range
    grid = to_grid(pd.read_parquet(run_dir / "synth-30m.parquet"), "30m")
    decide = trade_mask(grid["filled"].to_numpy(), SEQ)
    parts = segments(grid.index, decide, "2023-01-25", BacktestConfig(),
                     backtest_test_from(config))  # fmt: skip
    assert not (parts["test"] & decide).any() and (parts["validation"] & decide).any()
    old = tmp_path / "old"
    shutil.copytree(run_dir, old, ignore=shutil.ignore_patterns("backtest"))
    raw = json.loads((old / "config.json").read_text())
    del raw["test_from"], raw["test_range"]
    (old / "config.json").write_text(
        json.dumps({**raw, "validation_range": config.validation_range})
    )
    later = tmp_path / "later.parquet"
    synth_candles(days=3, timeframe="30m", seed=1, start=pd.Timestamp("2023-03-01", tz="UTC")
                  ).to_parquet(later)  # fmt: skip
    report = json.loads(runner.invoke(app, ["backtest", str(old), "--data", str(later),
                                            "--json"]).stdout)  # fmt: skip
    assert [k for k in ("train", "validation", "test") if k in report] == ["test"]


def test_compare_gives_the_deflated_sharpe_of_the_best_of_n(run_dir, tmp_path):
    other = tmp_path / "other"  # the same positions again: four trials, two distinct Sharpes
    shutil.copytree(run_dir, other)
    args = ["compare", str(run_dir), str(other), "--section", "test", "--json"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    best = json.loads(result.stdout)["best"]
    trials = {}
    for folder in (run_dir, other):
        positions = pd.read_parquet(folder / "backtest" / "positions.parquet")
        for policy in ("discrete", "proportional"):
            wealth = positions.loc[positions["range"] == "test", f"wealth_{policy}"].tolist()
            returns = [w / p - 1 for w, p in zip(wealth, [1.0, *wealth[:-1]], strict=True)]
            trials[f"{folder.name} {policy}"] = paper.sharpe_skew_kurtosis(returns), len(returns)
    name = max(trials, key=lambda k: trials[k][0][0])
    (s, g3, g4), n = trials[name]
    sr0 = paper.sr0(4, paper.sample_variance([t[0][0] for t in trials.values()]))
    assert best["n_trials"] == 4 and best["best"] == name
    assert best["dsr"] == pytest.approx(paper.psr(s, g3, g4, n, sr0), abs=1e-9)
    table = runner.invoke(app, args[:-1] + ["--out", str(tmp_path / "c.png")], terminal_width=200)
    assert "best of 4" in table.stdout
