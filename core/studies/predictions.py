"""A run's p_up at the bars a backtest needs: predicted fast, and cached per run folder.

RUN/backtest/predictions-<digest>.parquet keeps p_up by candle time for every bar predicted so
far. The digest is the sha256 of a key made of everything that changes a prediction: each model
file of the run, the config fields below, the predictor (torch, or an ONNX graph's sha256) and
the candle file's sha256. A backtest with other fees, ranges or policies reads them back; any
change to those inputs is another key, so a stale p_up is never read.
"""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.data.inputs import grid_features, plain_close
from fc.core.data.store import file_sha256

# TrainConfig fields that change a prediction. Read with getattr, so fields another branch adds
# (an ensemble's seeds, a calibration's temperature) are part of the key once they exist.
PREDICTION_FIELDS = (
    "timeframe", "feature", "seq_len", "hidden", "layers", "scaling", "scale_center",
    "scale_scale", "seeds", "calibrate", "temperature",
)  # fmt: skip
Progress = Callable[[int, int], None]  # progress(done, total)


def model_files(run_dir: Path) -> list[Path]:
    """The run's model files (each family's own patterns, core.learning.family), members'
    included, outside backtest/ and export/."""
    from fc.core.learning.family import model_file_patterns

    found = {p for pattern in model_file_patterns() for p in run_dir.rglob(pattern)}
    return sorted(p for p in found if p.relative_to(run_dir).parts[0] not in ("backtest", "export"))


def prediction_key(
    run_dir: str | Path, config, data_file: str | Path, predictor: str, inputs: dict | None = None
) -> dict:
    """Everything that changes a prediction; `inputs` {symbol: file} are the other symbols'
    candle files a feature spec reads (their sha256 and the spec's hash join the key)."""
    run_dir = Path(run_dir)
    key = {
        "model_files": {str(p.relative_to(run_dir)): file_sha256(p) for p in model_files(run_dir)},
        "config": {k: getattr(config, k) for k in PREDICTION_FIELDS if hasattr(config, k)},
        "predictor": predictor,
        "data_sha256": file_sha256(data_file),
    }
    if not plain_close(config.spec) or inputs or config.family != "gru":
        key["features"] = config.spec.hash
        key["family"] = config.family
        key["inputs_sha256"] = {s: file_sha256(f) for s, f in sorted((inputs or {}).items())}
    return key


class PredictionCache:
    """p_up by candle time for one key, in RUN/backtest/predictions-<digest>.parquet."""

    def __init__(self, folder: str | Path, key: dict):
        self.key = json.dumps(key, sort_keys=True)
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:16]
        self.path = Path(folder) / f"predictions-{digest}.parquet"

    def read(self) -> pd.Series:
        """What is stored for this key; nothing when the file is absent, unreadable or (a digest
        collision) made for another key: a doubtful cache is recomputed, never trusted."""
        empty = pd.Series(dtype=np.float64)
        if not self.path.is_file():
            return empty
        try:
            frame = pd.read_parquet(self.path)
        except Exception:  # pyarrow raises several types for a damaged file
            return empty
        return frame["p_up"] if frame.attrs.get("key") == self.key else empty

    def write(self, p_up: pd.Series) -> None:
        frame = p_up.sort_index().to_frame("p_up")
        frame.attrs["key"] = self.key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        frame.to_parquet(partial)
        partial.replace(self.path)  # a crash never leaves half a cache behind


def run_predictor(run_dir: str | Path, device: str = "auto"):
    """predict(features, ends, progress) -> p_up with the run's own model, as its family
    computes it fastest (the GRU: merged windows on the CPU); window semantics."""
    from fc.core.learning.family import family_of
    from fc.core.studies.runs import read_config

    config = read_config(run_dir)
    return family_of(config).predictor(Path(run_dir), config, device)


def cached_p_up(predict, grid: pd.DataFrame, need: np.ndarray, cache, progress=None):
    """(p_up per bar, NaN where not needed; what the cache gave). Bars the cache holds are read
    from it, the others predicted by predict(features, ends, progress) and added to it."""
    p_up = np.full(len(grid), np.nan)
    ends = np.flatnonzero(need)
    known = cache.read() if cache is not None else pd.Series(dtype=np.float64)
    times = grid.index[ends]
    have = times.isin(known.index)
    p_up[ends[have]] = known.reindex(times[have]).to_numpy()
    todo = ends[~have]
    if len(todo):
        p_up[todo] = predict(grid_features(grid), todo, progress)
        if cache is not None:
            fresh = pd.Series(p_up[todo], index=grid.index[todo])
            cache.write(fresh if known.empty else pd.concat([known, fresh]))
    stats = {"cached": int(have.sum()), "computed": int(len(todo))}
    return p_up, stats | ({"file": str(cache.path)} if cache is not None else {})
