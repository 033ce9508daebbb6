"""The portfolio backtest of the 35-pair 1h universe from cached predictions, beside the
prediction's own cost.

On ../shared/data/universe-1h (skipped with a message when absent): every pair, on the union
of their candles (late listings included, core.data.presence's rule), a pooled run trained once
here in a temp folder (--family lightgbm by default: seconds; --family gru trains a small GRU
for two steps; or --run RUN, a trained universe run). Then, medians of --repeats:
  prediction  core.studies.universe.universe_p_up: the family's own cost (every symbol's p_up
              at the bars a backtest needs);
  backtest    core.studies.universe.backtest_universe with those p_up handed in (predict reads
              the matrix: a universe run has no prediction cache of its own): the symbol rows,
              the portfolio of every policy with its intervals, positions.parquet and
              metrics.json. Goal (issue 26): under 10 s.
and, to show where the backtest's time goes, its two parts timed alone: the portfolio
(core.evaluation.portfolio.portfolio_backtest) and the symbol rows. --profile N prints the N
costliest functions of one cached backtest (cProfile, cumulative).

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/universe_backtest_speed.py [--repeats 3]
"""

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

import numpy as np
from timing import median_time

from fc.core.data.universe import (
    universe_eligible,
    universe_frame,
    universe_grids,
    universe_real,
)
from fc.core.evaluation.backtest import BacktestConfig, blocks_for
from fc.core.evaluation.policies import PolicyParams
from fc.core.evaluation.portfolio import portfolio_backtest
from fc.core.learning.config import TrainConfig
from fc.core.learning.pooled import universe_closes
from fc.core.studies.backtest_run import decision_ranges
from fc.core.studies.runs import read_config
from fc.core.studies.universe import (
    backtest_universe,
    run_universe_grids,
    symbol_rows,
    train_universe,
    universe_p_up,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "universe-1h"
GOAL_SECONDS = 10.0
OWN = {  # each family's own fields: LightGBM whole, the GRU small and for two steps
    "lightgbm": {"lags": 16},
    "gru": {"hidden": 8, "layers": 1, "epochs": 1, "max_steps": 2, "val_size": 64,
            "device": "cpu"},
}  # fmt: skip


def universe_files(folder: Path) -> dict[str, Path]:
    """{symbol: file} of every pair of the freqtrade folder, in name order."""
    return {path.name.split("-")[0].replace("_", "/"): path
            for path in sorted(folder.glob("*_USDT-1h.feather"))}  # fmt: skip


def pooled_run(family: str, root: Path) -> Path:
    """A pooled run of every pair (target relative, seq 48), trained into `root`: LightGBM whole
    (seconds), the GRU small (h8, one layer) for two steps (real shapes, weights barely moved)."""
    files = universe_files(DATA)
    symbols = tuple(files)
    config = TrainConfig(family=family, timeframe="1h", seq_len=48, split="2025-03-01",
                         symbol=symbols[0], symbols=symbols, target="relative",
                         **OWN[family])  # fmt: skip
    grids, sources = universe_grids(config.features, symbols, "1h", files, None)
    source, digest = sources[symbols[0]]
    inputs = {s: list(v) for s, v in sources.items() if s != symbols[0]}
    config = TrainConfig(**{**config.__dict__, "data": source, "data_sha256": digest,
                            "inputs": inputs})  # fmt: skip
    return train_universe(config, grids, root)


class Universe:
    """The run's grids, decision ranges and presence, as backtest_universe computes them."""

    def __init__(self, run: Path, cfg: BacktestConfig):
        self.run, self.config = run, read_config(run)
        self.cfg = blocks_for(cfg, self.config.horizon)
        self.grids = run_universe_grids(self.config)
        first = self.config.first_decision
        self.frame = universe_frame(self.grids, first)
        self.decide, self.test_from, self.parts, need = decision_ranges(
            self.config, self.frame, self.cfg
        )
        self.real, self.eligible = universe_real(self.grids), universe_eligible(self.grids, first)
        self.need = need[:, None] & self.eligible
        self.closes = universe_closes(self.grids)
        params = PolicyParams()
        self.params = {"discrete": params, "proportional": params, "long_short": params}

    def p_up(self) -> np.ndarray:
        return universe_p_up(self.run, self.config, self.grids, self.need, "cpu")

    def portfolio(self, p_up: np.ndarray):
        c = self.config
        return portfolio_backtest(
            self.frame.index, self.closes, p_up, self.decide, self.parts, self.cfg, c.timeframe,
            list(c.symbols), self.params, c.horizon, c.schedule, (self.real, self.eligible),
        )  # fmt: skip

    def symbol_rows(self, p_up: np.ndarray) -> dict:
        return symbol_rows(self.config, self.grids, p_up, self.closes, self.decide, self.parts,
                           self.cfg, self.test_from, self.params)  # fmt: skip


def cached(p_up: np.ndarray, symbols) -> callable:
    """predict(symbol, features, ends) reading the p_up already computed."""
    column = {s: i for i, s in enumerate(symbols)}
    return lambda symbol, features, ends: p_up[ends, column[symbol]]


def report(run: Path, repeats: int, profile: int) -> float:
    cfg = BacktestConfig()
    u = Universe(run, cfg)
    symbols = u.config.symbols
    p_up = u.p_up()
    predict = cached(p_up, symbols)
    rows = int(u.need.sum())
    predicting = median_time(u.p_up, repeats)
    backtest = median_time(lambda: backtest_universe(run, cfg, predict=predict), repeats)
    portfolio = median_time(lambda: u.portfolio(p_up), repeats)
    symbol = median_time(lambda: u.symbol_rows(p_up), repeats)
    capped = sum(section["long_short"].get("k_capped", 0)
                 for section in u.portfolio(p_up)[1].values())  # fmt: skip
    print(f"universe: {len(symbols)} symbols, {len(u.frame):,} candles, {rows:,} predictions "
          f"({u.config.family}), k capped at {capped:,} decision candles")  # fmt: skip
    print(f"medians of {repeats}, seconds:")
    print(f"  prediction (the family's own cost)      {predicting:7.2f}")
    print(f"  backtest from cached predictions        {backtest:7.2f}  (goal < {GOAL_SECONDS:.0f})")
    print(f"    of it: portfolio_backtest             {portfolio:7.2f}")
    print(f"    of it: symbol rows                    {symbol:7.2f}")
    print(f"  ratio backtest / prediction: {backtest / predicting:.2f}x")
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(backtest_universe, run, cfg, predict=predict)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
    return backtest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="lightgbm", choices=("lightgbm", "gru"))
    parser.add_argument("--run", type=Path, help="A trained universe run (else one trained here).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="Print the N costliest functions.")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: the shared 1h universe is not here ({DATA})")
        return 0
    if args.run:
        return 0 if report(args.run, args.repeats, args.profile) < GOAL_SECONDS else 1
    with tempfile.TemporaryDirectory() as root:
        seconds = report(pooled_run(args.family, Path(root)), args.repeats, args.profile)
    return 0 if seconds < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
