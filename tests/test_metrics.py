"""Metrics against hand computations, and the stationary bootstrap's basic properties."""

import numpy as np
import pytest

from fc.core.evaluation import metrics


def test_max_drawdown_by_hand():
    assert metrics.max_drawdown(np.array([1.1, 1.21, 0.605, 0.9, 1.3])) == pytest.approx(0.5)
    assert metrics.max_drawdown(np.array([0.8, 1.2])) == pytest.approx(0.2)  # from the start 1.0


def test_performance_by_hand():
    factors = np.array([1.01, 0.98, 1.03, 1.0])
    positions = np.array([1.0, -1.0, 0.5, 0.0])
    returns = np.array([0.01, 0.02, 0.06, 0.04])
    m = metrics.performance(factors, positions, returns, per_year=4.0)
    step = factors - 1
    assert m["final_wealth"] == pytest.approx(1.01 * 0.98 * 1.03)
    assert m["total_log_return"] == pytest.approx(np.log(1.01 * 0.98 * 1.03))
    assert m["annual_log_return"] == pytest.approx(np.log(1.01 * 0.98 * 1.03))  # one year
    assert m["sharpe"] == pytest.approx(step.mean() / step.std(ddof=1) * 2.0)
    assert m["sortino"] == pytest.approx(step.mean() / np.sqrt(0.02**2 / 4) * 2.0)
    assert m["turnover"] == pytest.approx((1 + 2 + 1.5 + 0.5) / 4)
    assert m["hit_rate"] == pytest.approx(2 / 3)  # traded: +, -, +
    assert m["exposure"] == pytest.approx(2.5 / 4)


def test_classifier_by_hand():
    m = metrics.classifier(np.array([0.9, 0.4, 0.5]), np.array([0, 0, 1]))
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert m["log_loss"] == pytest.approx(-(np.log(0.9) + np.log(0.4) + np.log(0.5)) / 3)
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.25) / 3)


def test_bootstrap_indices_are_blocks_of_consecutive_bars():
    idx = metrics.stationary_bootstrap_index(1000, 4, 20.0, np.random.default_rng(0))
    assert idx.shape == (4, 1000) and idx.min() >= 0 and idx.max() < 1000
    steps = np.diff(idx, axis=1)
    continuing = (steps == 1) | (steps == -999)
    assert 0.9 < continuing.mean() < 0.99  # new block with probability 1/20


def test_bootstrap_interval_covers_the_mean_of_noise():
    x = np.random.default_rng(1).normal(0.0, 1.0, 5000)
    lo, hi = metrics.bootstrap_ci(x, metrics.mean_rows, reps=300, mean_block=10)
    assert lo < x.mean() < hi and hi - lo < 0.12


def test_hard_predictor_has_brier_but_no_log_loss():
    m = metrics.classifier(np.array([1.0, 0.0, 1.0, 1.0]), np.array([0, 0, 1, 0]), hard=True)
    assert m["log_loss"] is None
    assert m["accuracy"] == pytest.approx(0.5) and m["brier"] == pytest.approx(0.5)
