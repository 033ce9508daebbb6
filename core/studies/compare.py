"""Compare backtested runs: one table row per run and policy, one overlaid equity figure."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fc.core.errors import FcError  # noqa: E402
from fc.core.evaluation.policies import POLICIES  # noqa: E402


def read_backtest(run_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    out = Path(run_dir) / "backtest"
    if not (out / "metrics.json").is_file() or not (out / "positions.parquet").is_file():
        raise FcError(f"{run_dir}: no backtest yet; run `fc backtest {run_dir}` first")
    return json.loads((out / "metrics.json").read_text()), pd.read_parquet(
        out / "positions.parquet"
    )


def compare_rows(run_dirs: list, section: str = "validation") -> list[dict]:
    rows = []
    for run_dir in run_dirs:
        metrics, _ = read_backtest(run_dir)
        if section not in metrics:
            raise FcError(f"{run_dir}: its backtest has no {section} range")
        part = metrics[section]
        config = json.loads((Path(run_dir) / "config.json").read_text())
        for policy in POLICIES:
            rows.append(
                {
                    "run": Path(run_dir).name,
                    "loss": config.get("loss"),
                    "hidden": config.get("hidden"),
                    "layers": config.get("layers"),
                    "policy": policy,
                    "final_wealth": part[policy]["final_wealth"],
                    "sharpe": part[policy]["sharpe"],
                    "sharpe_ci95": part[policy].get("sharpe_ci95"),
                    "psr": part[policy].get("psr"),
                    "max_drawdown": part[policy]["max_drawdown"],
                    "accuracy": part["classifier"]["model"]["accuracy"],
                    "mean_reversion_accuracy": part["classifier"]["mean_reversion"]["accuracy"],
                }
            )
    return rows


def step_returns(positions: pd.DataFrame, section: str, policy: str) -> np.ndarray:
    """Per-bar returns of a policy over one range, from its wealth column (1.0 before the
    range's first bar): the returns its Sharpe and PSR are computed from."""
    wealth = positions.loc[positions["range"] == section, f"wealth_{policy}"].to_numpy()
    return wealth / np.r_[1.0, wealth[:-1]] - 1.0


def compare_best(run_dirs: list, section: str = "validation") -> dict:
    """The best of the N = runs x policies compared (highest per-bar Sharpe on `section`) and its
    deflated Sharpe ratio for N trials, from each run's positions.parquet."""
    from fc.core.evaluation.significance import best_of, moments

    trials = {}
    for run_dir in run_dirs:
        _, positions = read_backtest(run_dir)
        for policy in POLICIES:
            returns = step_returns(positions, section, policy)
            trials[f"{Path(run_dir).name} {policy}"] = moments(returns)
    return {**best_of(trials), "section": section}


def compare_figure(run_dirs: list, section: str = "validation"):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, run_dir in enumerate(run_dirs):
        _, positions = read_backtest(run_dir)
        part = positions[positions["range"] == section]
        color = f"C{i % 10}"
        name = Path(run_dir).name
        ax.plot(part["time"], part["wealth_discrete"], color=color, lw=1, label=f"{name} discrete")
        ax.plot(
            part["time"],
            part["wealth_proportional"],
            color=color,
            lw=1,
            ls="--",
            label=f"{name} proportional",
        )
        if i == 0:
            ax.plot(
                part["time"], part["wealth_buy_and_hold"], color="black", lw=1, label="buy and hold"
            )
    ax.set_yscale("log")
    ax.set_ylabel("wealth (start = 1, log scale)")
    ax.set_xlabel("time (UTC)")
    ax.set_title(f"Equity on the {section} range")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
