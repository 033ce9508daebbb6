"""Replay of a universe model whose symbols are not all present at once (one listed inside the
test range, one with gaps, one delisted) equals `fc backtest --model` under the presence rule:
weights exact, wealth within 1e-9; `fc paper diff` finds no difference; the journal records
the gaps as absences and the delisting once."""

import json

import numpy as np
import pandas as pd
import pytest
from test_universe_live import backtest_and_replay, trained_and_exported
from typer.testing import CliRunner
from universe_presence import (
    CAPITAL,
    DELISTED,
    GAPPY,
    LATE,
    QUICK,
    STRATEGIES,
    SYMBOLS,
    presence_frames,
    times_ms,
    write_frames,
)

from fc.cli.main import app
from fc.live.journal import Journal

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """(frames, files, run, positions.parquet's test rows, journal path) of a relative-target
    universe of six symbols, k 2: trained, exported, backtested with --model, replayed."""
    root = tmp_path_factory.mktemp("presence_live")
    frames = presence_frames()
    files = write_frames(frames, root / "data")
    run, _ = trained_and_exported(root, files, QUICK)
    model = run / "export" / "model.onnx"
    journal = root / "paper.sqlite"
    test, _ = backtest_and_replay(run, model, files, journal, ["--k", "2"])
    return frames, files, run, test, journal


def book_rows(rows: pd.DataFrame, strategy: str) -> pd.DataFrame:
    got = rows[(rows.symbol == "portfolio") & (rows.policy == strategy)]
    return got.sort_values("candle_ms").reset_index(drop=True)


def test_replay_weights_and_wealth_equal_the_backtest(replayed):
    _, _, _, test, journal = replayed
    rows = Journal(journal, read_only=True).decisions()
    times = (test.time.astype("int64") // 1_000_000).tolist()
    for strategy in STRATEGIES:
        book = book_rows(rows, strategy)
        assert book.candle_ms.tolist()[:-1] == times  # every candle of the union, once
        want = np.r_[1.0, test[f"wealth_{strategy}"].to_numpy()]
        np.testing.assert_allclose(book.wealth / CAPITAL, want, rtol=0, atol=1e-9)
        weights = np.array([[json.loads(p)["weights"][s] for s in SYMBOLS]
                            for p in book.policy_params.iloc[:-1]])  # fmt: skip
        columns = [f"weight_{strategy}_{s.replace('/', '_')}" for s in SYMBOLS]
        np.testing.assert_array_equal(weights, test[columns].to_numpy())


def test_the_journal_follows_each_symbols_presence(replayed):
    frames, _, _, test, journal = replayed
    book = Journal(journal, read_only=True)
    rows, absent = book.decisions(), book.absences()
    book.close()
    times = test.time.astype("int64") // 1_000_000
    first = int(times.iloc[0])
    # the late coin: no row before it is eligible (its own 32 changes), decided from then on
    late = rows[(rows.symbol == LATE) & (rows.policy == "discrete")]
    listed = int(times_ms(frames[LATE])[0])
    assert late.candle_ms.min() == listed + 32 * 1_800_000 and (late.kind == "decision").all()
    # the gappy one: held (journalled missing) exactly at its gaps after the first decision
    gappy = rows[(rows.symbol == GAPPY) & (rows.policy == "discrete")].set_index("candle_ms")
    grid = np.arange(first, int(times_ms(frames[GAPPY])[-1]) + 1, 1_800_000)
    gaps = sorted(set(grid.tolist()) - set(times_ms(frames[GAPPY]).tolist()))
    assert len(gaps) >= 3 and gappy.index[gappy.kind == "held"].tolist() == gaps
    missing = absent[absent.reason == "missing"]
    assert sorted(zip(missing.symbol, missing.candle_ms, strict=True)) == [(GAPPY, t) for t in gaps]
    # the delisted one: its rows end at its last candle, closed there once
    last = int(times_ms(frames[DELISTED])[-1])
    assert rows[rows.symbol == DELISTED].candle_ms.max() == last
    gone = absent[absent.reason == "delisted"]
    assert gone.symbol.tolist() == [DELISTED] and gone.candle_ms.tolist() == [last]
    for strategy in STRATEGIES:
        book = book_rows(rows, strategy)
        weights = [json.loads(p)["weights"][DELISTED] for p in book.policy_params]
        after = np.array(weights)[book.candle_ms.to_numpy() >= last]
        assert (after == 0).all()


def test_paper_diff_finds_no_difference(replayed):
    _, files, run, _, journal = replayed
    data = [a for s, p in files.items() for a in ("--data", f"{s}={p}")]
    args = ["paper", "diff", "--run", str(run), "--journal", str(journal), *data, "--json"]
    result = runner.invoke(app, args)
    assert result.stdout.startswith("{"), result.output
    report = json.loads(result.stdout)
    assert result.exit_code == 0, json.dumps(report, indent=1)[:3000]
    assert report["differing"] == 0 and report["matches"]
    assert set(report["symbols"]) == set(SYMBOLS) and len(report["portfolio"]) == 3
