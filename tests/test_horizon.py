"""--horizon H (issue 25): labels H candles ahead, purged at every boundary, checked by poisoning
the future: what training writes never moves when candles its labels must not read are
replaced, and without the purge it would."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import grid_at
from fc.core.data.features import direction_class, horizon_labels, relative_direction_class
from fc.core.data.synth import synth_candles
from fc.core.learning.evaluation import baselines
from fc.core.learning.schemes import make_series
from fc.core.studies.walk import Fold, fold_grid

runner = CliRunner()
H = 24
SPLIT, TEST = "2023-01-25", "2023-02-05"
QUICK = ["--seq-len", "32", "--hidden", "8", "--layers", "1", "--epochs", "1", "--max-steps",
         "3", "--split", SPLIT, "--test-from", TEST, "--threads", "1", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def candles(days: int = 45, seed: int = 1) -> pd.DataFrame:
    return synth_candles(days=days, timeframe="30m", seed=seed)


def poisoned(frame: pd.DataFrame, after: pd.Timestamp, seed: int = 7) -> pd.DataFrame:
    """Every candle after `after` replaced by random valid OHLCV (the same bars: no outage), at
    prices 2 to 4 times the highest before: every label that reads one says up."""
    frame = frame.copy()
    late = frame.index > after
    rng = np.random.default_rng(seed)
    base = rng.uniform(2, 4, late.sum()) * frame["close"].max()
    close = base * rng.uniform(0.9, 1.1, late.sum())
    frame.loc[late, "open"], frame.loc[late, "close"] = base, close
    frame.loc[late, "high"] = np.maximum(base, close) * 1.01
    frame.loc[late, "low"] = np.minimum(base, close) * 0.99
    frame.loc[late, "volume"] = rng.uniform(0, 1e4, late.sum())
    return frame


def test_labels_at_h1_are_todays_and_at_h_read_h_candles_ahead():
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 4)), axis=0))
    closes[50] = closes[49]  # a tie counts as up
    labels, returns = horizon_labels(closes[:, 0], 1)
    assert np.array_equal(labels[:-1], direction_class(closes[:, 0])[1:]) and labels[-1] == 0
    relative, _ = horizon_labels(closes, 1, "relative")
    assert np.array_equal(relative[:-1], relative_direction_class(closes)[1:])
    labels, returns = horizon_labels(closes[:, 0], 7)
    expected = closes[7:, 0] / closes[:-7, 0] - 1
    np.testing.assert_array_equal(returns[:-7], expected)
    assert np.array_equal(labels[:-7], (closes[7:, 0] < closes[:-7, 0]).astype(int))
    assert not labels[-7:].any() and not returns[-7:].any()
    rel, excess = horizon_labels(closes, 7, "relative")
    change = closes[7:] / closes[:-7] - 1
    np.testing.assert_allclose(excess[:-7], change - change.mean(axis=1, keepdims=True))
    assert np.array_equal(rel[:-7], (excess[:-7] < 0).astype(int))
    # an eligibility mask (the broad universe's): the mean over the eligible symbols only
    eligible = np.ones(closes.shape, dtype=bool)
    eligible[:, 3] = False
    _, masked = horizon_labels(closes, 7, "relative", eligible)
    mean3 = change[:, :3].mean(axis=1, keepdims=True)
    np.testing.assert_allclose(masked[:-7, :3], change[:, :3] - mean3, atol=1e-15)


def series(frame, split=SPLIT, test=TEST, purge=True, end=""):
    grid = grid_at(frame, "30m")
    test_from = pd.Timestamp(test, tz="UTC") if test else None
    return grid, make_series(grid, 32, pd.Timestamp(split, tz="UTC"), test_from, horizon=H,
                             end=end, purge=purge)  # fmt: skip


def test_purge_keeps_exactly_the_decisions_whose_label_ends_by_the_boundary():
    grid, one = series(candles())
    bar = np.arange(len(grid))
    b_val = int(np.searchsorted(grid.index, pd.Timestamp(SPLIT, tz="UTC")))
    b_test = int(np.searchsorted(grid.index, pd.Timestamp(TEST, tz="UTC")))
    assert bar[one.train].max() == b_val - H and bar[one.validation].max() == b_test - H
    assert bar[one.validation].min() == b_val and bar[one.test].min() == b_test
    assert one.purged == {"train->validation": H - 1, "validation->test": H - 1}


def test_poisoning_validation_from_its_second_candle_changes_no_training_row_or_label():
    frame = candles()
    cut = pd.Timestamp(SPLIT, tz="UTC")
    grid, clean = series(frame)
    _, dirty = series(poisoned(frame, cut))
    last = int(np.flatnonzero(clean.train)[-1])
    assert np.array_equal(clean.train, dirty.train)
    assert np.array_equal(clean.labels[clean.train], dirty.labels[dirty.train])
    np.testing.assert_array_equal(clean.features[: last + 1], dirty.features[: last + 1])
    # without the purge the last training labels read the poisoned candles
    _, loose = series(poisoned(frame, cut), purge=False)
    _, loose_clean = series(frame, purge=False)
    assert not np.array_equal(loose.labels[loose.train], loose_clean.labels[loose_clean.train])


def test_a_walk_folds_boundaries_are_purged_too():
    """A fold's grid stops before the fold; its validation decisions end H bars before it, and
    poisoning the fold's validation from its second candle changes no training row or label."""
    frame = candles()
    fold = Fold(1, pd.Timestamp(TEST, tz="UTC"), pd.Timestamp("2023-02-10", tz="UTC"),
                pd.Timestamp(SPLIT, tz="UTC"), grid_at(frame, "30m").index[0])  # fmt: skip
    grids = [fold_grid(grid_at(f, "30m"), fold, 32) for f in (frame, poisoned(frame, fold.start))]
    assert grids[0].equals(grids[1])  # the fold itself is never in its training's grid
    made = []
    for f in (frame, poisoned(frame, fold.validation_start)):
        cut = fold_grid(grid_at(f, "30m"), fold, 32)
        made.append(make_series(cut, 32, fold.validation_start, None, horizon=H,
                                end="validation->fold"))  # fmt: skip
    clean, dirty = made
    assert clean.purged == {"train->validation": H - 1, "validation->fold": H - 1}
    assert np.flatnonzero(clean.validation)[-1] == len(grids[0]) - 1 - H
    assert np.array_equal(clean.labels[clean.train], dirty.labels[dirty.train])


@pytest.fixture(scope="module")
def h24_runs(tmp_path_factory):
    """The same H = 24 GRU trained on clean candles and on candles poisoned in the test range
    from its second candle on."""
    root = tmp_path_factory.mktemp("h24")
    frame = candles()
    test = pd.Timestamp(TEST, tz="UTC")
    runs = []
    for name, f in (("clean", frame), ("poisoned", poisoned(frame, test))):
        path = root / f"{name}.parquet"
        f.to_parquet(path)
        args = ["train", "--data", str(path), "--horizon", str(H), *QUICK]
        out = runner.invoke(app, [*args, "--runs", str(root / name)])
        assert out.exit_code == 0, out.output
        runs.append(Path(out.stdout.strip().splitlines()[-1]))
    return runs


def test_poisoning_the_test_range_changes_no_file_training_writes(h24_runs):
    clean, dirty = h24_runs
    assert (clean / "model.pt").read_bytes() == (dirty / "model.pt").read_bytes()
    histories = [pd.read_csv(r / "history.csv").drop(columns="elapsed_s") for r in h24_runs]
    pd.testing.assert_frame_equal(*histories)
    metrics = [json.loads((r / "metrics.json").read_text()) for r in h24_runs]
    for m in metrics:
        m.pop("train_seconds")
    assert metrics[0] == metrics[1]
    assert metrics[0]["purged"] == {"train->validation": H - 1, "validation->test": H - 1}
    assert json.loads((clean / "config.json").read_text())["horizon"] == H


def test_without_the_purge_validation_metrics_would_change():
    """The same poison as above, scored without purging: validation's last H - 1 labels read
    the test range, and the validation baselines move."""
    frame = candles()
    test = pd.Timestamp(TEST, tz="UTC")
    scored = []
    for f in (frame, poisoned(frame, test)):
        _, loose = series(f, purge=False)
        scored.append(baselines(loose, np.flatnonzero(loose.validation), H))
    assert scored[0] != scored[1]


def test_predictions_positions_and_baselines_at_or_before_t_ignore_later_candles(h24_runs):
    """Leak through the product at H = 24 with --sleeves 4: p_up, positions and every wealth
    up to T are the same when every candle after T is poisoned."""
    clean = h24_runs[0]
    frame = candles()
    cut = pd.Timestamp("2023-02-01T00:00", tz="UTC")
    path = clean.parent / "poison-after-t.parquet"
    poisoned(frame, cut).to_parquet(path)
    got = []
    for data in ([], ["--data", str(path)]):
        out = runner.invoke(app, ["backtest", str(clean), "--sleeves", "4", "--json", *data])
        assert out.exit_code == 0, out.output
        got.append(pd.read_parquet(clean / "backtest" / "positions.parquet").set_index("time"))
    before, after = got
    early = before.index[before.index <= cut]
    columns = [c for c in before if c.startswith(("p_up", "position_"))] + ["decision"]
    pd.testing.assert_frame_equal(before.loc[early, columns], after.loc[early, columns])
    # wealth at row t is at the close of t + 1: rows before T read no later candle
    wealth = [c for c in before if c.startswith("wealth_")]
    assert {"wealth_mean_reversion", "wealth_buy_and_hold"} <= set(wealth)
    earlier = before.index[before.index < cut]
    pd.testing.assert_frame_equal(before.loc[earlier, wealth], after.loc[earlier, wealth])
    late = before.index[before.index > cut + pd.Timedelta("1D")]
    assert (before.loc[late, "wealth_buy_and_hold"] != after.loc[late, "wealth_buy_and_hold"]).any()


def test_horizon_bad_input_is_one_line(tmp_path):
    path = tmp_path / "c.parquet"
    candles(20).to_parquet(path)
    runs = tmp_path / "runs"
    args = ["train", "--data", str(path), *QUICK[:10], "--quiet", "--runs", str(runs)]
    for extra, words in (
        (["--horizon", "0"], "--horizon 0"),
        (["--horizon", "-3"], "--horizon -3"),
        (["--horizon", "2", "--loss", "profit"], "--loss profit"),
        (["--cadence", "0"], "--cadence 0"),
        (["--sleeves", "0"], "--sleeves 0"),
        (["--cadence", "2", "--sleeves", "2"], "give one of them"),
        (["--horizon", "400", "--split", "2023-01-10", "--test-from", "2023-01-12"],
         "horizon 400: decisions purged"),
    ):  # fmt: skip
        one_line_error(runner.invoke(app, [*args, *extra]), words)
    assert not runs.exists() or not any(runs.iterdir())


def test_rescoring_on_a_bad_schedule_is_one_line_and_keeps_the_backtest(h24_runs):
    clean = h24_runs[0]
    assert runner.invoke(app, ["backtest", str(clean), "--json"]).exit_code == 0
    before = (clean / "backtest" / "positions.parquet").read_bytes()
    for extra, words in ((["--cadence", "0"], "--cadence 0"), (["--sleeves", "0"], "--sleeves 0"),
                         (["--cadence", "2", "--sleeves", "2"], "give one of them")):  # fmt: skip
        one_line_error(runner.invoke(app, ["backtest", str(clean), *extra]), *words.split(", "))
    assert (clean / "backtest" / "positions.parquet").read_bytes() == before


def test_same_horizon_one_liners_read_nothing_after_their_candle():
    """Momentum, mean reversion and the cross-sectional reversal at H = 24, on a cadence and in
    sleeves: every position at or before T is the same when every close after T is replaced."""
    from fc.core.evaluation.backtest import baseline_positions, scheduled_books
    from fc.core.evaluation.portfolio import cross_sectional_reversal
    from fc.core.evaluation.schedule import Schedule

    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (400, 4)), axis=0))
    dirty = closes.copy()
    dirty[250:] = rng.uniform(50, 150, (150, 4))
    times = pd.date_range("2024-01-01", periods=400, freq="1h", tz="UTC")
    decide = np.r_[np.zeros(30, bool), np.ones(369, bool), False]
    for schedule in (Schedule.of(H), Schedule.of(H, sleeves=6)):
        got = []
        for c in (closes, dirty):
            base = baseline_positions(c[:, 0], True, H)
            _, held = scheduled_books(np.full(400, 0.5), base, decide, {}, schedule, times, "1h")
            xs = schedule.book(lambda m, c=c: cross_sectional_reversal(c, m, 1, H), decide, times,
                               "1h")  # fmt: skip
            got.append({**held, "xs": xs})
        for key in got[0]:
            np.testing.assert_array_equal(got[0][key][:250], got[1][key][:250])
        assert not np.array_equal(got[0]["momentum"], got[1]["momentum"])  # it was poisoned
