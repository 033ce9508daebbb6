"""The three ranges of a run (SPEC §9): train before the split, validation from the split up to
the test start, test from the test start to the end of the data. Training, checkpoint choice,
early stopping and every selection read train and validation only; test is reported, never
chosen on.

`--test-from` ("" by default) resolves to the test start once, at training, and the run's
config records the result: "" is the default rule below, an ISO date is taken as given, "none"
means no test range (validation runs to the end of the data; fc walk's folds use it).
Default rule: 2025-01-01 when it leaves each of validation and test at least MIN_SHARE of the
decisions from the split on (on the shared 30m file, up to 2025-05-31, test is 29 %, about five
months), else the test range is the last MIN_SHARE of those decisions (at least one).
"""

import math

import numpy as np
import pandas as pd

from fc.core.data.candles import timeframe_delta, utc_time
from fc.core.errors import FcError

DEFAULT_TEST_FROM = "2025-01-01"
MIN_SHARE = 0.2
ROLES = {
    "train": "fitted the weights",
    "validation": "chose the checkpoint (selection)",
    "test": "untouched by training and selection",
}


def resolve_test_from(
    times: pd.DatetimeIndex, after_split: np.ndarray, split: pd.Timestamp, test_from: str
) -> pd.Timestamp | None:
    """The first time of the test range (None: no test range). `after_split` marks the decision
    bars from the split on; the decisions, never the prices, decide the default."""
    text = str(test_from).strip()
    if text.lower() == "none":
        return None
    decided = times[np.asarray(after_split, dtype=bool)]
    if text == "":
        return _default_start(decided)
    start = utc_time(text, "--test-from")
    if start <= split:
        raise FcError(
            f"--test-from {text} is not after the split {split.isoformat()}: give a later date, "
            "or none for no test range"
        )
    if len(decided) == 0 or start > decided[-1]:
        last = decided[-1].isoformat() if len(decided) else "none"
        raise FcError(
            f"--test-from {text} is past the data (last decision {last}): give an earlier "
            "date, or none for no test range"
        )
    if not (decided < start).any():
        raise FcError(
            f"--test-from {text} leaves no validation decision after the split "
            f"{split.isoformat()}: give a later date"
        )
    return start


def _default_start(decided: pd.DatetimeIndex) -> pd.Timestamp | None:
    n = len(decided)
    if n == 0:
        return None  # no validation either: training's own check says so
    default = pd.Timestamp(DEFAULT_TEST_FROM, tz="UTC")
    n_test = int((decided >= default).sum())
    if min(n_test, n - n_test) >= MIN_SHARE * n:
        return default
    return decided[n - max(1, math.ceil(MIN_SHARE * n))]


def recorded(start: pd.Timestamp | None) -> str:
    """How config.json records a resolved test start: ISO time, or "none"."""
    return "none" if start is None else start.isoformat()


def backtest_test_from(config) -> pd.Timestamp | None:
    """Where a run's test range starts in a backtest: its recorded test start; for a run without
    one (before test ranges existed, or trained with "none"), the bar after its last validation
    decision when the config records it, so that later candles given with --data are test and
    the run's own candles have no test range; else None."""
    text = str(getattr(config, "test_from", "") or "").strip()
    if text and text.lower() != "none":
        return utc_time(text, "test_from")
    validation = getattr(config, "validation_range", ())
    if validation:
        return utc_time(validation[-1], "validation_range") + timeframe_delta(config.timeframe)
    return None


def range_info(positions: pd.DataFrame) -> dict:
    """{range: {first, last, role}} from a backtest's positions frame (column `range`)."""
    out = {}
    for name, part in positions.groupby("range", sort=False):
        decided = part.dropna(subset=["p_up"])["time"]
        out[name] = {
            "first": decided.iloc[0].isoformat() if len(decided) else None,
            "last": decided.iloc[-1].isoformat() if len(decided) else None,
            "role": ROLES.get(name, ""),
        }
    return out
