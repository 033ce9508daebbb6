"""fc backtest and fc walk record their looks at untouched ranges in RUNS/ledger.sqlite: three
runs on one test range make N = 3 and the third's deflated Sharpe is the paper's formula written
here from the ledger rows; a rerun (or the same run in another folder) is no new look; another
fee is a new variant; validation and train are never recorded; a walk records its walk range."""

import json
import math
import shutil
import statistics
from pathlib import Path
from statistics import NormalDist

import pandas as pd
import paper_formulas as paper
import pytest
from conftest import make_candles
from export_runs import make_run
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.synth import synth_candles
from fc.core.studies.ledger import ledger_path, ledger_rows

runner = CliRunner()
SEQ = 48
TEST_FROM = "2023-02-03T00:00:00+00:00"
POLICIES = ("discrete", "proportional")
# three variants of the model on the same candles: another seed, another hidden size
VARIANTS = {"run-a": dict(seed=0, hidden=8), "run-b": dict(seed=1, hidden=8),
            "run-c": dict(seed=0, hidden=12)}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def backtest(run_dir, *extra, fee: str = "5") -> dict:
    result = runner.invoke(app, ["backtest", str(run_dir), "--fee-bps", fee, *extra, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # --json stays one JSON object


def returns_on_test(run_dir) -> dict[str, list[float]]:
    """Per-bar returns of each policy over the test range, from the positions file's wealth."""
    positions = pd.read_parquet(run_dir / "backtest" / "positions.parquet")
    out = {}
    for policy in POLICIES:
        wealth = positions.loc[positions["range"] == "test", f"wealth_{policy}"].tolist()
        out[policy] = [w / p - 1 for w, p in zip(wealth, [1.0, *wealth[:-1]], strict=True)]
    return out


@pytest.fixture(scope="module")
def looks(tmp_path_factory):
    """RUNS with three runs over one candle file (40 days from 2023-01-01, split 2023-01-25,
    test from 2023-02-03), backtested in turn at 5 bps; each report and its test returns."""
    runs = tmp_path_factory.mktemp("runs")
    data = tmp_path_factory.mktemp("data") / "synth-30m.parquet"
    synth_candles(days=40, timeframe="30m", seed=3).to_parquet(data)
    out = {"runs": runs, "reports": {}, "returns": {}}
    for name, variant in VARIANTS.items():
        make_run(runs / name, seq_len=SEQ, data=data, timeframe="30m", split="2023-01-25",
                 test_from=TEST_FROM, scale_center=1.0, scale_scale=0.003,
                 **variant)  # fmt: skip
        config = json.loads((runs / name / "config.json").read_text())
        # make_run seeds the weights only; `fc train` writes the seed it used into config.json
        (runs / name / "config.json").write_text(json.dumps({**config, "seed": variant["seed"]}))
        out["reports"][name] = backtest(runs / name)
        out["returns"][name] = returns_on_test(runs / name)
    return out


def paper_dsr(row: dict, trial_sharpes: list[float]) -> float:
    """Bailey and Lopez de Prado (2014) from one ledger row and the N trials' per-bar Sharpes."""
    sr, g3, g4, n = row["sharpe_per_bar"], row["skewness"], row["kurtosis"], row["bars"]
    z, big_n = NormalDist(), len(trial_sharpes)
    sr0 = 0.0
    if big_n > 1:
        sr0 = math.sqrt(statistics.variance(trial_sharpes)) * (
            (1 - paper.EULER_MASCHERONI) * z.inv_cdf(1 - 1 / big_n)
            + paper.EULER_MASCHERONI * z.inv_cdf(1 - 1 / (big_n * math.e))
        )
    return z.cdf((sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))


def test_three_runs_make_n_three_and_the_third_is_deflated_for_three(looks):
    reports, rows = looks["reports"], ledger_rows(looks["runs"])
    assert [r["run"] for r in rows] == [n for n in VARIANTS for _ in POLICIES]
    for policy in POLICIES:
        seen = [reports[name]["test"][policy]["ledger"] for name in VARIANTS]
        assert [s["variants"] for s in seen] == [1, 2, 3]
        assert all(s["new_look"] for s in seen)
        mine = [r for r in rows if r["strategy"] == policy]
        for row, name in zip(mine, VARIANTS, strict=True):
            # what the ledger holds is what the test range's returns say, computed by hand
            sr, g3, g4 = paper.sharpe_skew_kurtosis(looks["returns"][name][policy])
            assert (row["sharpe_per_bar"], row["skewness"], row["kurtosis"]) == pytest.approx(
                (sr, g3, g4), rel=1e-9
            )
            test = reports[name]["test"]
            assert row["sharpe_annualised"] == pytest.approx(test[policy]["sharpe"], rel=1e-9)
            assert row["decisions"] == test[policy]["decisions"]
            assert (row["range_first"], row["range_last"]) == (
                test["range"]["first"], test["range"]["last"])  # fmt: skip
        expected = paper_dsr(mine[2], [r["sharpe_per_bar"] for r in mine])
        assert seen[2]["deflated_sharpe"] == pytest.approx(expected, abs=1e-12)
        # N = 1: no selection, PSR(0) as the report already says
        assert seen[0]["deflated_sharpe"] == pytest.approx(reports["run-a"]["test"][policy]["psr"])
    third = reports["run-c"]
    assert third["ledger"]["file"] == str(ledger_path(looks["runs"].resolve()))
    assert third["ledger"]["range"] == "test" and len(third["ledger"]["config_hash"]) == 64


def test_validation_and_train_are_never_recorded(looks):
    report = looks["reports"]["run-a"]
    for name in ("train", "validation"):
        assert all("ledger" not in report[name][p] for p in POLICIES)
    assert {r["range_name"] for r in ledger_rows(looks["runs"])} == {"test"}


def test_a_rerun_is_no_new_look_and_says_so(looks):
    runs, before = looks["runs"], ledger_rows(looks["runs"])
    result = runner.invoke(app, ["backtest", str(runs / "run-a"), "--fee-bps", "5"],
                           terminal_width=200)  # fmt: skip
    assert result.exit_code == 0, result.output
    again = json.loads((runs / "run-a" / "backtest" / "metrics.json").read_text())
    mine = [r for r in before if r["strategy"] == "discrete"]
    assert again["test"]["discrete"]["ledger"] == {
        "variants": 3,
        "new_look": False,
        # its first look's figures, now deflated for three
        "deflated_sharpe": pytest.approx(paper_dsr(mine[0], [r["sharpe_per_bar"] for r in mine])),
    }
    assert ledger_rows(runs) == before
    line = next(x for x in result.stdout.splitlines() if "variants so far" in x)
    assert line.startswith("test range scored by 3 variants so far (")
    assert "deflated Sharpe of this one for 3: discrete 0." in line
    assert line.endswith("(a rerun: not a new look)")
    # the same run copied to another folder, its candles to another file: paths are no variant
    copy = runs / "run-a-copy"
    shutil.copytree(runs / "run-a", copy)
    config = json.loads((copy / "config.json").read_text())
    moved = shutil.copy(config["data"], runs.parent / f"{runs.name}-moved.parquet")
    (copy / "config.json").write_text(json.dumps({**config, "data": str(moved)}))
    copied = backtest(runs / "run-a-copy")
    assert copied["test"]["discrete"]["ledger"]["variants"] == 3
    assert not copied["test"]["discrete"]["ledger"]["new_look"]
    assert ledger_rows(runs) == before


def test_another_fee_or_policy_is_a_new_variant_and_a_cut_test_range_another_range(looks):
    runs = looks["runs"]
    # another cost is counted in that cost's own tally (a fee is the market's, not a choice)
    fee = backtest(runs / "run-b", fee="10")["test"]["discrete"]["ledger"]
    assert (fee["variants"], fee["new_look"]) == (1, True)
    assert fee["deflated_sharpe"] == pytest.approx(
        backtest(runs / "run-b", fee="10")["test"]["discrete"]["psr"]
    )
    band = backtest(runs / "run-b", "--band", "0.01")["test"]["discrete"]["ledger"]
    assert (band["variants"], band["new_look"]) == (4, True)
    cut = backtest(runs / "run-b", "--end", "2023-02-06")  # a shorter test range
    assert cut["test"]["discrete"]["ledger"]["variants"] == 1
    assert len({(r["range_first"], r["range_last"]) for r in ledger_rows(runs)}) == 2
    before = ledger_rows(runs)
    none = backtest(runs / "run-b", "--end", "2023-02-01")  # no test range: nothing recorded
    assert "test" not in none and "ledger" not in none
    assert ledger_rows(runs) == before


def test_a_walk_records_its_walk_range_and_a_rerun_is_no_new_look(tmp_path):
    data = tmp_path / "candles.parquet"
    make_candles(5 * 7 * 48, timeframe="30min", seed=4).to_parquet(data)
    runs = tmp_path / "runs"
    args = ["walk", "--data", str(data), "--runs", str(runs), "--seq-len", "16", "--hidden", "4",
            "--layers", "1", "--max-steps", "2", "--chunk", "32", "--batch-size", "8",
            "--device", "cpu", "--start", "2024-01-22", "--every", "1W", "--val", "1W"]  # fmt: skip
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)
    report, walk_dir = first["backtest"], first["walk"]
    row_d, row_p = ledger_rows(runs, "walk")
    assert (row_d["strategy"], row_p["strategy"]) == POLICIES
    assert row_d["run"] == Path(walk_dir).name and ledger_rows(runs, "test") == []
    assert (row_d["range_first"], row_d["range_last"]) == (report["first_decision"],
                                                           report["last_decision"])  # fmt: skip
    section = report["walk_forward"]
    assert row_d["sharpe_annualised"] == pytest.approx(section["discrete"]["sharpe"], rel=1e-9)
    assert section["discrete"]["ledger"]["variants"] == 1
    # N = 1: the deflated Sharpe is PSR(0)
    psr = section["discrete"]["psr"]
    assert section["discrete"]["ledger"]["deflated_sharpe"] == pytest.approx(psr)
    saved = json.loads((runs / row_d["run"] / "backtest" / "metrics.json").read_text())
    assert saved["ledger"]["range"] == "walk"
    again = runner.invoke(app, args, terminal_width=200)  # a new walk folder, the same variant
    assert again.exit_code == 0, again.output
    assert "walk range scored by 1 variant so far (" in again.stderr
    assert "(a rerun: not a new look)" in again.stderr
    assert len(ledger_rows(runs)) == 2
