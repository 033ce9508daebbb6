"""Run the service live: APScheduler fires a few seconds after every candle close, the main
thread pings systemd's watchdog and waits for SIGTERM/SIGINT to stop cleanly."""

import datetime as dt
import logging
import os
import signal
import sys
import threading

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from fc.live.clock import WallClock
from fc.live.logs import log_event
from fc.live.notify import Notifier, watchdog_interval_s
from fc.live.service import PaperService, iso

STOP_WAIT_S = 6.0  # how long a stop waits for a job in flight; systemd and tests allow 10 s


def decision_trigger(timeframe_ms: int, delay_s: float, now_ms: int) -> IntervalTrigger:
    """Every timeframe, delay_s after each candle boundary (boundaries aligned on the epoch, as
    the exchange aligns its candles)."""
    next_boundary = (now_ms // timeframe_ms + 1) * timeframe_ms
    start = dt.datetime.fromtimestamp(next_boundary / 1000 + delay_s, tz=dt.timezone.utc)
    return IntervalTrigger(seconds=timeframe_ms / 1000, start_date=start, timezone=dt.timezone.utc)


def run_live(service: PaperService, clock: WallClock, notifier: Notifier | None = None) -> bool:
    """Decide at every close until SIGTERM or SIGINT, then stop within a few seconds. Returns
    False when a job was still in flight (an exchange request that had not timed out yet)."""
    notifier = notifier or Notifier()
    cfg = service.config
    stop = threading.Event()
    busy = threading.Lock()  # the catch-up run and a boundary run never overlap

    def job() -> None:
        with busy:
            try:
                decision = service.decide_at(clock.now_ms())
            except Exception:  # a bug or an unforeseen answer must not kill the scheduler
                log = logging.getLogger("fc.live")
                log.exception("decision job failed", extra={"event": "error"})
                return
            if decision is not None:
                notifier.status(f"decided {iso(decision.candle_ms)} p_up {decision.p_up:.4f}")

    def on_signal(signum, frame) -> None:
        log_event(logging.INFO, "signal", f"{signal.Signals(signum).name}: stopping")
        stop.set()
        clock.stop()  # wakes a job sleeping between retries

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    scheduler = BackgroundScheduler(
        timezone=dt.timezone.utc,
        job_defaults={
            "coalesce": True,  # a backlog of missed runs fires once, and decide_at is idempotent
            "max_instances": 1,
            "misfire_grace_time": max(1, int(cfg.decision_window_ms / 1000)),
        },
    )
    now = clock.now_ms()
    scheduler.add_job(job, decision_trigger(cfg.timeframe_ms, cfg.delay_s, now), id="decide")
    scheduler.add_job(job, id="catch-up")  # the close just passed, if still inside its window
    service.journal.event(now, "start", symbol=cfg.symbol, timeframe=cfg.timeframe, model=cfg.model)
    scheduler.start()
    log_event(
        logging.INFO,
        "start",
        f"paper trading {cfg.symbol} {cfg.timeframe} with {cfg.model}: a decision "
        f"{cfg.delay_s:g} s after each close",
        symbol=cfg.symbol,
        timeframe=cfg.timeframe,
        model=cfg.model,
    )
    notifier.ready(f"trading {cfg.symbol} {cfg.timeframe}")
    ping = watchdog_interval_s()
    try:
        while not stop.wait(ping):
            notifier.watchdog()
    finally:
        notifier.stopping()
        scheduler.shutdown(wait=False)
        finished = busy.acquire(timeout=STOP_WAIT_S)
        if finished:  # else the job may hold the connection mid-transaction: leave it be
            service.journal.event(clock.now_ms(), "stop")
        log_event(logging.INFO, "stop", "stopped" + ("" if finished else ", a job abandoned"))
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return finished


def run_paper(
    model: str,
    symbol: str | None = None,
    exchange_id: str = "binance",
    exchange_url: str | None = None,
    journal_path: str = "paper-journal.sqlite",
    fee_bps: float = 0.0,
    capital: float = 10_000.0,
    delay_s: float = 5.0,
    window_s: float | None = None,
    policy: dict | None = None,
    new_model: bool = False,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    deadline_s: float | None = None,
) -> None:
    """`fc paper`: load the model (its metadata gives the timeframe and the policy parameters,
    each one in `policy` replaced), open the journal and the exchange, serve metrics when asked,
    and trade on paper until SIGTERM/SIGINT. The journal is opened for writing last, after every
    check that may refuse to start."""
    from fc.core.evaluation.policies import with_overrides
    from fc.live.exchange import Exchange, ExchangePool
    from fc.live.journal import Journal
    from fc.live.market_inputs import SymbolSources, model_spec
    from fc.live.metrics import NoMetrics, PrometheusMetrics
    from fc.live.model_file import (
        check_journal_model,
        check_journal_schedule,
        check_universe_journal,
        lock_journal,
        model_sha256,
    )
    from fc.live.service import PaperConfig
    from fc.live.universe_model import is_universe, load_model
    from fc.live.universe_service import UniverseService

    predictor = load_model(model, symbol)
    universe = list(predictor.symbols) if is_universe(predictor) else None
    clock = WallClock()
    config = PaperConfig(
        symbol=predictor.symbol,
        timeframe=predictor.timeframe,
        fee_bps=fee_bps,
        capital=capital,
        delay_s=delay_s,
        window_s=window_s,
        deadline_s=deadline_s,
        model=str(model),
        policy_params=with_overrides(predictor.meta["policy_params"], policy or {}),
        model_sha256=model_sha256(model),
        schedule=predictor.meta["schedule"],
    )
    check_journal_schedule(journal_path, config.symbol, config.timeframe, config.schedule)
    check_journal_model(journal_path, config.symbol, config.timeframe, config.model_sha256,
                        config.model, new_model)  # fmt: skip
    if universe:
        check_universe_journal(journal_path, universe, config.timeframe)
    lock = lock_journal(journal_path)  # held until the process ends
    metrics = NoMetrics() if metrics_port is None else PrometheusMetrics(universe)
    server = None if metrics_port is None else metrics.serve(metrics_host, metrics_port)
    if server is not None:
        where = f"http://{metrics_host}:{metrics_port}/metrics"
        log_event(logging.INFO, "metrics", f"metrics on {where}", url=where)
    traded = ",".join(universe) if universe else config.symbol
    metrics.model(config.model_sha256, predictor.seq_len, config.timeframe, traded)
    # the exchange's own retries stay short: the service retries again inside its window. One
    # client a symbol the model reads: they are fetched on threads, and a ccxt client is not
    # shared between threads (its last answer is read to check the candles)
    spec = model_spec(predictor)
    exchanges = {}
    for name in [] if universe else ([config.symbol] if spec is None else spec.symbols):
        exchanges[name] = Exchange(exchange_id, url=exchange_url, timeout_ms=10_000, retries=2,
                                   backoff_s=1.0, sleep=clock.sleep,
                                   on_error=metrics.exchange_error)  # fmt: skip
        exchanges[name].check_market(name, config.timeframe)
    if universe:  # one rate limit and one market list for every symbol's client
        source = ExchangePool(universe, config.timeframe, exchange_id, url=exchange_url,
                              timeout_ms=10_000, retries=2, backoff_s=1.0, sleep=clock.sleep,
                              on_error=metrics.exchange_error)  # fmt: skip
    else:
        source = exchanges[config.symbol] if len(exchanges) == 1 else SymbolSources(exchanges)
    journal = Journal(journal_path)
    lock = lock or lock_journal(journal_path)
    engine = UniverseService if universe else PaperService
    service = engine(config, source, predictor, journal, clock, metrics)
    finished = run_live(service, clock)
    if server is not None:
        server.shutdown()
    if not finished:
        # the job's thread is blocked in a request: leave now rather than wait for its timeout
        # (SQLite's WAL keeps the journal whole; an unfinished decision was never committed)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    journal.close()
    lock.close()  # the journal was closed first: nothing is written after the lock goes
