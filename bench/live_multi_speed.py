"""One live tick of a five-symbol universe model: the compute (features, one onnxruntime call for
every symbol, the policies and the portfolio, the SQLite journal commit; network excluded) and
the wall time of a tick whose five fetches each take a fixed delay, against one fetch's.

Run: .venv/bin/python bench/live_multi_speed.py [--model model.onnx] [--delay-ms 50]
Model: an untrained workshop-sized universe graph (h16, 3 layers, seq 512), or --model (an
`fc export` of a `fc train --symbols` run of five 30m symbols). Candles: synthetic.
"""

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fc.core.data.synth import synth_candles
from fc.live.clock import SimulatedClock
from fc.live.journal import Journal
from fc.live.logs import setup_logging
from fc.live.market_inputs import SymbolSources
from fc.live.replay import RecordedSource
from fc.live.service import PaperConfig
from fc.live.universe_model import load_universe_predictor
from fc.live.universe_service import UniverseService

SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT", "EEE/USDT")
SEQ, TICKS, TF = 512, 300, 1_800_000


def random_model(folder: Path, symbols: tuple = SYMBOLS) -> Path:
    """An untrained universe model exported as `fc export` writes one (torch only here)."""
    import torch

    from fc.core.evaluation.policies import POLICIES, PolicyParams
    from fc.core.learning.config import TrainConfig
    from fc.core.learning.model import Forecast, Scaling
    from fc.export.graphs import write_window_onnx
    from fc.export.universe_run import universe_metadata

    torch.set_num_threads(1)
    torch.manual_seed(0)
    scaling = {s: [0.0, 0.005] for s in symbols}
    config = TrainConfig(symbol=symbols[0], timeframe="30m", seq_len=SEQ, symbols=symbols,
                         target="relative", symbol_scaling=scaling)  # fmt: skip
    params = {p: PolicyParams(k=2) for p in POLICIES}
    return write_window_onnx(Forecast(16, 3).eval(), Scaling(0.0, 1.0), config,
                             folder / "model.onnx", "legacy", params,
                             universe_metadata(config, params))  # fmt: skip


class DelayedSource:
    """Candles answered after a fixed delay (a stand-in for the exchange's round trip)."""

    def __init__(self, source, delay_s: float, limiter=None):
        self.source, self.delay_s, self.limiter = source, delay_s, limiter

    def closed_candles(self, symbol, timeframe, count, now_ms):
        if self.limiter is not None:  # as ccxt throttles each request before sending it
            self.limiter.throttle(1)
        time.sleep(self.delay_s)
        return self.source.closed_candles(symbol, timeframe, count, now_ms)


def service_maker(predictor, folder: Path):
    """service(source, name) -> (a UniverseService of the predictor over `source`, journalling
    into folder/name.sqlite, fee 5 bps; its simulated clock)."""
    config = PaperConfig(symbol=predictor.symbols[0], timeframe="30m", fee_bps=5.0,
                         policy_params=predictor.meta["policy_params"])  # fmt: skip

    def service(source, name: str):
        clock = SimulatedClock(0)
        journal = Journal(folder / f"{name}.sqlite")
        return UniverseService(config, source, predictor, journal, clock), clock

    return service


def ticks(service, clock, opens) -> np.ndarray:
    """Seconds of decide_at at each candle of `opens`, each one a decision."""
    out = np.empty(len(opens))
    for i, t in enumerate(opens):
        clock.set(int(t) + TF + 5_000)
        began = time.perf_counter()
        assert service.decide_at() is not None
        out[i] = time.perf_counter() - began
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an exported universe model.onnx (30m)")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="each fetch's delay")
    args = parser.parse_args()
    setup_logging(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = load_universe_predictor(args.model or random_model(Path(tmp)))
        symbols = predictor.symbols
        frames = {s: synth_candles(days=(SEQ + 2 * TICKS) // 48 + 2, timeframe="30m", seed=i)
                  for i, s in enumerate(symbols)}  # fmt: skip
        recorded = {s: RecordedSource(f, "30m") for s, f in frames.items()}
        opens = frames[symbols[0]].index[-2 * TICKS :].as_unit("ns").asi8 // 1_000_000
        service = service_maker(predictor, Path(tmp))
        compute = ticks(*service(SymbolSources(recorded), "compute"), opens[:TICKS])
        delay = args.delay_ms / 1000
        slow = {s: DelayedSource(r, delay) for s, r in recorded.items()}
        wall = ticks(*service(SymbolSources(slow), "network"), opens[TICKS : TICKS + 20])
    p50, p99 = np.percentile(compute, [50, 99]) * 1000
    print(f"{len(symbols)} symbols, seq {predictor.seq_len}, {TICKS} ticks (network excluded): "
          f"compute per tick median {p50:.2f} ms, p99 {p99:.2f} ms (target < 10 ms)")  # fmt: skip
    print(f"with {args.delay_ms:g} ms a fetch: tick wall time median "
          f"{np.median(wall) * 1000:.1f} ms against one fetch's {args.delay_ms:g} ms "
          f"(sequential would be >= {len(symbols) * args.delay_ms:g} ms)")  # fmt: skip
    return 0 if p50 < 10 and np.median(wall) < 2 * delay + p50 / 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
