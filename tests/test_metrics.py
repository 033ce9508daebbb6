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


def _index_by_running_sums(n, reps, mean_block, rng):
    """The stationary bootstrap's indices as first written (cumsum of block starts): the
    reference the block-by-block construction must match exactly."""
    new_block = rng.random((reps, n)) < 1.0 / mean_block
    new_block[:, 0] = True
    block_id = np.cumsum(new_block, axis=1) - 1
    starts = rng.integers(0, n, size=(reps, n))
    first_pos = np.maximum.accumulate(np.where(new_block, np.arange(n), 0), axis=1)
    return (np.take_along_axis(starts, block_id, axis=1) + np.arange(n) - first_pos) % n


@pytest.mark.parametrize(
    "n,reps,block", [(1, 3, 2.0), (2, 7, 3.0), (997, 40, 1.0), (5000, 9, 48.0)]
)
def test_bootstrap_indices_match_the_running_sum_construction(n, reps, block):
    got = metrics.stationary_bootstrap_index(n, reps, block, np.random.default_rng(5))
    want = _index_by_running_sums(n, reps, block, np.random.default_rng(5))
    assert got.dtype == np.int32 and np.array_equal(got, want)


def test_bootstrap_cis_give_each_series_its_own_interval_bit_for_bit():
    rng = np.random.default_rng(2)
    series = [rng.normal(0.001 * k, 0.01, 3000) for k in range(5)] + [np.zeros(3000)]
    together = metrics.bootstrap_cis(series, metrics.sharpe_rows(17520), reps=120, chunk=50)
    for values, pair in zip(series, together, strict=True):
        metrics._bootstrap_indices.cache_clear()  # alone, drawn afresh
        assert metrics.bootstrap_ci(values, metrics.sharpe_rows(17520), reps=120) == pair
    assert together[-1] == (0.0, 0.0)  # no dispersion: Sharpe 0 in every resample


def test_sharpe_rows_is_numpys_mean_over_std_exactly():
    rows = np.random.default_rng(3).normal(0.0002, 0.01, (20, 4001))
    sd = rows.std(axis=1, ddof=1)
    want = rows.mean(axis=1) / sd * np.sqrt(17520)
    assert np.array_equal(metrics.sharpe_rows(17520)(rows), want)


@pytest.mark.parametrize("statistic", [metrics.sharpe_rows(17520), metrics.mean_rows])
def test_bootstrap_ci_equals_whole_chunks_of_resamples_bit_for_bit(statistic):
    """bootstrap_cis applies the statistic a few resamples at a time: the interval must be the
    one of the plain construction, every chunk of 50 resamples gathered and reduced at once."""
    values = np.random.default_rng(4).normal(0.0003, 0.01, 2345)
    metrics._bootstrap_indices.cache_clear()
    got = metrics.bootstrap_ci(values, statistic, reps=123, mean_block=7.0, seed=9, chunk=50)
    rng = np.random.default_rng(9)
    drawn = [metrics.stationary_bootstrap_index(2345, r, 7.0, rng) for r in (50, 50, 23)]
    stats = np.concatenate([statistic(values[idx]) for idx in drawn])
    tail = (1 - 0.95) / 2  # 0.025000000000000022, as bootstrap_cis computes it
    assert got == (float(np.quantile(stats, tail)), float(np.quantile(stats, 1 - tail)))
