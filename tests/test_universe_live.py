"""A pooled five-symbol model (trained, relative target, k 2) exported as one window graph: its
parity per symbol against torch and the metadata the live loop reads; its replay through one
paper service equal to `fc backtest --model` to 1e-9 (every symbol and the portfolio), `fc paper
diff` at 0 differences, and the report and status of its journal."""

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from typer.testing import CliRunner
from universe_presence import write_frames

from fc.cli.main import app
from fc.core.data.synth import synth_candles
from fc.live.journal import Journal
from fc.live.universe_model import load_universe_predictor

runner = CliRunner()
SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT", "EEE/USDT")
SPLIT, TEST = "2023-01-25", "2023-02-01"
QUICK = ["--seq-len", "32", "--hidden", "4", "--layers", "1", "--epochs", "1", "--max-steps",
         "3", "--split", SPLIT, "--test-from", TEST, "--quiet"]  # fmt: skip
FEE_BPS, CAPITAL = 2.0, 10_000.0


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def write_universe(folder: Path) -> dict[str, Path]:
    """Five symbols' 30m candles on one grid, each seeded apart."""
    frames = {symbol: synth_candles(days=40, timeframe="30m", seed=10 + i, price=50.0 * (i + 1))
              for i, symbol in enumerate(SYMBOLS)}  # fmt: skip
    return write_frames(frames, folder)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(run, files, model.onnx, fc export's JSON report) of a relative-target universe, k 2."""
    root = tmp_path_factory.mktemp("universe_live")
    files = write_universe(root / "data")
    run, report = trained_and_exported(root, files, QUICK)
    return run, files, run / "export" / "model.onnx", report


def backtest_and_replay(run: Path, model: Path, files: dict, journal: Path, extra=()):
    """(positions.parquet's test rows of fc backtest --model at FEE_BPS, fc paper --replay's
    result): the graph replayed over `files` into `journal` from the test range's first
    decision, with CAPITAL; `extra` options for the backtest (e.g. --k 2)."""
    done = runner.invoke(app, ["backtest", str(run), "--model", str(model), "--fee-bps",
                               str(FEE_BPS), *extra, "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    frame = pd.read_parquet(run / "backtest" / "positions.parquet")
    test = frame[frame["range"] == "test"].reset_index(drop=True)
    replay = [a for s, p in files.items() for a in ("--replay", f"{s}={p}")]
    start = test.time.iloc[0].strftime("%Y-%m-%dT%H:%M")
    args = ["paper", *replay, "--model", str(model), "--journal", str(journal), "--fee-bps",
            str(FEE_BPS), "--capital", str(CAPITAL), "--start", start, "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return test, result


def trained_and_exported(root: Path, files: dict, quick: list):
    """(run, fc export's JSON report) of a relative-target universe over `files` ({symbol:
    candle file}) trained with `quick` under root/runs, exported to ONNX with k 2."""
    data = [a for s, p in files.items() for a in ("--data", f"{s}={p}")]
    args = ["train", "--symbols", ",".join(files), "--target", "relative", *data, *quick]
    result = runner.invoke(app, args + ["--runs", str(root / "runs")])
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    done = runner.invoke(app, ["export", str(run), "--onnx", "--k", "2", "--json"])
    assert done.exit_code == 0, done.output
    return run, json.loads(done.stdout)


def test_one_graph_is_within_1e5_of_torch_for_every_symbol(exported):
    _, _, _, report = exported
    for symbol in SYMBOLS:
        assert report["windows"][f"onnx_real:{symbol}"] > 100
        assert report["max_abs_diff"][f"onnx_real:{symbol}"] <= 1e-5
    assert report["ok"] and report["step_onnx"] is None and report["torchscript"] is None


def test_metadata_carries_symbols_target_scaling_and_k(exported):
    run, _, model, _ = exported
    config = json.loads((run / "config.json").read_text())
    predictor = load_universe_predictor(model)
    assert predictor.symbols == SYMBOLS and predictor.target == "relative"
    assert predictor.portfolio_params.k == 2
    for symbol in SYMBOLS:
        assert list(predictor.scaling[symbol]) == config["symbol_scaling"][symbol]
    # the graph itself is neutral: a symbol's scaling is applied before it, in float64
    assert predictor.graph.meta["scale_center"] == (0.0,)


def test_a_row_of_symbols_equals_each_symbol_alone(exported):
    _, _, model, _ = exported
    predictor = load_universe_predictor(model)
    rng = np.random.default_rng(0)
    windows = {s: rng.normal(0, 0.01, predictor.seq_len) for s in SYMBOLS}
    row = predictor.p_up_row(windows)
    alone = [
        predictor.p_up_at(s, windows[s], np.array([predictor.seq_len - 1]))[0] for s in SYMBOLS
    ]
    assert row.tolist() == alone  # bitwise: the backtest's --model path is the live one


@pytest.mark.parametrize(
    "extra, words",
    [(["--torchscript"], ("--torchscript", "--onnx alone")), (["--k", "3"], ("--k 3", "<= 2"))],
)
def test_what_a_universe_export_does_not_take_is_one_line(exported, extra, words):
    run, _, _, _ = exported
    result = runner.invoke(app, ["export", str(run), "--onnx", *extra])
    one_line_error(result, *words)


@pytest.fixture(scope="module")
def replayed(exported, tmp_path_factory):
    """fc backtest --model of the graph at 2 bps (k 2, as exported), and fc paper --replay of
    the five symbols from the test range's first decision: (positions.parquet test rows, the
    journal's rows, the replay's JSON report)."""
    run, files, model, _ = exported
    journal = tmp_path_factory.mktemp("journal") / "paper.sqlite"
    test, result = backtest_and_replay(run, model, files, journal, ["--k", "2"])
    rows = Journal(journal, read_only=True).decisions()
    return test, rows, json.loads(result.stdout), journal


def journal_series(rows: pd.DataFrame, symbol: str, policy: str, last=True) -> pd.DataFrame:
    """One (symbol, policy)'s rows, oldest first; last=False drops the file's last candle."""
    got = rows[(rows.symbol == symbol) & (rows.policy == policy)].sort_values("candle_ms")
    assert (got.kind == "decision").all()
    return got.reset_index(drop=True).iloc[: None if last else -1]


def test_replay_decides_every_symbol_on_the_backtest_candles(replayed):
    test, rows, report, _ = replayed
    times = test.time.astype("int64") // 1_000_000
    # and the file's last candle, which the backtest does not decide (no next candle to earn)
    times = [*times.tolist(), int(times.iloc[-1]) + 30 * 60_000]
    for symbol in (*SYMBOLS, "portfolio"):
        policies = ("long_short", "equal_weight_discrete", "equal_weight_proportional")
        for policy in ("discrete", "proportional") if symbol != "portfolio" else policies:
            assert journal_series(rows, symbol, policy).candle_ms.tolist() == times
    assert report["replay"]["decisions"] == len(times) and report["skipped"] == 0


def test_portfolio_wealth_equals_the_backtest_to_1e9(replayed):
    test, rows, report, _ = replayed
    for strategy in ("long_short", "equal_weight_discrete", "equal_weight_proportional"):
        book = journal_series(rows, "portfolio", strategy)
        # the journal's wealth at t is realised at t's close; the backtest's row t holds it after
        # t's weights earned R_{t+1}: the journal's at the next candle
        want = np.r_[1.0, test[f"wealth_{strategy}"].to_numpy()]
        np.testing.assert_allclose(book.wealth / CAPITAL, want, rtol=0, atol=1e-9)
        book = book.iloc[:-1]
        weights = np.array([[json.loads(p)["weights"][s] for s in SYMBOLS]
                            for p in book.policy_params])  # fmt: skip
        columns = [f"weight_{strategy}_{s.replace('/', '_')}" for s in SYMBOLS]
        np.testing.assert_allclose(weights, test[columns].to_numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(book.position, np.abs(weights).sum(axis=1), atol=1e-12)
        if strategy == "long_short":  # k 2: +-1/4 on four of five symbols, net 0
            assert sorted(np.abs(weights[0])) == [0.0, 0.25, 0.25, 0.25, 0.25]
            assert np.abs(weights.sum(axis=1)).max() < 1e-15
    final = report["portfolio"]["long_short"]["final_wealth"]
    assert final == pytest.approx(CAPITAL * test["wealth_long_short"].iloc[-1], abs=1e-9)


def test_each_symbol_equals_the_backtest_and_its_own_wealth(replayed):
    test, rows, _, _ = replayed
    cost = FEE_BPS / 1e4
    for symbol in SYMBOLS:
        slug = symbol.replace("/", "_")
        for policy in ("discrete", "proportional"):
            got = journal_series(rows, symbol, policy, last=False)
            np.testing.assert_allclose(got.p_up, test[f"p_up_{slug}"], rtol=0, atol=1e-12)
            f = test[f"weight_equal_weight_{policy}_{slug}"].to_numpy() * len(SYMBOLS)
            np.testing.assert_allclose(got.position, f, rtol=0, atol=1e-12)
            # independent: W_{i+1} = W_i (1 + f_i R_{i+1} - c |f_i - f_{i-1}|) from the closes
            close = got.close.to_numpy()
            trade = np.abs(np.diff(f, prepend=0.0))
            steps = 1.0 + f[:-1] * (close[1:] / close[:-1] - 1.0) - cost * trade[:-1]
            want = CAPITAL * np.r_[1.0, np.cumprod(steps)]
            np.testing.assert_allclose(got.wealth, want, rtol=1e-12, atol=1e-9)


def test_paper_diff_finds_no_difference_then_finds_an_edit(replayed, exported, tmp_path):
    _, _, _, journal = replayed
    run, files, _, _ = exported
    data = [a for s, p in files.items() for a in ("--data", f"{s}={p}")]
    args = ["paper", "diff", "--run", str(run), "--journal", str(journal), *data, "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["differing"] == 0 and report["matches"]
    assert set(report["symbols"]) == set(SYMBOLS) and len(report["portfolio"]) == 3
    assert all(s["compared"] > 400 for s in report["symbols"].values())
    # a copy with one portfolio row's wealth nudged by 1e-6: exactly that candle differs
    edited = tmp_path / "edited.sqlite"
    shutil.copy(journal, edited)
    with sqlite3.connect(edited) as db:
        db.execute("UPDATE decisions SET wealth = wealth * (1 + 1e-6) WHERE symbol = 'portfolio' "
                   "AND policy = 'long_short' AND candle_ms = (SELECT MAX(candle_ms) FROM "
                   "decisions)")  # fmt: skip
    args[args.index(str(journal))] = str(edited)
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["differing"] == 1 and report["portfolio"]["long_short"]["differing"] == 1


def test_report_and_status_of_a_universe_journal(replayed):
    test, rows, _, journal = replayed
    result = runner.invoke(app, ["paper", "report", "--journal", str(journal), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["symbols"]) == set(SYMBOLS)
    book = journal_series(rows, "portfolio", "long_short")
    assert report["portfolio"]["long_short"]["final_wealth"] == book.wealth.iloc[-1]
    assert report["portfolio"]["long_short"]["turnover"] == pytest.approx(book.trade.sum())
    shown = runner.invoke(app, ["paper", "report", "--journal", str(journal)])
    assert shown.exit_code == 0 and "portfolio" in shown.stdout and "EEE/USDT" in shown.stdout
    status = runner.invoke(app, ["paper", "status", "--journal", str(journal), "--json"])
    state = json.loads(status.stdout)  # long past its candles: late, exit 1
    assert status.exit_code == 1 and state["symbol"] == "portfolio"
    assert set(state["positions"]) == {"long_short", "equal_weight_discrete",
                                       "equal_weight_proportional"}  # fmt: skip
