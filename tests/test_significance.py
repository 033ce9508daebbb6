"""PSR and the deflated Sharpe ratio against the papers' formulas, written out independently in
tests/paper_formulas.py, and against the deflated Sharpe paper's own numerical example."""

import math

import numpy as np
import paper_formulas as paper
import pytest

from fc.core.evaluation import significance
from fc.core.studies.sweep import sweep_best


def test_the_deflated_sharpe_papers_numerical_example():
    # Bailey and Lopez de Prado (2014), section "A numerical example": N = 100 trials whose
    # annualised Sharpes vary by 1/2, the best 2.5 annualised over 1,250 daily returns (250 a
    # year) with skewness -3 and kurtosis 10; the paper gets SR0 = 0.1132 and DSR = 0.9004
    sr0 = significance.expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = significance.psr_from_moments(2.5 / math.sqrt(250), -3.0, 10.0, 1250, sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    assert sr0 == pytest.approx(paper.sr0(100, 0.5 / 250), rel=1e-9)


def test_psr_of_fat_tailed_returns_equals_the_formula_by_hand():
    r = np.random.default_rng(3).standard_t(4, 500) * 0.01 + 0.001
    sharpe, skew, kurt = paper.sharpe_skew_kurtosis(list(r))
    assert kurt > 3.5  # fat tails: the correction matters
    assert significance.psr(r) == pytest.approx(paper.psr(sharpe, skew, kurt, 500), abs=1e-12)
    assert significance.psr(r, 0.05) == pytest.approx(paper.psr(sharpe, skew, kurt, 500, 0.05))
    assert significance.psr(-r) == pytest.approx(1 - significance.psr(r), abs=1e-12)


def test_deflated_sharpe_by_hand_and_one_trial_is_no_deflation():
    rng = np.random.default_rng(4)
    trials = [rng.normal(0.0005 * k, 0.01, 800) for k in range(6)]
    sharpes = [paper.sharpe_skew_kurtosis(list(t))[0] for t in trials]
    best = trials[int(np.argmax(sharpes))]
    s, g3, g4 = paper.sharpe_skew_kurtosis(list(best))
    expected = paper.psr(s, g3, g4, 800, paper.sr0(6, paper.sample_variance(sharpes)))
    assert significance.deflated_sharpe(best, sharpes) == pytest.approx(expected, abs=1e-9)
    assert significance.deflated_sharpe(best, sharpes) < significance.psr(best)
    assert significance.deflated_sharpe(best, sharpes[:1]) == significance.psr(best)
    assert significance.expected_max_sharpe(1, 0.3) == 0.0


def test_degenerate_returns_have_no_psr():
    assert math.isnan(significance.psr(np.zeros(50)))
    assert math.isnan(significance.psr(np.array([0.01])))


def test_sweep_best_deflates_the_best_validation_sharpe_for_n_runs():
    rng = np.random.default_rng(5)
    series = {f"run{k}": rng.normal(0.0003 * k, 0.01, 600) for k in range(4)}
    results = [
        {"run": name, "metrics": {"validation": {"returns": significance.moments(r)}}}
        for name, r in series.items()
    ]
    best = sweep_best(results)
    sharpes = [paper.sharpe_skew_kurtosis(list(r))[0] for r in series.values()]
    name = max(series, key=lambda k: paper.sharpe_skew_kurtosis(list(series[k]))[0])
    s, g3, g4 = paper.sharpe_skew_kurtosis(list(series[name]))
    assert best["best"] == name and best["n_trials"] == 4
    expected = paper.psr(s, g3, g4, 600, paper.sr0(4, paper.sample_variance(sharpes)))
    assert best["dsr"] == pytest.approx(expected, abs=1e-9)
