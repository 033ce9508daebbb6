"""Expected calibration error and the reliability curve against hand computation."""

import numpy as np
import pytest

from fc.core.evaluation import metrics
from fc.core.evaluation.calibration import calibration_figure, ece, reliability


def test_ece_by_hand_with_ten_equal_width_bins():
    p = np.array([0.05, 0.15, 0.12, 0.95, 1.0])
    up = np.array([False, True, False, True, True])
    # bins [0, .1): 0.05 -> |0 - .05|; [.1, .2): .15 and .12 -> |1/2 - .135| twice;
    # [.9, 1] (closed): .95 and 1.0 -> |1 - .975| twice
    assert ece(p, up) == pytest.approx((0.05 + 2 * 0.365 + 2 * 0.025) / 5, abs=1e-15)
    r = reliability(p, up)
    assert r["count"].tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert r["frac_up"][1] == 0.5 and np.isnan(r["frac_up"][5])


def test_a_constant_and_a_hard_predictor():
    up = np.array([True, True, False, True])
    assert ece(np.full(4, 0.6), up) == pytest.approx(0.15)  # |3/4 - 0.6|
    # always up: one bin, p = 1, frequency 3/4; its error rate
    assert ece(np.ones(4), up) == pytest.approx(0.25)
    m = metrics.classifier(np.array([1.0, 0.0, 1.0, 1.0]), np.array([0, 0, 1, 0]), hard=True)
    # says up 3 times (2 right: |2/3 - 1|), down once (wrong: |1 - 0|)
    assert m["ece"] == pytest.approx((3 * (1 / 3) + 1 * 1) / 4)


def test_calibration_figure_has_a_panel_per_range():
    rng = np.random.default_rng(0)
    ranges = {}
    for name in ("train", "validation", "test"):
        p = rng.uniform(0.45, 0.55, 400)
        ranges[name] = (p, rng.random(400) < p)
    figure = calibration_figure(ranges, prior_up=0.51)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["train (400 candles)", "validation (400 candles)", "test (400 candles)"]
    counts = [t.get_text() for t in figure.axes[0].texts]
    assert sum(int(c.replace(",", "")) for c in counts) == 400  # every candle in a bin
