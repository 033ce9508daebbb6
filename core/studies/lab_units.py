"""A lab's units: one (variant, fold) pair is one fold of one `fc walk`, described by a small
picklable task and computed by run_unit, a module-level function the executor seam can send to
any worker. The task carries the variant's resolved options, the fold's boundaries and the
sha256 of every candle file, never a frame; the result is bytes and plain numbers, and only the
caller writes the lab folder.
"""

import hashlib
import io
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from fc.core.data.inputs import data_values, parse_data
from fc.core.errors import FcError
from fc.core.learning.config import TrainConfig
from fc.core.studies.walk import Fold

UNIT_VERSION = 1  # bump when a unit's result changes for the same task


def variant_inputs(resolved: dict, files: dict | None = None):
    """(grid, base TrainConfig) of one variant, as `fc walk` loads them (core.studies.inputs),
    with the family's options checked; a pooled universe (symbols A,B,… or target relative):
    ({symbol: grid}, base naming every symbol), as `fc walk --symbols` loads it. `files` {path:
    unit_inputs.DataFile}: where this process reads each --data file (a cluster worker's
    --data-root), its sha256 checked."""
    from fc.core.studies.inputs import load_features, load_universe, pooled
    from fc.core.studies.walk import check_walk_options

    data, fields = dict(resolved["data"]), resolved["fields"]
    if files:
        data["data"] = [_local(value, files) for value in data_values(data["data"])]
    if pooled(data, fields):
        grids, base = load_universe(data, fields)
        check_walk_options(base)
        return grids, base
    base = TrainConfig(symbol=data["symbol"], timeframe=data["timeframe"], **fields)
    check_walk_options(base)  # as fc walk checks before its folds
    grids, base = load_features(data, fields, [fields.get("features", "close")])
    return next(iter(grids.values())), base


def _local(value: str, files: dict) -> str:
    """A --data value (FILE or SYMBOL=FILE) with FILE where this process reads it."""
    from fc.core.studies.unit_inputs import local_path

    plain, pairs = parse_data([value])  # fc's own reading of FILE and SYMBOL=FILE
    for symbol, path in pairs.items():
        return f"{symbol}={local_path(files[str(path)])}" if str(path) in files else str(value)
    return str(local_path(files[str(plain)])) if str(plain) in files else str(value)


def data_digests(base: TrainConfig) -> dict:
    """{symbol: sha256} of every candle file the variant reads: what its units' keys hold
    instead of paths, so a moved file is the same data and an edited one is not."""
    return {base.symbol: base.data_sha256, **{s: v[1] for s, v in sorted(base.inputs.items())}}


def unit_task(resolved: dict, base: TrainConfig, fold: Fold) -> dict:
    """The description of one unit: everything run_unit needs, nothing that is not a value."""
    data = {k: str(v) if isinstance(v, Path) else v for k, v in resolved["data"].items()}
    if isinstance(data.get("data"), list | tuple):
        data["data"] = [str(v) for v in data["data"]]
    task = {
        "data": data,
        "fields": resolved["fields"],
        "fold": fold.to_dict(),
        "sha256": data_digests(base),
        "threads": int(data.get("threads", 1)),
    }
    if len(base.symbols) > 1:  # a universe: its symbols in their order (the pooled rows' order)
        task["symbols"] = list(base.symbols)
    return task


def unit_key(task: dict) -> str:
    """Content hash of a unit: its options (those at TrainConfig's default left out, so an
    option a later fc adds changes no key), the fold, a universe's symbols, the data's sha256s
    and the threads; paths are not in it."""
    default = asdict(TrainConfig())
    fields = {k: v for k, v in task["fields"].items() if v != default.get(k)}
    data = {k: task["data"][k] for k in ("symbol", "timeframe")}
    if "symbols" in task:
        data["symbols"] = task["symbols"]
    described = {"version": UNIT_VERSION, "fields": fields, "data": data, "fold": task["fold"],
                 "sha256": task["sha256"], "threads": task["threads"]}  # fmt: skip
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def run_unit(task: dict) -> dict:
    """Train the fold's model on the past only and predict the fold in a temporary folder,
    exactly as `fc walk` trains and predicts a fold (core.studies.walk.walk_forward: the same
    calls, so a variant's predictions are fc walk's byte for byte); returns the fold's
    predictions as parquet bytes, its scores and its seconds."""
    from fc.core.studies.walk import fold_config
    from fc.core.studies.walk_units import predict_fold, train_fold

    started = time.perf_counter()
    if task["threads"] > 0:
        import torch

        torch.set_num_threads(task["threads"])
    resolved = {"data": task["data"], "fields": task["fields"]}
    grid, base = variant_inputs(resolved, task.get("files"))
    if data_digests(base) != task["sha256"]:
        raise FcError(f"the candle file {base.data} changed since the lab was planned; rerun "
                      "fc lab run")  # fmt: skip
    fold = Fold(task["fold"]["number"], *(pd.Timestamp(task["fold"][k]) for k in
                ("start", "end", "validation_start", "train_start")))  # fmt: skip
    config = fold_config(base, fold)
    with tempfile.TemporaryDirectory(prefix="fc-lab-unit-") as tmp:
        run = train_fold(config, fold, grid, Path(tmp))  # exactly fc walk's fold
        trained = time.perf_counter()
        frame, scores = predict_fold(config, fold, grid, run)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return {
        "predictions": buffer.getvalue(),
        "scores": scores,
        "train_seconds": round(trained - started, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }


def read_predictions(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))
