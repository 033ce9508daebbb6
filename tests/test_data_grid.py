"""Several symbols: a freqtrade data folder imported at once, and `fc data info` telling whether
their candles share one grid."""

import json

import pandas as pd
import pytest
from conftest import make_candles, one_line_error
from freqtrade_files import store_state, write_freqtrade
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.report import shared_grid

runner = CliRunner()
FIVE = ["BTC/USDT", "ETH/USDT", "XRP/USDT", "ETH/BTC", "BTC/USDT:USDT"]


def fc(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def folder(tmp_path):
    """A freqtrade `user_data/data/binance/`: five symbols' 30m candles in four formats, one of
    them a future under futures/ beside its mark and funding-rate files, a trades file, a note.
    Ranges differ (ETH/USDT starts 10 bars late, XRP/USDT ends 5 early); all lack bar 40."""
    root = tmp_path / "binance"
    names = [
        "BTC_USDT-30m.feather",
        "ETH_USDT-30m.json",
        "XRP_USDT-30m.json.gz",
        "ETH_BTC-30m.parquet",
        "futures/BTC_USDT_USDT-30m-futures.feather",
    ]
    for seed, name in enumerate(names):
        df = make_candles(200, timeframe="30min", seed=seed)
        df = df.drop(df.index[40])
        df = df.iloc[10:] if name.startswith("ETH_USDT") else df
        df = df.iloc[:-5] if name.startswith("XRP") else df
        write_freqtrade(df, root / name)
    for other in ("BTC_USDT_USDT-30m-mark.feather", "BTC_USDT_USDT-8h-funding_rate.feather"):
        write_freqtrade(make_candles(20, seed=9), root / "futures" / other)
    make_candles(5).to_parquet(root / "BTC_USDT-trades.parquet")
    (root / "README.txt").write_text("downloaded with freqtrade download-data")
    return root


def test_a_folder_of_five_symbols_imports_each_under_its_name_and_shares_one_grid(folder, tmp_path):
    st = tmp_path / "st"
    result = fc("data", "import", folder, "--store", st)
    assert result.exit_code == 0, result.output
    stored = sorted(store_state(st))
    assert stored == [
        f"binance/{s.replace('/', '_').replace(':', '_')}-30m.parquet" for s in sorted(FIVE)
    ]
    assert "skipped: 1 funding_rate candles, 1 mark candles, 2 not candle files" in result.stdout
    info = json.loads(
        fc("data", "info", "--symbols", ",".join(FIVE), "--store", st, "--json").stdout
    )
    assert list(info["symbols"]) == FIVE and info["one_grid"] is True
    # the overlap: ETH/USDT's first bar (10) to XRP/USDT's last (194); bar 40 lacks everywhere
    start = pd.Timestamp("2024-01-01", tz="UTC")
    assert info["grid"] == {
        "timeframe": "30m",
        "overlap": {
            "first": (start + pd.Timedelta(minutes=300)).isoformat(),
            "last": (start + pd.Timedelta(minutes=194 * 30)).isoformat(),
            "bins": 185,
            "bars": 184,
        },
        "missing": {},
    }
    # each symbol's block is exactly what `fc data info` says of it alone, and its candles per
    # month add up to its rows
    for symbol in FIVE:
        alone = fc("data", "info", "--symbol", symbol, "--store", st, "--json")
        months = info["symbols"][symbol].pop("months")
        assert info["symbols"][symbol] == json.loads(alone.stdout)
        assert sum(months.values()) == info["symbols"][symbol]["rows"]
    assert (info["symbols"]["ETH/USDT"]["rows"], info["symbols"]["ETH/USDT"]["filled"]) == (189, 1)


def test_a_symbol_lacking_bars_inside_the_overlap_breaks_the_grid(tmp_path):
    st = tmp_path / "st"
    a = make_candles(100, timeframe="30min", seed=1)
    b = make_candles(100, timeframe="30min", seed=2)
    b = b.drop(b.index[[0, 30, 31, 32]])  # bar 0 is outside the overlap; 30..32 inside
    write_freqtrade(a, tmp_path / "in" / "AAA_USDT-30m.feather")
    write_freqtrade(b, tmp_path / "in" / "BBB_USDT-30m.feather")
    assert fc("data", "import", tmp_path / "in", "--store", st).exit_code == 0
    args = ("data", "info", "--symbol", "AAA/USDT", "--symbol", "BBB/USDT", "--store", st)
    info = json.loads(fc(*args, "--json").stdout)
    assert info["one_grid"] is False
    assert info["grid"]["missing"] == {"BBB/USDT": {"bars": 3, "first": a.index[30].isoformat()}}
    assert (info["grid"]["overlap"]["bins"], info["grid"]["overlap"]["bars"]) == (99, 99)
    shown = fc(*args)
    assert "not one grid: BBB/USDT lacks 3 bar(s)" in shown.stdout


def test_shared_grid_without_an_overlap_and_across_timeframes():
    early = make_candles(10, "1h").index
    late = make_candles(10, "1h", start="2024-02-01").index
    assert shared_grid({"A/B": early, "C/D": late}, "1h") == {
        "one_grid": False,
        "timeframe": "1h",
        "overlap": None,
        "missing": {},
    }
    # the same times share one grid whatever the stored timeframe was
    assert shared_grid({"A/B": early, "C/D": early}, "1h")["one_grid"] is True


def test_a_folder_import_takes_the_chosen_symbols_and_timeframe(folder, tmp_path):
    st = tmp_path / "st"
    result = fc("data", "import", folder, "--symbols", "ETH/BTC,BTC/USDT:USDT", "--store", st)
    assert result.exit_code == 0, result.output
    assert sorted(store_state(st)) == [
        "binance/BTC_USDT_USDT-30m.parquet",
        "binance/ETH_BTC-30m.parquet",
    ]
    one_line_error(fc("data", "import", folder, "--symbol", "SOL/USDT", "--store", st), "SOL/USDT")
    one_line_error(fc("data", "import", folder, "--timeframe", "5m", "--store", st), "at 5m")


def test_a_folder_with_an_unreadable_candle_file_is_refused_whole(folder, tmp_path):
    (folder / "ADA_USDT-30m.json.bz2").write_bytes(b"BZh9")
    st = tmp_path / "st"
    one_line_error(fc("data", "import", folder, "--store", st), "unknown compression")
    assert store_state(st) == {}
    one_line_error(fc("data", "import", tmp_path / "st2", "--store", st), "no such file")
    (tmp_path / "empty").mkdir()
    one_line_error(fc("data", "import", tmp_path / "empty", "--store", st), "no freqtrade candle")
