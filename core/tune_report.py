"""`fc tune report`: what a stored study says. The trials (number, state, parameters, value,
run folder), the best "of N", Optuna's own matplotlib plots of the optimisation history and the
parameter importances, and the deflated Sharpe of the best trial where its backtest exists."""

import json
import warnings
from pathlib import Path

import numpy as np

from fc.core.errors import FcError

# The policy whose validation returns the deflated Sharpe reads: f = p_up - p_down, the position
# the val-log-growth objective scores.
POLICY = "proportional"
SELECTION_RANGE = "validation"  # where the trials were chosen, so where the selection bias is


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
    return {
        "study": study.study_name,
        "objective": study.user_attrs.get("objective", ""),
        "direction": study.direction.name.lower(),
        "trials": len(rows),
        "states": states,
        "best_of": len(complete),
        "best": best,
        "top": top,
        "table": rows,
        "deflated_sharpe": best_deflated_sharpe(best, complete, len(rows)),
    }


def trial_backtest(run_dir: str | None) -> dict | None:
    """The one place a trial's backtest is read: RUN/backtest/ as `fc backtest RUN` writes it
    (metrics.json, positions.parquet). Per-bar step returns of POLICY on SELECTION_RANGE and the
    annualised Sharpe the backtest reported; None when the trial was not backtested."""
    if not run_dir or not (Path(run_dir) / "backtest" / "metrics.json").is_file():
        return None
    import pandas as pd

    folder = Path(run_dir) / "backtest"
    metrics = json.loads((folder / "metrics.json").read_text())
    if SELECTION_RANGE not in metrics:
        return None
    frame = pd.read_parquet(folder / "positions.parquet")
    wealth = frame.loc[frame["range"] == SELECTION_RANGE, f"wealth_{POLICY}"].to_numpy()
    before = np.concatenate([[1.0], wealth[:-1]])  # each range starts at wealth 1.0
    return {
        "step_returns": wealth / before - 1.0,
        "sharpe": metrics[SELECTION_RANGE][POLICY]["sharpe"],
    }


def _per_bar_sharpe(r: np.ndarray) -> float:
    sd = r.std(ddof=1) if len(r) > 1 else 0.0
    return float(r.mean() / sd) if sd > 0 else 0.0


def best_deflated_sharpe(best: dict | None, complete: list[dict], tried: int) -> dict:
    """The deflated Sharpe of the best trial's validation returns given the per-bar Sharpes of
    every completed trial with a backtest (core.significance, from the ranges branch)."""
    out = {"value": None, "policy": POLICY, "range": SELECTION_RANGE, "trials_backtested": 0}
    backtests = {r["number"]: trial_backtest(r["run_dir"]) for r in complete}
    backtests = {k: v for k, v in backtests.items() if v is not None}
    out["trials_backtested"] = len(backtests)
    if best is None or best["number"] not in backtests or len(backtests) < 2:
        out["reason"] = (
            "needs a backtest of the best trial and of at least one other completed trial: run "
            "fc backtest RUN on their run_dir"
        )
        return out
    try:
        from fc.core.significance import deflated_sharpe
    except ImportError:
        out["reason"] = "core.significance (deflated_sharpe) is not in this build"
        return out
    sharpes = [_per_bar_sharpe(b["step_returns"]) for b in backtests.values()]
    out["value"] = float(deflated_sharpe(backtests[best["number"]]["step_returns"], sharpes))
    out["reason"] = f"best of {len(backtests)} backtested trials ({tried} tried)"
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
