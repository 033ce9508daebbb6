"""Training into run folders: one run (train), seed ensembles and temperature calibration.

train() fits the config's model family (core.learning.family) and writes the run folder
(core.studies.runs). An ensemble is N runs of train() with seeds s .. s+N-1 (the same loop,
nothing copied), kept as members/seed-<k>/ inside one run folder whose p_up is the mean of
theirs; the temperature (core.learning.ensemble) is fitted on the validation decisions alone.
"""

import json
import shutil
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.learning.config import TrainConfig
from fc.core.learning.ensemble import apply_temperature, check_ensemble_options, fit_temperature
from fc.core.learning.evaluation import scores, validation_sample
from fc.core.learning.family import family_of
from fc.core.learning.gru import member_dirs
from fc.core.learning.schemes import Series
from fc.core.learning.training import (
    Progress,
    final_metrics,
    resolve_device,
    series_of,
    with_scheme_defaults,
)
from fc.core.studies.runs import VALIDATION_P_UP, load_run, new_run_dir, save_run


def train(
    config: TrainConfig,
    grid: pd.DataFrame,
    runs: str | Path,
    on_progress: Progress | None = None,
    on_validation=None,
    timing: dict | None = None,
) -> Path:
    """Train per config on a grid frame, write the run folder under `runs`, return its path.

    on_validation(k, result) sees the k-th validation's full result (ce, log_growth, loss, ...);
    an exception it raises (fc tune's pruning) stops training. `timing`, when given, receives
    wall-clock stamps (time.time()) `first_step`, `last_step` and `done`."""
    stamps = timing if timing is not None else {}
    trained = family_of(config).fit(config, grid, on_progress, on_validation, stamps)
    run_dir = new_run_dir(Path(runs), trained.config)
    save_run(run_dir, trained)
    stamps["done"] = time.time()
    return run_dir


def validation_series(config: TrainConfig, grid: pd.DataFrame) -> Series:
    """The series train() built for the run (its recorded test_from gives the same three ranges),
    so the temperature reads the validation decisions only, never the test range."""
    return series_of(config, grid)[0]


def train_ensemble(
    config: TrainConfig,
    grid: pd.DataFrame,
    runs: str | Path,
    on_progress: Progress | None = None,
    **hooks,
) -> Path:
    """Train per config: one model as core.training.train does (seeds 1, no calibration: the
    very same run), or config.seeds members averaged, then the temperature when asked. `hooks`
    (train's on_validation, timing) go to every member's train(). A universe (config.symbols,
    `grid` then {symbol: grid}) is one pooled run (core.studies.universe.train_universe), so
    sweep and tune train universes through this one call too."""
    check_ensemble_options(config)
    if len(config.symbols) > 1:
        from fc.core.studies.universe import train_universe

        return train_universe(config, grid, runs, on_progress, **hooks)
    if config.seeds == 1 and config.calibrate == "none":
        return train(config, grid, runs, on_progress, **hooks)
    resolve_device(config.device)
    started = time.perf_counter()
    if config.seeds == 1:
        run_dir = train(replace(config, calibrate="none"), grid, runs, on_progress, **hooks)
        done = json.loads((run_dir / "metrics.json").read_text())
        totals, members = {k: done[k] for k in ("steps", "scored_targets")}, None
    else:
        run_dir, totals, members = _train_members(config, grid, Path(runs), on_progress, hooks)
    trained, model, scaling = load_run(run_dir)
    config = replace(trained, seed=config.seed, seeds=config.seeds, calibrate=config.calibrate)
    series = validation_series(config, grid)
    device = resolve_device(config.device)
    calibration = None
    if config.calibrate == "temperature":
        config, model, calibration = _calibrate(config, model, series, scaling, device)
    val_ends = validation_sample(series, config.val_size)
    cost = config.cost_bps / 1e4
    metrics, predictions = final_metrics(model, series, scaling, config, cost, device, val_ends)
    if members is not None:
        metrics["members"] = members
    if calibration is not None:
        metrics["calibration"] = calibration
    metrics |= {"train_seconds": round(time.perf_counter() - started, 2), **totals}
    metrics["test_decisions"] = int(series.test.sum())  # a count of dates, as train() records
    (run_dir / "config.json").write_text(config.to_json() + "\n")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    predictions.to_parquet(run_dir / VALIDATION_P_UP)  # the ensemble's (calibrated) p_up
    return run_dir


def _calibrate(config, model, series, scaling, device):
    """(config with T, the model applying it, the calibration block of metrics.json)."""
    from fc.core.learning.model import Ensemble, window_p_up

    ends = np.flatnonzero(series.validation)
    p_up = window_p_up(model, series.features, ends, config.seq_len, scaling, device=device)
    labels = series.labels[ends]
    temperature = fit_temperature(p_up, labels)
    members = list(model.members) if isinstance(model, Ensemble) else [model]
    block = {
        "method": "temperature",
        "temperature": temperature,
        "fitted_on": "validation",
        "decisions": int(len(ends)),
        # in-sample for T by construction: evidence of calibration belongs to a later range
        "validation_ce_before": scores(p_up, labels)["ce"],
        "validation_ce_after": scores(apply_temperature(p_up, temperature), labels)["ce"],
    }
    config = replace(config, temperature=temperature)
    return config, Ensemble(members, temperature).eval(), block


def _train_members(config: TrainConfig, grid, runs: Path, on_progress, hooks: dict):
    """Train each member into RUN/members/seed-<k>/ and write the ensemble's config.json
    (uncalibrated), history.csv and loss.png; returns (run folder, step totals, members)."""
    config = with_scheme_defaults(config)
    run_dir = new_run_dir(runs, config)
    try:
        return _train_into(run_dir, config, grid, on_progress, hooks)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # no half ensemble left to be loaded
        raise


def _train_into(run_dir: Path, config: TrainConfig, grid, on_progress, hooks: dict):
    from fc.core.learning.plots import sweep_figure

    n, histories, members, first = config.seeds, {}, [], None
    for k, folder in enumerate(member_dirs(run_dir, config)):
        member = replace(config, seed=config.seed + k, seeds=1, calibrate="none", temperature=1.0)
        report = on_progress and partial(_member_progress, on_progress, k, n)
        made = train(member, grid, folder.parent, report, **hooks)
        made.rename(folder)
        histories[f"{config.loss} seed {member.seed}"] = pd.read_csv(folder / "history.csv")
        done = json.loads((folder / "metrics.json").read_text())
        members.append({"seed": member.seed, "run": str(folder.relative_to(run_dir)),
                        "validation": done["validation"], "steps": done["steps"]})  # fmt: skip
        first = first or json.loads((folder / "config.json").read_text())
    ensemble = replace(TrainConfig.from_dict(first), seed=config.seed, seeds=n, calibrate="none")
    (run_dir / "config.json").write_text(ensemble.to_json() + "\n")
    history = pd.concat(
        [h.assign(seed=m["seed"]) for h, m in zip(histories.values(), members, strict=True)]
    )
    history.to_csv(run_dir / "history.csv", index=False)
    figure = sweep_figure(histories, title=f"{run_dir.name}: {n} members")
    figure.savefig(run_dir / "loss.png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)
    totals = {"steps": sum(m["steps"] for m in members),
              "scored_targets": int(history["scored"].sum())}  # fmt: skip
    return run_dir, totals, members


def _member_progress(on_progress: Progress, k: int, n: int, step, total, loss, val) -> None:
    """Member k's progress as one bar over all n members."""
    on_progress(k * total + step, n * total, loss, val)
