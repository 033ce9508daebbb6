"""Pooled training speed: one GRU over a universe against one symbol, per scored target.

Default: the shared 30m files of BTC, ETH, SOL, XRP and BNB. --universe 1h: the 35 pairs of
../shared/data/universe-1h, late listings included (each on its own candles, core.data.presence:
a symbol listed late has fewer training rows, and one listed after the training range none),
--target relative, --split 2025-03-01. Skipped with a message when the files are absent.
One symbol alone (BTC/USDT), then the model pooled over all of them (core.learning.pooled), the
default model (h16, l3, seq 512, sequence scheme), each timed from its first optimiser step to
its last (the validations between included); medians of --repeats. Time per scored target is
that time over the targets its steps scored; goal (issue 26): pooled <= 1.2x one symbol.

Run: OMP_NUM_THREADS=2 .venv/bin/python bench/pooled_speed.py [--universe 1h] [--epochs 1]
[--max-steps 4] [--repeats 3]   (--max-steps 0: whole epochs)
"""

import argparse
import statistics
import sys
from pathlib import Path

import torch

from fc.core.data.universe import universe_grids
from fc.core.learning.config import TrainConfig
from fc.core.learning.pooled import fit_pooled
from fc.core.learning.schemes import steps_per_epoch
from fc.core.learning.training import checked_series, fit, with_scheme_defaults

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "BNB/USDT")


def per_target(run, repeats: int) -> tuple[float, int]:
    """(median seconds per scored target, targets) of `repeats` fits, first step to last
    (validations included; the final exact-window metrics after it scale with the validation
    decisions, not with the targets, so a --max-steps run would count them unfairly)."""
    times = []
    for _ in range(repeats):
        stamps: dict = {}
        trained = run(timing=stamps)
        targets = trained.metrics["scored_targets"]
        times.append((stamps["last_step"] - stamps["first_step"]) / targets)
    return statistics.median(times), targets


def universe_files(universe: str | None) -> tuple[dict, dict]:
    """({symbol: file}, the fields of that universe's runs): the five 30m files, or every pair
    of the 1h universe folder."""
    if universe is None:
        files = {s: DATA / f"{s.replace('/', '_').lower()}_30m.parquet" for s in SYMBOLS}
        return files, {"timeframe": "30m", "split": "2024-01-01", "target": "next"}
    folder = DATA / f"universe-{universe}"
    files = {path.name.split("-")[0].replace("_", "/"): path
             for path in sorted(folder.glob(f"*_USDT-{universe}.feather"))}  # fmt: skip
    return files, {"timeframe": universe, "split": "2025-03-01", "target": "relative"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--universe", choices=("1h",), help="The shared 35-pair universe.")
    parser.add_argument("--epochs", type=int, default=1)
    # 4 steps by default: per-target time is steady after the first step, and a full pooled
    # epoch plus its exact-window metrics over five symbols takes minutes on 2 shared cores
    parser.add_argument("--max-steps", type=int, default=4, help="Stop each fit after N steps.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    files, fields = universe_files(args.universe)
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing or not files:
        where = ", ".join(missing) or str(DATA / f"universe-{args.universe}")
        print(f"skipped: the shared files are not here ({where})")
        return 0
    torch.set_num_threads(2)
    symbols = tuple(files)
    grids, _ = universe_grids("close", symbols, fields["timeframe"], files, None)
    # a small validation sample: both fits then time their optimiser steps, not validations,
    # which come every step for one symbol (4 steps an epoch) and every other step pooled; at
    # 1h one symbol's epoch is one step, so it runs --max-steps epochs to take as many steps
    epochs = max(args.epochs, args.max_steps) if args.universe else args.epochs
    base = TrainConfig(epochs=epochs, max_steps=args.max_steps, device="cpu", val_size=64,
                       timeframe=fields["timeframe"], split=fields["split"])  # fmt: skip
    one, one_n = per_target(lambda **kw: fit(base, grids["BTC/USDT"], **kw), args.repeats)
    pooled_config = TrainConfig(**{**base.__dict__, "epochs": args.epochs, "symbols": symbols,
                                   "target": fields["target"]})  # fmt: skip
    pooled, pooled_n = per_target(lambda **kw: fit_pooled(pooled_config, grids, **kw),
                                  args.repeats)  # fmt: skip
    print(f"medians of {args.repeats}:")
    print(f"one symbol (BTC/USDT): {one * 1e6:.2f} us per target over {one_n:,} targets")
    print(f"pooled over {len(symbols)}: {pooled * 1e6:.2f} us per target over {pooled_n:,}")
    ratio = pooled / one
    print(f"ratio pooled / one symbol: {ratio:.2f}x (goal <= 1.2x)")
    rows = one_rows(checked_series(base, grids["BTC/USDT"])[0], with_scheme_defaults(base))
    if args.universe and rows < with_scheme_defaults(base).batch_size:
        # one symbol's epoch fills fewer rows than a step takes (and each of its steps is an
        # epoch, validated after it): pooled at that many rows a step is shown beside, the
        # figure of equal steps
        same = TrainConfig(**{**pooled_config.__dict__, "batch_size": rows})
        alike, alike_n = per_target(lambda **kw: fit_pooled(same, grids, **kw), args.repeats)
        print(f"one symbol's epoch is {rows} rows, a step takes "
              f"{with_scheme_defaults(base).batch_size}; pooled at {rows} rows a step: "
              f"{alike * 1e6:.2f} us per target over {alike_n:,}, "
              f"ratio {alike / one:.2f}x")  # fmt: skip
    return 0 if ratio <= 1.2 else 1


def one_rows(series, config: TrainConfig) -> int:
    """Rows of one symbol's sequence epoch: its chunks (core.learning.schemes)."""
    return steps_per_epoch(series, "sequence", config.seq_len, 1, config.chunk)


if __name__ == "__main__":
    sys.exit(main())
