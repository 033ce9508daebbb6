"""One live tick of a 35-symbol universe model under the presence rule: the compute (each
symbol's window from its cached closes, one onnxruntime call for every symbol, the policies and
the portfolio, the SQLite journal commit; network excluded), and the wall time of a tick whose
fetches each take a fixed delay under one shared rate limiter (live/exchange.py's RateLimiter,
as ExchangePool installs it in every client), against the limiter's floor: requests x its
interval, plus one fetch.

Run: .venv/bin/python bench/live_universe_speed.py [--symbols 35] [--delay-ms 50]
     [--interval-ms 50] [--model model.onnx]
Model: an untrained workshop-sized universe graph (h16, 3 layers, seq 512), or --model. Binance's
ccxt rateLimit is 50 ms and a klines request of fewer than 100 candles costs 1.
"""

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from live_multi_speed import SEQ, DelayedSource, random_model, service_maker, ticks

from fc.core.data.synth import synth_candles
from fc.live.exchange import RateLimiter
from fc.live.logs import setup_logging
from fc.live.market_inputs import SymbolSources
from fc.live.replay import RecordedSource
from fc.live.universe_model import load_universe_predictor

TICKS, WALL_TICKS = 100, 10


class CountingSource(DelayedSource):
    """DelayedSource that counts its requests."""

    calls = 0

    def closed_candles(self, symbol, timeframe, count, now_ms):
        CountingSource.calls += 1
        return super().closed_candles(symbol, timeframe, count, now_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=35, help="symbols of the universe")
    parser.add_argument("--model", type=Path, help="an exported universe model.onnx (30m)")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="each fetch's delay")
    parser.add_argument("--interval-ms", type=float, default=50.0, help="the limiter's interval")
    args = parser.parse_args()
    setup_logging(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        names = tuple(f"S{i:02d}/USDT" for i in range(args.symbols))
        predictor = load_universe_predictor(args.model or random_model(Path(tmp), names))
        symbols = predictor.symbols
        days = (SEQ + 2 * TICKS + 2 * WALL_TICKS) // 48 + 2
        frames = {s: synth_candles(days=days, timeframe="30m", seed=i)
                  for i, s in enumerate(symbols)}  # fmt: skip
        recorded = {s: RecordedSource(f, "30m") for s, f in frames.items()}
        opens = frames[symbols[0]].index[-(TICKS + WALL_TICKS + 1) :].as_unit("ns").asi8
        opens = opens // 1_000_000
        service = service_maker(predictor, Path(tmp))
        compute = ticks(*service(SymbolSources(recorded), "compute"), opens[:TICKS])
        delay = args.delay_ms / 1000
        limiter = RateLimiter(args.interval_ms)
        slow = {s: CountingSource(r, delay, limiter) for s, r in recorded.items()}
        engine, clock = service(SymbolSources(slow), "network")
        ticks(engine, clock, opens[TICKS : TICKS + 1])  # the first tick fills each cache
        CountingSource.calls = 0
        wall = ticks(engine, clock, opens[TICKS + 1 :])
        requests = CountingSource.calls / len(wall)
    p50, p99 = np.percentile(compute, [50, 99]) * 1000
    floor = requests * args.interval_ms + args.delay_ms
    ratio = np.median(wall) * 1000 / floor
    print(f"{len(symbols)} symbols, seq {predictor.seq_len}, {TICKS} ticks (network excluded): "
          f"compute per tick median {p50:.2f} ms, p99 {p99:.2f} ms (target < 40 ms)")  # fmt: skip
    print(f"with {args.delay_ms:g} ms a fetch and the limiter at {args.interval_ms:g} ms: "
          f"{requests:g} requests a tick, tick wall time median {np.median(wall) * 1000:.1f} ms "
          f"against the floor {floor:.0f} ms ({requests:g} x {args.interval_ms:g} + "
          f"{args.delay_ms:g}): ratio {ratio:.3f} (target <= 1.2)")  # fmt: skip
    return 0 if p50 < 40 and ratio <= 1.2 else 1


if __name__ == "__main__":
    began = time.perf_counter()
    code = main()
    print(f"bench ran {time.perf_counter() - began:.0f} s")
    sys.exit(code)
