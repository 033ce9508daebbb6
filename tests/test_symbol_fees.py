"""Per-symbol fees (`--fee-bps SYMBOL=BPS` beside a default): each symbol's cost, the one wealth
formula with a cost per symbol against a loop over bars and symbols, a scalar cost bit for bit
as before, the config's JSON unchanged without them, and every bad input one line, exit 2."""

import json

import numpy as np
import pytest
from conftest import one_line_error
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from typer.testing import CliRunner

from fc.cli.backtest_options import backtest_config, parse_fees
from fc.cli.main import app
from fc.core.evaluation.backtest import BacktestConfig, cost_vector
from fc.core.evaluation.policies import wealth, wealth_factors
from fc.core.learning.config import TrainConfig

runner = CliRunner()
UNIVERSE = ("BTC/USDT", "ETH/USDT", "PEPE/USDT")
OLD_KEYS = ["fee_bps", "slippage_bps", "start", "end", "bootstrap_reps", "bootstrap_block"]


def test_cost_vector_charges_each_symbol_its_fee_plus_slippage():
    cfg = BacktestConfig(fee_bps=5, slippage_bps=1, symbol_fees={"PEPE/USDT": 15.5})
    assert cost_vector(cfg, UNIVERSE).tolist() == [6e-4, 6e-4, 16.5e-4]
    # the order is the universe's, and a symbol priced below the default is honoured too
    cfg = BacktestConfig(fee_bps=5, symbol_fees={"BTC/USDT": 0, "PEPE/USDT": 20})
    assert cost_vector(cfg, UNIVERSE[::-1]).tolist() == [20e-4, 5e-4, 0.0]
    assert cost_vector(BacktestConfig(fee_bps=2), UNIVERSE).tolist() == [2e-4] * 3


def loop_factors(w, r, c):
    """1 + sum_s w_s R_s - sum_s c_s |w_s,t - w_s,t-1| from flat, one bar and symbol at a time."""
    out, held = [], [0.0] * w.shape[1]
    for t in range(w.shape[0]):
        growth = 1.0
        for s in range(w.shape[1]):
            growth += w[t, s] * r[t, s] - c[s] * abs(w[t, s] - held[s])
        held = list(w[t])
        out.append(growth)
    return np.array(out)


finite = st.floats(-1, 1, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 30), st.integers(1, 6)),
    data=st.data(),
)
def test_per_symbol_cost_equals_a_loop(shape, data):
    w = data.draw(arrays(np.float64, shape, elements=finite))
    w[np.abs(w) < 0.3] = 0.0  # held positions and flat symbols too
    r = data.draw(arrays(np.float64, shape, elements=st.floats(-0.2, 0.2)))
    c = data.draw(arrays(np.float64, shape[1], elements=st.floats(0, 0.01)))
    np.testing.assert_allclose(wealth_factors(w, r, c), loop_factors(w, r, c), rtol=0, atol=1e-12)
    np.testing.assert_allclose(wealth(w, r, c), np.cumprod(loop_factors(w, r, c)), atol=1e-12)
    # a cost vector of one value is the scalar cost (to rounding: c sum |Δw| vs sum c |Δw|)
    same = np.full(shape[1], c[0] if len(c) else 0.0)
    np.testing.assert_allclose(wealth_factors(w, r, same), wealth_factors(w, r, float(same[0])),
                               atol=1e-15)  # fmt: skip


def test_scalar_cost_is_bit_identical_to_the_formula_before():
    rng = np.random.default_rng(3)
    w = rng.choice([-0.5, 0.0, 0.25, 0.5], size=(400, 5))
    r = rng.normal(0, 0.01, size=(400, 5))
    before = 1.0 + (w * r).sum(axis=1) - 7e-4 * np.abs(np.diff(w, axis=0, prepend=0.0)).sum(axis=1)
    assert np.array_equal(wealth_factors(w, r, 7e-4), before)
    f, ret = w[:, 0], r[:, 0]
    one = 1.0 + f * ret - 7e-4 * np.abs(np.diff(f, prepend=0.0))
    assert np.array_equal(wealth_factors(f, ret, 7e-4), one)


def test_a_negative_or_missing_cost_per_symbol_is_refused():
    w, r = np.ones((3, 2)), np.zeros((3, 2))
    for bad in ([1e-4, -1e-4], [np.nan, 0.0]):
        with pytest.raises(Exception, match="cost"):
            wealth_factors(w, r, np.array(bad))


def test_json_without_per_symbol_fees_or_top_is_as_before():
    assert list(BacktestConfig(fee_bps=5).to_dict()) == OLD_KEYS
    cfg = BacktestConfig(fee_bps=5, symbol_fees={"PEPE/USDT": 15}, top=10)
    assert cfg.to_dict() == {**BacktestConfig(fee_bps=5).to_dict(),
                             "symbol_fees": {"PEPE/USDT": 15}, "top": 10}  # fmt: skip
    assert json.loads(json.dumps(cfg.to_dict()))["symbol_fees"] == {"PEPE/USDT": 15}


def test_fee_options_parse_into_a_default_and_symbol_fees():
    assert parse_fees(None) == (0.0, {})
    assert parse_fees(["5"]) == (5.0, {})
    fees = ["PEPE/USDT=15", "2.5", "BTC/USDT:USDT=0"]  # a default anywhere, a futures symbol
    assert parse_fees(fees) == (2.5, {"PEPE/USDT": 15.0, "BTC/USDT:USDT": 0.0})
    cfg = backtest_config(["1", "ETH/USDT=4"], 0.5, 3, start="2024-01-01")
    assert (cfg.fee_bps, cfg.symbol_fees, cfg.top, cfg.start) == (1.0, {"ETH/USDT": 4.0}, 3,
                                                                  "2024-01-01")  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A universe's and one symbol's run folders: their config.json is all fc backtest reads
    before it refuses the options below (nothing is predicted or written)."""
    root = tmp_path_factory.mktemp("fee-runs")
    folders = {}
    for name, config in (("universe", TrainConfig(symbol=UNIVERSE[0], symbols=UNIVERSE)),
                         ("one", TrainConfig(symbol="BTC/USDT"))):  # fmt: skip
        folders[name] = root / name
        folders[name].mkdir()
        (folders[name] / "config.json").write_text(config.to_json() + "\n")
    return folders


BAD = [
    (["--fee-bps", "DOGE/USDT=10"], ("DOGE/USDT", "universe")),
    (["--fee-bps", "PEPE/USDT=ten"], ("PEPE/USDT=ten", "bps >= 0")),
    (["--fee-bps", "PEPE=10"], ("SYMBOL=BPS",)),
    (["--fee-bps", "=10"], ("SYMBOL=BPS",)),
    (["--fee-bps", "PEPE/USDT=-1"], (">= 0",)),
    (["--fee-bps", "-1"], (">= 0",)),
    (["--fee-bps", "PEPE/USDT=inf"], (">= 0",)),
    (["--fee-bps", "PEPE/USDT=1", "--fee-bps", "PEPE/USDT=2"], ("twice",)),
    (["--fee-bps", "1", "--fee-bps", "2"], ("one default",)),
    (["--top", "0"], ("--top 0", ">= 1")),
    (["--top", "-3"], ("--top -3",)),
]


@pytest.mark.parametrize(("args", "words"), BAD)
def test_bad_fee_and_top_options_of_a_universe_backtest_are_one_line(runs, args, words):
    one_line_error(runner.invoke(app, ["backtest", str(runs["universe"]), *args]), *words)
    assert sorted(p.name for p in runs["universe"].iterdir()) == ["config.json"]


@pytest.mark.parametrize(("args", "words"), BAD)
def test_bad_fee_and_top_options_of_a_universe_walk_are_one_line(tmp_path, args, words):
    walk = ["walk", "--symbols", ",".join(UNIVERSE), "--start", "2023-01-01", "--runs",
            str(tmp_path / "runs"), "--store", str(tmp_path / "store")]  # fmt: skip
    one_line_error(runner.invoke(app, [*walk, *args]), *words)
    assert not (tmp_path / "runs").exists()


ONE_SYMBOL = [
    (["--fee-bps", "BTC/USDT=10"], ("--fee-bps BTC/USDT=BPS", "one symbol")),
    (["--top", "1"], ("--top", "one symbol")),
]


@pytest.mark.parametrize(("args", "words"), ONE_SYMBOL)
def test_per_symbol_fees_and_top_on_one_symbol_are_one_line(runs, tmp_path, args, words):
    """A one-symbol run pays --fee-bps BPS: a SYMBOL=BPS there is refused, even its own symbol
    (the same fee is plain --fee-bps), and --top has nothing to choose among."""
    one_line_error(runner.invoke(app, ["backtest", str(runs["one"]), *args]), *words)
    walk = ["walk", "--symbol", "BTC/USDT", "--start", "2023-01-01", "--runs",
            str(tmp_path / "runs"), "--store", str(tmp_path / "store")]  # fmt: skip
    one_line_error(runner.invoke(app, [*walk, *args]), *words)
    assert not (tmp_path / "runs").exists()
