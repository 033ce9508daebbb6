"""LightGBM and logistic regression pooled over a universe (issue 26, `fc train --family
lightgbm|logistic --symbols`): a seeded three-symbol universe with a planted signal learnt for
both targets; the pooled model equal to the family fitted on every symbol's rows built here by
hand and stacked; no row reading another symbol's candles (one symbol poisoned); one exported
graph for every symbol, in parity with the model per symbol; its replay through the paper
service equal to `fc backtest --model` to 1e-9, `fc paper diff` at 0 differences; fc walk and
fc tune of a pooled tabular family; what is refused, one line."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from test_universe import assert_only_own_p_up_moved, data_args
from test_universe_live import backtest_and_replay
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.candles import OHLCV
from fc.core.data.universe import universe_grids
from fc.core.learning.config import TrainConfig
from fc.core.learning.family import family_of
from fc.core.learning.lightgbm_model import LightGBMModel
from fc.core.learning.logistic_model import LogisticModel
from fc.live.journal import Journal

runner = CliRunner()
SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT")
SEQ_LEN, LAGS, BARS = 16, 4, 2400
SPLIT, TEST = "2024-02-05", "2024-02-15"
TRAIN = ["--seq-len", str(SEQ_LEN), "--lags", str(LAGS), "--split", SPLIT, "--test-from", TEST,
         "--quiet"]  # fmt: skip
MODELS = {"lightgbm": LightGBMModel, "logistic": LogisticModel}
FITS = {family: model.fit for family, model in MODELS.items()}  # before any spy replaces them
FEE_BPS, CAPITAL = 2.0, 10_000.0


def planted(seed: int, price: float, poison_after=None) -> pd.DataFrame:
    """30m candles whose log returns are AR(1) with phi = -0.5 (the next move's sign is opposite
    the last one's 2 times in 3); after `poison_after`, random valid candles instead."""
    rng = np.random.default_rng(seed)
    noise, r = rng.normal(0, 0.004, BARS), np.zeros(BARS)
    for t in range(1, BARS):
        r[t] = -0.5 * r[t - 1] + noise[t]
    close = price * np.exp(np.cumsum(r))
    index = pd.date_range("2024-01-01", periods=BARS, freq="30min", tz="UTC", name="timestamp")
    if poison_after is not None:
        late = index > poison_after
        close[late] = np.random.default_rng(99).uniform(0.5, 2.0, late.sum()) * price
    open_ = np.r_[price, close[:-1]]
    values = [open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones(BARS)]
    return pd.DataFrame(np.column_stack(values), index=index, columns=OHLCV)


def write_universe(folder: Path, poison: str | None = None, after=None) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, symbol in enumerate(SYMBOLS):
        frame = planted(20 + i, 50.0 * (i + 1), after if symbol == poison else None)
        files[symbol] = folder / f"{symbol.replace('/', '_')}.parquet"
        frame.to_parquet(files[symbol])
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_universe(tmp_path_factory.mktemp("pooled_tabular"))


@pytest.fixture(scope="module")
def runs(files, tmp_path_factory):
    """{(family, target): run folder}, each trained by fc train --symbols."""
    root, out = tmp_path_factory.mktemp("runs"), {}
    for family in MODELS:
        for target in ("next", "relative"):
            args = ["train", "--family", family, "--symbols", ",".join(SYMBOLS), "--target",
                    target, *data_args(files), *TRAIN, "--runs", str(root)]  # fmt: skip
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output
            out[family, target] = Path(result.stdout.strip().splitlines()[-1])
    return out


def by_hand(files: dict, target: str):
    """{range: (rows, up)} of every symbol's decisions stacked in SYMBOLS' order, from the
    closes alone: a row is close[t-k] / close[t-k-1], k = LAGS-1 .. 0, of the symbol's own
    closes; up: its next close >= this one (next), or its next return >= the mean of the
    three (relative)."""
    closes = np.column_stack([pd.read_parquet(files[s])["close"].to_numpy() for s in SYMBOLS])
    index = pd.read_parquet(files[SYMBOLS[0]]).index
    t = np.arange(SEQ_LEN, BARS - 1)
    ranges = {"train": t[index[t] < pd.Timestamp(SPLIT, tz="UTC")],
              "validation": t[(index[t] >= pd.Timestamp(SPLIT, tz="UTC"))
                              & (index[t] < pd.Timestamp(TEST, tz="UTC"))]}  # fmt: skip
    ahead = closes[1:] / closes[:-1] - 1.0
    if target == "relative":
        ahead = ahead - ahead.mean(axis=1, keepdims=True)
    out = {}
    for name, ends in ranges.items():
        rows = [np.column_stack([closes[ends - k, i] / closes[ends - k - 1, i]
                                 for k in range(LAGS - 1, -1, -1)])
                for i in range(len(SYMBOLS))]  # fmt: skip
        up = [ahead[ends, i] >= 0 for i in range(len(SYMBOLS))]
        out[name] = (np.concatenate(rows), np.concatenate(up))
    return out


@pytest.mark.parametrize("target", ["next", "relative"])
@pytest.mark.parametrize("family", list(MODELS))
def test_pooled_model_learns_the_planted_signal_for_every_symbol(runs, family, target):
    run = runs[family, target]
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert config["family"] == family and config["symbols"] == list(SYMBOLS)
    assert config["target"] == target and config["symbol_scaling"] == {}
    assert list(metrics["symbols"]) == list(SYMBOLS)
    assert metrics["validation"]["accuracy"] > 0.58  # 2/3 possible for next, ~0.63 relative
    for block in metrics["symbols"].values():
        assert block["validation"]["accuracy"] > 0.55
    counts = [metrics["symbols"][s]["validation"]["decisions"] for s in SYMBOLS]
    assert metrics["validation"]["decisions"] == sum(counts)
    assert ("buy_and_hold_log_growth" in metrics["baselines"]) == (target == "next")


@pytest.mark.parametrize("target", ["next", "relative"])
@pytest.mark.parametrize("family", list(MODELS))
def test_pooled_model_equals_the_family_fitted_on_rows_stacked_by_hand(runs, files, family,
                                                                       target):  # fmt: skip
    run = runs[family, target]
    rows = by_hand(files, target)
    model_class = MODELS[family]
    params = {} if family == "logistic" else {"seed": 0, "threads": 2}
    mine = model_class(**params).fit(*rows["train"], *rows["validation"])
    saved = model_class.load(run)
    p_up = pd.read_parquet(run / "validation_p_up.parquet")
    assert list(p_up["symbol"].unique()) == list(SYMBOLS)
    np.testing.assert_array_equal(p_up["p_up"].to_numpy(), mine.p_up(rows["validation"][0]))
    if family == "logistic":  # exact: the same rows, labels and lbfgs fits
        np.testing.assert_array_equal(saved.coef_, mine.coef_)
        assert saved.intercept_ == mine.intercept_ and saved.c_ == mine.c_
    else:
        assert saved.best_iteration_ == mine.best_iteration_


def captured_rows(files: dict, family: str, monkeypatch, symbols=SYMBOLS) -> dict:
    """The rows and labels the model class's fit receives from the pooled fit of `files`."""
    seen = {}
    model_class = MODELS[family]
    fit = FITS[family]

    def spy(self, x_train, up_train, x_val, up_val):
        seen.update(train=np.array(x_train), validation=np.array(x_val),
                    up_train=np.array(up_train), up_validation=np.array(up_val))  # fmt: skip
        return fit(self, x_train, up_train, x_val, up_val)

    monkeypatch.setattr(model_class, "fit", spy)
    grids, _ = universe_grids("close", symbols, "30m", files, None)
    config = TrainConfig(family=family, symbol=symbols[0], symbols=symbols, timeframe="30m",
                         seq_len=SEQ_LEN, lags=LAGS, split=SPLIT, test_from=TEST,
                         target="relative")  # fmt: skip
    family_of(config).fit_universe(config, grids)
    return seen


def test_a_row_never_reads_another_symbols_candles(files, tmp_path, monkeypatch):
    """BBB's candles after T poisoned: AAA's and CCC's rows are bit for bit the same, BBB's
    own at or before T; its later rows do change."""
    after = pd.Timestamp("2024-01-25", tz="UTC")
    clean = captured_rows(files, "logistic", monkeypatch)
    poisoned = captured_rows(write_universe(tmp_path, "BBB/USDT", after), "logistic", monkeypatch)
    index = pd.read_parquet(files["AAA/USDT"]).index
    t = np.arange(SEQ_LEN, BARS - 1)  # every decision bar (no gaps: the same for each symbol)
    split, test = pd.Timestamp(SPLIT, tz="UTC"), pd.Timestamp(TEST, tz="UTC")
    for name, times in (
        ("train", index[t][index[t] < split]),
        ("validation", index[t][(index[t] >= split) & (index[t] < test)]),
    ):
        a = clean[name].reshape(3, len(times), LAGS)
        b = poisoned[name].reshape(3, len(times), LAGS)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[2], b[2])
        early = np.asarray(times <= after)
        np.testing.assert_array_equal(a[1][early], b[1][early])
        if (~early).any():
            assert not np.array_equal(a[1][~early], b[1][~early])


def test_backtest_p_up_never_reads_another_symbol(runs, files, tmp_path):
    """Through fc backtest: CCC poisoned after T moves no other symbol's p_up, nor CCC's at or
    before T."""
    run = tmp_path / "run"
    shutil.copytree(runs["lightgbm", "relative"], run)
    after = pd.Timestamp("2024-02-10", tz="UTC")
    frames = []
    for data in (files, write_universe(tmp_path / "poisoned", "CCC/USDT", after)):
        result = runner.invoke(app, ["backtest", str(run), "--json", *data_args(data)])
        assert result.exit_code == 0, result.output
        frames.append(pd.read_parquet(run / "backtest" / "positions.parquet").set_index("time"))
    assert_only_own_p_up_moved(*frames, SYMBOLS, "CCC/USDT", after, "30min")


@pytest.fixture(scope="module")
def exported(runs):
    """{family: (run, fc export's JSON report)} of the relative runs."""
    out = {}
    for family in MODELS:
        run = runs[family, "relative"]
        result = runner.invoke(app, ["export", str(run), "--onnx", "--windows", "0", "--json"])
        assert result.exit_code == 0, result.output
        out[family] = run, json.loads(result.stdout)
    return out


@pytest.mark.parametrize("family", list(MODELS))
def test_one_graph_for_every_symbol_in_parity_with_the_model(exported, family):
    from fc.live.universe_model import load_universe_predictor

    run, report = exported[family]
    metrics = json.loads((run / "metrics.json").read_text())
    for symbol in SYMBOLS:
        assert (
            report["windows"][f"onnx_real:{symbol}"]
            == (metrics["symbols"][symbol]["validation"]["decisions"])
        )
        assert report["max_abs_diff"][f"onnx_real:{symbol}"] <= 1e-6
    assert report["ok"] and report["step_onnx"] is None
    predictor = load_universe_predictor(run / "export" / "model.onnx")
    assert predictor.symbols == SYMBOLS and predictor.target == "relative"
    assert predictor.graph.meta["family"] == family
    windows = {s: np.random.default_rng(i).normal(1, 0.01, SEQ_LEN) for i, s in enumerate(SYMBOLS)}
    alone = [predictor.p_up_at(s, windows[s], np.array([SEQ_LEN - 1]))[0] for s in SYMBOLS]
    assert predictor.p_up_row(windows).tolist() == alone  # the live row is the backtest's


def test_replay_of_the_graph_equals_backtest_with_it(exported, files, tmp_path):
    """fc backtest --model, then fc paper --replay from the test range's first decision: the
    portfolio's wealth and weights and every symbol's p_up as the backtest's; fc paper diff
    finds no difference."""
    run, _ = exported["lightgbm"]
    model = run / "export" / "model.onnx"
    journal = tmp_path / "paper.sqlite"
    test, _ = backtest_and_replay(run, model, files, journal)
    rows = Journal(journal, read_only=True).decisions()
    for strategy in ("long_short", "equal_weight_discrete", "equal_weight_proportional"):
        book = rows[(rows.symbol == "portfolio") & (rows.policy == strategy)]
        book = book.sort_values("candle_ms").reset_index(drop=True)
        want = np.r_[1.0, test[f"wealth_{strategy}"].to_numpy()]
        np.testing.assert_allclose(book.wealth / CAPITAL, want, rtol=0, atol=1e-9)
    for symbol in SYMBOLS:
        mine = rows[(rows.symbol == symbol) & (rows.policy == "discrete")]
        mine = mine.sort_values("candle_ms").iloc[:-1]
        np.testing.assert_array_equal(mine.p_up, test[f"p_up_{symbol.replace('/', '_')}"])
    diff = runner.invoke(app, ["paper", "diff", "--run", str(run), "--journal", str(journal),
                               *data_args(files), "--json"])  # fmt: skip
    assert diff.exit_code == 0, diff.output
    assert json.loads(diff.stdout)["differing"] == 0


def test_walk_takes_a_pooled_tabular_family(files, tmp_path):
    walk = ["walk", "--family", "logistic", "--symbols", ",".join(SYMBOLS), "--target",
            "relative", *data_args(files), "--seq-len", str(SEQ_LEN), "--lags", str(LAGS),
            "--start", "2024-02-12", "--every", "7D", "--val", "7D", "--quiet",
            "--runs", str(tmp_path / "walk"), "--json"]  # fmt: skip
    result = runner.invoke(app, walk)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["folds"]) >= 2 and set(report["backtest"]["symbols"]) == set(SYMBOLS)
    predictions = pd.read_parquet(Path(report["walk"]) / "predictions.parquet")
    assert set(predictions["symbol"]) == set(SYMBOLS) and predictions["p_up"].notna().all()


def test_tune_takes_a_pooled_tabular_family(files, tmp_path):
    tune = ["tune", "--family", "lightgbm", "--symbols", ",".join(SYMBOLS), *data_args(files),
            "--seq-len", str(SEQ_LEN), "--lags", str(LAGS), "--lr", "0.03,0.1", "--split", SPLIT,
            "--test-from", TEST,
            "--n-trials", "2", "--runs", str(tmp_path / "tune"), "--json"]  # fmt: skip
    result = runner.invoke(app, tune)
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout)["table"]:
        config = json.loads((Path(row["run_dir"]) / "config.json").read_text())
        assert config["symbols"] == list(SYMBOLS) and config["family"] == "lightgbm"


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--family", "lightgbm", "--seeds", "2"], ("--seeds",)),
        (["--family", "logistic", "--hidden", "8"], ("--hidden 8", "logistic")),
        (["--family", "lightgbm", "--lags", "99"], ("--lags 99",)),
    ],
)
def test_what_a_pooled_tabular_run_does_not_take_is_one_line(files, tmp_path, extra, words):
    runs = tmp_path / "runs"
    args = ["train", "--symbols", ",".join(SYMBOLS), *data_args(files), "--seq-len",
            str(SEQ_LEN), "--split", SPLIT, "--quiet", "--runs", str(runs)]  # fmt: skip
    one_line_error(runner.invoke(app, [*args, *extra]), *words)
    assert not runs.exists() or not any(runs.iterdir())


def test_torchscript_of_a_pooled_tabular_run_is_one_line(exported):
    run, _ = exported["logistic"]
    result = runner.invoke(app, ["export", str(run), "--onnx", "--torchscript"])
    one_line_error(result, "--torchscript")
