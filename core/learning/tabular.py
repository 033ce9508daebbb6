"""What the tabular families (LightGBM, logistic) share: row and label checks, the sigmoid, and
reading a family's JSON state with one-line refusals."""

import json
from pathlib import Path

import numpy as np

from fc.core.errors import FcError


def checked_rows(x: np.ndarray, dtype, n_features: int | None = None) -> np.ndarray:
    """Rows as a model reads them: 2-d, finite, of `n_features` columns, cast to `dtype`."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or (n_features is not None and x.shape[1] != n_features):
        want = f"(rows, {n_features})" if n_features is not None else "(rows, features)"
        raise FcError(f"feature rows have shape {x.shape}, the model needs {want}")
    if not np.isfinite(x).all():
        raise FcError("feature rows hold NaN or infinite values; check the feature columns")
    return x.astype(dtype, copy=False)


def up_labels(up: np.ndarray, n: int) -> np.ndarray:
    """1 = up (fc's class 0: change >= 0), 0 = down, as float64."""
    up = np.asarray(up)
    if up.shape != (n,) or not np.isin(up, (0, 1)).all():
        raise FcError(f"labels must be {n} values of 0 or 1 (1 = up), got shape {up.shape}")
    return up.astype(np.float64)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) in float64, without overflow for large |z|."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def read_state(path: Path, family: str) -> dict:
    """A family's JSON state, refused with one line when absent, damaged or another family's."""
    if not path.is_file():
        raise FcError(f"{path}: no such file; this folder holds no {family} model")
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FcError(f"{path}: not readable JSON; train the run again") from None
    got = state.get("family") if isinstance(state, dict) else None
    if got != family:
        raise FcError(f"{path}: a model of family {got!r}, not {family!r}; this fc cannot read it")
    return state
