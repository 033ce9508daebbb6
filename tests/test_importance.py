"""Permutation importance: a column the model reads loses log loss when shuffled, a column it
ignores loses exactly nothing, the numbers equal a direct computation, and `fc backtest
--importance` reports every feature group on every range, test first."""

import json

import numpy as np
import pytest
from test_feature_runs import feature_run, one_thread  # noqa: F401  (module fixtures)
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.feature_set import parse_features
from fc.core.studies.importance import feature_groups, permutation_importance

runner = CliRunner()


def planted(n=6000, seed=0):
    """Two columns; the truth (and the model) read column 0 only."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    p_up = 1 / (1 + np.exp(-2.0 * x[:, 0]))
    labels = np.where(rng.random(n) < p_up, 0, 1)
    return x, labels


def model(features, ends):
    return 1 / (1 + np.exp(-2.0 * np.asarray(features)[ends, 0]))


def test_a_read_column_matters_and_an_ignored_one_is_exactly_zero():
    x, labels = planted()
    spec = parse_features("ret,range", "BTC/USDT")
    parts = {"test": np.r_[np.zeros(3000, bool), np.ones(3000, bool)],
             "validation": np.r_[np.ones(3000, bool), np.zeros(3000, bool)]}  # fmt: skip
    base = model(x, np.arange(len(x)))
    report = permutation_importance(model, x, labels, base, parts, spec)
    assert list(report) == ["test", "validation"]  # test first
    for name in report:
        read, ignored = report[name]["ret"], report[name]["range"]
        assert read["delta_log_loss"] > 0.2 and read["ci95"][0] > 0.15
        assert ignored["delta_log_loss"] == 0.0 and ignored["ci95"] == [0.0, 0.0]
        assert read["decisions"] == 3000


def test_the_importance_is_the_mean_log_loss_difference_of_the_same_permutation():
    x, labels = planted(n=500, seed=3)
    spec = parse_features("ret,range", "BTC/USDT")
    parts = {"test": np.ones(500, bool)}
    base = model(x, np.arange(500))
    got = permutation_importance(model, x, labels, base, parts, spec, seed=11)
    order = np.random.default_rng(11).permutation(500)  # the first group's permutation
    shuffled = x.copy()
    shuffled[:, 0] = x[order, 0]

    def loss(p):
        return -np.where(labels == 0, np.log(p), np.log(1 - p))

    want = np.mean(loss(model(shuffled, np.arange(500))) - loss(base))
    assert got["test"]["ret"]["delta_log_loss"] == pytest.approx(want, abs=1e-12)


def test_groups_follow_the_declared_items():
    spec = parse_features("close,wicks,time,ret@ETH/USDT", "BTC/USDT")
    assert feature_groups(spec) == {"close": [0], "wicks": [1, 2], "time": [3, 4, 5, 6],
                                    "ret@ETH/USDT": [7]}  # fmt: skip


def test_fc_backtest_importance_reports_every_group_on_every_range(feature_run):  # noqa: F811
    run, _, _ = feature_run
    result = runner.invoke(app, ["backtest", str(run), "--importance", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["importance"]
    assert list(report) == ["test", "validation", "train"]
    groups = ["close", "ret", "range", "volume:8", "time", "ret@ETH/USDT"]
    for name in report:
        assert list(report[name]) == groups
        for value in report[name].values():
            low, high = value["ci95"]
            assert low <= value["delta_log_loss"] <= high
    assert (run / "backtest" / "importance.png").is_file()
