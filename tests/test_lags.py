"""Lagged rows: exact layout against a loop, names, refusals, and no row reads the future."""

import numpy as np
import pytest

from fc.core.data.lags import lag_names, lagged_rows
from fc.core.errors import FcError


def loop_rows(columns: np.ndarray, ends: np.ndarray, lags: int) -> np.ndarray:
    """The definition written as loops: column by column, oldest to newest."""
    return np.array(
        [[columns[t - k, j] for j in range(columns.shape[1]) for k in range(lags - 1, -1, -1)]
         for t in ends]
    )  # fmt: skip


def test_rows_equal_the_loop_definition():
    columns = np.random.default_rng(0).normal(size=(50, 3))
    ends = np.array([4, 5, 17, 49, 30])
    rows = lagged_rows(columns, ends, 5)
    assert rows.shape == (5, 15) and rows.dtype == np.float64
    np.testing.assert_array_equal(rows, loop_rows(columns, ends, 5))
    assert rows[0, 4] == columns[4, 0] and rows[0, 0] == columns[0, 0]  # newest last in a group
    assert rows[2, 5] == columns[13, 1]


def test_one_lag_is_the_columns_at_the_decision_bar():
    columns = np.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(lagged_rows(columns, np.array([0, 3]), 1), columns[[0, 3]])


def test_rows_are_copies():
    columns = np.zeros((10, 2))
    rows = lagged_rows(columns, np.array([5]), 3)
    rows[:] = 1.0
    assert not columns.any()


def test_names_follow_the_row_order():
    assert lag_names(["ret", "vol"], 3) == [
        "ret[t-2]", "ret[t-1]", "ret[t]", "vol[t-2]", "vol[t-1]", "vol[t]",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("ends", "lags", "words"),
    [
        ([3], 0, "--lags 0"),
        ([3], -2, "--lags -2"),
        ([2, 5], 4, "fewer than 4 bars"),
        ([10], 2, "past the last"),
    ],
)
def test_bad_lags_or_bars_are_user_errors(ends, lags, words):
    with pytest.raises(FcError, match=words.replace("-", r"\-")):
        lagged_rows(np.zeros((10, 2)), np.array(ends), lags)


def test_names_refuse_zero_lags():
    with pytest.raises(FcError, match="--lags 0"):
        lag_names(["ret"], 0)


def test_poisoning_after_t_changes_no_row_at_or_before_t():
    rng = np.random.default_rng(1)
    columns = rng.normal(size=(300, 4))
    ends = np.arange(15, 300)
    clean = lagged_rows(columns, ends, 16)
    T = 180
    poisoned = columns.copy()
    poisoned[T + 1 :] = rng.normal(1e6, 1.0, size=poisoned[T + 1 :].shape)
    dirty = lagged_rows(poisoned, ends, 16)
    before = ends <= T
    np.testing.assert_array_equal(dirty[before], clean[before])
    assert (dirty[~before] != clean[~before]).any(axis=1).all()  # the poison does reach t > T
