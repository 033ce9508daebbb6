"""The exchange, wrapped in one class: the only module that imports ccxt. It owns pagination,
retries with back-off, the rate limit, answer validation and the rule that the candle still in
progress is never returned.
"""

import json
import logging
import threading
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
        limiter: "RateLimiter | None" = None,
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
        if limiter is not None:  # several clients of one exchange: one rate limit for all
            self.client.throttle = limiter.throttle
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
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Closed candles with open time in [since_ms, until_ms], page by page (each page is
        validated, then handed to on_page) of `limit` candles (default: the page limit; a few
        candles cost the rate limit less than a full page). A candle whose close (open +
        timeframe) is after now is never returned."""
        self.check_market(symbol, timeframe)
        page = min(self.page_limit, limit or self.page_limit)
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
                limit=page,
                params={"until": stop},
            )
            try:
                frame = self._page(rows, symbol, timeframe, since, step)
            except BadExchangeData:
                self._failed("bad_data")
                raise
            frame = frame[frame.index.as_unit("ms").asi8 <= stop]  # an exchange ignoring endTime
            if frame.empty:
                break
            if on_page is not None:
                on_page(frame)
            pages.append(frame)
            since = int(frame.index[-1].value // 1_000_000) + step
            if len(rows) < page:  # fewer than asked: nothing more up to stop
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
            symbol, timeframe, last - (count - 1) * step, until_ms=last, now_ms=now, limit=count
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


class RateLimiter:
    """ccxt's rate limit shared by several clients of one exchange (a universe's symbols are
    fetched on threads, one client each): every request waits for its slot, the exchange's
    rateLimit (ms) x the request's cost after the slot before it, as ccxt spaces one client's
    requests. Installed as each client's `throttle`, which ccxt calls before every request."""

    def __init__(self, interval_ms: float, sleep: Callable[[float], None] = time.sleep):
        self.interval_ms, self.sleep = float(interval_ms), sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def throttle(self, cost=None) -> None:
        cost = 1 if cost is None else cost
        with self._lock:
            now = time.monotonic() * 1000
            slot = max(now, self._next)
            self._next = slot + self.interval_ms * cost
        if slot > now:
            self.sleep((slot - now) / 1000)


class ExchangePool:
    """The candle source of a universe live: one Exchange a symbol (a ccxt client is not shared
    between threads: the answer check reads its last response), all under one RateLimiter, one
    market list (loaded once) and one server clock (its offset read with the market list, so a
    request a symbol a tick asks nothing but the candles). `listed` reloads the market list
    when a symbol's newest candle did not come (or at the latest every `reload_s`)."""

    def __init__(self, symbols, timeframe: str, exchange_id: str = "binance",
                 reload_s: float = 3600.0, **options):  # fmt: skip
        self.timeframe, self.reload_s = timeframe, reload_s
        self.offset_ms, self.reloaded_ms = 0, None
        lead = Exchange(exchange_id, **options)
        self.limiter = RateLimiter(lead.client.rateLimit)
        lead.client.throttle = self.limiter.throttle

        def clock() -> int:
            return int(time.time() * 1000) + self.offset_ms

        options = {**options, "now_ms": options.get("now_ms") or clock}
        self.lead = lead
        self.exchanges = {s: Exchange(exchange_id, limiter=self.limiter, **options)
                          for s in symbols}  # fmt: skip
        self.suspect: set = set()
        self._lock = threading.Lock()
        self._reload()
        if lead.client.timeframes and timeframe not in lead.client.timeframes:
            raise FcError(f"{lead.id} has no {timeframe} candles; use one of 1m, 5m, 30m, 1h")
        listed = self._listed(symbols)
        if not any(listed.values()):
            raise FcError(f"{lead.id} lists none of {', '.join(symbols)}; give a universe "
                          "model of markets it trades")  # fmt: skip
        for symbol in [s for s, ok in listed.items() if not ok]:
            logging.getLogger("fc.live").warning(f"{symbol}: {lead.id} does not list it now")

    def _reload(self) -> None:
        """The market list (and the server clock's offset) again, shared with every client."""
        lead = self.lead
        lead._call("the market list", lead.client.load_markets, True)
        lead._markets_loaded = True
        if lead.client.has.get("fetchTime") and lead._now_ms is None:
            self.offset_ms = lead.now() - int(time.time() * 1000)
        for exchange in self.exchanges.values():
            exchange.client.set_markets_from_exchange(lead.client)
            exchange._markets_loaded = True
        self.reloaded_ms = int(time.time() * 1000)

    def _listed(self, symbols) -> dict:
        markets = self.lead.client.markets or {}
        return {s: s in markets and markets[s].get("active") is not False for s in symbols}

    def closed_candles(self, symbol: str, timeframe: str, count: int, now_ms: int):
        """Exchange.closed_candles of the symbol's own client; a symbol that failed or whose
        newest candle has not come is suspect (its market is looked up at the next `listed`)."""
        try:
            frame = self.exchanges[symbol].closed_candles(symbol, timeframe, count, now_ms)
        except FcError:
            with self._lock:
                self.suspect.add(symbol)
            raise
        newest = frame.index[-1].value // 1_000_000 if len(frame) else None
        with self._lock:
            if newest is None or newest < last_closed_open(timeframe, now_ms):
                self.suspect.add(symbol)
            else:
                self.suspect.discard(symbol)
        return frame

    def listed(self, symbols, now_ms: int) -> dict:
        """{symbol: whether the exchange still lists its market, active}: the market list
        reloaded first when a symbol is suspect or the list is older than reload_s (a reload
        that fails leaves the list as it was)."""
        stale = self.reloaded_ms is None or now_ms - self.reloaded_ms >= self.reload_s * 1000
        if stale or self.suspect & set(symbols):
            try:
                self._reload()
            except FcError as exc:
                logging.getLogger("fc.live").warning(f"market list not reloaded: {exc}")
            with self._lock:
                self.suspect -= set(symbols)
        return self._listed(symbols)


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
