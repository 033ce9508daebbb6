"""Seed ensembles and temperature calibration (`fc train --seeds N --calibrate temperature`).

An ensemble is N runs of core.training.train with seeds s .. s+N-1 (the same loop, nothing
copied), kept as members/seed-<k>/ inside one run folder whose p_up is the mean of theirs. The
temperature T is fitted on the validation decisions alone and applied to the logit of that mean:
logit(p_up) = logit(mean p_up) / T (core.model.Ensemble), for one member or many alike.
"""

import json
import shutil
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.errors import FcError
from fc.core.learning.evaluation import scores, validation_sample
from fc.core.learning.runs import TrainConfig, load_run, member_dirs
from fc.core.learning.schemes import Series
from fc.core.learning.training import (
    VALIDATION_P_UP,
    Progress,
    _run_dir,
    final_metrics,
    resolve_device,
    three_ranges,
    train,
    with_scheme_defaults,
)

CALIBRATIONS = ("none", "temperature")
# the search interval of T: beyond it p_up is within 1e-3 of 0.5 or sharper than any logit
# a GRU of this size produces
T_BOUNDS = (0.01, 100.0)


def check_ensemble_options(config: TrainConfig) -> None:
    if config.seeds < 1:
        raise FcError(f"--seeds {config.seeds}: give the number of members, 1 or more")
    if config.calibrate not in CALIBRATIONS:
        raise FcError(f"--calibrate {config.calibrate!r}: use one of {', '.join(CALIBRATIONS)}")


def logit(p_up: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p_up, dtype=np.float64), 1e-15, 1 - 1e-15)
    return np.log(p) - np.log1p(-p)


def apply_temperature(p_up: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p_up) / T): what the Ensemble module and the exported graphs compute."""
    return 1.0 / (1.0 + np.exp(-logit(p_up) / temperature))


def temperature_log_loss(p_up: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean log loss of sigmoid(logit(p_up) / T) against direction classes (0 = up)."""
    sign = np.where(np.asarray(labels) == 0, 1.0, -1.0)
    return float(np.mean(np.logaddexp(0.0, -sign * logit(p_up) / temperature)))


def fit_temperature(p_up: np.ndarray, labels: np.ndarray, tol: float = 1e-10) -> float:
    """The T in T_BOUNDS minimising temperature_log_loss: golden-section search on log T. The
    loss is convex in 1/T (a logistic regression on logit(p_up) without intercept), so it is
    unimodal in log T and the search finds the minimum, or the bound it lies beyond."""
    p_up, labels = np.asarray(p_up), np.asarray(labels)
    if len(p_up) == 0:
        raise FcError("no validation decisions to fit a temperature on; move --split earlier")
    a, b = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0

    def loss(log_t: float) -> float:
        return temperature_log_loss(p_up, labels, float(np.exp(log_t)))

    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc_, fd = loss(c), loss(d)
    while b - a > tol:
        if fc_ <= fd:
            b, d, fd = d, c, fc_
            c = b - ratio * (b - a)
            fc_ = loss(c)
        else:
            a, c, fc_ = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return float(np.exp((a + b) / 2.0))


def validation_series(config: TrainConfig, grid: pd.DataFrame) -> Series:
    """The series train() built for the run (its recorded test_from gives the same three ranges),
    so the temperature reads the validation decisions only, never the test range."""
    split = pd.Timestamp(config.split, tz="UTC")
    return three_ranges(grid, config.seq_len, split, config.test_from)[0]


def train_ensemble(
    config: TrainConfig,
    grid: pd.DataFrame,
    runs: str | Path,
    on_progress: Progress | None = None,
    **hooks,
) -> Path:
    """Train per config: one model as core.training.train does (seeds 1, no calibration: the
    very same run), or config.seeds members averaged, then the temperature when asked. `hooks`
    (train's on_validation, timing) go to every member's train()."""
    check_ensemble_options(config)
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
    run_dir = _run_dir(runs, config)
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
