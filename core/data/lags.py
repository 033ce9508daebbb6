"""Lagged rows for the tabular model families: at each decision bar, the last `lags` values of
every feature column side by side, so a tree or a linear model sees the window the GRU reads.

Order of a row (what `lag_names` spells out): column-major groups, oldest to newest inside each
group: [c0[t-lags+1], …, c0[t], c1[t-lags+1], …, c1[t], …]. A row for decision t reads nothing
after t.
"""

import numpy as np

from fc.core.errors import FcError


def lagged_rows(columns: np.ndarray, ends: np.ndarray, lags: int) -> np.ndarray:
    """(n_bars, c) float64 columns and m decision bars → (m, c * lags) rows, in float64."""
    columns = np.asarray(columns, dtype=np.float64)
    if columns.ndim == 1:
        columns = columns[:, None]
    if columns.ndim != 2:
        raise FcError(f"feature columns must be (bars, columns), got shape {columns.shape}")
    if int(lags) != lags or lags < 1:
        raise FcError(f"--lags {lags}: give a whole number of bars >= 1 (e.g. --lags 16)")
    lags = int(lags)
    ends = np.asarray(ends)
    if ends.size and not np.issubdtype(ends.dtype, np.integer):
        raise FcError(f"decision bars must be integer indices, got {ends.dtype}")
    n = columns.shape[0]
    if ends.size and ends.min() < lags - 1:
        raise FcError(
            f"decision bar {int(ends.min())} has fewer than {lags} bars before it "
            f"(--lags {lags}); decide from bar {lags - 1} on or give fewer lags"
        )
    if ends.size and ends.max() >= n:
        raise FcError(f"decision bar {int(ends.max())} is past the last of {n} bars")
    # windows[s] holds bars s .. s+lags-1 as (c, lags): already column-major, oldest first
    windows = np.lib.stride_tricks.sliding_window_view(columns, lags, axis=0)
    return windows[ends - (lags - 1)].reshape(len(ends), columns.shape[1] * lags)


def lag_names(column_names: list[str], lags: int) -> list[str]:
    """Names of a row's entries in lagged_rows' order: ['ret[t-15]', …, 'ret[t]', …]."""
    if int(lags) != lags or lags < 1:
        raise FcError(f"--lags {lags}: give a whole number of bars >= 1 (e.g. --lags 16)")
    return [
        f"{name}[t-{k}]" if k else f"{name}[t]"
        for name in column_names
        for k in range(int(lags) - 1, -1, -1)
    ]
