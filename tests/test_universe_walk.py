"""fc walk --symbols: each fold a pooled run, the stitched p_up equal to each fold model's own
prediction, the portfolio's wealth recomputed from positions.parquet and the candle files, and
--target relative with one symbol refused in one line."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from test_universe import (
    DROPPED,
    SYMBOLS,
    data_args,
    loop_wealth,
    weight_columns,
    write_universe,
)
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.studies.runs import read_config
from fc.core.studies.universe import run_universe_grids, universe_p_up

runner = CliRunner()
QUICK = ["--seq-len", "32", "--hidden", "4", "--layers", "1", "--epochs", "1", "--max-steps",
         "3", "--quiet"]  # fmt: skip
WALK = ["--start", "2023-02-10", "--every", "10D", "--val", "10D"]
FEE_BPS = 2.0


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def universe_walk(tmp_path_factory):
    root = tmp_path_factory.mktemp("uwalk")
    files = write_universe(root / "data")
    args = ["walk", "--symbols", ",".join(SYMBOLS), "--target", "relative", *data_args(files),
            *WALK, *QUICK, "--fee-bps", str(FEE_BPS), "--runs", str(root / "runs"),
            "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    return Path(report["walk"]), files, report


def test_every_fold_is_a_pooled_run(universe_walk):
    walk, _, report = universe_walk
    assert len(report["folds"]) >= 2
    for fold in report["folds"]:
        config = read_config(walk / fold["run"])
        assert list(config.symbols) == list(SYMBOLS) and config.target == "relative"
        assert config.test_from == "none" and set(config.symbol_scaling) == set(SYMBOLS)
        assert pd.Timestamp(config.split, tz="UTC") == pd.Timestamp(fold["validation_start"])


def test_stitched_p_up_is_each_fold_models_own(universe_walk):
    walk, files, report = universe_walk
    predictions = pd.read_parquet(walk / "predictions.parquet")
    assert set(predictions["symbol"]) == set(SYMBOLS)
    for fold in report["folds"]:
        run = walk / fold["run"]
        config = read_config(run)
        grids = run_universe_grids(config, [f"{s}={p}" for s, p in files.items()])
        index = next(iter(grids.values())).index
        mine = predictions[predictions["fold"] == fold["fold"]]
        times = pd.DatetimeIndex(mine["time"].unique())
        assert times.min() >= pd.Timestamp(fold["start"]) and times.max() < pd.Timestamp(
            fold["end"]
        )
        need = np.isin(index, times)
        p_up = universe_p_up(run, config, grids, need, "cpu")
        for i, symbol in enumerate(SYMBOLS):
            got = mine[mine["symbol"] == symbol].set_index("time")["p_up"]
            expected = p_up[index.get_indexer(got.index), i]
            np.testing.assert_allclose(got.to_numpy(), expected, rtol=0, atol=1e-9)


def test_walk_portfolio_wealth_equals_a_recomputation(universe_walk):
    walk, files, report = universe_walk
    rows = pd.read_parquet(walk / "backtest" / "positions.parquet")
    assert set(rows["range"]) == {"walk_forward"}
    assert rows["time"].isin(pd.DatetimeIndex(DROPPED, tz="UTC")).sum() == 2  # filled bars kept
    cost = FEE_BPS / 1e4
    portfolio = report["backtest"]["walk_forward"]["portfolio"]
    for policy in ("long_short", "equal_weight_discrete", "equal_weight_proportional"):
        wealth = loop_wealth(rows, files, weight_columns(policy), cost)
        np.testing.assert_allclose(rows[f"wealth_{policy}"], wealth, rtol=0, atol=1e-9)
        assert portfolio[policy]["final_wealth"] == pytest.approx(wealth[-1], abs=1e-9)
    for symbol in SYMBOLS:  # relative: each symbol's row is its classifier alone
        assert set(report["backtest"]["walk_forward"]["symbols"][symbol]) == {"classifier"}


def test_relative_walk_with_one_symbol_is_one_line(tmp_path):
    files = write_universe(tmp_path / "data")
    runs = tmp_path / "runs"
    args = ["walk", "--symbols", "AAA/USDT", "--target", "relative",
            "--data", f"AAA/USDT={files['AAA/USDT']}", *WALK, *QUICK,
            "--runs", str(runs)]  # fmt: skip
    one_line_error(runner.invoke(app, args), "--target relative")
    assert not runs.exists() or not any(runs.iterdir())


def test_next_walk_reports_each_symbols_policies_without_long_short(tmp_path):
    files = write_universe(tmp_path / "data")
    args = ["walk", "--symbols", ",".join(SYMBOLS), *data_args(files), *WALK, *QUICK,
            "--runs", str(tmp_path / "runs"), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["backtest"]
    assert report["target"] == "next"
    assert "long_short" not in report["walk_forward"]["portfolio"]
    rows = pd.read_parquet(Path(report["walk"]) / "backtest" / "positions.parquet")
    assert not [c for c in rows if "long_short" in c]
    for symbol in SYMBOLS:  # next: each symbol backtested alone, as fc backtest does
        assert {"discrete", "classifier"} <= set(report["walk_forward"]["symbols"][symbol])
