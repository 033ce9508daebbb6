"""Policy parameters chosen on the validation range: a grid of settings (the product of the values
given for each parameter), every setting of each policy backtested on validation at the given
costs, the one with the highest final validation wealth chosen per policy.

Why final wealth: it is what the trader keeps after fees and volatility drag, and unlike the
Sharpe ratio it is not blind to position size (a cap of 0.1 and of 1 have about the same Sharpe)
nor undefined for a setting that never trades (wealth 1.0, an honest candidate when every other
setting loses). Ties go to the earlier setting in grid order, i.e. the smaller values given first.
"""

import itertools
import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.data.candles import timeframe_delta
from fc.core.errors import FcError
from fc.core.evaluation import metrics
from fc.core.evaluation.backtest import simulate
from fc.core.evaluation.policies import APPLIES, NAMES, POLICIES, PolicyParams, held_positions

CRITERION = "final validation wealth at the backtest's fee and slippage"
CHOSEN_FILE = "chosen_policy.json"
OPTION = {"band": "--band", "flat_inside": "--inside", "rebalance": "--rebalance",
          "cap": "--cap", "min_hold": "--min-hold", "k": "--k"}  # fmt: skip
INSIDE = {"keep": False, "flat": True}


def _values(text: str, name: str) -> tuple:
    """The comma-separated values of one option, each checked as PolicyParams checks it."""
    option = OPTION[name]
    words = [w.strip() for w in str(text).split(",") if w.strip()]
    if not words:
        raise FcError(f"{option} {text!r} has no value; give one or several, e.g. 0,0.01,0.02")
    values = []
    for word in words:
        if name == "flat_inside":
            if word not in INSIDE:
                raise FcError(f"{option} {word!r} is not keep or flat; e.g. --inside keep,flat")
            value = INSIDE[word]
        else:
            try:
                value = float(word)
            except ValueError:
                raise FcError(f"{option} {word!r} is not a number; e.g. {option} 0,1") from None
            if name in ("min_hold", "k"):
                if value != int(value):
                    raise FcError(f"{option} {word} is not a whole number, e.g. 4")
                value = int(value)
        PolicyParams(**{name: value})  # one line naming the option when out of range
        if value not in values:
            values.append(value)
    return tuple(values)


@dataclass(frozen=True)
class PolicyGrid:
    """The values tried for each parameter; one value each is a single setting."""

    band: tuple = (0.0,)
    flat_inside: tuple = (False,)
    rebalance: tuple = (0.0,)
    cap: tuple = (1.0,)
    min_hold: tuple = (1,)
    k: tuple = (1,)  # long_short of a universe only

    @classmethod
    def parse(cls, **options) -> "PolicyGrid":
        """From the CLI's text options ("0,0.01,0.02"); None: the default value only."""
        unknown = set(options) - set(NAMES)
        if unknown:
            raise FcError(f"unknown policy parameter(s) {', '.join(sorted(unknown))}")
        return cls(**{k: _values(v, k) for k, v in options.items() if v is not None})

    @property
    def is_grid(self) -> bool:
        return any(len(getattr(self, f.name)) > 1 for f in fields(self))

    def settings(self, policy: str) -> list[PolicyParams]:
        """Every combination of the parameters `policy` reads, in grid order."""
        names = APPLIES[policy]
        combos = [dict(zip(names, c, strict=True)) for c in
                  itertools.product(*(getattr(self, n) for n in names))]  # fmt: skip
        # without a band nothing is inside it: flat_inside would repeat band 0's rows
        return [PolicyParams(**c) for c in combos if c.get("band") or not c.get("flat_inside")]

    def single(self) -> PolicyParams:
        """The one setting (both policies read the fields that apply to them)."""
        return PolicyParams(**{f.name: getattr(self, f.name)[0] for f in fields(self)})

    def to_dict(self) -> dict:
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}


def policy_overrides(texts: dict) -> dict:
    """{parameter: value} from one-value options (None: not given); a grid is refused."""
    grid = PolicyGrid.parse(**texts)
    out = {}
    for name, text in texts.items():
        if text is None:
            continue
        values = getattr(grid, name)
        if len(values) != 1:
            raise FcError(f"{OPTION[name]} {text!r}: give one value here (grids: fc backtest)")
        out[name] = values[0]
    return out


def grid_rows(grid, p_up, decide, part, cost, timeframe, policies: PolicyGrid) -> list[dict]:
    """Every setting of each policy backtested over one range (`part`), from flat."""
    close = grid["close"].to_numpy()
    per_year = metrics.bars_per_year(timeframe_delta(timeframe) / pd.Timedelta(1, "min"))
    p = np.nan_to_num(p_up, nan=0.5)
    rows = []
    for policy in POLICIES:
        for params in policies.settings(policy):
            held = held_positions(policy, p, decide & part, params)
            f, r, factors = simulate(close, held, decide, part, cost)
            perf = metrics.performance(factors, f, r, per_year)
            rows.append({"policy": policy, "params": params.to_dict(),
                         "label": params.label(policy), **perf})  # fmt: skip
    return rows


def choose(rows: list[dict]) -> dict[str, PolicyParams]:
    """Per policy, the setting with the highest final wealth (the first of equals)."""
    chosen = {}
    for policy in POLICIES:
        mine = [r for r in rows if r["policy"] == policy]
        best = max(mine, key=lambda r: r["final_wealth"])  # max keeps the first of equals
        best["chosen"] = True
        chosen[policy] = PolicyParams(**best["params"])
    return chosen


def choose_on_validation(grid, p_up, decide, validation, cfg, timeframe, policies) -> dict:
    """The grid's report on validation and the chosen parameters {policy: PolicyParams}."""
    if not (decide & validation).any():
        raise FcError(
            "the policy grid chooses on validation, which has no decision in the chosen "
            "range; widen --start/--end or give one value per parameter"
        )
    rows = grid_rows(grid, p_up, decide, validation, cfg.cost, timeframe, policies)
    chosen = choose(rows)
    return {
        "range": "validation",
        "criterion": CRITERION,
        "fee_bps": cfg.fee_bps,
        "slippage_bps": cfg.slippage_bps,
        "grid": policies.to_dict(),
        "settings": len(rows),
        "rows": rows,
        "chosen": {p: chosen[p].to_dict() for p in POLICIES},
    }


def write_chosen(out: Path, report: dict) -> Path:
    """RUN/backtest/chosen_policy.json: what `fc export` puts into the graphs' metadata."""
    keep = {k: v for k, v in report.items() if k != "rows"}
    path = out / CHOSEN_FILE
    path.write_text(json.dumps(keep, indent=2) + "\n")
    return path


def read_chosen(run_dir: str | Path) -> dict | None:
    """{policy: {parameter: value}} chosen by the run's last grid backtest, or None."""
    path = Path(run_dir) / "backtest" / CHOSEN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["chosen"]
    except (ValueError, KeyError):
        raise FcError(f"{path}: damaged; run the grid backtest again") from None
