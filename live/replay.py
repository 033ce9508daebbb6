"""Replay: the live service driven by a simulated clock over recorded candle files, one per symbol
the model reads (SPEC §8)."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.data.candles import load_candles, resample, timeframe_ms, utc_time
from fc.core.errors import FcError
from fc.core.evaluation.policies import with_overrides
from fc.live.clock import SimulatedClock
from fc.live.journal import Journal
from fc.live.logs import log_event
from fc.live.market_inputs import SymbolSources, bars_needed, model_spec
from fc.live.service import PaperConfig, PaperService, Predictor, iso
from fc.live.universe_model import is_universe, load_model
from fc.live.universe_service import UniverseService


class RecordedSource:
    """A candle source answering from a candle frame: the closed candles as of now_ms, as an
    exchange would (real candles only; the service makes the grid)."""

    def __init__(self, candles: pd.DataFrame, timeframe: str, delisted: bool = False):
        self.candles = candles
        self.tf = timeframe_ms(timeframe)
        self.open_ms = candles.index.as_unit("ns").asi8 // 1_000_000
        self.delisted = delisted  # its candles end before the universe's: the market goes

    def closed_candles(self, symbol: str, timeframe: str, count: int, now_ms: int) -> pd.DataFrame:
        end = int(np.searchsorted(self.open_ms, int(now_ms) - self.tf, side="right"))
        return self.candles.iloc[max(0, end - count) : end]

    def listed(self, symbols, now_ms: int) -> dict:
        """A delisted market is listed until its last candle closes: the service closes it
        there, at its last price, as the backtest does (core.data.presence.close_delisted)."""
        newest = (int(now_ms) // self.tf) * self.tf - self.tf  # the last candle closed at now
        gone = self.delisted and newest >= self.open_ms[-1]
        return {symbol: not gone for symbol in symbols}


def recorded_sources(frames: dict, timeframe: str) -> SymbolSources:
    """A RecordedSource a symbol; the ones whose candles end before the last symbol's are
    delisted at their last candle."""
    end = max(int(f.index[-1].value // 1_000_000) for f in frames.values())
    return SymbolSources({s: RecordedSource(f, timeframe, int(f.index[-1].value // 1_000_000) < end)
                          for s, f in frames.items()})  # fmt: skip


def recorded_candles(path: str | Path, timeframe: str) -> pd.DataFrame:
    """The file's candles at the model's timeframe (resampled when finer; bins only)."""
    candles = load_candles(path)
    return resample(candles, timeframe)


@dataclass
class ReplayResult:
    decisions: int
    skipped: int
    seconds: float
    first: str
    last: str

    @property
    def per_second(self) -> float:
        return self.decisions / self.seconds if self.seconds > 0 else float("inf")


def replay(
    candles: pd.DataFrame | dict,
    predictor: Predictor,
    journal: Journal,
    config: PaperConfig,
    start: str | None = None,
    end: str | None = None,
) -> ReplayResult:
    """Step a simulated clock through the candle closes (delay_s after each) and let the service
    decide at each; decisions start where a full window exists (of every symbol: `candles` is
    the decided symbol's frame, or {symbol: frame} for each symbol the model reads), or at
    `start` (inclusive, by candle open time) and stop before `end`."""
    frames = candles if isinstance(candles, dict) else {config.symbol: candles}
    candles = frames[config.symbol]
    if any(len(frame) == 0 for frame in frames.values()):
        raise FcError("a replay file has no candles")
    tf = timeframe_ms(config.timeframe)
    universe = is_universe(predictor)
    # a universe's candles are the union of its symbols' (each decided where it is eligible);
    # a model reading several symbols decides where all of them have candles
    ranges = [f.index[[0, -1]].as_unit("ns").asi8 // 1_000_000 for f in frames.values()]
    if universe:
        candles = max(frames.values(), key=len)
        grid = np.arange(min(r[0] for r in ranges), max(r[1] for r in ranges) + 1, tf)
        overlap = grid[0]
    else:
        open_ms = candles.index.as_unit("ns").asi8 // 1_000_000
        grid = np.arange(open_ms[0], open_ms[-1] + 1, tf)
        overlap = max(r[0] for r in ranges)
    bars = bars_needed(model_spec(predictor), predictor.seq_len)
    first = min(max(grid[0], overlap) + (bars - 1) * tf, grid[-1])
    if start:
        first = max(first, utc_time(start, "--start").value // 1_000_000)
    stop = utc_time(end, "--end").value // 1_000_000 if end else grid[-1] + 1
    steps = grid[(grid >= first) & (grid < stop)]
    if len(steps) == 0 or len(candles) < bars:
        raise FcError(
            f"the replay file has {len(candles)} candles at {config.timeframe}; the model reads "
            f"{bars}: give a longer file or an earlier --start"
        )
    clock = SimulatedClock(int(steps[0]))
    if universe:
        source = recorded_sources(frames, config.timeframe)
    else:
        source = SymbolSources({s: RecordedSource(f, config.timeframe) for s, f in frames.items()})
    engine = UniverseService if universe else PaperService
    service = engine(config, source, predictor, journal, clock)
    decided = skipped = 0
    began = time.perf_counter()
    for t in steps:
        clock.set(int(t) + tf + int(config.delay_s * 1000))
        if service.decide_at() is None:
            skipped += 1
        else:
            decided += 1
    seconds = time.perf_counter() - began
    result = ReplayResult(decided, skipped, seconds, iso(steps[0]), iso(steps[-1]))
    log_event(
        logging.INFO,
        "replay",
        f"replayed {decided} decisions ({skipped} skipped) from {result.first} to {result.last} "
        f"in {seconds:.1f} s ({result.per_second:.0f}/s)",
        decisions=decided,
        skipped=skipped,
        seconds=seconds,
    )
    return result


def replay_candles(values, store, predictor, timeframe: str) -> dict[str, pd.DataFrame]:
    """{symbol: candles} of every symbol the model reads: --replay FILE (the decided symbol's),
    --replay SYMBOL=FILE (repeatable), else the symbol's candles in --store."""
    from fc.core.data.inputs import parse_data
    from fc.core.data.store import find_candles

    plain, files = parse_data([values] if isinstance(values, str | Path) else values)
    if plain is not None:
        files.setdefault(predictor.symbol, plain)
    spec = model_spec(predictor)
    symbols = [predictor.symbol] if spec is None else list(spec.symbols)
    if is_universe(predictor):
        symbols = list(predictor.symbols)
    for symbol in set(files) - set(symbols):
        raise FcError(f"--replay {symbol}=…: the model does not read {symbol}; drop it")
    frames = {}
    for symbol in symbols:
        if symbol in files:
            if not Path(files[symbol]).is_file():
                raise FcError(f"--replay {files[symbol]}: no such file")
            frames[symbol] = recorded_candles(files[symbol], timeframe)
        elif store is not None:
            frames[symbol] = resample(find_candles(store, symbol, timeframe)[0], timeframe)
        else:
            raise FcError(
                f"the model reads {symbol}: give --replay {symbol}=FILE or --store DIR with it"
            )
    return frames


def replay_file(
    path,
    model: str | Path,
    journal_path: str = ":memory:",
    symbol: str | None = None,
    fee_bps: float = 0.0,
    capital: float = 10_000.0,
    start: str | None = None,
    end: str | None = None,
    policy: dict | None = None,
    new_model: bool = False,
    store: str | Path | None = None,
    deadline_s: float | None = None,
) -> tuple[ReplayResult, dict]:
    """`fc paper --replay FILE` (or SYMBOL=FILE values, one a symbol the model reads, the rest
    from `store`): the service over the candles, then the journal report. The policy parameters
    are the model's (export metadata), each one in `policy` replaced."""
    from fc.live.model_file import check_journal_model, check_journal_schedule, model_sha256
    from fc.live.report import paper_report
    from fc.live.universe_report import universe_report

    predictor = load_model(model, symbol)
    config = PaperConfig(
        symbol=predictor.symbol,
        timeframe=predictor.timeframe,
        fee_bps=fee_bps,
        capital=capital,
        model=str(model),
        policy_params=with_overrides(predictor.meta["policy_params"], policy or {}),
        model_sha256=model_sha256(model),
        schedule=predictor.meta["schedule"],
        deadline_s=deadline_s,
    )
    check_journal_schedule(journal_path, config.symbol, config.timeframe, config.schedule)
    candles = replay_candles(path, store, predictor, config.timeframe)
    check_journal_model(journal_path, config.symbol, config.timeframe, config.model_sha256,
                        config.model, new_model)  # fmt: skip
    journal = Journal(journal_path)
    try:
        result = replay(candles, predictor, journal, config, start=start, end=end)
        if is_universe(predictor):
            return result, universe_report(journal, predictor.symbols)
        return result, paper_report(journal, config.symbol)
    finally:
        journal.close()
