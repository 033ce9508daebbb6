"""fc tune: the search space from options, a SQLite study that resumes, pruning of hopeless
trials, refusals that leave the stored study as it was, the report, and two workers sharing one
study on a real PostgreSQL server."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from statistics import NormalDist

import numpy as np
import optuna
import pytest
from conftest import make_candles, one_line_error
from postgres_server import postgres_url  # noqa: F401  (a PostgreSQL server on loopback)
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.errors import FcError
from fc.core.studies.tune import Dimension, option_values, search_space
from fc.core.studies.tune_report import study_report

SPLIT = "2024-02-20"
# a tiny GRU on short windows: a trial is a second or two
TINY = ["--split", SPLIT, "--seq-len", "16", "--chunk", "32", "--batch-size", "8",
        "--layers", "1", "--val-size", "256", "--device", "cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def candle_file(tmp_path_factory):
    """3,000 30m candles from 2024-01-01: about 2,400 training decisions before the split."""
    path = tmp_path_factory.mktemp("data") / "walk.parquet"
    make_candles(3000, "30min", seed=3).to_parquet(path)
    return path


def tune(*args):
    result = CliRunner().invoke(app, ["tune", *map(str, args)])
    return result


def stored_trials(url: str, name: str) -> list[tuple]:
    study = optuna.load_study(study_name=name, storage=url)
    return [(t.number, t.state.name, t.params, t.value, t.user_attrs) for t in study.trials]


def test_search_space_from_option_texts():
    values = option_values(["--hidden", "8,16,32", "--lr=1e-3:1e-1", "--layers", "1:3",
                            "--loss", "ce,profit", "--epochs", "2", "--cost-bps", "5"])  # fmt: skip
    fixed, space = search_space(values)
    assert fixed == {"epochs": 2, "cost_bps": 5.0}
    assert space == [
        Dimension("hidden", choices=(8, 16, 32)),
        Dimension("lr", low=1e-3, high=1e-1, log=True),
        Dimension("layers", low=1, high=3, integer=True),
        Dimension("loss", choices=("ce", "profit")),
    ]
    assert search_space({"hidden": "16,16", "layers": "2:2"}) == ({"hidden": 16, "layers": 2}, [])
    assert search_space({"seeds": "1:3"})[1] == [Dimension("seeds", low=1, high=3, integer=True)]
    for bad, word in (({"hidden": "32:8"}, "empty range"), ({"hidden": "8,,16"}, "empty"),
                      ({"lr": "0:1e-1"}, "above 0"), ({"loss": "ce:profit"}, "list"),
                      ({"hidden": "8.5,16"}, "int")):  # fmt: skip
        with pytest.raises(FcError, match=word):
            search_space(bad)
    with pytest.raises(FcError, match="unknown parameter"):
        option_values(["--width", "8,16"])


def test_a_second_call_resumes_the_sqlite_study(candle_file, tmp_path):
    args = ["--data", candle_file, "--runs", tmp_path, "--study", "s", *TINY, "--epochs", "1"]
    args += ["--max-steps", "2", "--hidden", "2,4", "--n-trials", "1"]
    first = tune(*args)
    assert first.exit_code == 0, first.output
    second = tune(*args, "--json")
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    numbers = [row["number"] for row in report["table"]]
    assert numbers == [0, 1] and report["best_of"] == 2
    assert all(Path(row["run_dir"]).is_dir() for row in report["table"])
    # the storage is a plain SQLite file in the runs folder
    with sqlite3.connect(tmp_path / "tune.sqlite3") as db:
        assert db.execute("select count(*) from trials where state = 'COMPLETE'").fetchone() == (2,)
    best = min(report["table"], key=lambda row: row["value"])
    assert report["best"]["number"] == best["number"]
    # the first call printed its best trial's run folder last
    assert Path(first.stdout.strip().splitlines()[-1]).is_dir()


BAD = [
    (["--width", "8,16"], "unknown parameter"),
    (["--layers", "3:1"], "empty range"),
    (["--lr", ","], "empty"),
    (["--loss", "ce,mse"], "mse"),
    (["--device", "cuda"], "CUDA"),
    (["--storage", "postgresql://nobody@127.0.0.1:1/x"], "cannot open"),
    (["--storage", "nonsense"], "sqlite:///"),
    (["--objective", "val-log-growth"], "optimises val-ce"),
]


def test_bad_input_is_one_line_and_leaves_the_study_as_it_was(candle_file, tmp_path):
    if torch_has_cuda():
        BAD.remove((["--device", "cuda"], "CUDA"))
    args = ["--data", candle_file, "--runs", tmp_path, "--study", "keep", *TINY, "--epochs", "1"]
    args += ["--max-steps", "1", "--hidden", "2,4", "--n-trials", "1"]
    assert tune(*args).exit_code == 0
    url = f"sqlite:///{tmp_path / 'tune.sqlite3'}"
    before = stored_trials(url, "keep")
    missing = tmp_path / "no" / "such" / "folder" / "t.sqlite3"
    for extra, word in [*BAD, (["--storage", f"sqlite:///{missing}"], "cannot open")]:
        one_line_error(tune(*args, *extra), word)
        assert stored_trials(url, "keep") == before, extra
    assert not missing.parent.exists()


def torch_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_hopeless_trials_are_pruned_before_their_last_epoch(candle_file, tmp_path):
    # two sane trials first, so the median pruner has a reference from its first trial on; then
    # half the choices are hopeless (Adam at lr 10). About ten validations an epoch.
    args = ["--data", candle_file, "--runs", tmp_path, "--study", "p", *TINY, "--epochs", "2"]
    args += ["--hidden", "4", "--prune-startup", "2", "--prune-warmup", "2"]
    assert tune(*args, "--lr", "0.01", "--n-trials", "2").exit_code == 0
    # TPE samples its first ten trials at random (seed 0 + 2 stored trials): both choices come
    result = tune(*args, "--lr", "10,0.01", "--n-trials", "6", "--sampler-seed", "0")
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="p", storage=f"sqlite:///{tmp_path / 'tune.sqlite3'}")
    later = trials.trials[2:]
    hopeless = [t for t in later if t.params["lr"] == 10]
    sane = [t for t in later if t.params["lr"] == 0.01]
    assert hopeless and sane
    assert all(t.state.name == "PRUNED" for t in hopeless)
    assert all(t.state.name == "COMPLETE" for t in sane)
    for t in hopeless:  # pruned in the first of the two epochs
        assert t.user_attrs["pruned_at_step"] <= t.user_attrs["total_steps"] // 2
        assert "run_dir" not in t.user_attrs
    steps = len(trials.trials[0].intermediate_values)
    assert steps >= 16  # a complete trial validated about ten times an epoch


def test_report_plots_importances_and_the_deflated_sharpe(candle_file, tmp_path):
    args = ["--data", candle_file, "--runs", tmp_path, *TINY, "--epochs", "1", "--max-steps", "1"]
    assert tune(*args, "--study", "one", "--hidden", "2,4", "--n-trials", "1").exit_code == 0
    assert tune(*args, "--study", "two", "--hidden", "2,4", "--n-trials", "2").exit_code == 0
    one = tune("report", "--study", "one", "--runs", tmp_path, "--json")
    assert one.exit_code == 0, one.output
    one = json.loads(one.stdout)
    assert one["trials"] == 1 and one["importance_png"] is None
    assert "at least 2 completed trials" in one["importance_note"]
    two = json.loads(tune("report", "--study", "two", "--runs", tmp_path, "--json").stdout)
    assert two["trials"] == 2 and two["best_of"] == 2
    for key in ("history_png", "importance_png"):
        assert Path(two[key]).stat().st_size > 1000
    one_line_error(tune("report", "--study", "three", "--runs", tmp_path), "no study 'three'")
    text = tune("report", "--study", "two", "--runs", tmp_path)
    assert text.exit_code == 0 and "best of 2 completed" in text.stdout
    deflated_sharpe_of_the_best_for_every_finished_trial(tmp_path, "two")


def deflated_sharpe_of_the_best_for_every_finished_trial(tmp_path, name):
    """The report's DSR against the paper's formula written out here, from the moments of each
    trial's validation returns that training wrote to its metrics.json."""
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'tune.sqlite3'}")
    report = study_report(study)
    moments = {
        t.number: json.loads(Path(t.user_attrs["run_dir"], "metrics.json").read_text())[
            "validation"
        ]["returns"]
        for t in study.trials
    }
    sharpes = [m["sharpe"] for m in moments.values()]
    n, gamma, normal = len(sharpes), 0.5772156649015329, NormalDist()
    sr0 = np.std(sharpes, ddof=1) * ((1 - gamma) * normal.inv_cdf(1 - 1 / n)
                                     + gamma * normal.inv_cdf(1 - 1 / (n * np.e)))  # fmt: skip
    best = moments[report["best"]["number"]]
    sr, g3, g4 = best["sharpe"], best["skewness"], best["kurtosis"]
    z = (sr - sr0) * np.sqrt(best["n"] - 1) / np.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert report["deflated_sharpe"]["n_trials"] == n == 2
    assert report["deflated_sharpe"]["value"] == pytest.approx(normal.cdf(z), rel=1e-9)


def test_two_workers_share_one_postgresql_study(candle_file, tmp_path, postgres_url):  # noqa: F811
    fc = Path(sys.executable).parent / "fc"
    args = [fc, "tune", "--data", candle_file, "--runs", tmp_path, "--study", "shared", *TINY]
    args += ["--epochs", "1", "--max-steps", "2", "--hidden", "2,4,8", "--n-trials", "3"]
    args += ["--storage", postgres_url]
    workers = [
        subprocess.Popen(
            [*map(str, args), "--sampler-seed", str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for seed in (1, 2)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    assert len(trials) == 6 and all(t.state.name == "COMPLETE" for t in trials)
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(Path(t.user_attrs["run_dir"]).is_dir() for t in trials)
    assert len({t.user_attrs["run_dir"] for t in trials}) == 6


def test_features_given_twice_is_a_categorical_and_each_trial_reads_its_own_columns(
    candle_file, tmp_path
):
    """--features may be given several times in fc tune: each is one alternative, and a trial
    trains on the grid with that alternative's columns (its GRU's input size says so)."""
    import torch

    values = option_values(["--features", "close", "--features", "ret,range", "--hidden", "4"])
    assert values["features"] == ("close", "ret,range")
    fixed, space = search_space(values)
    assert fixed == {"hidden": 4} and space == [
        Dimension("features", choices=("close", "ret,range"))
    ]
    args = ["--data", candle_file, "--runs", tmp_path, "--study", "f", *TINY, "--epochs", "1",
            "--max-steps", "2", "--hidden", "4", "--features", "close", "--features", "ret,range",
            "--n-trials", "4", "--json"]  # fmt: skip
    result = tune(*args)
    assert result.exit_code == 0, result.output
    seen = set()
    for row in json.loads(result.stdout)["table"]:
        config = json.loads((Path(row["run_dir"]) / "config.json").read_text())
        assert config["features"] == row["params"]["features"]
        state = torch.load(Path(row["run_dir"]) / "model.pt", weights_only=True)
        assert state["gru.weight_ih_l0"].shape[1] == len(config["features"].split(","))
        seen.add(config["features"])
    assert seen == {"close", "ret,range"}


def test_family_is_searchable_with_each_familys_own_parameters(candle_file, tmp_path):
    """--family gru,lightgbm: a LightGBM trial draws no --hidden (a conditional space) and its
    run is a LightGBM run; a GRU trial draws --hidden from its list."""
    args = ["--data", candle_file, "--runs", tmp_path, "--study", "fam", *TINY, "--epochs", "1",
            "--max-steps", "2", "--family", "gru,lightgbm", "--hidden", "2,4", "--lags", "4",
            "--n-trials", "6", "--json"]  # fmt: skip
    result = tune(*args)
    assert result.exit_code == 0, result.output
    families = set()
    for row in json.loads(result.stdout)["table"]:
        config = json.loads((Path(row["run_dir"]) / "config.json").read_text())
        family = row["params"].get("family")
        assert config["family"] == family
        assert ("hidden" in row["params"]) == (family == "gru")
        families.add(family)
    assert families == {"gru", "lightgbm"}
