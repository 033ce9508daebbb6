"""Three ranges: how --test-from resolves, what the run records, bad input, and the leak test that
poisons the test range and finds every training output and earlier prediction unchanged."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import OHLCV, to_grid
from fc.core.data.ranges import resolve_test_from
from fc.core.errors import FcError
from fc.core.evaluation.backtest import BacktestConfig, run_backtest, trade_mask
from fc.core.learning.config import TrainConfig
from fc.core.studies.backtest_run import predict_bars, torch_predict
from fc.core.studies.train import train

SPLIT = "2024-02-01"
TEST_FROM = "2024-02-20"
SMALL = dict(seq_len=16, hidden=4, layers=1, epochs=2, batch_size=8, chunk=32, lr=1e-2,
             split=SPLIT, device="cpu", val_size=0, max_steps=12)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def planted_closes(n: int = 3000, seed: int = 0) -> np.ndarray:
    """AR(1) returns with coefficient -0.5: a signal the model can pick up in a few steps."""
    rng = np.random.default_rng(seed)
    r, noise = np.zeros(n), rng.normal(0, 0.004, n)
    for t in range(1, n):
        r[t] = -0.5 * r[t - 1] + noise[t]
    return 100 * np.exp(np.cumsum(r))


def grid_of(close: np.ndarray) -> pd.DataFrame:
    open_ = np.r_[100.0, close[:-1]]
    values = np.column_stack(
        [open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones(len(close))]
    )
    index = pd.date_range("2024-01-01", periods=len(close), freq="30min", tz="UTC",
                          name="timestamp")  # fmt: skip
    return to_grid(pd.DataFrame(values, index=index, columns=OHLCV), "30m")


def poisoned(close: np.ndarray, after: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
    """Every close strictly after the bar at `after` replaced by seeded random prices. The bar at
    `after` itself keeps its close: it is the outcome of the last validation decision (decided
    at the previous close), as the first validation candle is the last training outcome."""
    out = close.copy()
    late = np.asarray(index > after)
    out[late] = np.random.default_rng(7).uniform(50, 150, late.sum())
    return out


def test_default_rule_uses_2025_when_both_sides_keep_a_fifth():
    times = pd.date_range("2024-01-01", "2025-06-01", freq="1D", tz="UTC")
    split = pd.Timestamp("2024-01-01", tz="UTC")
    after = np.ones(len(times), bool)
    assert resolve_test_from(times, after, split, "") == pd.Timestamp("2025-01-01", tz="UTC")
    # data ending 2025-02-01: 2025 holds 32 of 398 days, under a fifth: the last 20 % instead
    short = times[times <= "2025-02-01"]
    start = resolve_test_from(short, np.ones(len(short), bool), split, "")
    assert start == short[len(short) - int(np.ceil(0.2 * len(short)))]
    assert ((short >= start).sum(), (short < start).sum()) == (80, 318)


def test_dates_none_and_bad_dates():
    times = pd.date_range("2024-01-01", periods=100, freq="1D", tz="UTC")
    split = pd.Timestamp("2024-02-01", tz="UTC")
    after = np.asarray(times >= split)
    assert resolve_test_from(times, after, split, "none") is None
    assert resolve_test_from(times, after, split, "2024-03-01") == pd.Timestamp(
        "2024-03-01", tz="UTC"
    )
    for bad, words in (("2024-02-01", "not after the split"), ("2024-01-10", "not after"),
                       ("2030-01-01", "past the data"), ("soon", "is not a date")):  # fmt: skip
        with pytest.raises(FcError, match=words):
            resolve_test_from(times, after, split, bad)


@pytest.fixture(scope="module")
def clean():
    return planted_closes()


def test_training_records_the_resolved_ranges(clean, tmp_path):
    run = train(TrainConfig(**SMALL, test_from=""), grid_of(clean), tmp_path)
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    # 2025 is past this data: the test range is the last 20 % of the decisions after the split
    grid = grid_of(clean)
    after = grid.index[(grid.index >= SPLIT)][:-1]  # every bar after the split decides but the last
    first = after[len(after) - int(np.ceil(0.2 * len(after)))]
    assert config["test_from"] == first.isoformat()
    assert config["test_range"] == [first.isoformat(), after[-1].isoformat()]
    assert config["validation_range"][1] < config["test_from"]
    assert metrics["validation"]["decisions"] + metrics["test_decisions"] == len(after)


def test_cli_bad_test_from_is_one_line_and_writes_nothing(clean, tmp_path):
    data = tmp_path / "candles.parquet"
    grid_of(clean)[OHLCV].to_parquet(data)
    runs = tmp_path / "runs"
    for bad, words in (("2024-01-15", "not after the split"), ("2031-01-01", "past the data")):
        args = ["train", "--data", str(data), "--split", SPLIT, "--seq-len", "16", "--quiet",
                "--device", "cpu", "--runs", str(runs), "--test-from", bad]  # fmt: skip
        one_line_error(CliRunner().invoke(app, args), "--test-from", words)
        assert not runs.exists()


def _outputs(run) -> dict:
    """Everything training decides: weights, the history (minus wall time), the metrics (minus
    wall time) and the config (its ranges and scaling)."""
    state = torch.load(run / "model.pt", weights_only=True)
    history = pd.read_csv(run / "history.csv").drop(columns="elapsed_s")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("train_seconds")
    return {"state": state, "history": history, "metrics": metrics,
            "config": json.loads((run / "config.json").read_text())}  # fmt: skip


@pytest.mark.parametrize(
    "options",
    [dict(loss="ce", scheme="sequence"), dict(loss="profit", scheme="window", cost_bps=5)],
)
def test_poisoning_the_test_range_changes_no_training_output(clean, tmp_path, options):
    grid = grid_of(clean)
    t = pd.Timestamp(TEST_FROM, tz="UTC")
    bad = grid_of(poisoned(clean, t, grid.index))
    assert (bad["close"] != grid["close"]).sum() == 599  # every close after t
    config = TrainConfig(**SMALL, test_from=TEST_FROM, **options)
    a = _outputs(train(config, grid, tmp_path / "a"))
    b = _outputs(train(config, bad, tmp_path / "b"))
    assert a["state"].keys() == b["state"].keys()
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])  # bitwise
    pd.testing.assert_frame_equal(a["history"], b["history"], check_exact=True)
    assert a["metrics"] == b["metrics"] and a["config"] == b["config"]
    assert a["config"]["test_from"] == t.isoformat()


def test_poisoning_the_test_range_changes_no_earlier_backtest_number(clean, tmp_path):
    """The backtest's own pieces (backtest_run without its plots): the run's torch predictor on
    every decision bar, then run_backtest with the run's test start."""
    grid = grid_of(clean)
    t = pd.Timestamp(TEST_FROM, tz="UTC")
    run = train(TrainConfig(**SMALL, test_from=TEST_FROM), grid, tmp_path)
    predict = torch_predict(run)
    positions, reports = {}, {}
    for name, close in (("clean", clean), ("poisoned", poisoned(clean, t, grid.index))):
        g = grid_of(close)
        p_up = predict_bars(predict, g, trade_mask(g["filled"].to_numpy(), 16))
        cfg = BacktestConfig(bootstrap_reps=20)
        positions[name], reports[name] = run_backtest(g, p_up, 16, SPLIT, cfg, "30m", t)
    a, b = positions["clean"], positions["poisoned"]
    early = a["time"] <= t  # the decision at t reads closes up to t's: unpoisoned
    np.testing.assert_array_equal(a.loc[early, "p_up"], b.loc[early, "p_up"])
    assert (a.loc[~early, "p_up"] != b.loc[~early, "p_up"]).mean() > 0.9
    for name in ("train", "validation"):
        assert reports["clean"][name] == reports["poisoned"][name]
    assert a.loc[a["range"] == "test", "time"].iloc[0] == t
    assert reports["clean"]["test"]["discrete"] != reports["poisoned"]["test"]["discrete"]
