"""fc tune's objective val-policy-log-growth: the mean log growth per bar, on the validation
range, of one trading policy with a trial's PolicyParams at a fee, from the p_up that training
saved for every validation decision (RUN/validation_p_up.parquet). The backtest's own functions
make the number (trade_mask, segments, held_positions, simulate), so it is what
`fc backtest RUN --fee-bps F --band B ...` reports on validation: log(final wealth) / bars,
filled bars (exchange outages) holding the position as there. The test range is never read."""

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.errors import FcError
from fc.core.evaluation.policies import APPLIES, NAMES, POLICIES, PolicyParams

OBJECTIVE = "val-policy-log-growth"
# what a trial writes into its run folder: the number and the moments of its per-bar returns
# (what the report's deflated Sharpe reads), beside chosen_policy.json for fc export
RESULT_FILE = "policy_objective.json"
CRITERION = "mean log growth per validation bar at the fee (fc tune, val-policy-log-growth)"


@dataclass(frozen=True)
class PolicyTarget:
    """The policy a study scores, its fee, and the policy parameters fixed for every trial
    (the searched ones replace theirs in each trial)."""

    policy: str = "discrete"
    fee_bps: float = 0.0
    params: PolicyParams = field(default_factory=PolicyParams)

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise FcError(f"--policy {self.policy!r}: use {' or '.join(POLICIES)}")
        if not (self.fee_bps >= 0 and math.isfinite(self.fee_bps)):
            raise FcError(f"--fee-bps {self.fee_bps:g}: a fee is a cost, give it >= 0, e.g. 5")

    def stored(self) -> dict:
        """What the study records, so that every worker and resumed call scores alike."""
        return {"policy": self.policy, "fee_bps": self.fee_bps}


def policy_target(objective: str, fixed: dict, searched: list[str], policy, fee_bps):
    """The PolicyTarget of the val-policy-log-growth objective (None for the others) from the
    policy parameters given fixed ({name: value}) or searched (names), --policy and --fee-bps
    (None: not given). A policy parameter, --policy or --fee-bps with another objective, or a
    parameter the chosen policy does not read, is refused: it would change nothing."""
    given = [*fixed, *searched]
    if objective != OBJECTIVE:
        options = [f"--{n.replace('_', '-')}" for n in given]
        options += [o for o, v in (("--policy", policy), ("--fee-bps", fee_bps)) if v is not None]
        if options:
            verb = "does" if len(options) == 1 else "do"
            raise FcError(
                f"{', '.join(options)} {verb} not change {objective}; use "
                f"--objective {OBJECTIVE} (a policy backtested on validation)"
            )
        return None
    target = PolicyTarget(policy or "discrete", 0.0 if fee_bps is None else float(fee_bps))
    unread = [n for n in given if n not in APPLIES[target.policy]]
    if unread:
        reads = ", ".join("--" + n.replace("_", "-") for n in APPLIES[target.policy])
        raise FcError(f"--{unread[0].replace('_', '-')} is not read by the {target.policy} policy "
                      f"(it reads {reads}); use --policy or drop it")  # fmt: skip
    return replace(target, params=PolicyParams(**fixed))


def split_policy(values: dict) -> tuple[dict, dict]:
    """({TrainConfig field: value}, {PolicyParams field: value}) from one dict of both."""
    policy = {k: v for k, v in values.items() if k in NAMES}
    return {k: v for k, v in values.items() if k not in NAMES}, policy


def validation_p_up(run_dir: Path, grid: pd.DataFrame, need: np.ndarray) -> np.ndarray:
    """p_up per bar (NaN elsewhere) at the decisions `need`, from the run's saved validation
    p_up. The backtest also decides at a real candle followed by a filled one, which training
    does not score: those few (none without outages) are predicted here with the run's model."""
    from fc.core.studies.runs import VALIDATION_P_UP

    path = Path(run_dir) / VALIDATION_P_UP
    if not path.is_file():
        raise FcError(f"{run_dir}: no {VALIDATION_P_UP} (a run from before it existed); retrain")
    saved = pd.read_parquet(path)
    where = grid.index.get_indexer(pd.DatetimeIndex(saved["time"]))
    if (where < 0).any():
        raise FcError(f"{path}: times not on the candles' grid; the run used other data")
    p_up = np.full(len(grid), np.nan)
    p_up[where] = saved["p_up"].to_numpy(dtype=np.float64)
    missing = need & np.isnan(p_up)
    if missing.any():
        from fc.core.studies.backtest_run import predict_bars, torch_predict

        p_up[missing] = predict_bars(torch_predict(run_dir), grid, missing)[missing]
    return p_up


def policy_log_growth(run_dir, grid: pd.DataFrame, target: PolicyTarget, params) -> dict:
    """The objective of one run: {value, bars, decisions, final_wealth, returns (moments)}, from
    the backtest's validation range of the run as `fc backtest` cuts it."""
    from fc.core.data.ranges import backtest_test_from
    from fc.core.evaluation.backtest import BacktestConfig, segments, simulate, trade_mask
    from fc.core.evaluation.policies import held_positions
    from fc.core.evaluation.significance import moments
    from fc.core.studies.runs import read_config

    config = read_config(run_dir)
    cfg = BacktestConfig(fee_bps=target.fee_bps)
    decide = trade_mask(grid["filled"].to_numpy(), config.first_decision)
    part = segments(grid.index, decide, config.split, cfg, backtest_test_from(config))["validation"]
    if not (decide & part).any():
        raise FcError(f"{run_dir}: no validation decision to score the policy on")
    p_up = validation_p_up(run_dir, grid, decide & part)
    held = held_positions(target.policy, np.nan_to_num(p_up, nan=0.5), decide & part, params)
    _, _, factors = simulate(grid["close"].to_numpy(), held, decide, part, cfg.cost)
    # a factor <= 0 is ruin: the log wealth is -inf, and so is the value (Optuna keeps it)
    value = float(np.mean(np.log(factors))) if (factors > 0).all() else -math.inf
    return {
        "value": value,
        "bars": int(len(factors)),
        "decisions": int((decide & part).sum()),
        "final_wealth": float(np.prod(factors)),
        "returns": moments(factors - 1.0),
    }


def score_trial(run_dir, grid: pd.DataFrame, target: PolicyTarget, params, trial=None) -> float:
    """Score a trained run, write RUN/policy_objective.json and RUN/backtest/chosen_policy.json
    (so `fc export RUN` stamps these parameters), return the objective's value."""
    from fc.core.evaluation.policy_grid import write_chosen

    run_dir = Path(run_dir)
    result = policy_log_growth(run_dir, grid, target, params)
    record = {"objective": OBJECTIVE, "range": "validation", **target.stored(),
              "params": params.for_policy(target.policy), **result}  # fmt: skip
    if trial is not None:
        record |= {"study": trial.study.study_name, "trial": trial.number}
    (run_dir / RESULT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    out = run_dir / "backtest"
    out.mkdir(exist_ok=True)
    chosen = {"range": "validation", "criterion": CRITERION, "fee_bps": target.fee_bps,
              "slippage_bps": 0.0, "chosen": {target.policy: params.to_dict()},
              "objective": OBJECTIVE, "value": result["value"]}  # fmt: skip
    write_chosen(out, chosen)
    return result["value"]


def trial_returns(run_dir: str | None) -> dict | None:
    """The moments of the per-bar validation returns of a trial's policy (RESULT_FILE), or None
    without a run folder or that file."""
    path = Path(run_dir or "") / RESULT_FILE
    if not run_dir or not path.is_file():
        return None
    return json.loads(path.read_text())["returns"]


def label(target: dict | None, params: dict | None) -> str:
    """ "discrete band 0.02 hold 4 at 5 bps" from a study's stored target and a trial's params."""
    if not target:
        return ""
    words = PolicyParams(**(params or {})).label(target["policy"])
    return f"{target['policy']} {words} at {target['fee_bps']:g} bps"
