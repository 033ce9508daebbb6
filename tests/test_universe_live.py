"""A pooled five-symbol model exported as one window graph and traded by one paper service: its
parity per symbol against torch, the metadata the live loop reads, and the bad input refused
in one line."""

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.synth import synth_candles
from fc.core.errors import FcError
from fc.live.clock import SimulatedClock
from fc.live.journal import Journal, Row
from fc.live.market_inputs import SymbolSources
from fc.live.metrics import PrometheusMetrics
from fc.live.model_file import lock_journal
from fc.live.replay import RecordedSource
from fc.live.service import PaperConfig
from fc.live.universe_model import load_universe_predictor
from fc.live.universe_service import UniverseService

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
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, symbol in enumerate(SYMBOLS):
        frame = synth_candles(days=40, timeframe="30m", seed=10 + i, price=50.0 * (i + 1))
        files[symbol] = folder / f"{symbol.replace('/', '_')}.parquet"
        frame.to_parquet(files[symbol])
    return files


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(run, files, model.onnx, fc export's JSON report) of a relative-target universe, k 2."""
    root = tmp_path_factory.mktemp("universe_live")
    files = write_universe(root / "data")
    data = [a for s, p in files.items() for a in ("--data", f"{s}={p}")]
    args = ["train", "--symbols", ",".join(SYMBOLS), "--target", "relative", *data, *QUICK]
    result = runner.invoke(app, args + ["--runs", str(root / "runs")])
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    done = runner.invoke(app, ["export", str(run), "--onnx", "--k", "2", "--json"])
    assert done.exit_code == 0, done.output
    return run, files, run / "export" / "model.onnx", json.loads(done.stdout)


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
    done = runner.invoke(app, ["backtest", str(run), "--model", str(model), "--fee-bps",
                               str(FEE_BPS), "--k", "2", "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    frame = pd.read_parquet(run / "backtest" / "positions.parquet")
    test = frame[frame["range"] == "test"].reset_index(drop=True)
    journal = tmp_path_factory.mktemp("journal") / "paper.sqlite"
    replay = [a for s, p in files.items() for a in ("--replay", f"{s}={p}")]
    start = test.time.iloc[0].strftime("%Y-%m-%dT%H:%M")
    args = ["paper", *replay, "--model", str(model), "--journal", str(journal), "--fee-bps",
            str(FEE_BPS), "--capital", str(CAPITAL), "--start", start, "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
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


class FlakySource:
    """Recorded candles of every symbol behind a source that fails 20 % of its answers (seeded)
    and is down for one symbol at the candles in `outage` (every attempt fails)."""

    def __init__(self, frames: dict, outage: dict, seed: int = 5):
        self.sources = {s: RecordedSource(f, "30m") for s, f in frames.items()}
        self.outage, self.rng, self.calls = outage, np.random.default_rng(seed), 0

    def closed_candles(self, symbol, timeframe, count, now_ms):
        self.calls += 1
        candle = (now_ms // 1_800_000 - 1) * 1_800_000
        if self.outage.get(candle) == symbol or self.rng.random() < 0.2:
            raise FcError("injected fault")
        return self.sources[symbol].closed_candles(symbol, timeframe, count, now_ms)


def test_faults_and_a_crash_decide_every_symbol_once_on_the_same_candles(exported, tmp_path):
    _, files, model, _ = exported
    predictor = load_universe_predictor(model)
    frames = {s: pd.read_parquet(p) for s, p in files.items()}
    opens = frames[SYMBOLS[0]].index[-60:].as_unit("ns").asi8 // 1_000_000
    outage = {int(opens[10]): "CCC/USDT", int(opens[41]): "AAA/USDT"}
    source = FlakySource(frames, outage)
    config = PaperConfig(symbol=predictor.symbol, timeframe="30m", fee_bps=FEE_BPS,
                         policy_params=predictor.meta["policy_params"])  # fmt: skip
    path = tmp_path / "paper.sqlite"

    def run(ticks, clock):
        journal = Journal(path)
        service = UniverseService(config, source, predictor, journal, clock)
        for t in ticks:
            clock.set(int(t) + 1_800_000 + 5_000)
            service.decide_at()
        return service, journal

    clock = SimulatedClock(int(opens[0]))
    _, first = run(opens[:25], clock)  # then the process dies (kill -9): nothing closed
    service, journal = run(opens[24:], clock)  # restart: candle 24 again, then on
    rows, events = journal.decisions(), journal.events()
    skipped = {json.loads(d)["candle"] for d in events[events.kind == "skip"].detail}
    decided = {}
    for (symbol, policy), got in rows.groupby(["symbol", "policy"]):
        assert not got.candle_ms.duplicated().any()
        decided[symbol, policy] = set(got[got.kind == "decision"].candle_ms)
        held = set(got[got.kind == "held"].candle_ms)
        assert held == {int(t) for t in outage}  # each skipped candle carried for everyone
    assert len(decided) == 5 * 2 + 3 and len(set(map(frozenset, decided.values()))) == 1
    one = next(iter(decided.values()))
    assert len(one) == len(opens) - 2 and one.isdisjoint(outage)
    assert skipped == {pd.Timestamp(t, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
                       for t in outage}  # fmt: skip
    reasons = [json.loads(d) for d in events[events.kind == "skip"].detail]
    assert {r["reason"] for r in reasons} == {"unavailable"}
    assert any("CCC/USDT: FcError: injected fault" in r["detail"] for r in reasons)
    assert service.decide_at() is None  # the last candle again: a duplicate, nothing written
    assert len(journal.decisions()) == len(rows)
    first.close()
    journal.close()


def test_bad_live_input_is_one_line_and_leaves_the_journal_unchanged(exported, tmp_path):
    _, _, model, _ = exported
    live = ["paper", "--model", str(model), "--exchange-url", "http://127.0.0.1:9"]
    # a --symbol naming less than all of the model's symbols
    result = runner.invoke(app, [*live, "--symbol", "AAA/USDT,BBB/USDT"])
    one_line_error(result, "--symbol AAA/USDT,BBB/USDT", "drop --symbol")
    # a journal another model wrote, of other symbols
    other = tmp_path / "other.sqlite"
    book = Journal(other)
    book.record([Row("ZZZ/USDT", "30m", "discrete", 0, "decision", 0, 1.0, 0.5, 1.0, 1.0, 1.0)])
    book.close()
    before = other.read_bytes()
    result = runner.invoke(app, [*live, "--journal", str(other)])
    one_line_error(result, "ZZZ/USDT", "another --journal")
    assert other.read_bytes() == before
    # two services pointed at one journal: the second finds it locked
    mine = tmp_path / "mine.sqlite"
    Journal(mine).close()
    held, before = lock_journal(mine), mine.read_bytes()
    try:
        result = runner.invoke(app, [*live, "--journal", str(mine)])
        one_line_error(result, "locked", "another --journal")
        assert mine.read_bytes() == before  # nothing written by the refused one
    finally:
        held.close()
    result = runner.invoke(app, [*live[:3], "--replay", "x.parquet", "--symbol", "AAA/USDT"])
    one_line_error(result, "--symbol AAA/USDT")


def test_metrics_carry_a_symbol_label_and_the_portfolio(exported):
    _, files, model, _ = exported
    predictor = load_universe_predictor(model)
    frames = {s: pd.read_parquet(p) for s, p in files.items()}
    metrics = PrometheusMetrics(list(SYMBOLS))
    config = PaperConfig(symbol=predictor.symbol, timeframe="30m")
    source = SymbolSources({s: RecordedSource(f, "30m") for s, f in frames.items()})
    journal = Journal(":memory:")
    clock = SimulatedClock(0)
    service = UniverseService(config, source, predictor, journal, clock, metrics)
    for t in frames[SYMBOLS[0]].index[-4:].as_unit("ns").asi8 // 1_000_000:
        clock.set(int(t) + 1_800_000 + 5_000)
        assert service.decide_at() is not None
    sample = metrics.registry.get_sample_value
    for row in journal.decisions().groupby(["symbol", "policy"]).last().reset_index().itertuples():
        labels = {"symbol": row.symbol, "policy": row.policy}
        assert sample("fc_wealth", labels) == row.wealth
        assert sample("fc_decisions_total", labels) == 4
        if row.symbol != "portfolio":
            assert sample("fc_p_up", {"symbol": row.symbol}) == row.p_up


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
