"""`fc data import` of files in freqtrade's names and formats: each lands under the symbol and
timeframe its name gives; contradictions, disagreeing candles and unreadable files are one line,
exit 2, and the store byte for byte as it was."""

import bz2
import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_candles, one_line_error
from freqtrade_files import store_state, write_freqtrade
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import load_candles
from fc.core.data.store import first_disagreement

runner = CliRunner()


def fc(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    "name, freq, symbol, stored",
    [
        ("ETH_BTC-5m.feather", "5min", "ETH/BTC", "ETH_BTC-5m.parquet"),
        ("XRP_USDT_USDT-1h-futures.feather", "1h", "XRP/USDT:USDT", "XRP_USDT_USDT-1h.parquet"),
        ("ADA_USDT-30m.json", "30min", "ADA/USDT", "ADA_USDT-30m.parquet"),
        ("SOL_USDT-15m.json.gz", "15min", "SOL/USDT", "SOL_USDT-15m.parquet"),
        ("DOT_USDT_USDT-4h-futures.json.gz", "4h", "DOT/USDT:USDT", "DOT_USDT_USDT-4h.parquet"),
        ("LTC_BTC-1d.parquet", "1D", "LTC/BTC", "LTC_BTC-1d.parquet"),
    ],
)
def test_each_file_lands_under_the_symbol_and_timeframe_its_name_gives(
    tmp_path, name, freq, symbol, stored
):
    df = make_candles(120, timeframe=freq, seed=7)
    result = fc("data", "import", write_freqtrade(df, tmp_path / name), "--store", tmp_path / "st")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{symbol} ")
    assert list(store_state(tmp_path / "st")) == [f"binance/{stored}"]
    back = load_candles(tmp_path / "st" / "binance" / stored)
    pd.testing.assert_frame_equal(back, df, check_freq=False, check_exact=True)


def test_the_issue_case_lands_as_two_symbols_never_in_btc_usdt(tmp_path):
    """freqtrade's test files: UNITTEST_BTC is UNITTEST/BTC by freqtrade's own rule (first `_`
    is `/`), XRP_ETH is XRP/ETH; before, both went into BTC/USDT."""
    st = tmp_path / "st"
    unittest = make_candles(300, seed=1) * 0.0009
    xrp = make_candles(300, seed=2) * 0.000014
    for frame, name in ((unittest, "UNITTEST_BTC-5m.feather"), (xrp, "XRP_ETH-5m.feather")):
        assert (
            fc("data", "import", write_freqtrade(frame, tmp_path / name), "--store", st).exit_code
            == 0
        )
    assert sorted(store_state(st)) == [
        "binance/UNITTEST_BTC-5m.parquet",
        "binance/XRP_ETH-5m.parquet",
    ]
    info = json.loads(
        fc(
            "data", "info", "--symbol", "XRP/ETH", "--timeframe", "5m", "--store", st, "--json"
        ).stdout
    )
    assert (info["rows"], info["filled"]) == (300, 0)
    pd.testing.assert_frame_equal(load_candles(info["file"]), xrp, check_freq=False)
    one_line_error(fc("data", "info", "--store", st), "no BTC/USDT candles")


@pytest.fixture
def stored(tmp_path):
    """A store with 300 5m ETH/BTC candles imported from a feather file, and its fingerprint."""
    st = tmp_path / "st"
    src = write_freqtrade(make_candles(300, seed=5), tmp_path / "src" / "ETH_BTC-5m.feather")
    assert fc("data", "import", src, "--store", st).exit_code == 0
    return st, store_state(st)


def test_a_symbol_or_timeframe_contradicting_the_name_is_refused(stored, tmp_path):
    st, before = stored
    xrp = write_freqtrade(make_candles(50, seed=2), tmp_path / "XRP_ETH-5m.feather")
    one_line_error(
        fc("data", "import", xrp, "--symbol", "ETH/BTC", "--store", st), "XRP/ETH", "ETH/BTC"
    )
    one_line_error(
        fc("data", "import", xrp, "--symbols", "BTC/USDT,ETH/BTC", "--store", st), "XRP/ETH"
    )
    one_line_error(fc("data", "import", xrp, "--timeframe", "1h", "--store", st), "says 5m", "1h")
    mislabelled = write_freqtrade(make_candles(50, seed=2), tmp_path / "XRP_ETH-1h.json")
    one_line_error(fc("data", "import", mislabelled, "--store", st), "5m apart", "1h")
    assert store_state(st) == before
    # agreeing options are fine: 60m is 1h, the symbol's case does not matter
    hourly = write_freqtrade(make_candles(50, "1h", seed=2), tmp_path / "XRP_ETH-1h.feather")
    assert (
        fc(
            "data", "import", hourly, "--symbol", "xrp/eth", "--timeframe", "60m", "--store", st
        ).exit_code
        == 0
    )
    assert (st / "binance" / "XRP_ETH-1h.parquet").is_file()


def test_overlapping_candles_that_differ_are_refused_at_the_first_difference(stored, tmp_path):
    st, before = stored
    later = make_candles(300, seed=5).iloc[200:].copy()  # the stored candles 200..299
    # one float64 step on a close (exact comparison must see it), then a volume further on
    later.iloc[50, 3] = np.nextafter(later.iloc[50, 3], np.inf)
    later.iloc[70, 4] += 1.0
    src = write_freqtrade(later, tmp_path / "ETH_BTC-5m.parquet")
    first = later.index[50].isoformat()
    one_line_error(fc("data", "import", src, "--store", st), first, "close", "nothing was written")
    assert first == "2024-01-01T20:50:00+00:00"  # candle 250 of a 5m series from midnight
    assert store_state(st) == before


def test_an_agreeing_overlap_merges(stored, tmp_path):
    st, _ = stored
    old = make_candles(300, seed=5)
    new = make_candles(100, seed=9, start="2024-01-02 01:00")  # right after the stored 300
    more = pd.concat([old.iloc[250:], new])  # 50 stored candles again, exactly, then 100 new
    src = write_freqtrade(more, tmp_path / "ETH_BTC-5m.json.gz")
    result = fc("data", "import", src, "--store", st)
    assert result.exit_code == 0, result.output
    back = load_candles(st / "binance" / "ETH_BTC-5m.parquet")
    pd.testing.assert_frame_equal(back, pd.concat([old, new]), check_freq=False)


def test_first_disagreement_compares_exactly():
    df = make_candles(20)
    assert first_disagreement(df, df.iloc[5:].copy()) is None
    other = df.copy()
    other.iloc[9, 1] = np.nextafter(other.iloc[9, 1], 0)  # a high one step lower
    other.iloc[9, 4] = 0.0
    when, column, was, now = first_disagreement(df, other)
    assert (when, column, was, now) == (df.index[9], "high", df.iloc[9, 1], other.iloc[9, 1])


def test_several_files_are_all_or_nothing(stored, tmp_path):
    """The first file is sound and new, the second disagrees with the store: neither lands."""
    st, before = stored
    sound = write_freqtrade(make_candles(30, seed=8), tmp_path / "ADA_USDT-5m.feather")
    bad = make_candles(300, seed=5)
    bad.iloc[3, 0] *= 1.01
    bad = write_freqtrade(bad, tmp_path / "x" / "ETH_BTC-5m.feather")
    one_line_error(fc("data", "import", sound, bad, "--store", st), "2024-01-01T00:15:00")
    assert store_state(st) == before


@pytest.mark.parametrize(
    "name, words",
    [
        ("ETH_BTC-5m.json.bz2", ("unknown compression", ".bz2", ".json")),
        ("ETH_BTC-5m.feather.zst", ("unknown compression", ".zst")),
        ("ETH_BTC-5m.h5", ("unknown type", ".h5")),
        ("XRP_USDT_USDT-1h-mark.feather", ("'mark'", "not trade prices")),
        ("XRP_USDT_USDT-8h-funding_rate.feather", ("'funding_rate'",)),
        ("BTC-5m.feather", ("no quote currency", "--symbol BTC/QUOTE")),
    ],
)
def test_files_fc_cannot_take_are_refused(stored, tmp_path, name, words):
    st, before = stored
    path = tmp_path / name
    write_freqtrade(make_candles(50, seed=2), tmp_path / "plain.json")
    path.write_bytes(bz2.compress((tmp_path / "plain.json").read_bytes()))
    one_line_error(fc("data", "import", path, "--store", st), *words)
    assert store_state(st) == before


def test_a_name_without_a_quote_currency_takes_one_symbol_with_its_base(tmp_path):
    st = tmp_path / "st"
    src = write_freqtrade(make_candles(50), tmp_path / "BTC-5m.feather")
    one_line_error(fc("data", "import", src, "--symbol", "ETH/USDT", "--store", st), "says BTC")
    assert store_state(st) == {}
    assert fc("data", "import", src, "--symbol", "BTC/USDT", "--store", st).exit_code == 0
    assert list(store_state(st)) == ["binance/BTC_USDT-5m.parquet"]


def test_a_nameless_file_takes_one_symbol(tmp_path):
    st = tmp_path / "st"
    src = tmp_path / "candles.parquet"
    make_candles(50).to_parquet(src)
    one_line_error(fc("data", "import", src, "--symbols", "A/B,C/D", "--store", st), "one --symbol")
    assert fc("data", "import", src, "--symbol", "SOL/USDT", "--store", st).exit_code == 0
    assert list(store_state(st)) == ["binance/SOL_USDT-5m.parquet"]
