"""Several symbols: one GRU pooled over a seeded synthetic universe, its backtest's portfolio
recomputed from positions.parquet and the candle files, a leak test across symbols, and the bad
input of issue 20 as one line with nothing left behind."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.synth import synth_candles

runner = CliRunner()
SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT")
SPLIT, TEST = "2023-02-01", "2023-02-20"
QUICK = ["--seq-len", "32", "--hidden", "4", "--layers", "1", "--epochs", "1", "--max-steps",
         "3", "--split", SPLIT, "--test-from", TEST, "--quiet"]  # fmt: skip
DROPPED = ("2023-02-10 12:00", "2023-02-25 06:30")  # BBB candles missing: BBB not eligible
FEE_BPS = 2.0


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def slug(symbol: str) -> str:
    return symbol.replace("/", "_")


def write_universe(folder: Path, poison: str | None = None, after=None) -> dict[str, Path]:
    """Four symbols' 30m candles on one grid, each seeded apart; two BBB candles missing. With
    `poison`, that symbol's candles after `after` are random (valid) OHLCV."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, symbol in enumerate(SYMBOLS):
        frame = synth_candles(days=60, timeframe="30m", seed=10 + i, price=50.0 * (i + 1))
        if symbol == "BBB/USDT":
            frame = frame.drop(pd.DatetimeIndex(DROPPED, tz="UTC"))
        if symbol == poison:
            rng = np.random.default_rng(3)
            late = frame.index > after
            base = rng.uniform(50, 150, late.sum())
            close = base * rng.uniform(0.9, 1.1, late.sum())
            frame.loc[late, ["open", "close"]] = np.column_stack([base, close])
            frame.loc[late, "high"] = np.maximum(base, close) * 1.01
            frame.loc[late, "low"] = np.minimum(base, close) * 0.99
        files[symbol] = folder / f"{slug(symbol)}.parquet"
        frame.to_parquet(files[symbol])
    return files


def data_args(files: dict) -> list[str]:
    return [arg for symbol, path in files.items() for arg in ("--data", f"{symbol}={path}")]


def trained_universe(root: Path, files: dict, quick: list, fee_bps: float):
    """(run, backtest report) of a pooled relative run over `files` ({symbol: candle file})
    trained with `quick` options under root/runs, backtested at fee_bps."""
    args = ["train", "--symbols", ",".join(files), "--target", "relative", *data_args(files)]
    result = runner.invoke(app, args + quick + ["--runs", str(root / "runs")])
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    done = runner.invoke(app, ["backtest", str(run), "--fee-bps", str(fee_bps), "--json"])
    assert done.exit_code == 0, done.output
    return run, json.loads(done.stdout)


@pytest.fixture(scope="module")
def universe_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("universe")
    files = write_universe(root / "data")
    run, report = trained_universe(root, files, QUICK, FEE_BPS)
    return run, files, report


def grid_closes(files: dict) -> pd.DataFrame:
    """Closes on the full 30m grid, a missing candle carrying the last close (a filled bar)."""
    frames = {s: pd.read_parquet(p)["close"] for s, p in files.items()}
    index = pd.date_range(max(f.index[0] for f in frames.values()),
                          min(f.index[-1] for f in frames.values()), freq="30min")  # fmt: skip
    return pd.DataFrame({s: f.reindex(index).ffill() for s, f in frames.items()})


def test_pooled_run_records_every_symbol(universe_run):
    run, files, _ = universe_run
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert config["symbols"] == list(SYMBOLS) and config["target"] == "relative"
    assert set(config["inputs"]) == set(SYMBOLS[1:])
    closes = grid_closes(files)
    last = closes.index.get_loc(pd.Timestamp(config["train_range"][1]))
    for symbol in SYMBOLS:  # training.fit_scaling's rule, per symbol: std of close_t/close_t-1
        change = (closes[symbol] / closes[symbol].shift(1)).to_numpy()
        center, scale = config["symbol_scaling"][symbol]
        assert center == 1.0
        assert scale == pytest.approx(np.std(change[1 : last + 1]), rel=1e-12)
    per_symbol = metrics["symbols"]
    assert list(per_symbol) == list(SYMBOLS)
    counts = [per_symbol[s]["validation"]["decisions"] for s in SYMBOLS]
    assert metrics["validation"]["decisions"] == sum(counts)
    pooled = sum(
        per_symbol[s]["validation"]["ce"] * n for s, n in zip(SYMBOLS, counts, strict=True)
    ) / sum(counts)
    assert metrics["validation"]["ce"] == pytest.approx(pooled, rel=1e-12)
    assert "buy_and_hold_log_growth" not in metrics["baselines"]  # no baseline of a spread


def test_backtest_p_up_equals_training_validation_p_up(universe_run):
    run, _, _ = universe_run
    trained = pd.read_parquet(run / "validation_p_up.parquet")
    rows = pd.read_parquet(run / "backtest" / "positions.parquet").set_index("time")
    decided = rows.loc[rows["range"] == "validation", "p_up_AAA_USDT"].dropna().index
    # BBB is not decided at its missing candle, and training scores a decision only when the
    # next candle is real: BBB has two validation decisions less, the others none
    gap = pd.Timestamp(DROPPED[0], tz="UTC")
    assert gap in decided and np.isnan(rows.loc[gap, "p_up_BBB_USDT"])
    assert len(trained) == 4 * len(decided) - 2
    for symbol in SYMBOLS:
        mine = trained[trained["symbol"] == symbol].set_index("time")["p_up"]
        got = rows.loc[mine.index, f"p_up_{slug(symbol)}"]
        np.testing.assert_allclose(got.to_numpy(), mine.to_numpy(), rtol=0, atol=1e-6)


def test_relative_rows_report_the_classifier_and_the_portfolio(universe_run):
    _, _, report = universe_run
    keys = {"final_wealth", "sharpe", "sharpe_ci95", "psr", "max_drawdown", "decisions",
            "turnover", "trades", "break_even_fee_bps"}  # fmt: skip
    for name in ("train", "validation", "test"):
        portfolio = report[name]["portfolio"]
        assert set(portfolio) == {"long_short", "equal_weight_discrete",
                                  "equal_weight_proportional", "buy_and_hold",
                                  "cross_sectional_reversal",
                                  "cross_sectional_momentum"}  # fmt: skip
        for block in portfolio.values():
            assert keys <= set(block)
        for symbol in SYMBOLS:
            assert set(report[name]["symbols"][symbol]) == {"classifier"}


def loop_wealth(rows: pd.DataFrame, files: dict, weights_at, cost: float) -> list[float]:
    """The portfolio's wealth row by row from the candle files alone: weights_at(k, row) are
    the weights held over bar k's next return, W *= 1 + sum w R - cost sum |w - w_before|."""
    closes = grid_closes(files)
    at = {t: i for i, t in enumerate(closes.index)}
    c = closes.to_numpy()
    w, held, wealth = 1.0, np.zeros(c.shape[1]), []
    for k, (_, row) in enumerate(rows.iterrows()):
        weights = weights_at(k, row)
        i = at[row["time"]]
        gain = (weights * (c[i + 1] / c[i] - 1)).sum() if i + 1 < len(c) else 0.0
        w *= 1 + gain - cost * np.abs(weights - held).sum()
        held = weights
        wealth.append(w)
    return wealth


def weight_columns(policy: str):
    """weights_at for loop_wealth: the policy's weight_<policy>_<SYMBOL> columns of the row."""
    return lambda k, row: np.array([row[f"weight_{policy}_{slug(s)}"] for s in SYMBOLS])


def test_portfolio_wealth_equals_a_recomputation_from_the_files(universe_run):
    run, files, report = universe_run
    rows = pd.read_parquet(run / "backtest" / "positions.parquet")
    cost = FEE_BPS / 1e4
    assert rows["time"].isin(pd.DatetimeIndex(DROPPED, tz="UTC")).sum() == 2  # filled bars kept
    for name, part in rows.groupby("range", sort=False):
        first = part["p_up_AAA_USDT"].notna().to_numpy().argmax()  # the first decision bar
        for policy in ("long_short", "equal_weight_discrete", "equal_weight_proportional",
                       "buy_and_hold"):  # fmt: skip

            def bought(k, row, first=first):  # 1/4 each from the range's first decision on
                return np.full(len(SYMBOLS), 0.25 if k >= first else 0.0)

            weights_at = bought if policy == "buy_and_hold" else weight_columns(policy)
            wealth = loop_wealth(part, files, weights_at, cost)
            np.testing.assert_allclose(part[f"wealth_{policy}"], wealth, rtol=0, atol=1e-9)
            assert report[name]["portfolio"][policy]["final_wealth"] == pytest.approx(
                wealth[-1], abs=1e-9
            )


def test_windows_never_read_another_symbol(universe_run, tmp_path):
    """CCC's candles after T poisoned: every other symbol's p_up is unchanged everywhere, CCC's
    own at or before T."""
    run, _, _ = universe_run
    before = pd.read_parquet(run / "backtest" / "positions.parquet").set_index("time")
    after_t = pd.Timestamp("2023-02-12 09:00", tz="UTC")
    poisoned = write_universe(tmp_path / "poisoned", poison="CCC/USDT", after=after_t)
    result = runner.invoke(app, ["backtest", str(run), "--json", *data_args(poisoned)])
    assert result.exit_code == 0, result.output
    now = pd.read_parquet(run / "backtest" / "positions.parquet").set_index("time")
    assert_only_own_p_up_moved(before, now, SYMBOLS, "CCC/USDT", after_t, "30min")


def assert_only_own_p_up_moved(before, now, symbols, poisoned: str, after, lag: str) -> None:
    """positions.parquet frames (by time) of a backtest before and after `poisoned`'s candles
    after `after` were poisoned: every other symbol's p_up equal everywhere, the poisoned
    one's at or before `after`, and the poisoned one's moved once its inputs (`lag` later)
    read poisoned candles."""
    for symbol in symbols:
        column = f"p_up_{slug(symbol)}"
        keep = before.index <= after if symbol == poisoned else slice(None)
        pd.testing.assert_series_equal(now.loc[keep, column], before.loc[keep, column])
    late, column = now.index > after + pd.Timedelta(lag), f"p_up_{slug(poisoned)}"
    assert not np.allclose(now.loc[late, column], before.loc[late, column])


def test_k_more_than_half_the_universe_is_one_line(universe_run):
    run, _, _ = universe_run
    saved = (run / "backtest" / "positions.parquet").read_bytes()
    one_line_error(runner.invoke(app, ["backtest", str(run), "--k", "3"]), "--k 3", "half")
    assert (run / "backtest" / "positions.parquet").read_bytes() == saved


def test_bad_universe_input_is_one_line_and_leaves_no_run(tmp_path):
    files = write_universe(tmp_path / "data")
    off = synth_candles(days=20, timeframe="30m", seed=5)
    off.index = off.index + pd.Timedelta("15min")  # 30m candles off the others' bars
    off.to_parquet(tmp_path / "off.parquet")
    runs = tmp_path / "runs"
    two = ["--symbols", "AAA/USDT,OFF/USDT", "--data", f"AAA/USDT={files['AAA/USDT']}"]
    cases = [
        (two + ["--data", f"OFF/USDT={tmp_path / 'off.parquet'}"], ("different grids",)),
        (["--symbols", "AAA/USDT,ZZZ/USDT", "--store", str(tmp_path / "store")], ("candles",)),
        (["--data", str(files["AAA/USDT"]), "--target", "relative"], ("--target relative",)),
        (["--symbols", "AAA/USDT", "--target", "relative"], ("--target relative",)),
        (
            [
                "--symbols",
                ",".join(SYMBOLS),
                *data_args(files),
                "--target",
                "relative",
                "--loss",
                "profit",
            ],
            ("--loss profit",),
        ),  # fmt: skip
        (["--symbols", "AAA/USDT,AAA/USDT"], ("twice",)),
    ]
    for args, words in cases:
        result = runner.invoke(app, ["train", *args, *QUICK, "--runs", str(runs)])
        one_line_error(result, *words)
        assert not runs.exists() or not any(runs.iterdir())


def test_sweep_and_tune_train_pooled_runs(tmp_path):
    """fc sweep and fc tune take --symbols too: every run they train is one pooled run over the
    universe, with its target."""
    import optuna  # noqa: F401  (fc tune's study)

    files = write_universe(tmp_path / "data")
    universe = ["--symbols", ",".join(SYMBOLS), "--target", "relative", *data_args(files)]
    small = ["--seq-len", "32", "--epochs", "1", "--max-steps", "2", "--split", SPLIT,
             "--test-from", TEST]  # fmt: skip
    result = runner.invoke(app, ["sweep", *universe, *small, "--layers", "1", "--hidden", "2,4",
                                 "--loss", "ce", "--workers", "1", "--runs",
                                 str(tmp_path / "sweep")])  # fmt: skip
    assert result.exit_code == 0, result.output
    made = sorted((tmp_path / "sweep").glob("*-ce-h*"))
    assert len(made) == 2
    for run in made:
        config = json.loads((run / "config.json").read_text())
        assert config["symbols"] == list(SYMBOLS) and config["target"] == "relative"
        assert set(json.loads((run / "metrics.json").read_text())["symbols"]) == set(SYMBOLS)
    result = runner.invoke(app, ["tune", *universe, *small, "--layers", "1", "--hidden", "2,4",
                                 "--n-trials", "2", "--runs", str(tmp_path / "tune"),
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout)["table"]:
        config = json.loads((Path(row["run_dir"]) / "config.json").read_text())
        assert config["symbols"] == list(SYMBOLS) and config["hidden"] == row["params"]["hidden"]
    objective = ["--objective", "val-policy-log-growth", "--runs", str(tmp_path / "t2")]
    policy = runner.invoke(app, ["tune", *universe, *small, *objective])
    one_line_error(policy, "--symbols")
