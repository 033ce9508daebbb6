"""The workshop's experiment (`fc sweep`): a grid of layers, hidden sizes and losses, trained as
units of the executor seam (parallel processes on CPU, one process looping over the runs on a
GPU, or a cluster), summarised in a table and one plot of the validation curves."""

import itertools
from dataclasses import replace
from pathlib import Path

import pandas as pd

from fc.core.errors import FcError
from fc.core.learning.config import TrainConfig
from fc.core.studies.executor import ExecutorOptions, available_cores


def sweep_grid(base: TrainConfig, layers, hiddens, losses) -> list[TrainConfig]:
    """One config per (loss, layers, hidden); the base's device must already be resolved
    (cpu or cuda, see training.resolve_device) so the workers never probe CUDA themselves."""
    return [
        replace(base, layers=n, hidden=h, loss=loss)
        for loss, n, h in itertools.product(losses, layers, hiddens)
    ]


def sweep_unit(task: dict) -> dict:
    """One run of the sweep wherever it runs: trained in a scratch folder, sent home as bytes."""
    import tempfile

    import torch

    from fc.core.studies.train import train_ensemble
    from fc.core.studies.unit_grids import unit_grid
    from fc.core.studies.unit_inputs import folder_bytes

    torch.set_num_threads(task["threads"])
    grid = unit_grid(task["source"])
    with tempfile.TemporaryDirectory(prefix="fc-sweep-") as scratch:
        run = train_ensemble(task["config"], grid, scratch)  # one model when config.seeds is 1
        return {"name": run.name, "files": folder_bytes(run)}


def sweep_executor(executor: ExecutorOptions, configs: list[TrainConfig]) -> ExecutorOptions:
    """Where the runs go: a cluster as given; else --workers processes (none given: one per core
    and at most one per run, or one process looping on CUDA, where a context is made once),
    serial where that is one."""
    if executor.kind == "cluster":
        return executor
    on_gpu = any(c.device == "cuda" for c in configs)
    workers = executor.workers or (1 if on_gpu else min(len(configs), available_cores()))
    return ExecutorOptions() if workers == 1 else replace(executor, workers=workers)


def run_sweep(
    configs: list[TrainConfig],
    grid: pd.DataFrame,
    runs: str | Path,
    executor: ExecutorOptions = ExecutorOptions(),
    on_done=None,
    on_event=None,
    threads: int = 0,
) -> list[dict]:
    """Train every config through the executor seam (sweep_executor); each unit with `threads`
    torch threads (0: cores // processes here, 1 a unit on a cluster), so the processes do not
    fight over the cores. On CUDA (configs resolved to device "cuda") the default is one process
    looping over the runs on the one GPU; `--workers` > 1 there spawns processes, each with its
    own context. The client writes every run folder under `runs`; results in the configs'
    order, on_done(result) as each arrives."""
    import json

    from fc.core.studies.executor import open_executor
    from fc.core.studies.unit_grids import grid_source
    from fc.core.studies.unit_inputs import write_folder

    executor = sweep_executor(executor, configs)
    if not threads:
        threads = (
            1 if executor.kind == "cluster" else max(1, available_cores() // executor.parallel())
        )
    results = {}
    with open_executor(executor, on_event) as ex:
        source = grid_source(configs[0], grid, ex)  # the configs differ in model options only
        tasks = {f"run-{i + 1:02d}": {"config": c, "source": source, "threads": threads}
                 for i, c in enumerate(configs)}  # fmt: skip
        if on_event:
            on_event(None, "planned", {"units": len(tasks), "finished": 0})
        for key, result in ex.run(sweep_unit, tasks):
            run_dir = write_folder(_free_name(Path(runs), result["name"]), result["files"])
            metrics = json.loads((run_dir / "metrics.json").read_text())
            results[key] = {"run": str(run_dir), "config": tasks[key]["config"], "metrics": metrics}
            if on_done:
                on_done(results[key])
    return [results[key] for key in tasks]


def _free_name(runs: Path, name: str) -> Path:
    """runs/name, or name-2, -3, ... when two runs were named in the same second elsewhere."""
    runs.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        path = runs / (name if i == 1 else f"{name}-{i}")
        if not path.exists() and not path.with_name(f".{path.name}.partial").exists():
            return path
    raise FcError(f"{runs}: cannot name the run {name}")


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
