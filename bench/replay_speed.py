"""A year of 30m candles (17,520 decisions) replayed through the live paper service: the real
ONNX predictor (h16, 3 layers, seq 512), the SQLite journal, the same decide-at code path.

Run: .venv/bin/python bench/replay_speed.py [--model model.onnx] [--journal FILE]
Candles: ../shared/data/btc_usdt_30m.parquet beside the clone when present, else synthetic.
"""

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import pandas as pd

from fc.core.data.candles import load_candles
from fc.core.data.synth import synth_candles
from fc.live.journal import Journal
from fc.live.logs import setup_logging
from fc.live.predictor import load_predictor
from fc.live.replay import replay
from fc.live.service import PaperConfig

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "btc_usdt_30m.parquet"
YEAR = 17_520
SEQ = 512


def year_of_candles() -> tuple[pd.DataFrame, str]:
    if SHARED.is_file():
        candles = load_candles(SHARED)
        return candles.iloc[-(YEAR + SEQ) :], "real BTC/USDT 30m (../shared/data)"
    days = (YEAR + SEQ + 1) // 48 + 1
    return synth_candles(days=days, timeframe="30m").iloc[-(YEAR + SEQ) :], "synthetic 30m"


def random_model(folder: Path) -> Path:
    """An untrained workshop-sized model exported to ONNX (torch only here, not in live/)."""
    import torch

    from fc.core.learning.config import TrainConfig
    from fc.core.learning.model import Forecast, Scaling
    from fc.export.graphs import write_window_onnx

    torch.set_num_threads(2)
    torch.manual_seed(0)
    config = TrainConfig(symbol="BTC/USDT", timeframe="30m", seq_len=SEQ, scale_center=1.0,
                         scale_scale=0.005)  # fmt: skip
    return write_window_onnx(Forecast(16, 3).eval(), Scaling(1.0, 0.005), config,
                             folder / "model.onnx")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an exported model.onnx (30m, BTC/USDT)")
    parser.add_argument("--journal", default=None, help="journal file (default: a temp file)")
    args = parser.parse_args()
    setup_logging(level=logging.WARNING)  # 17,520 decision lines would time the terminal
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or random_model(Path(tmp))
        predictor = load_predictor(model, threads=1)
        candles, source = year_of_candles()
        journal = Journal(args.journal or Path(tmp) / "journal.sqlite")
        config = PaperConfig(predictor.symbol, predictor.timeframe, fee_bps=5.0)
        result = replay(candles, predictor, journal, config)
        journal.close()
    print(f"candles: {source}, {len(candles):,} bars, {result.first} to {result.last}")
    print(f"model: seq_len {predictor.seq_len}, {predictor.meta.get('hidden')} hidden, "
          f"{predictor.meta.get('layers')} layers, onnxruntime 1 thread")  # fmt: skip
    print(f"decisions: {result.decisions:,} ({result.skipped} skipped) in {result.seconds:.1f} s")
    print(f"decisions/s: {result.per_second:.0f} (target >= 300)")
    return 0 if result.per_second >= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
