"""A loopback Binance spot REST server for tests: exchangeInfo, klines and time in the real wire
format, served from a candle frame under a settable clock, with a queue of injected faults.

Every exchange test drives the real ccxt client against it (`Exchange(url=server.url)`):
    server.candles = frame            # candle frame (or {symbol: frame}) at server.timeframe
    server.now_ms = ms                # what exists: open <= now; the bar holding now is partial
    server.fail("503", times=2)       # the next two /api/v3/klines requests answer 503
    server.fail("ok", times=2); server.fail("malformed")   # the third one is malformed
    server.count("/api/v3/klines"), server.start_times()   # what the client asked
    server.withheld = {"BTC/USDT": ms}  # that market's candles from ms on are not served (yet)
"""

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

KLINES = "/api/v3/klines"
EXCHANGE_INFO = "/api/v3/exchangeInfo"
TIME = "/api/v3/time"
FAULTS = (
    "ok",  # answer normally (to let some requests through before a fault)
    "429",  # rate limited, with Retry-After
    "418",  # IP banned for hammering after 429s
    "500",
    "502",
    "503",
    "slow",  # sleep slow_s before answering: longer than the client's timeout
    "malformed",  # truncated JSON
    "missing_fields",  # rows of 4 fields instead of 12
    "non_numeric",  # a price that is not a number
    "high_low",  # a row with high < low
    "non_positive",  # a row with close 0
    "shifted",  # rows that start before startTime (the same bars again)
)
_INTERVALS_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000}


@dataclass
class Fault:
    kind: str
    path: str | None = KLINES  # None: whatever request comes next


@dataclass
class Request:
    path: str
    params: dict


@dataclass
class BinanceServer:
    """State of the fake exchange; the handler reads it on every request (tests mutate it)."""

    url: str = ""
    candles: pd.DataFrame | dict | None = None
    timeframe: str = "5m"
    now_ms: int | None = None  # None: every candle of the frame is closed
    symbols: tuple = ("BTC/USDT", "SYNTH/USDT", "ETH/BTC")
    slow_s: float = 1.0
    faults: deque = field(default_factory=deque)
    withheld: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail(self, kind: str, times: int = 1, path: str | None = KLINES) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
        self.faults.extend(Fault(kind, path) for _ in range(times))

    def count(self, path: str = KLINES) -> int:
        with self.lock:
            return sum(r.path == path for r in self.requests)

    def start_times(self) -> list[int]:
        """startTime of every klines request, in order (faulted ones included)."""
        with self.lock:
            return [int(r.params["startTime"]) for r in self.requests if "startTime" in r.params]

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    # -- what the exchange answers -------------------------------------------------------------

    def _take_fault(self, path: str) -> str:
        with self.lock:
            if self.faults and self.faults[0].path in (None, path):
                return self.faults.popleft().kind
        return "ok"

    def _frame(self, market_id: str) -> pd.DataFrame | None:
        ids = {s.replace("/", ""): s for s in self.symbols}
        if market_id not in ids:
            return None
        if isinstance(self.candles, dict):
            return self.candles.get(ids[market_id])
        return self.candles

    def exchange_info(self) -> dict:
        return {
            "timezone": "UTC",
            "serverTime": self.server_time(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
                 "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(s) for s in self.symbols],
        }  # fmt: skip

    def server_time(self) -> int:
        if self.now_ms is not None:
            return int(self.now_ms)
        frame = self.candles if not isinstance(self.candles, dict) else None
        if frame is not None and len(frame):
            return int(_open_ms(frame)[-1]) + _INTERVALS_MS[self.timeframe]
        return int(time.time() * 1000)

    def klines(self, params: dict) -> tuple[int, object]:
        frame = self._frame(params.get("symbol", ""))
        if frame is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if params.get("interval") != self.timeframe:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        try:
            limit = int(params.get("limit", 500))
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError:
            return 400, {"code": -1100, "msg": "Illegal characters found in a parameter."}
        if not 1 <= limit <= 1000:
            return 400, {"code": -1130, "msg": "Invalid data sent for a parameter."}
        step = _INTERVALS_MS[self.timeframe]
        opens = _open_ms(frame)
        now = self.server_time()
        keep = opens <= now
        held = {s.replace("/", ""): ms for s, ms in self.withheld.items()}
        if params.get("symbol") in held:
            keep &= opens < held[params["symbol"]]
        if end is not None:
            keep &= opens <= end
        if start is not None:
            rows = np.flatnonzero(keep & (opens >= start))[:limit]
        else:  # no startTime: Binance answers the most recent `limit` bars
            rows = np.flatnonzero(keep)[-limit:]
        values = frame[["open", "high", "low", "close", "volume"]].to_numpy()
        out = []
        for i in rows:
            o, h, low, c, v = values[i]
            fraction = (now - opens[i]) / step
            if fraction < 1:  # the bar still in progress: a partial close, as Binance sends
                c = o + (c - o) * fraction
                h, low, v = max(o, c), min(o, c), v * fraction
            out.append(_kline(int(opens[i]), step, o, h, low, c, v))
        return 200, out


def _open_ms(frame: pd.DataFrame) -> np.ndarray:
    return frame.index.as_unit("ms").asi8


def _num(x: float) -> str:
    return f"{x:.8f}"


def _kline(open_ms: int, step: int, o, h, low, c, v) -> list:
    """One row as Binance spot sends it: prices and volumes are strings."""
    quote = v * c
    return [
        open_ms, _num(o), _num(h), _num(low), _num(c), _num(v), open_ms + step - 1,
        _num(quote), 100, _num(v / 2), _num(quote / 2), "0",
    ]  # fmt: skip


def _symbol_info(symbol: str) -> dict:
    base, quote = symbol.split("/")
    return {
        "symbol": base + quote,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
             "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
             "stepSize": "0.00001000"},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
             "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }  # fmt: skip


def _spoil(kind: str, rows: list, step: int) -> object:
    """A well-formed JSON answer that is wrong in the way `kind` names."""
    rows = [list(r) for r in rows]
    if not rows:
        return rows
    if kind == "missing_fields":
        return [r[:4] for r in rows]
    if kind == "non_numeric":
        rows[0][4] = "NaN-ish"
    elif kind == "high_low":
        rows[0][2], rows[0][3] = rows[0][3], _num(float(rows[0][2]) * 1.01)
    elif kind == "non_positive":
        rows[0][4] = "0.00000000"
    elif kind == "shifted":
        rows = [[r[0] - step * len(rows), *r[1:]] for r in rows]
    return rows


class _Handler(BaseHTTPRequestHandler):
    server_version = "fake-binance/1"
    state: BinanceServer  # set on the subclass made per server

    def do_GET(self):  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        state = self.state
        with state.lock:
            state.requests.append(Request(parts.path, params))
        fault = state._take_fault(parts.path)
        if fault == "slow":
            time.sleep(state.slow_s)
        if fault in ("429", "418"):
            return self._send(int(fault), {"code": -1003, "msg": "Too many requests."},
                              {"Retry-After": "1"})  # fmt: skip
        if fault in ("500", "502", "503"):
            return self._send(int(fault), None, body=b"<html>Service Unavailable</html>")
        if parts.path == EXCHANGE_INFO:
            status, answer = 200, state.exchange_info()
        elif parts.path == TIME:
            status, answer = 200, {"serverTime": state.server_time()}
        elif parts.path == KLINES:
            status, answer = state.klines(params)
            if status == 200 and fault not in ("ok", "slow", "malformed"):
                answer = _spoil(fault, answer, _INTERVALS_MS[state.timeframe])
        else:
            status, answer = 404, None
        body = json.dumps(answer).encode() if answer is not None else b""
        if fault == "malformed":
            body = body[: max(1, len(body) // 2)]
        self._send(status, None, body=body)

    def _send(self, status, answer, headers=None, body=None):
        if body is None:
            body = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a "slow" fault): nothing to answer

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a "slow" handler still sleeping must not hold up the teardown


def start_binance_server(**state) -> tuple[BinanceServer, _Server]:
    """Serve on 127.0.0.1, a free port, in a daemon thread. Stop with `httpd.shutdown()`."""
    server = BinanceServer(**state)
    handler = type("Handler", (_Handler,), {"state": server})
    httpd = _Server(("127.0.0.1", 0), handler)
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return server, httpd


@pytest.fixture
def binance_server():
    """A fake Binance on loopback; give it `.candles` (and `.now_ms`) before asking."""
    server, httpd = start_binance_server()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
