"""Universes by name (issue 26): `--symbols @FILE` as a text file or a freqtrade config's
pair_whitelist, its refusals as one line, and `fc data info --symbols @FILE`'s candles per month
against a count made by hand."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.store import candle_path, write_candles
from fc.core.data.universe import parse_symbols
from fc.core.data.universe_file import read_universe
from fc.core.errors import FcError

runner = CliRunner()

FREQTRADE_CONFIG = """{
    // freqtrade allows comments like this one
    "exchange": {
        "name": "binance",
        "ccxt_config": {"urls": {"api": "https://api.binance.com/api/v3"}},  /* a URL: // kept */
        "pair_whitelist": [
            "ETH/USDT",
            "BTC/USDT",   // trailing comma next
        ],
    },
}
"""


def test_a_text_file_in_its_order_with_comments_and_blank_lines(tmp_path):
    path = tmp_path / "universe.txt"
    path.write_text("# majors\nSOL/USDT\n\n  BTC/USDT   # the first coin\nETH/USDT:USDT\n")
    assert read_universe(path) == ("SOL/USDT", "BTC/USDT", "ETH/USDT:USDT")
    # beside plain symbols, in the order given
    assert parse_symbols(f"XRP/USDT,@{path}") == ("XRP/USDT", "SOL/USDT", "BTC/USDT",
                                                   "ETH/USDT:USDT")  # fmt: skip


def test_a_freqtrade_config_with_comments_and_trailing_commas(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(FREQTRADE_CONFIG)
    assert read_universe(path) == ("ETH/USDT", "BTC/USDT")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("BTC/USDT\n.*/USDT\n", ["'.*/USDT'", "regular expression", "not support"]),
        ("BTC/USDT\nETH/USDT\nBTC/USDT\n", ["BTC/USDT twice"]),
        ("BTC/USDT\nBTCUSDT\n", ["'BTCUSDT'", "not a ccxt symbol"]),
        ("# nothing\n\n", ["names no symbol"]),
        ('{"exchange": {"pair_whitelist": ["(BTC|ETH)/USDT"]}}', ["regular expression"]),
        ('{"exchange": {"name": "binance"}}', ["pair_whitelist"]),
        ('{"exchange": {"pair_whitelist": ["BTC/USDT"]\n', ["not valid JSON at line 2"]),
    ],
)
def test_refused_in_one_line_naming_the_file(tmp_path, text, words):
    path = tmp_path / "universe.txt"
    path.write_text(text)
    with pytest.raises(FcError) as error:
        parse_symbols(f"@{path}")
    message = str(error.value)
    assert f"@{path}" in message and "\n" not in message
    for word in words:
        assert word in message, message


def test_a_symbol_in_the_file_and_on_the_line_is_named_twice(tmp_path):
    path = tmp_path / "u.txt"
    path.write_text("BTC/USDT\n")
    with pytest.raises(FcError, match="names a symbol twice"):
        parse_symbols(f"BTC/USDT,@{path}")


def _store_with_listing(store):
    """BTC/USDT hourly from 2024-09-30 22:00, NEW/USDT listed 2024-11-15 05:00, four candles of
    NEW missing in December; both end 2025-01-02 03:00."""
    index = pd.date_range("2024-09-30 22:00", "2025-01-02 03:00", freq="1h", tz="UTC")
    rng = np.random.default_rng(0)
    for symbol, first in (("BTC/USDT", index[0]), ("NEW/USDT", pd.Timestamp("2024-11-15 05:00",
                                                                          tz="UTC"))):  # fmt: skip
        times = index[index >= first]
        if symbol == "NEW/USDT":
            times = times.delete(range(500, 504))  # in December
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(times))))
        frame = pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99,
                              "close": close, "volume": 1.0}, index=times)  # fmt: skip
        frame.index.name = "timestamp"
        write_candles(candle_path(store, "binance", symbol, "1h"), frame)
    return index


def test_data_info_counts_each_symbols_candles_per_month(tmp_path):
    store = tmp_path / "store"
    _store_with_listing(store)
    universe = tmp_path / "u.txt"
    universe.write_text("BTC/USDT\nNEW/USDT\n")
    done = runner.invoke(app, ["data", "info", "--symbols", f"@{universe}", "--timeframe", "1h",
                               "--store", str(store), "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)["symbols"]
    # by hand: Sep 30 22:00 and 23:00; Oct, Nov, Dec whole months; Jan 1 and 2 until 03:00
    assert report["BTC/USDT"]["months"] == {"2024-09": 2, "2024-10": 31 * 24, "2024-11": 30 * 24,
                                            "2024-12": 31 * 24, "2025-01": 24 + 4}  # fmt: skip
    # NEW from Nov 15 05:00 (16 days * 24 - 5), four December candles missing
    assert report["NEW/USDT"]["months"] == {"2024-11": 16 * 24 - 5, "2024-12": 31 * 24 - 4,
                                            "2025-01": 28}  # fmt: skip
    table = runner.invoke(app, ["data", "info", "--symbols", f"@{universe}", "--timeframe", "1h",
                                "--store", str(store)])  # fmt: skip
    assert table.exit_code == 0 and "candles per month" in table.stdout
    assert "24-11" in table.stdout and "379" in table.stdout


def test_a_regex_in_a_universe_is_one_line_exit_2(tmp_path):
    universe = tmp_path / "config.json"
    universe.write_text('{"exchange": {"pair_whitelist": ["BTC/USDT", ".*/BTC"]}}')
    done = runner.invoke(app, ["data", "info", "--symbols", f"@{universe}", "--store",
                               str(tmp_path)])  # fmt: skip
    one_line_error(done, "regular expression", "'.*/BTC'")
    missing = runner.invoke(app, ["train", "--symbols", f"@{tmp_path / 'none.txt'}", "--store",
                                  str(tmp_path)])  # fmt: skip
    one_line_error(missing, "cannot read it", "none.txt")
