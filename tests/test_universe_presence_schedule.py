"""A universe whose symbols are not all present at once (one listed inside the test range, one
with gaps, one delisted), at horizon 4 on `--sleeves 4` and on `--cadence 4`: the replay of its
exported graph equals `fc backtest --model` (every book's weights exact, wealth within 1e-9, the
long-short's k capped over the eligible symbols and a symbol out of the market holding its
weight in each sleeve), `fc paper diff` finds no difference, and a service restarted in the
middle of a holding period journals the rows of a run straight through."""

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import universe_presence as fixture
from typer.testing import CliRunner
from universe_presence import DELISTED, GAPPY, LATE, SYMBOLS, presence_frames, times_ms

from fc.cli.main import app

runner = CliRunner()
H, TF, K = 4, 1_800_000, 3  # horizon and schedule, 30m in ms, the long-short's k (capped)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(frames, files) of the seeded universe with a late listing, gaps and a delisting."""
    frames = presence_frames()
    return frames, fixture.write_frames(frames, tmp_path_factory.mktemp("presence_schedule"))


# the cadence was right before sleeves were (and a one-grid universe's is in the fast suite,
# test_horizon_live): slow, to keep the fast suite's time for the sleeves
@pytest.fixture(scope="module", params=["sleeves", pytest.param("cadence", marks=pytest.mark.slow)])
def replayed(request, data, tmp_path_factory):
    """(schedule, run, model, backtest's test rows, journal, --replay arguments) of a relative
    universe at H = 4 on the schedule, k 2: trained, exported, backtested with --model and
    replayed from the first test candle."""
    how, (_, files) = request.param, data
    root = tmp_path_factory.mktemp(how)
    args = [a for s, p in files.items() for a in ("--data", f"{s}={p}")]
    out = invoke("train", "--symbols", ",".join(SYMBOLS), "--target", "relative", "--horizon", H,
                 f"--{how}", H, *args, *fixture.QUICK, "--runs", root / "runs")  # fmt: skip
    assert out.exit_code == 0, out.output
    run = Path(out.stdout.strip().splitlines()[-1])
    out = invoke("export", run, "--onnx", "--k", K)
    assert out.exit_code == 0, out.output
    model = run / "export" / "model.onnx"
    out = invoke("backtest", run, "--model", model, "--fee-bps", fixture.FEE_BPS, "--k", K,
                 "--json")  # fmt: skip
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report[how] == H
    test = pd.read_parquet(run / "backtest" / "positions.parquet")
    test = test[test["range"] == "test"].reset_index(drop=True)
    replay = [a for s, p in files.items() for a in ("--replay", f"{s}={p}")]
    replay += ["--model", model, "--fee-bps", fixture.FEE_BPS, "--capital", fixture.CAPITAL]
    journal = root / "paper.sqlite"
    out = invoke("paper", *replay, "--journal", journal, "--start", start_of(test))
    assert out.exit_code == 0, out.output
    return how, run, model, test, journal, replay, report["test"]["portfolio"]


def start_of(test: pd.DataFrame) -> str:
    return test.time.iloc[0].strftime("%Y-%m-%dT%H:%M")


def journal_rows(journal: Path) -> pd.DataFrame:
    with sqlite3.connect(journal) as db:
        return pd.read_sql("SELECT * FROM decisions ORDER BY candle_ms", db)


def book_weights(book: pd.DataFrame) -> np.ndarray:
    return np.array([[json.loads(p)["weights"][s] for s in SYMBOLS]
                     for p in book.policy_params])  # fmt: skip


def test_every_book_equals_the_backtest(replayed):
    how, _, _, test, journal, _, _ = replayed
    rows = journal_rows(journal)
    times = (test.time.astype("int64") // 1_000_000).tolist()
    for strategy in fixture.STRATEGIES:
        book = rows[(rows.symbol == "portfolio") & (rows.policy == strategy)]
        book = book.reset_index(drop=True)
        assert book.candle_ms.tolist()[:-1] == times
        want = np.r_[1.0, test[f"wealth_{strategy}"].to_numpy()]
        np.testing.assert_allclose(book.wealth / fixture.CAPITAL, want, rtol=0, atol=1e-9)
        columns = [f"weight_{strategy}_{s.replace('/', '_')}" for s in SYMBOLS]
        np.testing.assert_array_equal(book_weights(book.iloc[:-1]), test[columns].to_numpy())
    decided = rows[(rows.symbol == "portfolio") & (rows.kind == "decision")]
    phases = set((decided.candle_ms // TF) % H)
    assert phases == ({0} if how == "cadence" else set(range(H)))


def test_the_range_holds_what_the_parity_is_about(replayed, data):
    """In the test range the long-short's k is capped below 3 at some decision candles and not
    at others, the late coin enters (no weight before its first eligible candle, some after),
    and the gappy coin holds its weight in every book across each of its gaps."""
    _, _, _, test, _, _, report = replayed
    frames = data[0]
    capped = report["long_short"]["k_capped"]
    assert 0 < capped < report["long_short"]["decisions"]
    times = test.time.astype("int64").to_numpy() // 1_000_000
    late = test[f"weight_long_short_{slug(LATE)}"].to_numpy()
    entered = int(times_ms(frames[LATE])[0]) + 32 * TF
    assert times[0] < entered and (late[times < entered] == 0).all() and late.any()
    gaps = np.flatnonzero(
        ~np.isin(times, times_ms(frames[GAPPY])) & (times < times_ms(frames[GAPPY])[-1])
    )
    assert len(gaps) >= 3 and gaps[0] > 0
    for strategy in fixture.STRATEGIES:
        weights = test[f"weight_{strategy}_{slug(GAPPY)}"].to_numpy()
        np.testing.assert_array_equal(weights[gaps], weights[gaps - 1])
    assert test[f"weight_long_short_{slug(GAPPY)}"].to_numpy()[gaps].any()


def slug(symbol: str) -> str:
    return symbol.replace("/", "_")


def test_paper_diff_finds_no_difference(replayed, data):
    _, run, _, _, journal, _, _ = replayed
    args = [a for s, p in data[1].items() for a in ("--data", f"{s}={p}")]
    out = invoke("paper", "diff", "--run", run, "--journal", journal, *args, "--json")
    report = json.loads(out.stdout)
    assert out.exit_code == 0, json.dumps(report, indent=1)[:3000]
    assert report["differing"] == 0 and report["matches"] and len(report["portfolio"]) == 3


def test_a_restart_mid_holding_journals_the_same_rows(replayed, data, tmp_path):
    """Stopped two candles after a decision candle, after the late coin has entered and the
    delisted one was closed, and started again: the journal of a run straight through, row for
    row (a service with sleeves rebuilds them from the journal: members, eligible, closed)."""
    _, _, _, test, journal, replay, _ = replayed
    frames = data[0]
    closed = int(times_ms(frames[DELISTED])[-1]) + 3 * TF
    stop = pd.Timestamp(closed - closed % (H * TF) + 2 * TF, unit="ms", tz="UTC").isoformat()
    parts = tmp_path / "parts.sqlite"
    assert invoke("paper", *replay, "--journal", parts, "--start", start_of(test),
                  "--end", stop).exit_code == 0  # fmt: skip
    assert invoke("paper", *replay, "--journal", parts, "--start", stop).exit_code == 0
    columns = ["symbol", "policy", "candle_ms", "kind", "position", "p_up", "trade",
               "policy_params"]  # fmt: skip
    both = [
        journal_rows(j).sort_values(["symbol", "policy", "candle_ms"]) for j in (journal, parts)
    ]
    a, b = (rows.reset_index(drop=True) for rows in both)
    pd.testing.assert_frame_equal(a[columns], b[columns])
    np.testing.assert_allclose(a.wealth, b.wealth, rtol=1e-12)
    with sqlite3.connect(journal) as one, sqlite3.connect(parts) as two:
        query = "SELECT symbol, candle_ms, reason FROM absences ORDER BY candle_ms, symbol"
        pd.testing.assert_frame_equal(pd.read_sql(query, one), pd.read_sql(query, two))
