"""Pooled LightGBM and logistic regression under the presence rule (issue 26): a symbol listed
after the training range adds no training row and leaves the other symbols' training rows and
labels as they were; its validation rows start at its first eligible candle; the run backtests
and exports with it, in parity per symbol."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_pooled_tabular import (
    LAGS,
    MODELS,
    SEQ_LEN,
    SYMBOLS,
    TEST,
    TRAIN,
    captured_rows,
    planted,
    write_universe,
)
from test_universe import data_args
from typer.testing import CliRunner

from fc.cli.main import app

runner = CliRunner()
LATE, LISTED = "DDD/USDT", pd.Timestamp("2024-02-08", tz="UTC")  # after the split


@pytest.fixture(scope="module")
def late_files(tmp_path_factory):
    """The three planted symbols and DDD, listed on LISTED (after the training range)."""
    folder = tmp_path_factory.mktemp("late")
    files = write_universe(folder)
    frame = planted(33, 80.0)
    files[LATE] = folder / "DDD_USDT.parquet"
    frame[frame.index >= LISTED].to_parquet(files[LATE])
    return files


def test_a_late_listing_adds_no_training_row(late_files, monkeypatch):
    three = {s: late_files[s] for s in SYMBOLS}
    before = captured_rows(three, "logistic", monkeypatch)
    now = captured_rows(late_files, "logistic", monkeypatch, (*SYMBOLS, LATE))
    np.testing.assert_array_equal(now["train"], before["train"])
    np.testing.assert_array_equal(now["up_train"], before["up_train"])
    n = len(before["validation"])  # the three's validation rows, then DDD's
    np.testing.assert_array_equal(now["validation"][:n], before["validation"])
    closes = pd.read_parquet(late_files[LATE])["close"]
    eligible = closes.index[SEQ_LEN:-1]  # a real candle after SEQ_LEN of its own, a next one
    eligible = eligible[eligible < pd.Timestamp(TEST, tz="UTC")]
    assert len(now["validation"]) - n == len(eligible)
    first = closes.to_numpy()[SEQ_LEN - LAGS : SEQ_LEN + 1]
    np.testing.assert_array_equal(now["validation"][n], first[1:] / first[:-1])


@pytest.mark.parametrize("family", list(MODELS))
def test_a_run_with_a_late_listing_backtests_and_exports(late_files, tmp_path, family):
    symbols = ",".join((*SYMBOLS, LATE))
    result = runner.invoke(app, ["train", "--family", family, "--symbols", symbols, "--target",
                                 "relative", *data_args(late_files), *TRAIN, "--runs",
                                 str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    metrics = json.loads((run / "metrics.json").read_text())
    first = pd.Timestamp(metrics["symbols"][LATE]["check"]["time"][0])
    assert first == LISTED + SEQ_LEN * pd.Timedelta("30min")
    done = runner.invoke(app, ["backtest", str(run), "--json"])
    assert done.exit_code == 0, done.output
    positions = pd.read_parquet(run / "backtest" / "positions.parquet").set_index("time")
    assert positions.loc[positions.index < first, "p_up_DDD_USDT"].isna().all()
    exported = runner.invoke(app, ["export", str(run), "--onnx", "--windows", "0", "--json"])
    assert exported.exit_code == 0, exported.output
    report = json.loads(exported.stdout)
    assert report["ok"] and report["windows"][f"onnx_real:{LATE}"] > 100
