"""fc walk: no fold reads the future (poisoned candles after T change nothing that ends before
T), the stitched predictions are exactly each fold's run folder's, durations and bad input."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_candles, one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import grid_at, load_candles, to_grid
from fc.core.data.features import price_change
from fc.core.errors import FcError
from fc.core.evaluation.backtest import BacktestConfig
from fc.core.learning.config import TrainConfig
from fc.core.learning.model import window_p_up
from fc.core.studies.runs import load_run, read_config
from fc.core.studies.walk import WalkConfig, fold_grid, parse_duration, plan_folds, walk_forward

runner = CliRunner()
SEQ = 16
TINY = TrainConfig(symbol="SYNTH/USDT", seq_len=SEQ, hidden=4, layers=1, epochs=1, chunk=32,
                   batch_size=8, max_steps=4, device="cpu", seed=1)  # fmt: skip
# five weekly folds from 2024-01-22; the data (8 weeks of 30m candles) starts 2024-01-01.
# The poison starts where the third fold starts (the strictest case: that fold's training must
# read none of it); folds 1-2 end before it, fold 4 validates on it, fold 5 trains on it.
WALK = WalkConfig(start="2024-01-22", every="1W", val="1W")
POISON_FROM = pd.Timestamp("2024-02-05", tz="UTC")
OUTAGE = [400, 401, 402, 1500, 2000]  # bars missing from the file: filled on the grid
FAST_BACKTEST = BacktestConfig(bootstrap_reps=20)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def candles(n: int = 8 * 7 * 48) -> pd.DataFrame:
    frame = make_candles(n, timeframe="30min", seed=4)
    return frame.drop(frame.index[OUTAGE])


def poisoned(frame: pd.DataFrame, after: pd.Timestamp, seed: int = 99) -> pd.DataFrame:
    """The same candles with seeded random closes (and consistent OHLC) from `after` on. The
    first poisoned candle moves against the clean one, so that even a one-bar look-ahead
    changes a label."""
    out = frame.copy()
    late = out.index >= after
    last_clean, first = out["close"][~late].iloc[-1], out["close"][late].iloc[0]
    steps = np.random.default_rng(seed).normal(0, 0.01, late.sum())
    steps[0] = -np.sign(first - last_clean) * abs(steps[0])
    close = last_clean * np.exp(np.cumsum(steps))
    out.loc[late, ["open", "close"]] = np.column_stack([close, close])
    out.loc[late, "high"] = close * 1.001
    out.loc[late, "low"] = close * 0.999
    return out


@pytest.fixture(scope="module")
def walks(tmp_path_factory):
    """The same walk over the clean candles and over candles poisoned from POISON_FROM."""
    out = {}
    for name, frame in (("clean", candles()), ("poisoned", poisoned(candles(), POISON_FROM))):
        grid = to_grid(frame, "30m")
        walk_dir, result = walk_forward(
            TINY, WALK, grid, tmp_path_factory.mktemp(name), FAST_BACKTEST
        )
        out[name] = (grid, walk_dir, result)
    return out


def test_no_fold_reads_the_future(walks):
    """Poisoned closes from T on: every fold ending before T predicts the same numbers, and every
    fold starting before T trains the same weights with the same losses (its training may read
    nothing from its own start on) and predicts the same numbers before T."""
    (_, clean, result), (_, dirty, _) = walks["clean"][0:3], walks["poisoned"][0:3]
    pred = {k: pd.read_parquet(d / "predictions.parquet") for k, d in (("c", clean), ("p", dirty))}
    starts = [pd.Timestamp(f["start"]) for f in result["folds"]]
    ends = [pd.Timestamp(f["end"]) for f in result["folds"]]
    assert sum(e <= POISON_FROM for e in ends) == 2 and sum(s <= POISON_FROM for s in starts) == 3
    for fold, start, end in zip(result["folds"], starts, ends, strict=True):
        c, p = (pred[k][pred[k]["fold"] == fold["fold"]] for k in "cp")
        assert np.array_equal(c["time"], p["time"])
        state_c = torch.load(clean / fold["run"] / "model.pt", weights_only=True)
        state_p = torch.load(dirty / fold["run"] / "model.pt", weights_only=True)
        same_state = all(torch.equal(state_c[k], state_p[k]) for k in state_c)
        history = [pd.read_csv(d / fold["run"] / "history.csv") for d in (clean, dirty)]
        same_losses = history[0][["train_loss", "val_loss"]].equals(
            history[1][["train_loss", "val_loss"]]
        )
        before = (c["time"] < POISON_FROM).to_numpy()
        if start <= POISON_FROM:
            assert same_state and same_losses, fold["fold"]
            assert np.array_equal(c["p_up"][before], p["p_up"][before]), fold["fold"]
        if end <= POISON_FROM:
            assert before.all()
        else:  # windows that read the poison change: the comparisons above can fail
            assert not np.array_equal(c["p_up"][~before], p["p_up"][~before])
        if pd.Timestamp(fold["validation_start"]) > POISON_FROM:  # trained on the poison
            assert not same_state and not same_losses


def test_folds_train_and_choose_only_before_their_start(walks):
    grid, walk_dir, result = walks["clean"]
    for fold in result["folds"]:
        config = read_config(walk_dir / fold["run"])
        start = pd.Timestamp(fold["start"])
        assert config.split == str(pd.Timestamp(fold["validation_start"]).date())
        split = pd.Timestamp(config.split, tz="UTC")
        assert pd.Timestamp(config.train_range[1]) < split
        # validation runs to the last decision whose next candle is before the fold: the whole
        # --val part chooses the checkpoint (no test range cut out of it)
        assert pd.Timestamp(config.validation_range[0]) == split
        assert pd.Timestamp(config.validation_range[1]) == start - pd.Timedelta("1h")


def test_stitched_predictions_are_each_fold_runs_own(walks):
    grid, walk_dir, result = walks["clean"]
    pred = pd.read_parquet(walk_dir / "predictions.parquet")
    assert list(pred.columns) == ["time", "p_up", "fold"]
    n, filled = len(grid), grid["filled"].to_numpy()
    bar = np.arange(n)
    decision = (bar >= SEQ) & (bar < n - 1) & ~filled  # a full window, a real candle, a next bar
    features = price_change(grid["close"].to_numpy())
    for fold in result["folds"]:
        inside = (grid.index >= fold["start"]) & (grid.index < fold["end"])
        ends = np.flatnonzero(decision & inside)
        part = pred[pred["fold"] == fold["fold"]]
        assert fold["decisions"] == len(ends) == len(part)
        assert np.array_equal(part["time"].to_numpy(), grid.index[ends].to_numpy())
        config, model, scaling = load_run(walk_dir / fold["run"])
        assert np.array_equal(part["p_up"], window_p_up(model, features, ends, SEQ, scaling))
    first = grid.index >= result["folds"][0]["start"]
    assert len(pred) == (decision & first).sum() and pred["time"].is_monotonic_increasing
    positions = pd.read_parquet(walk_dir / "backtest" / "positions.parquet")
    assert set(positions["range"]) == {"walk_forward"}
    traded = positions.set_index("time").loc[pred["time"]]
    assert np.array_equal(traded["p_up"], pred["p_up"])
    report = result["backtest"]["walk_forward"]
    assert report["discrete"]["decisions"] == len(pred)
    assert json.loads((walk_dir / "walk.json").read_text())["folds"] == result["folds"]
    for name in ("metrics.json", "equity.png", "drawdown.png"):
        assert (walk_dir / "backtest" / name).stat().st_size > 0


@pytest.mark.parametrize(
    "text,kwds",
    [("3M", {"months": 3}), ("2Y", {"years": 2}), ("6W", {"weeks": 6}), ("10D", {"days": 10}),
     ("2y", {"years": 2})],
)  # fmt: skip
def test_durations(text, kwds):
    assert parse_duration(text, "--every").kwds == kwds


@pytest.mark.parametrize("text", ["3m", "3X", "M", "0M", "1.5M", "", "3 months"])
def test_no_duration_is_a_user_error(text):
    with pytest.raises(FcError, match="--every"):
        parse_duration(text, "--every")


def test_month_folds_are_calendar_months_without_drift():
    grid = to_grid(make_candles(400 * 24, timeframe="1h", start="2023-06-01"), "1h")
    walk = WalkConfig(start="2024-01-31", every="1M", val="1M", window="2M")
    folds = plan_folds(grid, walk, seq_len=24)
    assert [f"{f.start:%m-%d}" for f in folds[:4]] == ["01-31", "02-29", "03-31", "04-30"]
    assert folds[0].end == folds[1].start and folds[0].validation_start == pd.Timestamp(
        "2023-12-31", tz="UTC"
    )
    assert folds[2].validation_start == pd.Timestamp("2024-02-29", tz="UTC")
    assert folds[2].train_start == pd.Timestamp("2023-12-29", tz="UTC")  # 03-31 - 1M - 2M
    assert folds[-1].start <= grid.index[-2] < folds[-1].end
    # rolling: the fold reads seq_len bars of warm-up, then trains from train_start, and nothing
    # from its own start on
    part = fold_grid(grid, folds[2], seq_len=24)
    assert part.index[24] == folds[2].train_start and part.index[-1] < folds[2].start
    assert part.index[-1] == folds[2].start - pd.Timedelta("1h")
    expanding = replace(walk, window="")
    assert fold_grid(grid, plan_folds(grid, expanding, 24)[2], 24).index[0] == grid.index[0]


@pytest.fixture(scope="module")
def candle_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "candles.parquet"
    candles().to_parquet(path)
    return path


def walk_args(candle_file, tmp_path, *extra):
    return ["walk", "--data", str(candle_file), "--seq-len", str(SEQ), "--hidden", "4",
            "--layers", "1", "--max-steps", "2", "--chunk", "32", "--batch-size", "8",
            "--device", "cpu", "--runs", str(tmp_path), *extra]  # fmt: skip


def test_cli_prints_the_walk_folder_last_and_json(candle_file, tmp_path):
    args = walk_args(candle_file, tmp_path, "--start", "2024-02-05", "--every", "2W", "--val", "1W")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    walk_dir = result.stdout.strip().splitlines()[-1]
    assert (tmp_path / walk_dir.split("/")[-1] / "walk.json").is_file()
    assert "fold 2 [2024-02-19, 2024-03-04)" in result.stderr
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [f["start"][:10] for f in report["folds"]] == ["2024-02-05", "2024-02-19"]
    assert report["backtest"]["walk_forward"]["classifier"]["model"]["accuracy"] > 0


def test_seeds_make_each_fold_an_ensemble_of_its_members(candle_file, tmp_path):
    """--seeds 2: every fold's run folder holds two members and the stitched p_up of a fold is
    the mean of its members' own predictions."""
    args = walk_args(candle_file, tmp_path, "--start", "2024-02-19", "--every", "2W", "--val",
                     "1W", "--seeds", "2", "--json")  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (walk_dir,) = tmp_path.glob("walk-*")
    predictions = pd.read_parquet(walk_dir / "predictions.parquet")
    grid = grid_at(load_candles(candle_file), "30m")  # the grid the walk read
    features = price_change(grid["close"].to_numpy())
    ends = grid.index.get_indexer(pd.DatetimeIndex(predictions["time"]))
    fold = sorted(p for p in walk_dir.iterdir() if p.name.startswith("fold-"))[0]
    members = sorted((fold / "members").iterdir())
    assert len(members) == 2
    first = (predictions["fold"] == 1).to_numpy()
    each = []
    for member in members:
        config, model, scaling = load_run(member)
        each.append(window_p_up(model, features, ends[first], config.seq_len, scaling))
    assert np.allclose(predictions["p_up"].to_numpy()[first], np.mean(each, axis=0), atol=1e-12)


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--start", "2024-02-12", "--every", "3X"], ["--every", "3X"]),
        (["--start", "2024-02-12", "--every", "2W", "--val", "month"], ["--val"]),
        (["--start", "2024-01-05", "--val", "1W"], ["no training data", "fold 1"]),
        (["--start", "2024-02-12", "--val", "2M"], ["no training data"]),
        (["--start", "2024-03-30"], ["past the data"]),
        (["--start", "someday"], ["--start", "not a date"]),
        (["--start", "2024-02-12", "--window", "2"], ["--window"]),
        (["--start", "2024-02-12", "--val", "1W", "--loss", "hinge"], ["--loss"]),
        (["--start", "2024-02-12", "--val", "1W", "--seeds", "0"], ["--seeds"]),
    ],
)
def test_bad_input_is_one_line(candle_file, tmp_path, extra, words):
    one_line_error(runner.invoke(app, walk_args(candle_file, tmp_path, *extra)), *words)
    assert not list(tmp_path.iterdir())  # nothing started
