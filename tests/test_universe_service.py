"""One paper service over every symbol of a universe model (an untrained five-symbol graph as
`fc export` writes one): injected faults, outages and a crash-restart decide every symbol once
and on the same candles; the bad live input is one line with the journal unchanged; the metrics
carry a symbol label and the portfolio."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from live_models import make_universe_model
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
FEE_BPS = 2.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(None, {symbol: candle file}, model.onnx): five symbols' 30m candles and a k 2 model."""
    root = tmp_path_factory.mktemp("universe_service")
    files = {}
    for i, symbol in enumerate(SYMBOLS):
        files[symbol] = root / f"{symbol.replace('/', '_')}.parquet"
        synth_candles(days=10, timeframe="30m", seed=10 + i, price=50.0 * (i + 1)).to_parquet(
            files[symbol]
        )
    model = make_universe_model(root / "m", SYMBOLS, seq_len=32, timeframe="30m", k=2)
    return None, files, model, None


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


def test_faults_and_a_crash_decide_every_symbol_once_the_absent_one_holding(exported, tmp_path):
    """A symbol down for a whole candle is journalled missing there and holds its positions; the
    others are decided on time; a crash-restart writes no (symbol, candle) twice."""
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
    assert not rows.duplicated(["symbol", "policy", "candle_ms"]).any()
    for (symbol, _), got in rows.groupby(["symbol", "policy"]):
        assert got.candle_ms.tolist() == opens.tolist()  # every candle journalled, once
        held = got[got.kind == "held"]
        mine = {t for t, s in outage.items() if s == symbol}
        assert set(held.candle_ms) == mine  # only its own outage held
        for t in mine:  # holding the position of the candle before, carrying its close
            before = got[got.candle_ms == t - 1_800_000].iloc[0]
            assert held.position.tolist() == [before.position]
            assert held.close.tolist() == [before.close] and held.p_up.isna().all()
    absent = journal.absences()
    assert sorted(zip(absent.candle_ms, absent.symbol, strict=True)) == sorted(outage.items())
    assert set(absent.reason) == {"missing"}
    assert all("injected fault" in d for d in absent.detail)
    book = rows[(rows.symbol == "portfolio") & (rows.policy == "long_short")].set_index("candle_ms")
    for t, symbol in outage.items():  # the absent symbol's weight is the one it held
        weights = [json.loads(book.policy_params[x])["weights"][symbol] for x in (t - 1_800_000, t)]
        assert weights[0] == weights[1]
    assert "skip" not in set(events.kind)
    assert service.decide_at() is None  # the last candle again: a duplicate, nothing written
    assert len(journal.decisions()) == len(rows) and len(journal.absences()) == len(absent)
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


@pytest.mark.parametrize("deadline", ["-1", "1800", "2500"])
def test_a_deadline_outside_the_candle_is_one_line(exported, deadline):
    _, files, model, _ = exported
    replay = [a for s, p in files.items() for a in ("--replay", f"{s}={p}")]
    result = runner.invoke(app, ["paper", *replay, "--model", str(model), "--deadline", deadline])
    one_line_error(result, f"--deadline {float(deadline)}", "less than a 30m candle")


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


def test_a_store_alone_replays_every_symbol_as_the_files_do(exported, tmp_path):
    _, files, model, _ = exported
    store = tmp_path / "store" / "binance"
    store.mkdir(parents=True)
    for symbol, path in files.items():
        shutil.copy(path, store / f"{symbol.replace('/', '_')}-30m.parquet")
    journals = {}
    for name, given in (
        ("files", [a for s, p in files.items() for a in ("--replay", f"{s}={p}")]),
        ("store", ["--store", str(tmp_path / "store")]),
    ):
        journals[name] = tmp_path / f"{name}.sqlite"
        args = ["paper", *given, "--model", str(model), "--journal", str(journals[name])]
        result = runner.invoke(app, [*args, "--fee-bps", "3", "--json"])
        assert result.exit_code == 0, result.output
    rows = {n: Journal(p, read_only=True).decisions() for n, p in journals.items()}
    assert len(rows["store"]) > 1000 and set(rows["store"].symbol) == {*SYMBOLS, "portfolio"}
    pd.testing.assert_frame_equal(rows["files"], rows["store"])
    # --symbol portfolio reports the universe, as no --symbol does
    report = runner.invoke(app, ["paper", "report", "--journal", str(journals["store"]),
                                 "--symbol", "portfolio", "--json"])  # fmt: skip
    assert report.exit_code == 0 and "long_short" in json.loads(report.stdout)["portfolio"]
