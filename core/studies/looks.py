"""What a backtest report records in the ledger of looks (core.studies.ledger): the variant it
is (a hash of everything that changes the policies' returns), the looks of its model policies at
an untouched range, and the `ledger` block each policy's report gains.

`fc backtest` records a run's test range, `fc walk` its stitched walk-forward range; train and
validation are never recorded (they are not untouched). Only the model's policies are looks: the
baselines' returns do not depend on the variant, so they would count one choice many times.
"""

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.data.candles import timeframe_delta
from fc.core.data.store import file_sha256
from fc.core.evaluation import metrics
from fc.core.evaluation.backtest import BacktestConfig
from fc.core.evaluation.policies import POLICIES
from fc.core.learning.config import TrainConfig
from fc.core.studies.ledger import ledger_path, look, record_looks

# TrainConfig fields that name where a run was made, not what it is: a copied or moved run
# folder, or candles read from another path, is the same variant
NOT_VARIANT = ("data", "device")


def variant_hash(
    train: TrainConfig, cfg: BacktestConfig, section: dict, walk: dict | None = None
) -> str:
    """sha256 of what changes the policies' returns: the run's (or the walk's base) training
    config without its paths, the walk's fold plan, the trading cost and the policy parameters
    the report actually used (chosen on validation or given). Fee and slippage enter as their sum,
    the one cost the wealth formula reads. Config fields at their default are left out, so a
    field a later fc adds (at the default that keeps the old behaviour) changes no variant."""
    default = asdict(TrainConfig())
    variant = {
        "train": {
            k: v for k, v in asdict(train).items() if k not in NOT_VARIANT and v != default.get(k)
        },
        "walk": walk,
        "cost_bps": cfg.fee_bps + cfg.slippage_bps,
        "policies": {p: section[p]["policy_params"] for p in POLICIES},
    }
    return hashlib.sha256(json.dumps(variant, sort_keys=True, default=str).encode()).hexdigest()


def grid_hash(grid: pd.DataFrame) -> str:
    """sha256 of the candles on their grid (times and every column): the data hash of a walk,
    which reads a grid rather than one file."""
    rows = pd.util.hash_pandas_object(grid, index=True).to_numpy()
    return hashlib.sha256(rows.tobytes()).hexdigest()


def policy_looks(positions: pd.DataFrame, section: dict, timeframe: str) -> dict:
    """{policy: look} of one range from its rows of the positions frame: the per-bar returns are
    the growth factors behind wealth_<policy> (cumulative from 1.0 at the range's start)."""
    per_year = metrics.bars_per_year(timeframe_delta(timeframe) / pd.Timedelta(1, "min"))
    out = {}
    for policy in POLICIES:
        wealth = positions[f"wealth_{policy}"].to_numpy(dtype=np.float64)
        factors = wealth / np.r_[1.0, wealth[:-1]]
        out[policy] = look(factors - 1.0, per_year, section[policy]["decisions"])
    return out


def record_range(
    runs_dir: Path,
    name: str,
    variant: str,
    data_hash: str,
    range_name: str,
    first: str,
    last: str,
    section: dict,
    looks: dict,
    cost_bps: float = 0.0,
) -> dict:
    """Append the looks of `section` (a report's range, decisions from `first` to `last`) to
    RUNS/ledger.sqlite under the run or walk folder's `name`, and add to each policy's block its
    `ledger` ({variants, deflated_sharpe, new_look}); returns the report's top-level `ledger`
    block (where, which variant, which range)."""
    seen = record_looks(runs_dir, name, variant, data_hash, range_name, first, last, looks,
                        cost_bps=cost_bps)  # fmt: skip
    for policy, answer in seen.items():
        section[policy]["ledger"] = answer
    return {"file": str(ledger_path(runs_dir)), "range": range_name, "config_hash": variant,
            "data_hash": data_hash}  # fmt: skip


def record_run_test(run_dir: Path, config, data_file: Path, cfg, positions, report) -> dict:
    """`fc backtest`'s look: the test range of `report` (if it has one) recorded in the ledger
    beside the run folder (RUNS = its parent), the candles hashed as a file; returns the
    report's additions ({"ledger": ...}, or {} without a test range)."""
    if "test" not in report:
        return {}
    section = report["test"]
    looks = policy_looks(positions[positions["range"] == "test"], section, config.timeframe)
    first, last = section["range"]["first"], section["range"]["last"]
    variant, run_dir = variant_hash(config, cfg, section), Path(run_dir).resolve()
    ledger = record_range(run_dir.parent, run_dir.name, variant, file_sha256(data_file), "test",
                          first, last, section, looks, cfg.fee_bps + cfg.slippage_bps)  # fmt: skip
    return {"ledger": ledger}


def record_walk(walk_dir: Path, base, walk, grid, cfg, positions, report: dict, range_key: str):
    """`fc walk`'s look: the stitched walk-forward range (report[range_key]) recorded in the
    ledger beside the walk folder, under range name "walk"; adds "ledger" to the report."""
    section = report[range_key]
    looks = policy_looks(positions, section, base.timeframe)
    variant = variant_hash(base, cfg, section, asdict(walk))
    report["ledger"] = record_range(walk_dir.resolve().parent, walk_dir.name, variant,
                                    grid_hash(grid), "walk", report["first_decision"],
                                    report["last_decision"], section, looks,
                                    cfg.fee_bps + cfg.slippage_bps)  # fmt: skip
