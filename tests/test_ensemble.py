"""Seed ensembles and temperature calibration: `--seeds 1` is today's run bit for bit, the
ensemble's p_up is its members' mean, the fitted T is the validation log loss minimum, and the
exported graphs (members side by side, T inside) equal torch."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from export_runs import make_ensemble_run, synth_run
from test_training import FAST, SPLIT, planted_grid
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import OHLCV
from fc.core.data.features import price_change
from fc.core.errors import FcError
from fc.core.evaluation.metrics import classifier
from fc.core.learning.config import TrainConfig
from fc.core.learning.ensemble import apply_temperature, fit_temperature
from fc.core.learning.model import Ensemble, Forecast, window_p_up
from fc.core.studies.runs import load_run
from fc.core.studies.sweep import _history
from fc.core.studies.train import train, train_ensemble, validation_series
from fc.export.run import export_run
from fc.live.predictor import load_predictor, load_step_predictor

QUICK = {**FAST, "epochs": 1, "max_steps": 4}
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def grid():
    return planted_grid()


@pytest.fixture(scope="module")
def features(grid):
    return price_change(grid["close"].to_numpy())


@pytest.fixture(scope="module")
def ensemble_run(grid, tmp_path_factory):
    return train_ensemble(TrainConfig(seeds=2, seed=5, **QUICK), grid, tmp_path_factory.mktemp("e"))


def weights(run_dir):
    return torch.load(run_dir / "model.pt", weights_only=True)


def labels_at(grid, config, ends):
    return validation_series(config, grid).labels[ends]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_seeds_1_is_todays_run_bit_for_bit(grid, tmp_path):
    config = TrainConfig(**QUICK)
    today = train(config, grid, tmp_path / "a")
    mine = train_ensemble(config, grid, tmp_path / "b")
    assert same_weights(weights(today), weights(mine))
    assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in today.iterdir())
    a, b = (json.loads((r / "metrics.json").read_text()) for r in (today, mine))
    assert a["validation"] == b["validation"] and a["check"] == b["check"]


def test_members_are_the_single_runs_of_their_seeds(ensemble_run, grid, tmp_path):
    config = json.loads((ensemble_run / "config.json").read_text())
    assert (config["seed"], config["seeds"], config["temperature"]) == (5, 2, 1.0)
    assert not (ensemble_run / "model.pt").exists()
    alone = train(TrainConfig(**{**QUICK, "seed": 6}), grid, tmp_path)
    member = ensemble_run / "members" / "seed-6"
    assert same_weights(weights(alone), weights(member))
    assert set(weights(member)) == set(Forecast(8, 1).state_dict())  # the workshop's keys
    assert json.loads((member / "config.json").read_text())["seeds"] == 1


def test_ensemble_p_up_is_the_mean_of_its_members_loaded_alone(ensemble_run, grid, features):
    config, model, scaling = load_run(ensemble_run)
    assert isinstance(model, Ensemble) and len(model.members) == 2
    ends = np.flatnonzero(validation_series(config, grid).validation)
    members = [load_run(ensemble_run / "members" / f"seed-{s}") for s in (5, 6)]
    each = [window_p_up(m, features, ends, c.seq_len, s) for c, m, s in members]
    mean = window_p_up(model, features, ends, config.seq_len, scaling)
    np.testing.assert_allclose(mean, (each[0] + each[1]) / 2, rtol=0, atol=1e-15)
    saved = pd.read_parquet(ensemble_run / "validation_p_up.parquet")  # what fc tune scores
    assert (saved["time"] == grid.index[ends]).all() and (saved["p_up"] == mean).all()
    metrics = json.loads((ensemble_run / "metrics.json").read_text())
    assert metrics["validation"]["ce"] == pytest.approx(
        classifier(mean, labels_at(grid, config, ends))["log_loss"], abs=1e-12
    )
    assert [m["seed"] for m in metrics["members"]] == [5, 6]
    for m, (c, member, s) in zip(metrics["members"], members, strict=True):
        p = window_p_up(member, features, ends, c.seq_len, s)
        assert m["validation"]["ce"] == pytest.approx(classifier(p, labels_at(grid, c, ends))
                                                      ["log_loss"], abs=1e-12)  # fmt: skip
    history = pd.read_csv(ensemble_run / "history.csv")
    assert sorted(set(history["seed"])) == [5, 6] and len(_history(ensemble_run)) == 4


def test_fitted_temperature_is_the_grid_minimum_of_log_loss():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 1.0, 5000)
    up = rng.random(5000) < 1 / (1 + np.exp(-z))  # the truth is sigmoid(z)
    labels = np.where(up, 0, 1)
    p_up = 1 / (1 + np.exp(-2.5 * z))  # over-confident by 2.5
    fitted = fit_temperature(p_up, labels)
    grid = np.linspace(1.0, 5.0, 2001)  # steps of 0.002 around the truth, 2.5
    losses = [classifier(apply_temperature(p_up, t), labels)["log_loss"] for t in grid]
    best = grid[int(np.argmin(losses))]
    assert abs(fitted - best) <= 0.002 and 2.2 < fitted < 2.8
    assert classifier(apply_temperature(p_up, fitted), labels)["log_loss"] <= min(losses) + 1e-12


def test_calibrated_run_applies_softmax_of_logits_over_t(grid, features, tmp_path):
    run = train_ensemble(TrainConfig(calibrate="temperature", **QUICK), grid, tmp_path)
    config, model, scaling = load_run(run)
    metrics = json.loads((run / "metrics.json").read_text())
    t = config.temperature
    assert config.calibrate == "temperature" and t == metrics["calibration"]["temperature"] != 1.0
    assert isinstance(model, Ensemble) and (run / "model.pt").is_file()  # single-run layout
    forecast = model.members[0]
    ends = np.flatnonzero(validation_series(config, grid).validation)
    x = torch.from_numpy(scaling.apply(features).astype(np.float32))
    with torch.no_grad():
        windows = torch.stack([x[e - config.seq_len + 1 : e + 1] for e in ends])[:, :, None]
        z = forecast.fc(forecast.gru(windows)[0][:, -1]).double()
    calibrated = torch.softmax(z / t, dim=-1)[:, 0].numpy()
    np.testing.assert_allclose(
        window_p_up(model, features, ends, config.seq_len, scaling), calibrated, rtol=0, atol=1e-12
    )
    saved = pd.read_parquet(run / "validation_p_up.parquet")  # the calibrated p_up, not the raw
    np.testing.assert_allclose(saved["p_up"], calibrated, rtol=0, atol=1e-12)
    # T is the validation minimum of the uncalibrated model's log loss
    raw = torch.softmax(z, dim=-1)[:, 0].numpy()
    assert t == pytest.approx(fit_temperature(raw, labels_at(grid, config, ends)), rel=1e-9)
    assert (
        metrics["calibration"]["validation_ce_after"]
        < metrics["calibration"]["validation_ce_before"]
    )
    assert metrics["validation"]["ce"] == pytest.approx(
        metrics["calibration"]["validation_ce_after"], abs=1e-12
    )


def test_poisoned_test_range_changes_no_member_and_no_temperature(grid, tmp_path):
    # the default rule: the last 20 % of the decisions after the split are test
    config = TrainConfig(seeds=2, calibrate="temperature", **{**QUICK, "test_from": ""})
    clean = train_ensemble(config, grid, tmp_path / "clean")
    test_from = pd.Timestamp(json.loads((clean / "config.json").read_text())["test_from"])
    poisoned = grid.copy()
    # the outcomes the test range scores: candles after its first bar (whose close is the last
    # validation decision's outcome and the first test decision's feature)
    after = poisoned.index > test_from
    assert 100 < after.sum() < len(grid) // 2  # the default rule left a test range to poison
    poisoned.loc[after, "close"] = np.random.default_rng(9).uniform(50, 150, after.sum())
    dirty = train_ensemble(config, poisoned, tmp_path / "dirty")
    a, b = (json.loads((r / "config.json").read_text()) for r in (clean, dirty))
    assert a["temperature"] == b["temperature"] != 1.0 and a["test_range"] == b["test_range"]
    for seed in (0, 1):
        member = f"members/seed-{seed}"
        assert same_weights(weights(clean / member), weights(dirty / member))


@pytest.mark.parametrize("members, temperature", [(3, 0.7), (1, 1.8)])
def test_export_of_an_ensemble_equals_torch(tmp_path, members, temperature):
    root = tmp_path / "run"
    root.mkdir()
    data = synth_run(root, days=20, seed=4, outage=[], seq_len=24, split="2023-01-12",
                     members=members, temperature=temperature)  # fmt: skip
    report = export_run(root, onnx=True, torchscript=True, windows=0)  # every validation window
    assert report.ok and report.windows["onnx_real"] > 300
    assert report.max_abs_diff["onnx_real"] < 1e-5 and report.max_abs_diff["torchscript"] < 1e-5
    assert report.max_abs_diff["step_onnx"] < 1e-6
    window = load_predictor(root / "export" / "model.onnx")
    step = load_step_predictor(root / "export" / "model.step.onnx")
    assert (window.meta["members"], window.meta["temperature"]) == (members, temperature)
    assert step.zero_state(5).shape == (2, 5, members * 8)
    # independently of parity.py: the graph's p_up is the members' mean p_up, then T
    config, model, scaling = load_run(root)
    grid_features = price_change(pd.read_parquet(data)["close"].to_numpy())
    ends = np.arange(24, 400)
    plain = Ensemble(list(model.members)).eval()
    expected = apply_temperature(window_p_up(plain, grid_features, ends, 24, scaling), temperature)
    assert np.abs(window.p_up_at(grid_features, ends) - expected).max() < 1e-5


def test_load_run_refuses_an_ensemble_with_a_member_missing(tmp_path):
    make_ensemble_run(tmp_path, members=2, hidden=4, layers=1, seq_len=8)
    (tmp_path / "members" / "seed-1" / "model.pt").unlink()
    with pytest.raises(FcError, match="seed-1/model.pt: cannot load the model"):
        load_run(tmp_path)


@pytest.fixture(scope="module")
def candle_file(grid, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "planted.parquet"
    grid[OHLCV].to_parquet(path)
    return path


@pytest.mark.parametrize(
    "command, option",
    [("train", ["--seeds", "0"]), ("train", ["--seeds", "-2"]),
     ("train", ["--calibrate", "platt"]), ("sweep", ["--seeds", "0"])],
)  # fmt: skip
def test_cli_bad_seeds_or_calibration_is_one_line_exit_2(candle_file, tmp_path, command, option):
    args = [command, "--data", str(candle_file), "--runs", str(tmp_path), *option]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("fc: error: ") and result.stderr.count("\n") == 1
    assert option[0] in result.stderr and not any(tmp_path.iterdir())


CLI_ARGS = ["--split", SPLIT, "--seq-len", "16", "--layers", "1", "--max-steps", "2"]


@pytest.fixture(scope="module")
def cli_ensemble(candle_file, tmp_path_factory):
    runs = tmp_path_factory.mktemp("cli")
    args = ["train", "--data", str(candle_file), *CLI_ARGS, "--hidden", "4", "--runs", str(runs)]
    result = runner.invoke(app, [*args, "--seeds", "2", "--calibrate", "temperature"])
    assert result.exit_code == 0, result.output
    return runs / result.stdout.strip().splitlines()[-1].split("/")[-1], result.stderr


def test_cli_train_prints_members_and_the_calibrated_mean(cli_ensemble):
    run, stderr = cli_ensemble
    config = json.loads((run / "config.json").read_text())
    assert (config["seeds"], config["calibrate"]) == (2, "temperature")
    assert f"mean of 2 members, T = {config['temperature']:.3g}" in stderr
    assert "member seed 0" in stderr and "member seed 1" in stderr


def test_cli_backtest_and_export_of_an_ensemble(cli_ensemble):
    run, _ = cli_ensemble
    result = runner.invoke(app, ["backtest", str(run), "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(run), "--onnx", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # the graph against the torch backtest's own p_up, on the validation windows it scored
    assert report["ok"] and report["max_abs_diff"]["onnx_backtest"] < 1e-5


def test_cli_sweep_takes_seeds(candle_file, tmp_path):
    args = ["sweep", "--data", str(candle_file), *CLI_ARGS, "--hidden", "2", "--loss", "ce"]
    result = runner.invoke(app, [*args, "--seeds", "2", "--workers", "1", "--runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (swept,) = tmp_path.glob("*-ce-h2-l1")
    assert sorted(p.name for p in (swept / "members").iterdir()) == ["seed-0", "seed-1"]
