"""Prometheus metrics of the paper service (`fc paper --metrics-port`), in one place.

The service calls the same four methods on whichever object it is given: `NoMetrics` (the
default: no prometheus_client, nothing computed) or `PrometheusMetrics`. Decision metrics are
set from the very rows the journal has just committed, never computed a second time; times come
from the service's clock, so a replay or a test controls them. Each PrometheusMetrics has its own
CollectorRegistry (not the process-global one), so tests and replays never share counters.
"""

from fc.core.evaluation.policies import POLICIES
from fc.core.evaluation.portfolio import STRATEGIES

# Seconds from a candle's close to its journal commit: the scheduler fires `--delay` (5 s) after
# the close, a decision takes well under a second, retries stretch it up to the decision window
# (at most 300 s by default).
DECISION_BUCKETS = (1, 2.5, 5, 7.5, 10, 15, 20, 30, 60, 120, 300, 600)


class NoMetrics:
    """Metrics off: every call does nothing."""

    def model(self, sha256: str, seq_len: int, timeframe: str, symbol: str) -> None:
        pass

    def restored(self, rows: list) -> None:
        pass

    def journalled(self, rows: list, close_ms: int, committed_ms: int) -> None:
        pass

    def exchange_error(self, kind: str) -> None:
        pass


class PrometheusMetrics:
    """The service's metrics in a registry of their own; `serve(host, port)` exposes them."""

    def __init__(self, symbols: list | None = None):
        """symbols: a universe service's (its series gain a `symbol` label, `portfolio` for the
        book's rows); None keeps a one-symbol service's series as they always were."""
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            Info,
            ProcessCollector,
        )

        self.by_symbol = symbols is not None
        keys = ["symbol", "policy"] if self.by_symbol else ["policy"]
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        self.decisions = Counter(
            "fc_decisions", "Decisions journalled, per policy.", keys, registry=r
        )
        self.last_decision = Gauge(
            "fc_last_decision_timestamp_seconds",
            "When the last decision was committed to the journal (the service's clock).",
            registry=r,
        )
        self.last_candle = Gauge(
            "fc_last_candle_timestamp_seconds",
            "Open time of the last decided candle (the journal's candle).",
            registry=r,
        )
        self.errors = Counter(
            "fc_exchange_errors",
            "Failed exchange requests, per kind (timeout, rate_limited, unavailable, bad_data, "
            "refused); the exchange module retries them.",
            ["kind"],
            registry=r,
        )
        self.held = Counter(
            "fc_held_candles", "Candles held without deciding (downtime, outages).", registry=r
        )
        self.wealth = Gauge("fc_wealth", "Paper wealth, per policy.", keys, registry=r)
        self.position = Gauge("fc_position", "Position held, per policy.", keys, registry=r)
        self.p_up = Gauge("fc_p_up", "The model's P(next candle up) at the last decision.",
                          keys[:-1], registry=r)  # fmt: skip
        self.latency = Histogram(
            "fc_decision_seconds",
            "Seconds from a candle's close to its decision's journal commit.",
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.info = Info("fc_model", "The model file the service trades.", registry=r)
        for policy in POLICIES:  # exported at 0 from the start, so rate() sees the first one
            for symbol in symbols or [None]:
                self.decisions.labels(**self._keys(symbol, policy))
        for strategy in STRATEGIES if self.by_symbol else ():
            self.decisions.labels(symbol="portfolio", policy=strategy)

    def model(self, sha256: str, seq_len: int, timeframe: str, symbol: str) -> None:
        self.info.info(
            {"sha256": sha256, "seq_len": str(seq_len), "timeframe": timeframe, "symbol": symbol}
        )

    def restored(self, rows: list) -> None:
        """Gauges from the journal's last rows at start, so a restart shows the state it has."""
        if rows:
            self._set(rows)
            self.last_decision.set(max(r.decided_ms for r in rows) / 1000)

    def journalled(self, rows: list, close_ms: int, committed_ms: int) -> None:
        """One decision's rows (and the held rows before it) were committed at committed_ms."""
        decided = [r for r in rows if r.kind == "decision"]
        for row in decided:
            self.decisions.labels(**self._keys(row.symbol, row.policy)).inc()
        self.held.inc(len({r.candle_ms for r in rows if r.kind == "held"}))
        self.latency.observe((committed_ms - close_ms) / 1000)
        self.last_decision.set(committed_ms / 1000)
        self._set(decided)

    def exchange_error(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()

    def _set(self, rows: list) -> None:
        for row in rows:
            self.wealth.labels(**self._keys(row.symbol, row.policy)).set(row.wealth)
            self.position.labels(**self._keys(row.symbol, row.policy)).set(row.position)
            if self.by_symbol and row.p_up is not None:
                self.p_up.labels(symbol=row.symbol).set(row.p_up)
        last = max(rows, key=lambda r: r.candle_ms)
        self.last_candle.set(last.candle_ms / 1000)
        if last.p_up is not None and not self.by_symbol:
            self.p_up.set(last.p_up)

    def _keys(self, symbol, policy: str) -> dict:
        return {"symbol": symbol, "policy": policy} if self.by_symbol else {"policy": policy}

    def serve(self, host: str, port: int):
        """Serve /metrics on host:port in a daemon thread; a port in use is a user error."""
        from prometheus_client import start_http_server

        from fc.core.errors import FcError

        try:
            server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise FcError(
                f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "give a free port"
            ) from None
        return server
