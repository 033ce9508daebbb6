"""Training: losses against hand computation, learning a planted signal, repeatability, the run
folder reproducing its predictions, and the CLI's contract (last line = run folder, exit 2)."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import OHLCV, to_grid
from fc.core.data.features import price_change
from fc.core.evaluation.policies import wealth_factors
from fc.core.learning.config import TrainConfig
from fc.core.learning.evaluation import baselines
from fc.core.learning.losses import direction_ce, profit_loss
from fc.core.learning.model import window_p_up
from fc.core.learning.schemes import make_series, sequence_batches
from fc.core.studies.runs import load_run
from fc.core.studies.train import train

SPLIT = "2024-03-01"
# small and quick: the planted signal needs only the last change, a short window sees it; no
# test range, so validation keeps every decision after the split (tests/test_ranges.py tests it)
FAST = dict(
    seq_len=16, hidden=8, layers=1, epochs=25, batch_size=8, chunk=32, lr=1e-2, split=SPLIT,
    device="cpu", val_size=0, test_from="none",
)  # fmt: skip


def planted_grid(n: int = 4000, phi: float = -0.5, seed: int = 0) -> pd.DataFrame:
    """30m candles whose returns are AR(1) with coefficient phi: the sign of the next return is
    opposite the last one's with probability 1/2 + arcsin(|phi|)/pi = 2/3 for phi = -0.5."""
    rng = np.random.default_rng(seed)
    r = np.zeros(n)
    noise = rng.normal(0, 0.004, n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + noise[t]
    close = 100 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    values = np.column_stack(
        [open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones(n)]
    )
    index = pd.date_range("2024-01-01", periods=n, freq="30min", tz="UTC", name="timestamp")
    return to_grid(pd.DataFrame(values, index=index, columns=OHLCV), "30m")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these small GRUs gain nothing from two, and on a busy machine two
    spinning threads per process slow everything down many times over."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def grid():
    return planted_grid()


@pytest.fixture(scope="module")
def ce_run(grid, tmp_path_factory):
    return train(TrainConfig(loss="ce", **FAST), grid, tmp_path_factory.mktemp("runs"))


def test_direction_ce_matches_hand_computation():
    logits = torch.tensor([[[0.3, -0.2], [1.0, 2.0], [-0.5, 0.5]]])
    labels = torch.tensor([[0, 1, 0]])
    mask = torch.tensor([[False, True, True]])
    expected = -(math.log(math.exp(2.0) / (math.exp(1.0) + math.exp(2.0))))
    expected += -(math.log(math.exp(-0.5) / (math.exp(-0.5) + math.exp(0.5))))
    assert direction_ce(logits, labels, mask).item() == pytest.approx(expected / 2, abs=1e-6)


def test_profit_loss_matches_wealth_formula():
    logits = torch.tensor([[[0.3, -0.2], [1.0, 2.0], [-0.5, 0.5], [2.0, 0.0]]], dtype=torch.float64)
    returns = torch.tensor([[0.01, -0.02, 0.005, 0.03]], dtype=torch.float64)
    mask = torch.tensor([[False, True, True, True]])
    f = [math.tanh((a - b) / 2) for a, b in logits[0].tolist()]  # p_up - p_down
    cost = 0.001
    # policies.wealth_factors is the backtest's independent formula (f_{-1} = 0 at row start)
    growth = wealth_factors(np.array(f), returns[0].numpy(), cost)
    expected = -np.mean(np.log(growth[1:]))
    assert profit_loss(logits, returns, mask, cost).item() == pytest.approx(expected, abs=1e-12)
    no_cost = -np.mean(np.log(1 + np.array(f[1:]) * returns[0, 1:].numpy()))
    assert profit_loss(logits, returns, mask).item() == pytest.approx(no_cost, abs=1e-12)


def test_baselines_on_hand_made_closes():
    close = [100, 101, 100, 100, 99, 100, 102, 101, 103, 102]  # directions: + - 0 - + + - + -
    index = pd.date_range("2024-01-01", periods=10, freq="30min", tz="UTC", name="timestamp")
    frame = pd.DataFrame({c: close for c in OHLCV}, index=index, dtype=float)
    series = make_series(to_grid(frame, "30m"), 2, index[6])  # train t = 2..5, validation 6..8
    ends = np.flatnonzero(series.validation)
    assert list(ends) == [6, 7, 8]
    out = baselines(series, ends)
    # train labels (next candle's class, ties up): t=2 -> 0 (tie), 3 -> 1, 4 -> 0, 5 -> 0
    assert out["class_prior"]["p_up"] == 0.75
    # validation targets: candles 7 (down), 8 (up), 9 (down); last directions: 6 up, 7 down, 8 up
    assert out["always_up_accuracy"] == pytest.approx(1 / 3)
    assert out["last_direction_accuracy"] == 0.0 and out["mean_reversion_accuracy"] == 1.0
    assert out["class_prior"]["accuracy"] == pytest.approx(1 / 3)
    assert out["class_prior"]["ce"] == pytest.approx(-(2 * math.log(0.25) + math.log(0.75)) / 3)
    growth = np.mean(np.log([101 / 102, 103 / 101, 102 / 103]))
    assert out["buy_and_hold_log_growth"] == pytest.approx(growth)


def test_sequence_chunks_score_every_training_decision_after_a_full_burn_in(grid):
    series = make_series(grid, 16, pd.Timestamp(SPLIT, tz="UTC"))
    x = series.features.astype(np.float32)
    seen = np.zeros(len(x), dtype=int)
    for batch in sequence_batches(series, x, 16, 32, 8, np.random.default_rng(1)):
        assert not batch.scored[:, :15].any()  # every scored step has read >= seq_len features
        for row in range(len(batch.x)):
            # recover each row's start from its features, then count its scored indices
            start = np.flatnonzero(
                np.all(np.lib.stride_tricks.sliding_window_view(x, batch.x.shape[1])
                       == batch.x[row], axis=1)
            )[0]  # fmt: skip
            seen[start + np.flatnonzero(batch.scored[row])] += 1
    assert (seen[series.train] >= 1).all() and (seen[~series.train] == 0).all()


def test_ce_training_beats_chance_on_held_out_decisions(ce_run):
    metrics = json.loads((ce_run / "metrics.json").read_text())
    val = metrics["validation"]
    # ~1,150 held-out decisions: chance accuracy 0.5 has a std of 0.015, so 0.6 is over six
    # standard deviations above chance and well below the planted signal's best, 2/3
    assert val["decisions"] > 1000
    assert val["accuracy"] > 0.6
    assert val["ce"] < metrics["baselines"]["class_prior"]["ce"]


def test_profit_training_has_positive_held_out_log_growth(grid, tmp_path):
    run = train(TrainConfig(loss="profit", **FAST), grid, tmp_path)
    val = json.loads((run / "metrics.json").read_text())["validation"]
    assert val["log_growth"] > 0
    assert val["loss"] == pytest.approx(-val["log_growth"])


def test_same_seed_gives_the_same_weights(grid, tmp_path):
    config = TrainConfig(loss="ce", **{**FAST, "epochs": 2})
    a, b = train(config, grid, tmp_path / "a"), train(config, grid, tmp_path / "b")
    sa = torch.load(a / "model.pt", weights_only=True)
    sb = torch.load(b / "model.pt", weights_only=True)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_run_folder_alone_reproduces_its_predictions(ce_run, grid):
    config, model, scaling = load_run(ce_run)
    assert {k.split(".")[0] for k in model.state_dict()} == {"gru", "fc"}
    assert (config.scale_center, config.scale_scale) != (0.0, 1.0)
    check = json.loads((ce_run / "metrics.json").read_text())["check"]
    ends = grid.index.get_indexer(pd.DatetimeIndex(check["time"]))
    features = price_change(grid["close"].to_numpy())
    p_up = window_p_up(model, features, ends, config.seq_len, scaling)
    np.testing.assert_allclose(p_up, check["p_up"], rtol=0, atol=1e-12)
    for name in ("config.json", "model.pt", "history.csv", "metrics.json", "loss.png"):
        assert (ce_run / name).is_file()


def test_window_scheme_runs_and_scores_one_target_per_window(grid, tmp_path):
    config = TrainConfig(scheme="window", **{**FAST, "epochs": 1, "max_steps": 5})
    run = train(config, grid, tmp_path)
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 5 and (history["scored"] == config.batch_size).all()


@pytest.fixture(scope="module")
def candle_file(grid, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "planted.parquet"
    grid[OHLCV].to_parquet(path)
    return path


def test_cli_train_prints_the_run_folder_last(candle_file, tmp_path):
    args = ["train", "--data", str(candle_file), "--split", SPLIT, "--seq-len", "16"]
    args += ["--hidden", "4", "--layers", "1", "--epochs", "1", "--chunk", "32", "--quiet"]
    result = CliRunner().invoke(app, [*args, "--runs", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    run = result.stdout.strip().splitlines()[-1]
    config = json.loads((tmp_path / run.split("/")[-1] / "config.json").read_text())
    assert config["data_sha256"] and config["fc_version"] and config["hidden"] == 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_cuda_without_cuda_is_one_line_exit_2(candle_file, tmp_path):
    args = ["train", "--data", str(candle_file), "--device", "cuda", "--runs", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "CUDA" in result.stderr
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize(
    "option", [["--split", "soon"], ["--loss", "mse"], ["--scheme", "batch"], ["--scaling", "x"]]
)
def test_cli_bad_option_is_one_line_exit_2(candle_file, tmp_path, option):
    args = ["train", "--data", str(candle_file), "--device", "cpu", "--runs", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--quiet", *option])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("fc: error: ") and result.stderr.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_cli_sweep_trains_the_grid_and_plots(candle_file, tmp_path):
    args = ["sweep", "--data", str(candle_file), "--split", SPLIT, "--seq-len", "16"]
    args += ["--layers", "1", "--hidden", "2,4", "--loss", "ce", "--max-steps", "2"]
    result = CliRunner().invoke(app, [*args, "--runs", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 0, result.output
    png = result.stdout.strip().splitlines()[-1]
    assert png.endswith(".png") and (tmp_path / png.split("/")[-1]).is_file()
    assert len(list(tmp_path.glob("*-ce-h*-l1"))) == 2
    best = json.loads((tmp_path / png.split("/")[-1]).with_suffix(".best.json").read_text())
    assert best["n_trials"] == 2 and 0 <= best["dsr"] <= best["psr"] <= 1


def test_profit_with_cost_validates_on_the_positions_the_windows_give(grid, tmp_path):
    config = TrainConfig(loss="profit", cost_bps=5, **{**FAST, "epochs": 1, "max_steps": 3})
    run = train(config, grid, tmp_path)
    val = json.loads((run / "metrics.json").read_text())["validation"]
    _, model, scaling = load_run(run)
    series = make_series(grid, 16, pd.Timestamp(SPLIT, tz="UTC"))
    ends = np.flatnonzero(series.validation)
    close = grid["close"].to_numpy()
    f = 2 * window_p_up(model, price_change(close), ends, 16, scaling) - 1
    held = 2 * window_p_up(model, price_change(close), ends - 1, 16, scaling) - 1
    growth = 1 + f * (close[ends + 1] / close[ends] - 1) - 5e-4 * np.abs(f - held)
    assert val["log_growth"] == pytest.approx(np.mean(np.log(growth)), rel=1e-9)
    assert val["loss"] == -val["log_growth"]
