"""The workshop's experiment (`fc sweep`): a grid of layers, hidden sizes and losses, trained in
parallel processes on CPU (one process looping over the runs on a GPU), summarised in a table
and one plot of the validation curves."""

import itertools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd

from fc.core.learning.config import TrainConfig


def sweep_grid(base: TrainConfig, layers, hiddens, losses) -> list[TrainConfig]:
    """One config per (loss, layers, hidden); the base's device must already be resolved
    (cpu or cuda, see training.resolve_device) so the workers never probe CUDA themselves."""
    return [
        replace(base, layers=n, hidden=h, loss=loss)
        for loss, n, h in itertools.product(losses, layers, hiddens)
    ]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _train_one(config: TrainConfig, grid: pd.DataFrame, runs: str, threads: int) -> dict:
    import json

    import torch

    from fc.core.studies.train import train_ensemble

    torch.set_num_threads(threads)
    run_dir = train_ensemble(config, grid, runs)  # one model when config.seeds is 1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"run": str(run_dir), "config": config, "metrics": metrics}


def run_sweep(
    configs: list[TrainConfig],
    grid: pd.DataFrame,
    runs: str | Path,
    workers: int = 0,
    on_done=None,
    start_method: str | None = None,
) -> list[dict]:
    """Train every config; `workers` processes (0: one per core, at most one per run), each
    with cores // workers torch threads, so the processes do not fight over the cores.

    On CUDA (configs resolved to device "cuda") the default is one process looping over the runs
    on the one GPU: its CUDA context is made once, and nothing forks after CUDA is initialised.
    `workers` > 1 there starts a pool of *spawned* processes (each its own context);
    `start_method` overrides the choice (tests spawn on CPU)."""
    cores = available_cores()
    on_gpu = any(c.device == "cuda" for c in configs)
    workers = workers or (1 if on_gpu else min(len(configs), cores))
    threads = max(1, cores // workers)
    results = []
    if workers == 1:
        for config in configs:
            results.append(_train_one(config, grid, str(runs), threads))
            if on_done:
                on_done(results[-1])
        return results
    # fork (the platform default, quick) where CUDA is not in use; spawn where it is
    start_method = start_method or ("spawn" if on_gpu else None)
    context = multiprocessing.get_context(start_method) if start_method else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_train_one, c, grid, str(runs), threads) for c in configs]
        for future in futures:
            results.append(future.result())
            if on_done:
                on_done(results[-1])
    return results


def sweep_table(results: list[dict]) -> pd.DataFrame:
    rows = []
    for r in results:
        c, m = r["config"], r["metrics"]
        val, prior = m["validation"], m["baselines"]["class_prior"]
        rows.append({
            "loss": c.loss, "layers": c.layers, "hidden": c.hidden,
            "val_ce": val["ce"], "val_accuracy": val["accuracy"],
            "val_log_growth": val["log_growth"], "prior_ce": prior["ce"],
            "prior_accuracy": prior["accuracy"],
            "mean_reversion_accuracy": m["baselines"]["mean_reversion_accuracy"],
            "val_sharpe": _annual_sharpe(c, val),
            "seconds": m["train_seconds"], "run": r["run"],
        })  # fmt: skip
    return pd.DataFrame(rows)


def _annual_sharpe(config: TrainConfig, val: dict) -> float:
    from fc.core.data.candles import timeframe_delta
    from fc.core.evaluation.metrics import bars_per_year

    per_year = bars_per_year(timeframe_delta(config.timeframe) / pd.Timedelta(1, "min"))
    return val.get("returns", {}).get("sharpe", float("nan")) * per_year**0.5


def sweep_best(results: list[dict]) -> dict:
    """The deflated Sharpe of the best of the N runs (significance.best_of). Each run's trial is
    its kept checkpoint's proportional policy f = p_up - p_down on every validation decision (the
    returns its validation log growth averages, with the run's cost_bps): the only per-bar
    returns a sweep has. Validation also chose each run's checkpoint, so even deflated this
    flatters the best; the test range (fc backtest) is the honest check."""
    from fc.core.evaluation.significance import best_of

    # a pooled run has no one return series (its policy is a portfolio): no Sharpe, still a trial
    none = {"n": 0, "sharpe": float("nan"), "skewness": float("nan"), "kurtosis": float("nan")}
    trials = {r["run"]: r["metrics"]["validation"].get("returns", none) for r in results}
    return {**best_of(trials), "trial": "validation returns of f = p_up - p_down, per run"}


def sweep_curves(results: list[dict]) -> dict[str, pd.DataFrame]:
    return {
        f"{r['config'].loss} l{r['config'].layers} h{r['config'].hidden}": _history(r["run"])
        for r in results
    }


def _history(run: str) -> pd.DataFrame:
    """A run's history.csv; an ensemble's (a `seed` column) as the members' mean per step."""
    history = pd.read_csv(Path(run) / "history.csv")
    if "seed" not in history:
        return history
    return history.drop(columns="seed").groupby("step", as_index=False).mean()
