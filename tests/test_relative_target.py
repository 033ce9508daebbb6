"""The relative target of a universe against plain loops over bars and symbols."""

import math

import numpy as np
import pytest

from fc.core.data.features import (
    direction_class,
    next_return,
    next_returns,
    relative_direction_class,
    relative_return,
)


def universe(n=60, size=4, seed=0):
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, size)), axis=0))
    closes[10] = closes[9]  # every symbol unchanged: relative 0, class up (ties count as up)
    closes[20, 1] = closes[19, 1]
    return closes


def test_relative_return_and_class_equal_a_plain_loop():
    closes = universe()
    n, size = closes.shape
    rel, cls = relative_return(closes), relative_direction_class(closes)
    for t in range(n):
        changes = [closes[t, s] / closes[t - 1, s] - 1 if t else 0.0 for s in range(size)]
        mean = math.fsum(changes) / size
        for s in range(size):
            assert rel[t, s] == pytest.approx(changes[s] - mean, abs=1e-15)
            if abs(changes[s] - mean) > 1e-12:  # away from a rounding tie
                assert cls[t, s] == (0 if changes[s] - mean >= 0 else 1)
    assert (cls[0] == 0).all() and (cls[10] == 0).all()
    np.testing.assert_allclose(rel.sum(axis=1), 0.0, atol=1e-15)


def test_one_symbol_has_no_relative_move_and_next_returns_are_per_symbol():
    closes = universe(size=3)
    assert (relative_direction_class(closes[:, :1]) == 0).all()
    got = next_returns(closes)
    for s in range(3):
        np.testing.assert_array_equal(got[:, s], next_return(closes[:, s]))
    assert np.isnan(got[-1]).all()
    # identical symbols never beat each other: all class 0, ties counting as up
    same = np.column_stack([closes[:, 0]] * 3)
    assert (relative_direction_class(same) == 0).all()
    # two symbols: one beats the mean exactly when the other does not, unless they tie
    pair = relative_direction_class(closes[:, :2])
    apart = relative_return(closes[:, :2])[:, 0] != 0
    assert (pair[apart, 0] != pair[apart, 1]).all() and (pair[~apart] == 0).all()
    # against a partner that never moves, relative is the sign of half the own change
    flat = np.column_stack([closes[:, 0], np.full(len(closes), 100.0)])
    np.testing.assert_array_equal(
        relative_direction_class(flat)[:, 0], direction_class(closes[:, 0])
    )


def test_relative_class_of_candle_t_reads_no_later_close():
    closes = universe()
    t = 30
    poisoned = closes.copy()
    poisoned[t + 1 :] = np.random.default_rng(9).uniform(1, 1e6, poisoned[t + 1 :].shape)
    np.testing.assert_array_equal(
        relative_direction_class(poisoned)[: t + 1], relative_direction_class(closes)[: t + 1]
    )


def test_a_single_column_is_refused_as_a_universe():
    with pytest.raises(ValueError, match="bars, symbols"):
        relative_return(np.ones(5))
