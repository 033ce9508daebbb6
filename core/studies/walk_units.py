"""Walk folds as units of the executor seam, and the walk folder that lets a walk resume.

A fold task is (fold config, fold boundaries, the grid's GridSource, torch threads); fold_unit
trains in a scratch folder wherever it runs and returns bytes: the run folder's files, the
fold's predictions as parquet and its scores. The client alone writes WALK/<fold>/ and
WALK/units/<fold>.{parquet,json}; the .json, written last, marks the fold finished, so the same
command with the same --out recomputes no finished fold.
"""

import io
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.errors import FcError

PLAN = "plan.json"  # WALK/units/plan.json: what the walk is, to refuse an --out of another


def fold_unit(task: dict) -> dict:
    """Train and predict one fold (one symbol, or a pooled universe) from its description."""
    from fc.core.studies.unit_grids import unit_grid
    from fc.core.studies.unit_inputs import folder_bytes

    if task["threads"] > 0:
        import torch

        torch.set_num_threads(task["threads"])
    grid = unit_grid(task["source"])
    config, fold = task["config"], task["fold"]
    with tempfile.TemporaryDirectory(prefix="fc-fold-") as scratch:
        t0 = time.perf_counter()
        run = train_fold(config, fold, grid, Path(scratch))
        t1 = time.perf_counter()
        frame, scores = predict_fold(config, fold, grid, run)
        files = folder_bytes(run)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return {"files": files, "predictions": buffer.getvalue(), "scores": scores,
            "train_seconds": round(t1 - t0, 2),
            "predict_seconds": round(time.perf_counter() - t1, 2)}  # fmt: skip


def train_fold(config, fold, grid, scratch: Path) -> Path:
    """The fold's model (config: the fold's, core.studies.walk.fold_config), trained on what
    fold_grid leaves of the grid (a {symbol: grid} for a universe), in a run folder under
    `scratch`: the one training of a fold for fc walk and fc lab alike."""
    from fc.core.studies.walk import fold_grid

    if config.symbols and len(config.symbols) > 1:
        from fc.core.studies.universe import train_universe

        cut = {s: fold_grid(g, fold, config.seq_len) for s, g in grid.items()}
        return train_universe(config, cut, scratch)
    from fc.core.studies.train import train_ensemble

    return train_ensemble(config, fold_grid(grid, fold, config.seq_len), scratch)


def predict_fold(config, fold, grid, run: Path):
    """(the fold's predictions frame, its scores) from the run train_fold made."""
    from fc.core.studies.walk import fold_decisions

    if config.symbols and len(config.symbols) > 1:
        from fc.core.data.universe import universe_frame
        from fc.core.studies.universe_walk import fold_p_up

        first = universe_frame(grid, config.first_decision)
        ends = fold_decisions(first, fold, config.first_decision)
        p_up = fold_p_up(run, grid, ends)
        mine = ~np.isnan(p_up)  # the symbols eligible at each decision
        frames = [pd.DataFrame({"time": first.index[ends[mine[:, i]]], "symbol": symbol,
                                "p_up": p_up[mine[:, i], i], "fold": fold.number})
                  for i, symbol in enumerate(grid)]  # fmt: skip
        return pd.concat(frames, ignore_index=True), {"decisions": int(len(ends))}
    from fc.core.data.inputs import grid_features
    from fc.core.learning.family import family_of
    from fc.core.learning.training import resolve_device
    from fc.core.studies.runs import load_run
    from fc.core.studies.walk_report import fold_scores

    device = resolve_device(config.device)
    loaded, model, _ = load_run(run, device)
    ends = fold_decisions(grid, fold, config.first_decision)
    p_up = family_of(loaded).reference_p_up(model, loaded, grid_features(grid), ends, device)
    frame = pd.DataFrame({"time": grid.index[ends], "p_up": p_up, "fold": fold.number})
    return frame, fold_scores(grid, ends, p_up, run, config.horizon)


def open_walk_dir(out: Path | None, runs: Path, plan: dict) -> Path:
    """The walk folder: a new one under runs, or --out (new, or the same walk to finish);
    an --out holding anything else is one line before any training."""
    from fc.core.studies.walk import new_walk_dir

    if out is None:
        walk_dir = new_walk_dir(runs)
    else:
        walk_dir = Path(out)
        saved = walk_dir / "units" / PLAN
        if saved.is_file():
            if json.loads(saved.read_text()) != _jsonable(plan):
                raise FcError(f"--out {walk_dir} holds another walk (other options or data); "
                              "give a new --out, or the options that made it")  # fmt: skip
            return walk_dir
        if walk_dir.exists() and any(walk_dir.iterdir()):
            raise FcError(f"--out {walk_dir}: a folder that is not an fc walk's; give a new or "
                          "empty folder")  # fmt: skip
        walk_dir.mkdir(parents=True, exist_ok=True)
    (walk_dir / "units").mkdir()
    (walk_dir / "units" / PLAN).write_text(json.dumps(_jsonable(plan), indent=2) + "\n")
    return walk_dir


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def walk_plan(base, walk, folds, source) -> dict:
    """What makes two walks the same walk: options, fold boundaries and the data's sha256."""
    return {"walk": asdict(walk), "train": base.as_dict(), "folds": [f.to_dict() for f in folds],
            "data": {symbol: ref.sha256 for symbol, ref in source.files}}  # fmt: skip


def finished_folds(walk_dir: Path, folds) -> dict:
    """{fold name: (predictions frame, record)} of the folds already written; a fold folder
    without its record (a client killed while writing it) is removed, to be run again."""
    done = {}
    for fold in folds:
        record = walk_dir / "units" / f"{fold.name}.json"
        if record.is_file():
            frame = pd.read_parquet(record.with_suffix(".parquet"))
            done[fold.name] = (frame, json.loads(record.read_text()))
        elif (walk_dir / fold.name).exists():
            shutil.rmtree(walk_dir / fold.name)
    return done


def write_fold(walk_dir: Path, fold, result: dict) -> tuple[pd.DataFrame, dict]:
    """The client's one write of a fold: its run folder, its predictions, then its record."""
    from fc.core.studies.unit_inputs import write_folder

    write_folder(walk_dir / fold.name, result["files"])
    units = walk_dir / "units"
    (units / f"{fold.name}.parquet").write_bytes(result["predictions"])
    record = {"fold": fold.number, **fold.to_dict(), "run": fold.name, **result["scores"],
              "train_seconds": result["train_seconds"],
              "predict_seconds": result["predict_seconds"]}  # fmt: skip
    (units / f"{fold.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return pd.read_parquet(io.BytesIO(result["predictions"])), record
