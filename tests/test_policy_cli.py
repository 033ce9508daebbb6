"""Policy parameters through the CLI: the grid chooses on validation only, the choice travels
into the export metadata, and bad parameters are one line with exit status 2."""

import json

import numpy as np
import pytest
from conftest import one_line_error
from export_runs import synth_run
from rich.console import Console
from typer.testing import CliRunner

from fc.cli.backtest import _cost_table, _grid_tables
from fc.cli.main import app
from fc.core.evaluation.backtest import BacktestConfig, segments, trade_mask
from fc.core.evaluation.policy_grid import PolicyGrid, choose_on_validation
from fc.core.studies.backtest_run import run_grid
from fc.core.studies.runs import read_config
from fc.live.predictor import load_predictor

runner = CliRunner()
SEQ = 48
SPLIT = "2023-01-20"
# the seeded random model reads p_up 0.53..0.58: bands around 0.5 that bite sit near 0.06
GRID = ["--band", "0,0.055,0.06", "--inside", "keep,flat", "--rebalance", "0,0.01",
        "--min-hold", "1,3"]  # fmt: skip
STRATEGY_KEYS = ("turnover", "trades", "mean_holding_bars", "break_even_fee_bps")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("policy")
    synth_run(root, days=30, seed=11, outage=[1000, 1001], seq_len=SEQ, split=SPLIT)
    return root


@pytest.fixture(scope="module")
def grid_report(run):
    result = runner.invoke(app, ["backtest", str(run), "--fee-bps", "5", *GRID, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_grid_reports_every_setting_and_chooses_the_best_validation_wealth(run, grid_report):
    report = grid_report
    grid = report["policy_grid"]
    rows = grid["rows"]
    # discrete: (3 bands x 2 insides - band 0 flat, the same as keep) x 2 holds;
    # proportional: 2 rebalances x 2 holds
    assert [r["policy"] for r in rows].count("discrete") == 10
    assert [r["policy"] for r in rows].count("proportional") == 4
    assert grid["range"] == "validation"
    for policy in ("discrete", "proportional"):
        mine = [r for r in rows if r["policy"] == policy]
        best = max(r["final_wealth"] for r in mine)
        chosen = [r for r in mine if r.get("chosen")]
        assert len(chosen) == 1 and chosen[0]["final_wealth"] == best
        assert grid["chosen"][policy] == chosen[0]["params"]
        assert report["policy_params"][policy] == chosen[0]["params"]
        # the chosen setting's validation row is the grid's row, recomputed by the backtest
        assert report["validation"][policy]["final_wealth"] == pytest.approx(best, rel=1e-12)
        assert len({r["final_wealth"] for r in mine}) > 1  # the settings differ
    for section in ("train", "validation"):
        for key in ("discrete", "proportional", "buy_and_hold", "mean_reversion"):
            for field in STRATEGY_KEYS:
                assert field in report[section][key], (section, key, field)
    written = json.loads((run / "backtest" / "chosen_policy.json").read_text())
    assert written["chosen"] == grid["chosen"]

    console = Console(record=True, width=80)
    for table in (*_grid_tables(grid), _cost_table("validation", report["validation"])):
        console.print(table)
    text = console.export_text()
    assert "band 0.055 flat hold 3" in text and "break-even fee" in text
    assert sum(line.rstrip().endswith("*") for line in text.splitlines()) == 2  # one a policy


def test_the_choice_reads_validation_only(run):
    """Poison every p_up outside validation: the grid's rows and choice do not move."""
    config = read_config(run)
    grid = run_grid(config)
    decide = trade_mask(grid["filled"].to_numpy(), SEQ)
    cfg = BacktestConfig(fee_bps=5)
    validation = segments(grid.index, decide, SPLIT, cfg)["validation"]
    rng = np.random.default_rng(0)
    p_up = np.clip(0.56 + rng.normal(0, 0.01, len(grid)), 0, 1)
    policies = PolicyGrid.parse(band="0,0.06", min_hold="1,3", rebalance="0,0.01")
    clean = choose_on_validation(grid, p_up, decide, validation, cfg, "30m", policies)
    poisoned = np.where(validation, p_up, rng.random(len(grid)))
    dirty = choose_on_validation(grid, poisoned, decide, validation, cfg, "30m", policies)
    assert clean == dirty


def test_export_carries_the_chosen_parameters_and_command_line_overrides(run, grid_report):
    chosen = grid_report["policy_grid"]["chosen"]
    result = runner.invoke(app, ["export", str(run), "--onnx", "--json"])
    assert result.exit_code == 0, result.output
    meta = load_predictor(run / "export" / "model.onnx").meta["policy_params"]
    assert {p: v.to_dict() for p, v in meta.items()} == chosen
    assert "chosen on validation" in json.loads(result.stdout)["policy_source"]
    result = runner.invoke(app, ["export", str(run), "--onnx", "--cap", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    meta = load_predictor(run / "export" / "model.onnx").meta["policy_params"]
    for policy in ("discrete", "proportional"):
        assert meta[policy].to_dict() == chosen[policy] | {"cap": 0.5}


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--band", "0.5"], "--band"),
        (["--band", "-0.01"], "--band"),
        (["--band", "0,0.7"], "--band"),
        (["--band", ","], "--band"),
        (["--band", "wide"], "--band"),
        (["--rebalance", "-0.1"], "--rebalance"),
        (["--min-hold", "-1"], "--min-hold"),
        (["--min-hold", "0"], "--min-hold"),
        (["--min-hold", "2.5"], "--min-hold"),
        (["--cap", "0"], "--cap"),
        (["--cap", "1.5"], "--cap"),
        (["--inside", "out"], "--inside"),
        (["--inside", "keep", "--flat-inside"], "--flat-inside"),
    ],
)
def test_bad_policy_parameters_are_one_line(tmp_path, args, word):
    # checked before anything is read: the run folder need not exist
    result = runner.invoke(app, ["backtest", str(tmp_path / "no-run"), *args])
    one_line_error(result, word)


def test_export_and_paper_take_one_value_and_check_it(tmp_path):
    result = runner.invoke(app, ["export", str(tmp_path), "--onnx", "--band", "0,0.01"])
    one_line_error(result, "--band", "one value")
    result = runner.invoke(app, ["paper", "--model", str(tmp_path / "m.onnx"), "--cap", "2"])
    one_line_error(result, "--cap")
