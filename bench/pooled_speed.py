"""Pooled training speed: one GRU over five symbols against one symbol, per scored target.

On the shared 30m files of BTC, ETH, SOL, XRP and BNB (skipped with a message when absent):
one epoch of the default model (h16, l3, seq 512, sequence scheme) on BTC alone, then one
epoch pooled over all five (core.learning.pooled), each timed from its first optimiser step to
its last (the validations between included). Time per scored target is that
time over the targets its steps scored; goal: pooled <= 1.2x one symbol.

Run: OMP_NUM_THREADS=2 .venv/bin/python bench/pooled_speed.py [--epochs 1] [--max-steps 4]
(--max-steps 0: whole epochs)
"""

import argparse
import sys
from pathlib import Path

import torch

from fc.core.data.universe import universe_grids
from fc.core.learning.config import TrainConfig
from fc.core.learning.pooled import fit_pooled
from fc.core.learning.training import fit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "BNB/USDT")


def per_target(run, *args) -> tuple[float, int]:
    """(seconds per scored target, targets) of one fit, first step to last (validations
    included; the final exact-window metrics after it scale with the validation decisions,
    not with the targets, so a --max-steps run would count them unfairly)."""
    stamps: dict = {}
    trained = run(*args, timing=stamps)
    seconds = stamps["last_step"] - stamps["first_step"]
    targets = trained.metrics["scored_targets"]
    return seconds / targets, targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    # 4 steps by default: per-target time is steady after the first step, and a full pooled
    # epoch plus its exact-window metrics over five symbols takes minutes on 2 shared cores
    parser.add_argument("--max-steps", type=int, default=4, help="Stop each fit after N steps.")
    args = parser.parse_args()
    files = {s: DATA / f"{s.replace('/', '_').lower()}_30m.parquet" for s in SYMBOLS}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        print(f"skipped: the shared 30m files are not here ({', '.join(missing)})")
        return 0
    torch.set_num_threads(2)
    grids, _ = universe_grids("close", SYMBOLS, "30m", files, None)
    # a small validation sample: both fits then time their optimiser steps, not validations,
    # which come every step for one symbol (4 steps an epoch) and every other step pooled
    base = TrainConfig(epochs=args.epochs, max_steps=args.max_steps, device="cpu", val_size=64)
    one, one_n = per_target(lambda **kw: fit(base, grids["BTC/USDT"], **kw))
    pooled_config = TrainConfig(**{**base.__dict__, "symbols": SYMBOLS})
    pooled, pooled_n = per_target(lambda **kw: fit_pooled(pooled_config, grids, **kw))
    print(f"one symbol (BTC/USDT): {one * 1e6:.2f} us per target over {one_n:,} targets")
    print(f"pooled over {len(SYMBOLS)}: {pooled * 1e6:.2f} us per target over {pooled_n:,}")
    ratio = pooled / one
    print(f"ratio pooled / one symbol: {ratio:.2f}x (goal <= 1.2x)")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
