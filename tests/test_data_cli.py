"""`fc data import|info|synth` through the CLI: results, and bad input refused without damage."""

import json

import pandas as pd
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import load_candles
from fc.core.data.synth import synth_candles

runner = CliRunner()


def fc(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def stored(tmp_path, candles_factory):
    """A store holding 300 5m candles of BTC/USDT, and the bytes of its file."""
    src = tmp_path / "in.parquet"
    candles_factory(n=300).to_parquet(src)
    store = tmp_path / "store"
    result = fc("data", "import", src, "--store", store)
    assert result.exit_code == 0, result.output
    path = store / "binance" / "BTC_USDT-5m.parquet"
    return store, path, path.read_bytes()


def test_import_then_info_json(stored, candles_factory):
    store, path, _ = stored
    pd.testing.assert_frame_equal(load_candles(path), candles_factory(n=300), check_freq=False)
    result = fc("data", "info", "--store", store, "--timeframe", "30m", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["first"] == "2024-01-01T00:00:00+00:00"
    assert (
        info["last"] == "2024-01-02T00:30:00+00:00"
    )  # 300 x 5m = 25 h: 50 bins, 00:00 .. next day 00:30
    assert (info["rows"], info["gaps"], info["filled"]) == (50, 0, 0)


def test_info_counts_gaps_and_filled_bars(tmp_path, candles_factory):
    df = candles_factory(n=120, timeframe="30min")
    df = df.drop(df.index[[10, 11, 12, 50]])
    src = tmp_path / "gappy.csv"
    df.reset_index().to_csv(src, index=False)
    store = tmp_path / "s"
    assert fc("data", "import", src, "--store", store).exit_code == 0
    info = json.loads(fc("data", "info", "--store", store, "--json").stdout)
    assert (info["rows"], info["gaps"], info["filled"]) == (116, 2, 4)


def bad_csv(tmp_path, candles_factory, kind):
    df = candles_factory(n=20).reset_index()
    if kind == "nan":
        df.loc[5, "close"] = float("nan")
    elif kind == "duplicate":
        df.loc[6, "timestamp"] = df.loc[5, "timestamp"]
    path = tmp_path / f"{kind}.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind, word", [("nan", "NaN"), ("duplicate", "duplicate")])
def test_bad_csv_is_refused_and_store_unchanged(stored, tmp_path, candles_factory, kind, word):
    store, path, before = stored
    one_line_error(
        fc("data", "import", bad_csv(tmp_path, candles_factory, kind), "--store", store), word
    )
    assert path.read_bytes() == before


def test_corrupt_parquet_is_refused_and_store_unchanged(stored, tmp_path):
    store, path, before = stored
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(before[: len(before) // 2])
    one_line_error(fc("data", "import", corrupt, "--store", store), "cannot read")
    assert path.read_bytes() == before


def test_missing_file_and_bad_options(stored, tmp_path):
    store, path, before = stored
    one_line_error(fc("data", "import", tmp_path / "nope.csv", "--store", store), "no such file")
    one_line_error(fc("data", "info", "--store", store, "--symbol", "ETH/USDT"), "ETH/USDT")
    one_line_error(fc("data", "info", "--store", store, "--symbol", "BTCUSDT"), "BASE/QUOTE")
    one_line_error(fc("data", "info", "--store", store, "--timeframe", "7x"), "timeframe")
    assert path.read_bytes() == before


def test_synth_is_seeded_and_named_synthetic(tmp_path):
    store = tmp_path / "s"
    assert fc("data", "synth", "--days", 3, "--seed", 4, "--store", store).exit_code == 0
    stored = load_candles(store / "synth" / "SYNTH_USDT-5m.parquet")
    pd.testing.assert_frame_equal(stored, synth_candles(days=3, seed=4), check_freq=False)
    info = json.loads(
        fc("data", "info", "--store", store, "--symbol", "SYNTH/USDT", "--json").stdout
    )
    assert info["synthetic"] is True and info["rows"] == 3 * 48
