"""The exchange, wrapped in one class: the only module that imports ccxt. It owns pagination,
retries with back-off, the rate limit, answer validation and the rule that the candle still in
progress is never returned.
"""

import json
import time
from collections.abc import Callable

import ccxt
import numpy as np
import pandas as pd

from fc.core.data.candles import OHLCV, timeframe_ms, validate_candles
from fc.core.errors import FcError

PAGE_LIMIT = 1000  # Binance spot's most candles per klines request
MAX_RETRY_AFTER_S = 60.0


class ExchangeUnavailable(FcError):
    """The exchange did not answer (timeouts, 429, 5xx) after every retry."""


class BadExchangeData(FcError):
    """The exchange answered, but with something that is not sound candles."""


class Exchange:
    """Candles from one ccxt exchange. Time is passed in: `now_ms` is a callable giving the
    current time in ms (default: the exchange's own clock), `sleep` waits between retries."""

    def __init__(
        self,
        exchange_id: str = "binance",
        url: str | None = None,
        timeout_ms: int = 10_000,
        retries: int = 4,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        now_ms: Callable[[], int] | None = None,
        page_limit: int = PAGE_LIMIT,
        on_error: Callable[[str], None] | None = None,
    ):
        exchange_id = exchange_id.strip().lower()
        if exchange_id not in ccxt.exchanges:
            raise FcError(
                f"unknown exchange {exchange_id!r}; give a ccxt exchange id such as binance"
            )
        self.id = exchange_id
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.page_limit = page_limit
        self._now_ms = now_ms
        self.on_error = on_error  # told the kind of every failed request (metrics)
        self._markets_loaded = False
        self.client = getattr(ccxt, exchange_id)({"enableRateLimit": True, "timeout": timeout_ms})
        if url:
            self._point_at(url.rstrip("/"))

    def _point_at(self, url: str) -> None:
        """--exchange-url (SPEC §5): the public REST base, and only the spot market list, so
        load_markets asks nothing but /api/v3/exchangeInfo there."""
        if self.id != "binance":
            raise FcError(f"--exchange-url is supported for binance only, not {self.id}")
        self.client.urls["api"]["public"] = url + "/api/v3"
        self.client.options["fetchMarkets"] = {"types": ["spot"]}
        self.client.options["fetchCurrencies"] = False
        self.url = url

    # -- calls with retries ----------------------------------------------------------------

    def _call(self, what: str, fn, *args, **kwargs):
        """fn(*args) with exponential back-off on network errors (timeouts, 429, 5xx)."""
        for attempt in range(self.retries + 1):
            try:
                return fn(*args, **kwargs)
            except ccxt.NetworkError as exc:  # RequestTimeout, DDoSProtection (429), 5xx
                self._failed(error_kind(exc))
                if attempt == self.retries:
                    raise ExchangeUnavailable(
                        f"{self.id} did not answer {what} after {attempt + 1} tries "
                        f"({type(exc).__name__}); check the network or --exchange-url, "
                        "then run it again"
                    ) from None
                self.sleep(self._delay(attempt, exc))
            except ccxt.BadSymbol:
                raise FcError(
                    f"{self.id} has no market for {what}; give a symbol it lists, like BTC/USDT"
                ) from None
            except ccxt.BadResponse as exc:
                self._failed("bad_data")
                raise BadExchangeData(
                    f"{self.id} sent an answer to {what} that is not valid ({_first_line(exc)}); "
                    "try again later"
                ) from None
            except ccxt.BaseError as exc:
                self._failed("refused")
                raise FcError(f"{self.id} refused {what}: {_first_line(exc)}") from None
            except (TypeError, ValueError, KeyError, IndexError) as exc:  # ccxt parsing junk
                self._failed("bad_data")
                raise BadExchangeData(
                    f"{self.id} sent an answer to {what} that ccxt cannot read "
                    f"({type(exc).__name__}); try again later"
                ) from None

    def _failed(self, kind: str) -> None:
        if self.on_error is not None:
            self.on_error(kind)

    def _delay(self, attempt: int, exc: Exception) -> float:
        delay = self.backoff_s * 2**attempt
        if isinstance(exc, ccxt.DDoSProtection):  # 429/418: honour the server's Retry-After
            headers = self.client.last_response_headers or {}
            try:
                delay = max(delay, min(float(headers.get("Retry-After", 0)), MAX_RETRY_AFTER_S))
            except (TypeError, ValueError):
                pass
        return delay

    def load_markets(self) -> None:
        if not self._markets_loaded:
            self._call("the market list", self.client.load_markets)
            self._markets_loaded = True

    def check_market(self, symbol: str, timeframe: str) -> None:
        """A one-line FcError for a symbol or timeframe the exchange does not have."""
        self.load_markets()
        if symbol not in self.client.markets:
            raise FcError(
                f"{self.id} has no market {symbol!r}; give a symbol it lists, like BTC/USDT"
            )
        if self.client.timeframes and timeframe not in self.client.timeframes:
            raise FcError(f"{self.id} has no {timeframe} candles; use one of 1m, 5m, 30m, 1h")

    def now(self) -> int:
        """The current time in ms: the injected clock, else the exchange's own clock (so a
        skewed local clock cannot make a candle in progress look closed)."""
        if self._now_ms is not None:
            return int(self._now_ms())
        if not self.client.has.get("fetchTime"):
            return int(time.time() * 1000)  # an exchange without a clock endpoint: ours
        answer = self._call("the time", self.client.fetch_time)
        if not isinstance(answer, int | float) or answer <= 0:
            raise BadExchangeData(f"{self.id} sent a server time that is not a time: {answer!r}")
        return int(answer)

    # -- candles ---------------------------------------------------------------------------

    def fetch_candles(
        self,
        symbol: str,
        timeframe: str,
        since_ms: int,
        until_ms: int | None = None,
        on_page: Callable[[pd.DataFrame], None] | None = None,
        now_ms: int | None = None,
    ) -> pd.DataFrame:
        """Closed candles with open time in [since_ms, until_ms], page by page (each page is
        validated, then handed to on_page). A candle whose close (open + timeframe) is after
        now is never returned."""
        self.check_market(symbol, timeframe)
        step = timeframe_ms(timeframe)
        now = self.now() if now_ms is None else int(now_ms)
        stop = now - step  # the last open time whose candle has closed
        if until_ms is not None:
            stop = min(stop, int(until_ms))
        pages, since = [], int(since_ms)
        while since <= stop:
            rows = self._call(
                f"{symbol} {timeframe} candles",
                self.client.fetch_ohlcv,
                symbol,
                timeframe,
                since=since,
                limit=self.page_limit,
                params={"until": stop},
            )
            try:
                page = self._page(rows, symbol, timeframe, since, step)
            except BadExchangeData:
                self._failed("bad_data")
                raise
            page = page[page.index.as_unit("ms").asi8 <= stop]  # an exchange ignoring endTime
            if page.empty:
                break
            if on_page is not None:
                on_page(page)
            pages.append(page)
            since = int(page.index[-1].value // 1_000_000) + step
            if len(rows) < self.page_limit:  # fewer than asked: nothing more up to stop
                break
        return pd.concat(pages) if pages else _empty()

    def closed_candles(self, symbol: str, timeframe: str, count: int, now_ms: int) -> pd.DataFrame:
        """The last `count` closed candles as of now_ms (fewer where the exchange has gaps).
        Bars the exchange has not closed by its own clock are left out, so when the frame's
        last time is before `last_closed_open(timeframe, now_ms)` the caller should wait."""
        step = timeframe_ms(timeframe)
        last = last_closed_open(timeframe, now_ms)
        now = min(int(now_ms), self.now())
        return self.fetch_candles(
            symbol, timeframe, last - (count - 1) * step, until_ms=last, now_ms=now
        )

    def _page(self, rows, symbol: str, timeframe: str, since: int, step: int) -> pd.DataFrame:
        """ccxt's parsed rows as a candle frame, or BadExchangeData for anything unsound."""
        source = f"{self.id} {symbol} {timeframe} candles"
        raw = self.client.last_http_response
        try:
            answer = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            answer = None
        if not isinstance(answer, list):
            raise BadExchangeData(f"{source}: the answer is not a JSON list; try again later")
        # ccxt silently drops rows before `since` or past `limit`: a count mismatch means the
        # exchange answered another range than the one asked
        if len(answer) != len(rows) or len(rows) > self.page_limit:
            raise BadExchangeData(
                f"{source}: the answer holds bars outside the range asked from "
                f"{pd.Timestamp(since, unit='ms', tz='UTC')}; try again later"
            )
        try:
            opens = np.array([r[0] for r in rows], dtype=np.int64)
            values = np.array([[np.nan if x is None else x for x in r[1:6]] for r in rows], float)
        except (TypeError, ValueError, IndexError):
            raise BadExchangeData(f"{source}: a row is not [time, o, h, l, c, v]") from None
        if len(rows) and ((opens % step != 0).any() or (opens < since).any()):
            raise BadExchangeData(f"{source}: open times off the {timeframe} grid or too early")
        index = pd.DatetimeIndex(pd.to_datetime(opens, unit="ms", utc=True), name="timestamp")
        frame = pd.DataFrame(values.reshape(-1, 5), index=index.as_unit("ns"), columns=OHLCV)
        try:
            return validate_candles(frame, source=source)
        except FcError as exc:
            what = str(exc).split(";")[0]  # validate_candles' advice is for files, not answers
            raise BadExchangeData(f"{what}: the exchange sent bad data; try again later") from None


def error_kind(exc: Exception) -> str:
    """A failed request's kind, one of a small fixed set (a metrics label)."""
    if isinstance(exc, ccxt.RequestTimeout):
        return "timeout"
    if isinstance(exc, ccxt.DDoSProtection):  # 429, 418; RateLimitExceeded is one
        return "rate_limited"
    return "unavailable"  # 5xx, connection refused or reset, maintenance


def last_closed_open(timeframe: str, now_ms: int) -> int:
    """Open time (ms) of the last candle closed at now_ms: its close (open + step) <= now."""
    step = timeframe_ms(timeframe)
    return (int(now_ms) // step) * step - step


def _empty() -> pd.DataFrame:
    index = pd.DatetimeIndex([], tz="UTC", name="timestamp").as_unit("ns")
    return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in OHLCV}, index=index)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
