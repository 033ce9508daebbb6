"""The tabular families end to end through the CLI (issue 21): fc train --family lightgbm|logistic
makes a run folder that fc backtest and fc export read through the family seam; the calibrated
mean-reversion baseline against an independent scikit-learn fit; a leak test through the real
backtest path; every Bad-input line of the issue as one line and exit 2."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from conftest import one_line_error
from sklearn.linear_model import LogisticRegression
from test_replay_parity import assert_policy_equals_backtest, journal_rows
from test_training import SPLIT, planted_grid
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import OHLCV
from fc.core.evaluation.calibration import ece
from fc.core.learning.lightgbm_model import LightGBMModel
from fc.core.learning.logistic_model import C_GRID, LogisticModel

SEQ_LEN, LAGS = 16, 8
FAMILIES = {
    "lightgbm": (LightGBMModel, "model.txt"),
    "logistic": (LogisticModel, "coefficients.json"),
}
BASE = ["--split", SPLIT, "--seq-len", str(SEQ_LEN), "--test-from", "none"]
TRAIN = [*BASE, "--lags", str(LAGS)]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def candles(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "planted.parquet"
    planted_grid()[OHLCV].to_parquet(path)
    return path


@pytest.fixture(scope="module")
def runs(candles, tmp_path_factory):
    """{family: run folder}, each trained by the CLI and backtested once (--json report kept)."""
    root, out = tmp_path_factory.mktemp("runs"), {}
    for family in FAMILIES:
        result = invoke("train", "--data", candles, "--family", family, *TRAIN, "--runs", root,
                        "--quiet")  # fmt: skip
        assert result.exit_code == 0, result.output
        out[family] = root / result.stdout.strip().splitlines()[-1].split("/")[-1]
    return out


@pytest.fixture(scope="module")
def backtests(runs):
    reports = {}
    for family, run in runs.items():
        result = invoke("backtest", run, "--json")
        assert result.exit_code == 0, result.output
        reports[family] = json.loads(result.stdout)
    return reports


def independent_rows(close: np.ndarray, ends: np.ndarray, lags: int) -> np.ndarray:
    """Lagged rows of price_change written out by hand: close[t-k] / close[t-k-1], oldest first."""
    return np.column_stack([close[ends - k] / close[ends - k - 1] for k in range(lags - 1, -1, -1)])


def decisions(close_index: pd.DatetimeIndex, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) decision bars of the planted grid (no filled bars): seq_len to the
    last bar but one, split by time."""
    t = np.arange(SEQ_LEN, n - 1)
    before = close_index[t] < pd.Timestamp(SPLIT, tz="UTC")
    return t[before], t[~before]


@pytest.mark.parametrize("family", FAMILIES)
def test_train_writes_a_run_folder_that_beats_the_prior(family, runs):
    run = runs[family]
    assert run.name.endswith(f"-{family}-lags{LAGS}")
    for name in ("config.json", FAMILIES[family][1], "history.csv", "metrics.json", "loss.png"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert (config["family"], config["lags"], config["seq_len"]) == (family, LAGS, SEQ_LEN)
    metrics = json.loads((run / "metrics.json").read_text())
    val = metrics["validation"]
    # ~1,150 decisions whose sign reverses with probability 2/3: chance is 0.5 +- 0.015
    assert val["decisions"] > 1000 and val["accuracy"] > 0.6
    assert val["ce"] < metrics["baselines"]["class_prior"]["ce"] - 0.03
    history = pd.read_csv(run / "history.csv")
    assert history["val_loss"].min() == pytest.approx(val["ce"], abs=1e-9)  # the kept model's


@pytest.mark.parametrize("family", FAMILIES)
def test_backtest_predicts_the_family_own_p_up(family, runs, backtests):
    run, grid = runs[family], planted_grid()
    positions = pd.read_parquet(run / "backtest" / "positions.parquet")
    shown = positions[positions["range"] == "validation"].set_index("time")["p_up"].dropna()
    saved = pd.read_parquet(run / "validation_p_up.parquet").set_index("time")["p_up"]
    assert len(shown) == len(saved) > 1000
    np.testing.assert_array_equal(shown.reindex(saved.index).to_numpy(), saved.to_numpy())
    # and those are the model's own p_up on rows built here by hand
    cls = FAMILIES[family][0]
    model = cls.load(run)
    ends = grid.index.get_indexer(saved.index)
    rows = independent_rows(grid["close"].to_numpy(), ends, LAGS)
    np.testing.assert_allclose(model.p_up(rows), saved.to_numpy(), rtol=0, atol=1e-15)
    assert backtests[family]["validation"]["classifier"]["model"]["log_loss"] == pytest.approx(
        json.loads((run / "metrics.json").read_text())["validation"]["ce"], abs=1e-12
    )


def test_calibrated_mean_reversion_equals_an_independent_fit(backtests):
    grid = planted_grid()
    close = grid["close"].to_numpy()
    train, val = decisions(grid.index, len(close))
    sign = np.sign(np.diff(close, prepend=close[0]))
    up = np.r_[close[1:] >= close[:-1], False]  # up[t]: candle t+1 closed at or above t
    mean, std = sign[train].mean(), sign[train].std()
    z = ((sign - mean) / std)[:, None]
    best = None
    for c in C_GRID:  # C chosen by validation log loss, the first on a tie
        fit = LogisticRegression(C=c, solver="lbfgs", max_iter=1000).fit(z[train], up[train])
        p = fit.predict_proba(z)[:, 1]
        loss = -np.mean(np.where(up[val], np.log(p[val]), np.log(1 - p[val])))
        if best is None or loss < best[0]:
            best = (loss, p)
    p_up = best[1]
    for name, at in (("train", train), ("validation", val)):
        got = backtests["logistic"][name]["classifier"]["calibrated_mean_reversion"]
        p, y = p_up[at], up[at]
        assert got["accuracy"] == pytest.approx(np.mean((p >= 0.5) == y), abs=1e-12)
        log_loss = -np.mean(np.where(y, np.log(p), np.log(1 - p)))
        assert got["log_loss"] == pytest.approx(log_loss, abs=1e-6)
        assert got["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-6)
        assert got["ece"] == pytest.approx(ece(p, y), abs=1e-4)
    # the planted series reverts: the baseline's validation log loss beats the prior's
    block = backtests["lightgbm"]["validation"]["classifier"]
    assert block["calibrated_mean_reversion"]["log_loss"] < block["class_prior"]["log_loss"] - 0.02


@pytest.mark.parametrize("family", FAMILIES)
def test_export_graph_equals_the_library_on_every_validation_decision(family, runs):
    run = runs[family]
    result = invoke("export", run, "--onnx", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    saved = pd.read_parquet(run / "validation_p_up.parquet").set_index("time")["p_up"]
    assert report["ok"] and report["step_onnx"] is None and report["torchscript"] is None
    assert report["windows"]["onnx_real"] == len(saved)
    assert report["max_abs_diff"]["onnx_real"] < 1e-6
    assert report["max_abs_diff"]["onnx_backtest"] < 1e-6  # the backtest fixture ran first
    # the graph run here on rows built by hand, against the run's own validation p_up
    grid = planted_grid()
    rows = independent_rows(grid["close"].to_numpy(), grid.index.get_indexer(saved.index), LAGS)
    session = ort.InferenceSession(report["onnx"], providers=["CPUExecutionProvider"])
    (p_up,) = session.run(["p_up"], {"rows": rows})
    assert np.abs(p_up - saved.to_numpy()).max() < 1e-6
    meta = {p.key: p.value for p in onnx.load(report["onnx"]).metadata_props}
    config = json.loads((run / "config.json").read_text())
    assert (meta["family"], meta["lags"], meta["n_features"]) == (family, str(LAGS), str(LAGS))
    assert meta["feature_hash"] == config["feature_spec"]["hash"]
    assert json.loads(meta["symbols"]) == ["BTC/USDT"] and meta["graph"] == "window"
    assert json.loads(meta["policy_params"])["discrete"]["band"] == 0.0
    assert "hidden" not in meta and "scale_center" not in meta


@pytest.mark.parametrize("family", list(FAMILIES))
def test_replay_of_the_graph_equals_the_backtest_with_it(family, runs, candles, tmp_path):
    """fc paper --replay runs the window-only row graph with onnxruntime alone: positions equal
    `fc backtest --model` with the same graph exactly, wealth to 1e-9, and `fc paper diff`
    finds no difference."""
    run = runs[family]
    assert invoke("export", run, "--onnx").exit_code == 0
    model = run / "export" / "model.onnx"
    args = ["backtest", run, "--model", model, "--fee-bps", 5, "--start", SPLIT, "--json"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    backtest = pd.read_parquet(run / "backtest" / "positions.parquet")
    journal = tmp_path / "replay.sqlite"
    result = invoke("paper", "--replay", candles, "--model", model, "--journal", journal,
                    "--fee-bps", 5, "--capital", 1, "--start", SPLIT, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = journal_rows(journal)
    assert len(backtest) > 500
    for policy in ("discrete", "proportional"):
        assert_policy_equals_backtest(rows[rows.policy == policy], backtest, policy)
    result = invoke("paper", "diff", "--journal", journal, "--run", run, "--data", candles,
                    "--fee-bps", 5, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["differing"] == 0


def test_poisoned_future_changes_no_prediction_at_or_before_t(runs, tmp_path):
    """Candles after T replaced by noise: through the real backtest path (its own candle file
    via --data), every p_up at or before T is unchanged, and some after T change."""
    grid = planted_grid()
    cut = grid.index[3000]
    poisoned = grid[OHLCV].copy()
    after = poisoned.index > cut
    noise = np.exp(np.random.default_rng(7).normal(0, 0.05, after.sum()))
    poisoned.loc[after, OHLCV[:4]] = poisoned.loc[after, OHLCV[:4]].to_numpy() * noise[:, None]
    poisoned.loc[after, "high"] = poisoned.loc[after, OHLCV[:4]].max(axis=1)
    poisoned.loc[after, "low"] = poisoned.loc[after, OHLCV[:4]].min(axis=1)
    poisoned.to_parquet(tmp_path / "poisoned.parquet")
    for run in runs.values():
        assert invoke("backtest", run, "--json").exit_code == 0  # the clean candles, the library
        clean = pd.read_parquet(run / "backtest" / "positions.parquet")
        result = invoke("backtest", run, "--data", tmp_path / "poisoned.parquet", "--json")
        assert result.exit_code == 0, result.output
        dirty = pd.read_parquet(run / "backtest" / "positions.parquet")
        a, b = (f.dropna(subset=["p_up"]).set_index("time")["p_up"] for f in (clean, dirty))
        early = a.index[a.index <= cut]
        np.testing.assert_array_equal(b[early].to_numpy(), a[early].to_numpy())
        late = a.index[a.index > cut]
        assert (b[late].to_numpy() != a[late].to_numpy()).mean() > 0.5


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--family", "xgboost"], ["xgboost", "gru"]),
        (["--family", "lightgbm", "--lags", "0"], ["--lags 0"]),
        (["--family", "logistic", "--lags", "17"], ["--lags 17", "--seq-len"]),
        (["--num-leaves", "31"], ["--num-leaves", "gru"]),
        (["--family", "lightgbm", "--hidden", "8"], ["--hidden", "lightgbm"]),
        (["--family", "lightgbm", "--layers", "2"], ["--layers", "lightgbm"]),
        (["--family", "lightgbm", "--epochs", "3"], ["--epochs", "lightgbm"]),
        (["--family", "lightgbm", "--loss", "profit"], ["--loss profit", "lightgbm"]),
        (["--family", "logistic", "--lr", "0.1"], ["--lr", "logistic"]),
        (["--family", "lightgbm", "--seeds", "3"], ["--seeds 3", "randomness"]),
        (["--family", "lightgbm", "--num-leaves", "1"], ["--num-leaves 1"]),
    ],
)
def test_bad_training_options_are_one_line_before_any_candle(args, words, tmp_path):
    """No candle file exists: the refusal comes before any candle is read, nothing is written."""
    result = invoke("train", "--data", tmp_path / "absent.parquet", *BASE, *args, "--runs",
                    tmp_path / "runs")  # fmt: skip
    one_line_error(result, *words)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", [["backtest"], ["export", "--onnx"]])
def test_a_run_of_an_unknown_family_is_one_line(command, runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["lightgbm"], run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(config | {"family": "catboost"}))
    one_line_error(invoke(command[0], run, *command[1:]), "catboost", "upgrade fc")


@pytest.mark.parametrize("family", FAMILIES)
def test_a_multi_column_spec_trains_backtests_and_exports(family, candles, tmp_path):
    """Three feature columns x 4 lags: the backtest reads back the fit's validation p_up and
    the graph equals the library on every validation decision."""
    features = ["--features", "ret,body,volume:48", "--lags", "4"]
    result = invoke("train", "--data", candles, "--family", family, *BASE, *features, "--runs",
                    tmp_path, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = tmp_path / result.stdout.strip().splitlines()[-1].split("/")[-1]
    assert invoke("backtest", run, "--json").exit_code == 0
    positions = pd.read_parquet(run / "backtest" / "positions.parquet")
    shown = positions[positions["range"] == "validation"].set_index("time")["p_up"].dropna()
    saved = pd.read_parquet(run / "validation_p_up.parquet").set_index("time")["p_up"]
    np.testing.assert_array_equal(shown.reindex(saved.index).to_numpy(), saved.to_numpy())
    report = json.loads(invoke("export", run, "--onnx", "--json").stdout)
    assert report["ok"] and report["windows"]["onnx_real"] == len(saved)
    assert max(report["max_abs_diff"].values()) < 1e-6
    meta = {p.key: p.value for p in onnx.load(report["onnx"]).metadata_props}
    assert (meta["n_features"], meta["features"]) == ("12", "ret,body,volume:48")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_walk_forward_trains_each_fold_and_predicts_with_the_family(family, candles, tmp_path):
    """fc walk with a tabular family: every fold is a run of that family, and the stitched
    out-of-sample p_up are each fold model's own p_up on its fold's lagged rows."""
    from fc.core.data.candles import grid_at, load_candles
    from fc.core.studies.runs import load_run

    grid = grid_at(load_candles(candles), "30m")
    start = grid.index[len(grid) // 2].normalize()
    result = invoke("walk", "--data", candles, "--family", family,
                    "--start", f"{start:%Y-%m-%d}", "--every", "20D", "--val", "20D",
                    "--seq-len", SEQ_LEN, "--lags", LAGS, "--runs", tmp_path, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    walk = tmp_path / Path(report["walk"]).name
    predictions = pd.read_parquet(walk / "predictions.parquet")
    close = grid["close"].to_numpy()
    for fold in report["folds"]:
        config, model, _ = load_run(walk / fold["run"])
        assert config.family == family
        part = predictions[predictions["fold"] == fold["fold"]]
        ends = grid.index.get_indexer(pd.DatetimeIndex(part["time"]))
        rows = independent_rows(close, ends, LAGS)
        np.testing.assert_allclose(part["p_up"], model.p_up(rows), rtol=0, atol=1e-12)
    assert len(report["folds"]) >= 2 and len(predictions) > 1000


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_two_symbol_spec_exports_and_replays_like_its_backtest(family, tmp_path):
    """A row of two symbols' columns (BTC's and ETH's ret, ETH's range) x 4 lags: export parity
    within 1e-6 on every validation decision, and a replay over both symbols' files equal to
    `fc backtest --model` to 1e-9 in wealth."""
    from test_feature_runs import write_pair

    btc, eth = write_pair(tmp_path / "data")
    split = "2023-02-15"
    spec = ["--features", "ret,ret@ETH/USDT,range@ETH/USDT", "--lags", "4", "--seq-len", "16"]
    result = invoke("train", "--data", btc, "--data", f"ETH/USDT={eth}", "--family", family,
                    "--split", split, "--test-from", "none", *spec, "--runs", tmp_path / "runs",
                    "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / result.stdout.strip().splitlines()[-1].split("/")[-1]
    report = json.loads(invoke("export", run, "--onnx", "--json").stdout)
    assert report["ok"] and max(report["max_abs_diff"].values()) < 1e-6
    model = run / "export" / "model.onnx"
    args = ["backtest", run, "--model", model, "--fee-bps", 5, "--start", split, "--json"]
    assert invoke(*args).exit_code == 0
    backtest = pd.read_parquet(run / "backtest" / "positions.parquet")
    journal = tmp_path / "replay.sqlite"
    result = invoke("paper", "--replay", btc, "--replay", f"ETH/USDT={eth}", "--model", model,
                    "--journal", journal, "--fee-bps", 5, "--capital", 1,
                    "--start", split)  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = journal_rows(journal)
    for policy in ("discrete", "proportional"):
        got = rows[rows.policy == policy]
        assert_policy_equals_backtest(got, backtest, policy, positions=False)
