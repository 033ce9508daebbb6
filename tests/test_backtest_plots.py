"""The equity and drawdown plots show mean reversion (the strongest one-line baseline) beside
buy-and-hold and both policies, each curve the wealth the report gives."""

import numpy as np
import pandas as pd
import pytest
from export_runs import synth_run

from fc.core.evaluation.backtest import BacktestConfig
from fc.core.evaluation.backtest_plots import _envelope, drawdown_figure, equity_figure
from fc.core.studies.backtest_run import backtest_run


def test_equity_plot_shows_mean_reversion_beside_buy_and_hold(tmp_path):
    synth_run(tmp_path, days=14, seed=2, outage=[200], seq_len=40, split="2023-01-10")
    report = backtest_run(tmp_path, BacktestConfig(bootstrap_reps=20))
    positions = pd.read_parquet(tmp_path / "backtest" / "positions.parquet")
    lines = {
        line.get_label(): line for line in equity_figure(positions, "2023-01-10", "").axes[0].lines
    }
    for key, label in (
        ("mean_reversion", "mean reversion (opposite of the last candle)"),
        ("buy_and_hold", "buy and hold"),
        ("discrete", "discrete (all in)"),
    ):
        # ranges are chained end to end: the last point is the product of their final wealths
        chained = report["train"][key]["final_wealth"] * report["validation"][key]["final_wealth"]
        assert lines[label].get_ydata()[-1] == pytest.approx(chained, rel=1e-12)
    drawdown = drawdown_figure(positions, "2023-01-10", "").axes[0]
    assert "mean reversion (opposite of the last candle)" in [
        line.get_label() for line in drawdown.lines
    ]


def test_envelope_keeps_each_buckets_first_last_lowest_and_highest_point():
    y = np.cumsum(np.random.default_rng(4).normal(size=80_001))
    keep = _envelope(y, buckets=1000)
    assert np.all(np.diff(keep) > 0) and keep[0] == 0 and keep[-1] == len(y) - 1
    assert len(keep) <= 4 * 1000
    size = -(-len(y) // 1000)
    for start in range(0, len(y), size):  # every bucket's extremes are drawn
        part = np.arange(start, min(start + size, len(y)))
        kept = keep[(keep >= part[0]) & (keep <= part[-1])]
        assert y[kept].min() == y[part].min() and y[kept].max() == y[part].max()
    assert np.array_equal(_envelope(y[:3000], buckets=1000), np.arange(3000))  # few: all
