"""`fc tune report`: what a stored study says. The trials (number, state, parameters, value,
run folder), the best "of N", Optuna's own matplotlib plots of the optimisation history and the
parameter importances, and the deflated Sharpe of the best trial for the N trials tried."""

import json
import math
import warnings
from pathlib import Path

from fc.core.errors import FcError
from fc.core.studies.policy_objective import label

# What the deflated Sharpe reads: f = p_up - p_down (the position val-ce and val-log-growth
# runs are scored with), or for val-policy-log-growth the study's policy with each trial's
# parameters at its fee, on the range the trials were chosen on, where the selection bias is.
POLICY = "proportional"
SELECTION_RANGE = "validation"


def load_study(name: str, storage):
    """The stored study `name`, or FcError naming the studies that are there."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        there = ", ".join(names) if names else "none"
        raise FcError(f"no study {name!r} in that storage (studies there: {there})") from None


def trial_rows(study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({
            "number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
            "run_dir": t.user_attrs.get("run_dir"),
            "policy_params": t.user_attrs.get("policy_params"),
            "validations": len(t.intermediate_values),
            "seconds": t.duration.total_seconds() if t.duration else None,
        })  # fmt: skip
    return rows


def study_report(study) -> dict:
    """Counts by state, the best trial of the completed ones, the top five, the whole table and
    the deflated Sharpe of the best (or why there is none)."""
    rows = trial_rows(study)
    states = {}
    for row in rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    maximize = study.direction.name == "MAXIMIZE"
    top = sorted(complete, key=lambda r: r["value"], reverse=maximize)[:5]
    best = top[0] if top else None
    objective = study.user_attrs.get("objective", "")
    target = study.user_attrs.get("policy_target")
    return {
        "study": study.study_name,
        "objective": objective,
        "policy": target,  # val-policy-log-growth: {policy, fee_bps}; else None
        "direction": study.direction.name.lower(),
        "trials": len(rows),
        "states": states,
        "best_of": len(complete),
        "best": best,
        "top": top,
        "table": rows,
        "best_policy": label(target, best and best["policy_params"]) or None,
        "deflated_sharpe": best_deflated_sharpe(best, rows, target),
    }


def trial_returns(run_dir: str | None) -> dict | None:
    """The one place a trial's returns are read: the moments (n, sharpe, skewness, kurtosis) of
    the per-bar validation returns of f = p_up - p_down that training wrote to RUN/metrics.json,
    the trial fc sweep's best of N reads too. None without a run folder."""
    path = Path(run_dir or "") / "metrics.json"
    if not run_dir or not path.is_file():
        return None
    return json.loads(path.read_text())["validation"].get("returns")


def best_deflated_sharpe(best: dict | None, rows: list[dict], target: dict | None = None) -> dict:
    """The deflated Sharpe of the best trial (chosen by the objective) for N = every finished
    trial: completed ones give their per-bar Sharpe, pruned and failed ones count in N only.
    With a policy target (val-policy-log-growth) each trial's returns are its policy's."""
    from fc.core.evaluation.significance import deflated_from_moments
    from fc.core.studies.policy_objective import RESULT_FILE
    from fc.core.studies.policy_objective import trial_returns as policy_returns

    returns, where = (policy_returns, RESULT_FILE) if target else (trial_returns, "metrics.json")
    finished = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED", "FAIL")]
    policy = label(target, best and best["policy_params"]) if target else POLICY
    out = {"value": None, "n_trials": len(finished), "policy": policy, "range": SELECTION_RANGE}
    chosen = returns(best["run_dir"]) if best else None
    if chosen is None:
        out["reason"] = f"no completed trial with validation returns in its {where}"
        return out
    if not math.isfinite(chosen["sharpe"]):  # e.g. a band so wide that it never trades
        out["reason"] = "the best trial's validation returns have no Sharpe ratio (no dispersion)"
        return out
    sharpes = []
    for row in finished:
        moments = returns(row["run_dir"]) if row["state"] == "COMPLETE" else None
        sharpes.append(moments["sharpe"] if moments else float("nan"))
    out["value"] = float(deflated_from_moments(chosen, sharpes))
    out["sharpe_per_bar"] = chosen["sharpe"]
    out["reason"] = f"best of {len(finished)} finished trials"
    return out


def history_figure(study):
    """Optuna's optimisation-history plot (objective of each trial and the best so far), or
    None when no trial has completed."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization.matplotlib import plot_optimization_history

    if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = plot_optimization_history(study)
    axes.set_title(f"{study.study_name}: optimisation history ({study.direction.name.lower()})")
    return axes.figure


def importance_figure(study):
    """(figure, None) with Optuna's parameter-importance plot, or (None, why not): importances
    need two completed trials and a searched parameter whose value differs between them."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization.matplotlib import plot_param_importances

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        return None, f"importances need at least 2 completed trials ({len(complete)} so far)"
    names = {name for t in complete for name in t.params}
    varying = [n for n in names if len({repr(t.params.get(n)) for t in complete}) > 1]
    if not varying:
        return None, "importances need a searched parameter that differs between completed trials"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            axes = plot_param_importances(study)
    except (ValueError, RuntimeError) as exc:
        return None, f"importances could not be computed ({exc})"
    return axes.figure, None
