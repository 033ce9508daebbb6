"""`fc data pull` and the Exchange class, through the real ccxt client against a fake Binance on
loopback: pagination, resume, the candle in progress, retries, refused answers, bad names."""

import functools
import time

import pandas as pd
import pytest
from conftest import make_candles, one_line_error
from typer.testing import CliRunner

import fc.live.pull
from fc.cli.main import app
from fc.core.data.store import candle_path, read_candles
from fc.live.exchange import BadExchangeData, Exchange, ExchangeUnavailable
from fc.live.pull import pull_candles

STEP = 300_000  # 5m in ms
PAGE = 7  # candles per page, so a few dozen candles make several pages
runner = CliRunner()


def ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


@pytest.fixture
def market(binance_server):
    """50 generated 5m candles on the fake exchange, all of them closed. Binance sends prices
    with 8 decimals: rounded so, they must come back bit for bit."""
    binance_server.candles = make_candles(50, seed=3).round(8)
    binance_server.now_ms = ms(binance_server.candles.index[-1]) + STEP
    return binance_server


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def exchange(market, sleeps):
    return Exchange(url=market.url, timeout_ms=250, retries=3, backoff_s=0.01, sleep=sleeps.append,
                    page_limit=PAGE)  # fmt: skip


@pytest.fixture
def cli_exchange(monkeypatch, sleeps):
    """The CLI builds its Exchange by id; give it test timings and the small page."""
    fast = functools.partial(
        Exchange, timeout_ms=250, retries=3, backoff_s=0.01, sleep=sleeps.append, page_limit=PAGE
    )
    monkeypatch.setattr(fc.live.pull, "Exchange", fast)


def pull_cli(market, store, *args):
    argv = ["data", "pull", "--symbol", "BTC/USDT", "--since", "2024-01-01", "--store", store]
    argv += ["--exchange-url", market.url, *args]
    return runner.invoke(app, [str(a) for a in argv])


def stored(store) -> pd.DataFrame:
    return read_candles(candle_path(store, "binance", "BTC/USDT", "5m"))


def test_pull_pages_through_and_equals_the_generated_candles(market, tmp_path, cli_exchange):
    result = pull_cli(market, tmp_path)
    assert result.exit_code == 0, result.output
    assert "50 candles added" in result.stdout
    pd.testing.assert_frame_equal(
        stored(tmp_path), market.candles, check_freq=False, check_exact=True
    )
    opens = [ms(t) for t in market.candles.index]
    # 50 candles in pages of 7: 8 requests, each starting right after the previous page
    assert market.start_times() == opens[::PAGE]
    assert market.count("/api/v3/exchangeInfo") == 1


def test_the_candle_in_progress_is_never_stored_and_a_rerun_fetches_only_what_is_new(
    market, exchange, tmp_path
):
    opens = [ms(t) for t in market.candles.index]
    market.now_ms = opens[40] + 2 * 60_000  # two minutes into candle 40
    calls = []
    summary = pull_candles(
        tmp_path, exchange, "BTC/USDT", since="2024-01-01", progress=lambda *a: calls.append(a)
    )
    assert summary["added"] == 40
    assert calls == [(7, 40), (14, 40), (21, 40), (28, 40), (35, 40), (40, 40)]
    assert exchange.client.enableRateLimit
    pd.testing.assert_frame_equal(
        stored(tmp_path), market.candles.iloc[:40], check_freq=False, check_exact=True
    )
    market.clear_requests()
    market.now_ms = opens[45] + 1  # candles 40..44 have closed since
    summary = pull_candles(tmp_path, exchange, "BTC/USDT", since="2024-01-01")
    assert (summary["added"], summary["rows"]) == (5, 45)
    assert market.start_times() == [opens[40]]
    pd.testing.assert_frame_equal(
        stored(tmp_path), market.candles.iloc[:45], check_freq=False, check_exact=True
    )


def test_resume_after_an_interruption_loses_nothing_and_refetches_nothing(
    market, tmp_path, cli_exchange, sleeps
):
    market.fail("ok", times=2)
    market.fail("503", times=4)  # page 3 fails on the first try and on all 3 retries
    result = pull_cli(market, tmp_path)
    one_line_error(result, "did not answer", "4 tries")
    assert sleeps == [0.01, 0.02, 0.04]  # exponential back-off between the tries
    pd.testing.assert_frame_equal(
        stored(tmp_path), market.candles.iloc[:14], check_freq=False, check_exact=True
    )
    market.clear_requests()
    result = pull_cli(market, tmp_path)
    assert result.exit_code == 0, result.output
    opens = [ms(t) for t in market.candles.index]
    assert market.start_times() == opens[14::PAGE]
    pd.testing.assert_frame_equal(
        stored(tmp_path), market.candles, check_freq=False, check_exact=True
    )


@pytest.mark.parametrize("fault", ["429", "418", "500", "502", "503", "slow"])
def test_a_transient_fault_is_retried_then_the_pull_succeeds(
    market, exchange, tmp_path, sleeps, fault
):
    market.slow_s = 0.6  # longer than the client's 250 ms timeout
    market.fail("ok")
    market.fail(fault)
    started = time.monotonic()
    summary = pull_candles(tmp_path, exchange, "BTC/USDT", since="2024-01-01")
    assert time.monotonic() - started < 3
    assert summary["added"] == 50
    pd.testing.assert_frame_equal(
        stored(tmp_path), market.candles, check_freq=False, check_exact=True
    )
    opens = [ms(t) for t in market.candles.index]
    assert market.start_times() == [opens[0], opens[7], *opens[7::PAGE]]  # page 2 asked twice
    # a 429/418 honours the server's Retry-After (1 s) over the tiny back-off
    assert sleeps == ([1.0] if fault in ("429", "418") else [0.01])


@pytest.mark.parametrize(
    "fault, words",
    [
        ("malformed", "not a JSON list"),
        ("missing_fields", "NaN"),
        ("non_numeric", "NaN"),
        ("high_low", "high < low"),
        ("non_positive", "price <= 0"),
        ("shifted", "outside the range"),
    ],
)
def test_a_bad_answer_is_refused_and_the_store_is_unchanged(
    market, tmp_path, cli_exchange, fault, words
):
    opens = [ms(t) for t in market.candles.index]
    market.now_ms = opens[30]
    assert pull_cli(market, tmp_path).exit_code == 0
    path = candle_path(tmp_path, "binance", "BTC/USDT", "5m")
    before = path.read_bytes()
    market.now_ms = opens[-1] + STEP
    market.fail(fault)
    one_line_error(pull_cli(market, tmp_path), "bad data" if "NaN" in words else words)
    assert path.read_bytes() == before
    assert market.count() == 5 + 1  # refused at once, not retried


def test_unknown_symbol_and_exchange_are_one_line_errors(market, tmp_path, cli_exchange):
    one_line_error(pull_cli(market, tmp_path, "--symbol", "NOPE/USDT"), "no market", "NOPE/USDT")
    one_line_error(pull_cli(market, tmp_path, "--exchange", "nosuchx"), "unknown exchange")
    one_line_error(pull_cli(market, tmp_path, "--timeframe", "7m"), "no 7m candles")
    one_line_error(pull_cli(market, tmp_path, "--exchange", "kraken"), "binance only")
    one_line_error(pull_cli(market, tmp_path, "--since", "someday"), "--since")
    assert not (tmp_path / "binance").exists()


def test_exchange_url_from_the_environment(market, tmp_path, cli_exchange, monkeypatch):
    monkeypatch.setenv("FC_EXCHANGE_URL", market.url)
    monkeypatch.setenv("FC_STORE", str(tmp_path))
    result = runner.invoke(app, ["data", "pull", "--since", "2024-01-01"])
    assert result.exit_code == 0, result.output
    assert len(stored(tmp_path)) == 50


def test_exchange_gives_up_after_its_retries(market, exchange):
    market.fail("500", times=10)
    with pytest.raises(ExchangeUnavailable, match="after 4 tries"):
        exchange.fetch_candles("BTC/USDT", "5m", ms(market.candles.index[0]))
    assert market.count() == 4


def test_bad_data_is_its_own_error(market, exchange):
    market.fail("high_low")
    with pytest.raises(BadExchangeData):
        exchange.fetch_candles("BTC/USDT", "5m", ms(market.candles.index[0]))


def test_closed_candles_are_the_last_count_closed_ones(market, exchange):
    opens = [ms(t) for t in market.candles.index]
    market.now_ms = opens[30] + 10_000  # the service fires 10 s after the close of candle 29
    got = exchange.closed_candles("BTC/USDT", "5m", 12, now_ms=opens[30] + 10_000)
    pd.testing.assert_frame_equal(
        got, market.candles.iloc[18:30], check_freq=False, check_exact=True
    )
    # the exchange's clock lags ours: it has not closed candle 29 yet, so it is left out
    market.now_ms = opens[30] - 1_000
    got = exchange.closed_candles("BTC/USDT", "5m", 12, now_ms=opens[30] + 10_000)
    pd.testing.assert_frame_equal(
        got, market.candles.iloc[18:29], check_freq=False, check_exact=True
    )


@pytest.mark.shared_data
def test_real_binance_candles_across_an_outage_come_back_exactly(
    binance_server, shared_data, tmp_path
):
    """Real 5m klines around the exchange's 22-day gap of 2024-09-24, in pages of 1000."""
    real = pd.read_parquet(shared_data / "btc_usdt_5m.parquet").loc["2024-09-20":"2024-10-19"]
    binance_server.candles = real
    binance_server.now_ms = ms(real.index[-1]) + STEP + 30_000
    exchange = Exchange(url=binance_server.url, timeout_ms=2_000, sleep=lambda s: None)
    summary = pull_candles(tmp_path, exchange, "BTC/USDT", since="2024-09-20")
    assert summary["added"] == len(real) > 2_000
    assert binance_server.count() == -(-len(real) // 1_000)
    pd.testing.assert_frame_equal(stored(tmp_path), real, check_freq=False, check_exact=True)


def test_server_time_without_a_set_clock_is_json(binance_server):
    """With no clock set, the fake exchange's time is just after its last candle, as an int."""
    import json
    import urllib.request

    binance_server.candles = make_candles(n=5, timeframe="5min")
    binance_server.now_ms = None
    with urllib.request.urlopen(binance_server.url + "/api/v3/time", timeout=5) as answer:
        server_time = json.loads(answer.read())["serverTime"]
    assert server_time == int(binance_server.candles.index[-1].value // 1_000_000) + 300_000


def test_several_symbols_are_pulled_each_into_its_own_file(market, tmp_path, cli_exchange):
    eth = (make_candles(50, seed=4) * 0.05).round(8)
    market.candles = {"BTC/USDT": market.candles, "ETH/BTC": eth}
    result = pull_cli(market, tmp_path, "--symbols", "ETH/BTC")  # beside pull_cli's --symbol
    assert result.exit_code == 0, result.output
    assert result.stdout.count("50 candles added") == 2
    pd.testing.assert_frame_equal(stored(tmp_path), market.candles["BTC/USDT"], check_freq=False)
    both = read_candles(candle_path(tmp_path, "binance", "ETH/BTC", "5m"))
    pd.testing.assert_frame_equal(both, eth, check_freq=False, check_exact=True)


def test_a_bad_symbol_among_several_is_refused_before_any_pull(market, tmp_path, cli_exchange):
    one_line_error(pull_cli(market, tmp_path, "--symbols", "ETH/BTC,NOPE/USDT"), "NOPE/USDT")
    assert not (tmp_path / "binance").exists()
    assert market.count("/api/v3/klines") == 0
