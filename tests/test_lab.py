"""fc lab: a variant is fc walk (predictions byte-identical), a run killed with -9 resumes with
exactly the missing units and the same report, an edited variant reruns only its units, the
deflated Sharpe's N counts the file and the ledger's distinct earlier looks, bad input is one
line."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from lab_files import LAB, lab_file
from typer.testing import CliRunner

from fc.cli.lab_options import resolver
from fc.cli.main import app
from fc.core.studies import lab_run
from fc.core.studies.executor import ExecutorOptions
from fc.core.studies.lab import read_lab
from fc.core.studies.lab_run import lab_status
from fc.core.studies.lab_units import run_unit
from fc.core.studies.ledger import look, record_looks

runner = CliRunner()
UNITS = 6  # 3 variants x 2 folds (7 weeks of candles); the slow tests' lab: 3 x 4
BIG = 12


def run_json(*args) -> dict:
    result = runner.invoke(app, ["lab", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ran_lab(folder: Path, weeks: int, units: int):
    """The lab file run once, uninterrupted: (lab file, its folder, run_lab's answer)."""
    path = lab_file(folder, weeks=weeks)
    plan = run_json("plan", path)
    assert (plan["units"], plan["done"], plan["estimate_seconds"]) == (units, 0, None)
    return path, folder / "study", run_json("run", path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return ran_lab(tmp_path_factory.mktemp("lab"), weeks=7, units=UNITS)


@pytest.fixture(scope="module")
def big_lab(tmp_path_factory):
    return ran_lab(tmp_path_factory.mktemp("big"), weeks=9, units=BIG)


def fc_walk(folder: Path, runs: Path, *options) -> Path:
    """`fc walk` over lab_files' candles with the lab file's [data] and [walk]; its folder."""
    args = ["walk", "--data", folder / "candles.parquet", "--symbol", "SYNTH/USDT",
            "--timeframe", "1h", "--seq-len", "24", "--start", "2024-02-05", "--every", "1W",
            "--val", "1W", "--runs", runs, "--quiet", *options]  # fmt: skip
    result = runner.invoke(app, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return runs / Path(result.stdout.strip().splitlines()[-1]).name


def variant(report: dict, name: str) -> dict:
    return next(v for v in report["variants"] if v["name"] == name)


def test_a_variant_is_fc_walk_byte_for_byte(lab):
    path, out, answer = lab
    assert (answer["computed"], answer["reused"], answer["variants"]) == (UNITS, 0, 3)
    report = json.loads((out / "report.json").read_text())
    lags4 = variant(report, "family=logistic lags=4")
    folder = path.parent
    walk = fc_walk(folder, folder / "runs", "--family", "logistic", "--lags", "4")
    mine = out / "variants" / lags4["id"] / "predictions.parquet"
    assert mine.read_bytes() == (walk / "predictions.parquet").read_bytes()
    # and its backtest at 0 bps is fc walk's (the same function, the same numbers)
    theirs = json.loads((walk / "backtest" / "metrics.json").read_text())["walk_forward"]
    for strategy in ("discrete", "proportional", "buy_and_hold", "mean_reversion"):
        ours = lags4["fees"]["0"]["strategies"][strategy]
        assert ours["sharpe"] == theirs[strategy]["sharpe"]
        assert ours["sharpe_ci95"] == list(theirs[strategy]["sharpe_ci95"])
    assert lags4["classifier"]["model"]["accuracy"] == theirs["classifier"]["model"]["accuracy"]
    # the lab's paired intervals against every one-liner agree with the backtest's two
    for mine, other in (("mean_reversion", "mean_reversion"), ("class_prior", "prior")):
        against = lags4["classifier"]["accuracy_minus"][mine]
        assert against["difference"] == theirs["classifier"][f"accuracy_minus_{other}"]
        assert against["ci95"] == list(theirs["classifier"][f"accuracy_minus_{other}_ci95"])
    plan = run_json("plan", path)
    assert plan["done"] == UNITS and plan["left"] == 0 and plan["estimate_seconds"] == 0.0


@pytest.mark.slow  # its own lab and fc walk: ~15 s
def test_a_variant_at_horizon_4_is_fc_walk_at_horizon_4(tmp_path):
    """--horizon is a lab key with no line of the lab for it (fc walk's own options)."""
    text = LAB.split("[grid]")[0] + "[grid]\nfamily = ['logistic']\nhorizon = [4]\n"
    path = lab_file(tmp_path, text, weeks=7)
    report = run_json("run", path)["report"]
    variant = json.loads(Path(report["json"]).read_text())["variants"][0]
    walk = fc_walk(tmp_path, tmp_path / "w", "--family", "logistic", "--horizon", "4")
    mine = tmp_path / "study" / "variants" / variant["id"] / "predictions.parquet"
    assert mine.read_bytes() == (walk / "predictions.parquet").read_bytes()
    assert "momentum" in variant["classifier"]["accuracy_minus"]


@pytest.mark.slow  # a second process (imports alone ~5 s) and ten more units: ~20 s on 2 cores
def test_kill_9_resumes_with_exactly_the_missing_units(big_lab):
    path, out, _ = big_lab
    again = path.parent / "again"
    command = [sys.executable, "-m", "fc", "lab", "run", str(path), "--out", str(again), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(again.glob("units/*/unit.json"))) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(list(again.glob("units/*/unit.json")))
    assert 2 <= done < BIG
    status = run_json("status", again)  # the killed process holds nothing any more
    assert (status["done"], status["running"], status["left"]) == (done, 0, BIG - done)
    answer = run_json("run", path, "--out", again)
    assert (answer["computed"], answer["reused"]) == (BIG - done, done)
    assert not list(again.rglob(".tmp-*"))
    # the same report as the uninterrupted run's, both rendered from their folders now
    run_json("report", out)
    assert (again / "report.json").read_bytes() == (out / "report.json").read_bytes()


@pytest.mark.slow  # two spawned processes (imports ~5 s each) and twelve units
def test_two_local_workers_give_the_serial_lab_byte_for_byte(big_lab):
    path, out, _ = big_lab
    pooled = path.parent / "pooled"
    answer = lab_run.run_lab(read_lab(path, resolver(path)), pooled, executor=ExecutorOptions(
        workers=2))  # fmt: skip
    assert answer["computed"] == BIG
    for variant in (out / "variants").iterdir():
        mine = pooled / "variants" / variant.name / "predictions.parquet"
        assert mine.read_bytes() == (variant / "predictions.parquet").read_bytes()
    run_json("report", out)
    assert (pooled / "report.json").read_bytes() == (out / "report.json").read_bytes()


def test_editing_one_variant_reruns_its_units_only(lab, tmp_path, monkeypatch):
    path, out, _ = lab
    copy = tmp_path / "copy"
    shutil.copytree(path.parent, copy, ignore=shutil.ignore_patterns("again", "runs"))
    edited = copy / path.name
    edited.write_text(LAB.replace("min-data-in-leaf = 20", "min-data-in-leaf = 30"))
    seen = []

    def watched(task):  # fc lab status while each unit is being computed
        seen.append(lab_status(copy / "study"))
        return run_unit(task)

    monkeypatch.setattr(lab_run, "run_unit", watched)
    answer = lab_run.run_lab(read_lab(edited, resolver(edited)), copy / "study")
    assert (answer["computed"], answer["reused"], answer["summarised"]) == (2, 4, 1)
    assert [(s["done"], s["running"], s["left"]) for s in seen] == [(4, 1, 1), (5, 1, 0)]
    # other fees re-summarise every variant from its units, refitting nothing
    edited.write_text(edited.read_text().replace("fees = [0, 2]", "fees = [0, 5]"))
    answer = run_json("run", edited)
    assert (answer["computed"], answer["summarised"]) == (0, 3)
    assert set(json.loads((copy / "study" / "report.json").read_text())["variants"][0]["fees"]) \
        == {"0", "5"}  # fmt: skip


def test_deflated_sharpe_counts_the_file_and_distinct_earlier_looks(lab):
    """N = the file's 3 variants + 1 earlier look recorded twice (counted once); the lab's own
    looks and fc walk's look of the same variant (previous test) are not earlier looks."""
    path, out, _ = lab
    runs = path.parent / "runs"
    report = json.loads((out / "report.json").read_text())
    first, last = report["variants"][0]["first_decision"], report["variants"][0]["last_decision"]
    earlier = look(np.random.default_rng(3).normal(1e-4, 3e-3, 500), 8760.0)
    for strategy in ("discrete", "proportional"):
        for run in ("walk-earlier", "walk-earlier-copy"):  # the same variant twice: one look
            record_looks(runs, run, "earlier-config", "earlier-data", "walk", first, last,
                         {strategy: earlier}, cost_bps=0.0)  # fmt: skip
    report = run_json("report", out)
    per_bar = {}  # independently: per-bar returns from each variant's positions file
    for v in report["variants"]:
        positions = pd.read_parquet(out / "variants" / v["id"] / "positions-0bps.parquet")
        per_bar[v["name"]] = {}
        for strategy in ("discrete", "proportional"):
            wealth = positions[f"wealth_{strategy}"].to_numpy()
            per_bar[v["name"]][strategy] = wealth / np.r_[1.0, wealth[:-1]] - 1.0
    for v in report["variants"]:
        best = v["fees"]["0"]["best"]
        assert (best["trials"], best["trials_in_lab"], best["earlier_looks"]) == (4, 3, 1)
        mine = per_bar[v["name"]]
        strategy = max(mine, key=lambda s: mine[s].mean() / mine[s].std(ddof=1))
        assert best["strategy"] == strategy
        sharpes = [r[strategy].mean() / r[strategy].std(ddof=1) for r in per_bar.values()]
        sharpes.append(earlier["sharpe"])
        assert best["deflated_sharpe"] == pytest.approx(dsr(mine[strategy], sharpes), abs=1e-9)


def dsr(returns: np.ndarray, sharpes: list[float]) -> float:
    """Bailey and Lopez de Prado's DSR, written out from the paper."""
    normal, n_trials, euler = NormalDist(), len(sharpes), 0.5772156649015329
    sr0 = math.sqrt(np.var(sharpes, ddof=1)) * (
        (1 - euler) * normal.inv_cdf(1 - 1 / n_trials)
        + euler * normal.inv_cdf(1 - 1 / (n_trials * math.e))
    )
    centred = returns - returns.mean()
    m2 = np.mean(centred**2)
    skew, kurt = np.mean(centred**3) / m2**1.5, np.mean(centred**4) / m2**2
    sr = returns.mean() / returns.std(ddof=1)
    spread = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    return normal.cdf((sr - sr0) * math.sqrt(len(returns) - 1) / math.sqrt(spread))


def test_the_page_is_one_self_contained_file(lab):
    _, out, _ = lab
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 1 + 3 * 3  # calibration + 3 per variant
    for remote in ("http://", "https://", "<script", "@font-face", "<link"):
        assert remote not in html
    assert "[[variant]]" in html and (out / "report.html").stat().st_size < 5e6
    md = (out / "report.md").read_text()
    assert "| family=logistic lags=4 | 2 |" in md and "N (lab + earlier looks)" in md


BAD = [
    ("[data]\nfamily = = 1\n", ("not valid TOML", "line 2")),
    (LAB.replace("lags = [4, 8]", "lags = [4, 8]\nfamly = ['gru']"), ("'famly'", "[grid]")),
    (LAB + "[other]\nx = 1\n", ("[other]",)),
    (LAB.replace("lags = 4\n", "lags = 'x'\n"), ("[variant] lags = 'x'", "integer")),
    (LAB.replace('family = "lightgbm"', 'family = "xgboost"'), ("xgboost",)),
    (LAB.replace("lags = [4, 8]", "lags = []"), ("[grid] lags",)),
    (LAB.split("[grid]")[0] + "[grid]\n", ("[grid] is empty",)),
    (LAB.replace('start = "2024-02-05"\n', ""), ("start is missing",)),
    (LAB.replace("lags = [4, 8]", f"lags = {list(range(1, 202))}"), ("--max-variants 200",)),
    (LAB.replace("fees = [0, 2]", "fees = [-1]"), ("fees",)),
    (LAB.replace('every = "1W"', 'every = "1X"'), ("1X", "duration")),
    # a universe (tests/test_lab_universe.py) takes each symbol's file as SYMBOL=FILE
    (LAB.replace('timeframe = "1h"', 'symbols = "SYNTH/USDT,ETH/USDT"'), ("SYMBOL=FILE",)),
    (LAB.replace('data = "candles.parquet"', 'data = "absent.parquet"'), ("absent.parquet",)),
]


@pytest.mark.parametrize("text, words", BAD, ids=[f"bad-{i}" for i in range(len(BAD))])
def test_bad_lab_files_are_one_line(tmp_path, text, words):
    path = lab_file(tmp_path, text)
    for command in ("plan", "run"):
        one_line_error(runner.invoke(app, ["lab", command, str(path)]), *words)
    assert not (tmp_path / "study").exists()  # refused before any work


def test_bad_folders_are_one_line_and_lose_nothing(lab, tmp_path):
    path, out, _ = lab
    other = lab_file(path.parent, LAB, name="other.toml")
    manifest = (out / "manifest.json").read_bytes()
    result = runner.invoke(app, ["lab", "run", str(other), "--out", str(out)])
    one_line_error(result, "holds the lab of", "study.toml")
    assert (out / "manifest.json").read_bytes() == manifest
    one_line_error(runner.invoke(app, ["lab", "report", str(tmp_path)]), "no manifest.json")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(out, unfinished, ignore=shutil.ignore_patterns("variants", "report.*"))
    one_line_error(runner.invoke(app, ["lab", "report", str(unfinished)]), "no variant has")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    one_line_error(runner.invoke(app, ["lab", "run", str(path), "--out", str(tmp_path / "junk")]),
                   "not a lab folder")  # fmt: skip
    assert (tmp_path / "junk" / "notes.txt").read_text() == "mine"


def test_the_docs_example_is_the_committed_lab_file():
    """docs/lab-files.md shows docs/labs/example.toml and its block writes the same file."""
    root = Path(__file__).resolve().parents[1]
    lab = (root / "docs" / "labs" / "example.toml").read_text()
    page = (root / "docs" / "lab-files.md").read_text()
    assert f"```toml\n{lab}```" in page
    assert f"cat > example.toml <<'EOF'\n{lab}EOF" in page
