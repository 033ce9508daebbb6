"""--features through training and backtest: several columns and a second symbol go into the
GRU, the backtest rebuilds the same columns from the run's files, predictions read no candle
after their bar, and bad specs are one line."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.synth import synth_candles

runner = CliRunner()
SPLIT, TEST = "2023-02-15", "2023-03-01"
SPEC = "close,ret,range,volume:8,time,ret@ETH/USDT"
QUICK = ["--seq-len", "32", "--hidden", "8", "--layers", "1", "--epochs", "1", "--max-steps",
         "3", "--split", SPLIT, "--test-from", TEST, "--quiet"]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def write_pair(folder: Path, poison_after: pd.Timestamp | None = None) -> tuple[Path, Path]:
    """Two symbols' 30m candles on one grid (BTC and a seeded ETH); with poison_after, every
    candle after it is replaced by random (valid) OHLCV in both files."""
    btc = synth_candles(days=75, timeframe="30m", seed=1)
    eth = synth_candles(days=75, timeframe="30m", seed=2)
    eth = eth * np.where(eth.columns == "volume", 3.0, 0.05)
    if poison_after is not None:
        rng = np.random.default_rng(7)
        for frame in (btc, eth):
            late = frame.index > poison_after
            base = rng.uniform(50, 150, late.sum())
            frame.loc[late, "open"] = base
            frame.loc[late, "close"] = base * rng.uniform(0.9, 1.1, late.sum())
            top = np.maximum(frame.loc[late, "open"], frame.loc[late, "close"])
            bottom = np.minimum(frame.loc[late, "open"], frame.loc[late, "close"])
            frame.loc[late, "high"] = top * 1.01
            frame.loc[late, "low"] = bottom * 0.99
            frame.loc[late, "volume"] = rng.uniform(0, 1e4, late.sum())
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "btc.parquet", folder / "eth.parquet"
    btc.to_parquet(paths[0])
    eth.to_parquet(paths[1])
    return paths


@pytest.fixture(scope="module")
def feature_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    btc, eth = write_pair(root / "data")
    args = ["train", "--data", str(btc), "--data", f"ETH/USDT={eth}", "--features", SPEC]
    result = runner.invoke(app, args + QUICK + ["--runs", str(root / "runs")])
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1]), btc, eth


def test_the_run_records_its_spec_and_reads_every_column(feature_run):
    run, btc, eth = feature_run
    config = json.loads((run / "config.json").read_text())
    columns = ["close", "ret", "range", "volume:8", "time.hour_sin", "time.hour_cos",
               "time.week_sin", "time.week_cos", "ret@ETH/USDT"]  # fmt: skip
    assert config["features"] == SPEC
    assert config["feature_spec"]["hash"] and len(config["scale_center"]) == len(columns)
    assert config["inputs"]["ETH/USDT"][0] == str(eth)
    import torch

    state = torch.load(run / "model.pt", weights_only=True)
    assert state["gru.weight_ih_l0"].shape[1] == len(columns)  # the GRU reads every column


def test_backtest_rebuilds_the_columns_and_predicts_what_training_did(feature_run):
    """The backtest's p_up (merged windows over columns rebuilt from the run's files) equals the
    p_up training wrote for every validation decision (exact windows)."""
    run, _, _ = feature_run
    result = runner.invoke(app, ["backtest", str(run), "--json"])
    assert result.exit_code == 0, result.output
    positions = pd.read_parquet(run / "backtest" / "positions.parquet").set_index("time")
    saved = pd.read_parquet(run / "validation_p_up.parquet").set_index("time")["p_up"]
    assert len(saved) > 500
    np.testing.assert_allclose(positions["p_up"].reindex(saved.index), saved, rtol=0, atol=1e-6)


def test_no_prediction_reads_a_candle_after_its_bar(feature_run, tmp_path):
    """Poisoning every candle of both symbols after T changes no p_up at or before T."""
    run, btc, eth = feature_run
    cut = pd.Timestamp("2023-02-25T00:00", tz="UTC")
    poisoned = write_pair(tmp_path / "poison", poison_after=cut)
    before = pd.read_parquet(run / "validation_p_up.parquet").set_index("time")["p_up"]
    args = ["backtest", str(run), "--json", "--data", str(poisoned[0])]
    result = runner.invoke(app, args + ["--data", f"ETH/USDT={poisoned[1]}"])
    assert result.exit_code == 0, result.output
    after = pd.read_parquet(run / "backtest" / "positions.parquet").set_index("time")["p_up"]
    early = before.index[before.index <= cut]
    late = before.index[before.index > cut + pd.Timedelta("1D")]
    assert len(early) > 100 and len(late) > 100
    np.testing.assert_allclose(after.reindex(early), before.reindex(early), rtol=0, atol=1e-6)
    assert np.abs(after.reindex(late) - before.reindex(late)).max() > 1e-4  # it was poisoned


def test_features_close_is_the_default_run_bit_for_bit(tmp_path):
    btc, _ = write_pair(tmp_path / "data")
    made = []
    for extra in ([], ["--features", "close"]):
        runs = tmp_path / f"runs{len(made)}"
        result = runner.invoke(app, ["train", "--data", str(btc), *QUICK, "--runs", str(runs),
                                     *extra])  # fmt: skip
        assert result.exit_code == 0, result.output
        made.append(Path(result.stdout.strip().splitlines()[-1]))
    assert (made[0] / "model.pt").read_bytes() == (made[1] / "model.pt").read_bytes()
    config = json.loads((made[1] / "config.json").read_text())
    assert config["scale_center"] == 1.0 and config["features"] == "close"


@pytest.mark.parametrize(
    "features, words",
    [
        ("close,rsi", ["rsi"]),
        ("volume:0", ["volume:0"]),
        ("ret@ETH/USDT", ["ETH/USDT"]),  # no candles of ETH in the store
    ],
)
def test_bad_feature_specs_are_one_line(features, words, tmp_path):
    btc, _ = write_pair(tmp_path / "data")
    args = ["train", "--data", str(btc), "--features", features, *QUICK]
    result = runner.invoke(app, args + ["--runs", str(tmp_path / "runs"), "--store",
                                        str(tmp_path / "empty-store")])  # fmt: skip
    one_line_error(result, *words)
    assert not (tmp_path / "runs").exists()


def test_two_symbols_on_different_grids_are_refused(tmp_path):
    btc, eth = write_pair(tmp_path / "data")
    shifted = pd.read_parquet(eth)
    shifted.drop(shifted.index[500:510]).to_parquet(eth)  # a hole inside the overlap
    args = ["train", "--data", str(btc), "--data", f"ETH/USDT={eth}", "--features", "ret@ETH/USDT"]
    result = runner.invoke(app, args + QUICK + ["--runs", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output  # a gap is filled on the grid, not a new grid
    hourly = pd.read_parquet(btc).resample("1h").last().dropna()
    other = tmp_path / "hourly.parquet"
    hourly.to_parquet(other)
    result = runner.invoke(app, ["train", "--data", str(btc), "--data", f"ETH/USDT={other}",
                                 "--features", "ret@ETH/USDT", "--timeframe", "30m", *QUICK,
                                 "--runs", str(tmp_path / "runs2")])  # fmt: skip
    one_line_error(result)


def test_a_run_whose_spec_this_fc_does_not_know_is_refused(feature_run, tmp_path):
    run, _, _ = feature_run
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("backtest"))
    config = json.loads((copy / "config.json").read_text())
    config["feature_spec"]["features"][1]["name"] = "orderflow"
    (copy / "config.json").write_text(json.dumps(config))
    one_line_error(runner.invoke(app, ["backtest", str(copy)]), "orderflow")


def test_a_data_file_of_a_symbol_the_run_does_not_read_is_refused(feature_run, tmp_path):
    run, btc, _ = feature_run
    args = ["backtest", str(run), "--data", f"SOL/USDT={btc}"]
    one_line_error(runner.invoke(app, args), "SOL/USDT", "does not read")
