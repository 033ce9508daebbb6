"""The ledger of looks at untouched ranges: N counts distinct variants per range, the deflated
Sharpe equals the paper's formula computed here by hand, a rerun is not a new look, concurrent
processes lose no row, and `fc ledger` lists it."""

import json
import math
import multiprocessing
import statistics
from datetime import datetime, timezone
from statistics import NormalDist

import numpy as np
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.errors import FcError
from fc.core.studies.ledger import ledger_path, ledger_rows, look, record_looks

runner = CliRunner()
PER_YEAR = 17_520.0  # 30m bars
TEST = ("2025-01-01T00:00:00+00:00", "2025-06-30T23:30:00+00:00")
EULER_GAMMA = 0.5772156649015329
T0 = datetime(2025, 7, 1, tzinfo=timezone.utc)


def returns(seed: int, drift: float, n: int = 800) -> np.ndarray:
    """Seeded fat-tailed, skewed per-bar returns: the moments all matter in the DSR."""
    rng = np.random.default_rng(seed)
    return drift + 0.004 * rng.standard_t(5, n) + 0.001 * rng.exponential(1.0, n)


def strategies(seed: int) -> dict:
    return {
        "discrete": look(returns(seed, 0.0004), PER_YEAR),
        "proportional": look(returns(seed + 100, 0.0002), PER_YEAR),
    }


def record(runs, variant: int, first=TEST[0], last=TEST[1], range_name="test"):
    return record_looks(runs, f"run-{variant}", f"cfg{variant}", "data0", range_name, first,
                        last, strategies(variant), now=T0)  # fmt: skip


def paper_moments(r: np.ndarray) -> tuple[float, float, float, int]:
    """Per-bar Sharpe (sample sd), skewness and non-excess kurtosis (moment estimators), n."""
    r = [float(x) for x in r]
    mean = statistics.fmean(r)
    m2, m3, m4 = (statistics.fmean([(x - mean) ** k for x in r]) for k in (2, 3, 4))
    return mean / statistics.stdev(r), m3 / m2**1.5, m4 / m2**2, len(r)


def paper_dsr(r: np.ndarray, trial_sharpes: list[float]) -> float:
    """Bailey and Lopez de Prado (2014), eq. for SR0 and the PSR against it, written out."""
    sr, g3, g4, n = paper_moments(r)
    z, big_n = NormalDist(), len(trial_sharpes)
    sr0 = 0.0
    if big_n > 1:
        sr0 = math.sqrt(statistics.variance(trial_sharpes)) * (
            (1 - EULER_GAMMA) * z.inv_cdf(1 - 1 / big_n)
            + EULER_GAMMA * z.inv_cdf(1 - 1 / (big_n * math.e))
        )
    return z.cdf((sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))


def test_third_variant_is_deflated_for_three_and_a_rerun_is_no_new_look(tmp_path):
    first, second, third = (record(tmp_path, v) for v in (1, 2, 3))
    for name, drift, offset in (("discrete", 0.0004, 0), ("proportional", 0.0002, 100)):
        series = [returns(v + offset, drift) for v in (1, 2, 3)]
        sharpes = [paper_moments(r)[0] for r in series]
        assert [s[name]["variants"] for s in (first, second, third)] == [1, 2, 3]
        # N = 1: no selection, the DSR is PSR(0)
        assert first[name]["deflated_sharpe"] == pytest.approx(paper_dsr(series[0], sharpes[:1]),
                                                               rel=1e-9)  # fmt: skip
        assert third[name]["deflated_sharpe"] == pytest.approx(paper_dsr(series[2], sharpes),
                                                               rel=1e-9)  # fmt: skip
        # deflating for three looks lowers the third's PSR(0)
        assert third[name]["deflated_sharpe"] < paper_dsr(series[2], sharpes[2:])
    assert all(s[n]["new_look"] for s in (first, second, third) for n in s)
    before = ledger_path(tmp_path).read_bytes(), ledger_rows(tmp_path)
    again = record(tmp_path, 1)
    assert {n: a["variants"] for n, a in again.items()} == {"discrete": 3, "proportional": 3}
    assert not any(a["new_look"] for a in again.values())
    # the rerun is answered with its first look's figures, now deflated for three
    series = [returns(v, 0.0004) for v in (1, 2, 3)]
    expected = paper_dsr(series[0], [paper_moments(r)[0] for r in series])
    assert again["discrete"]["deflated_sharpe"] == pytest.approx(expected, rel=1e-9)
    assert ledger_rows(tmp_path) == before[1]
    assert len(before[1]) == 6


def test_rows_hold_what_the_report_showed(tmp_path):
    record(tmp_path, 1)
    row = ledger_rows(tmp_path)[0]
    sr, g3, g4, n = paper_moments(returns(1, 0.0004))
    assert row["strategy"] == "discrete" and row["run"] == "run-1" and row["decisions"] == n
    assert row["sharpe_per_bar"] == pytest.approx(sr, rel=1e-12)
    assert row["sharpe_annualised"] == pytest.approx(sr * math.sqrt(PER_YEAR), rel=1e-12)
    assert (row["skewness"], row["kurtosis"]) == pytest.approx((g3, g4), rel=1e-9)
    assert row["time"] == "2025-07-01T00:00:00+00:00" and row["range_first"] == TEST[0]


def test_other_dates_count_separately_and_the_same_dates_in_another_form_do_not(tmp_path):
    record(tmp_path, 1)
    record(tmp_path, 2)
    walk = record(tmp_path, 3, "2023-01-01", "2025-06-30 23:30", range_name="walk")
    assert walk["discrete"]["variants"] == 1
    # a naive date string and an aware ISO string name the same test range
    same = record(tmp_path, 4, "2025-01-01", "2025-06-30T23:30:00Z")
    assert same["discrete"]["variants"] == 3
    assert {r["range_name"] for r in ledger_rows(tmp_path, "walk")} == {"walk"}
    assert len(ledger_rows(tmp_path, "test")) == 6


def test_a_strategy_that_never_trades_counts_without_a_sharpe(tmp_path):
    flat = {"flat": look(np.zeros(500), PER_YEAR)}
    record_looks(tmp_path, "a", "cfg1", "d", "test", *TEST, strategies(1), now=T0)
    got = record_looks(tmp_path, "a", "cfg1", "d", "test", *TEST, flat, now=T0)
    assert got["flat"] == {"variants": 1, "deflated_sharpe": None, "new_look": True}
    assert ledger_rows(tmp_path)[-1]["sharpe_per_bar"] is None


def _append(runs, worker: int, count: int, out) -> None:
    seen = []
    for k in range(count):
        variant = worker * 1000 + k
        got = record_looks(runs, f"w{worker}", f"cfg{variant}", "d", "test", *TEST,
                           {"discrete": look(returns(variant, 0.0), PER_YEAR, 800)})  # fmt: skip
        seen.append(got["discrete"]["variants"])
    out.put(seen)


def test_two_processes_appending_together_lose_no_row(tmp_path):
    fork = multiprocessing.get_context("fork")
    out, count = fork.Queue(), 25
    workers = [fork.Process(target=_append, args=(tmp_path, w, count, out)) for w in (1, 2)]
    for w in workers:
        w.start()
    seen = sorted(out.get(timeout=120) + out.get(timeout=120))
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert len(ledger_rows(tmp_path)) == 2 * count
    # each call's insert and count are one transaction: every N from 1 to 50 answered once
    assert seen == list(range(1, 2 * count + 1))


def test_fc_ledger_lists_the_looks_and_json_parses(tmp_path):
    for v in (1, 2):
        record(tmp_path, v)
    record(tmp_path, 3, "2023-01-01", "2025-06-30", range_name="walk")
    result = runner.invoke(app, ["ledger", "--runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for word in ("run-1", "run-2", "run-3", "discrete", "proportional", "2 variant(s), 4 look(s)"):
        assert word in result.stdout
    result = runner.invoke(app, ["ledger", "--runs", str(tmp_path), "--range", "test", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert [r["run"] for r in got["looks"]] == ["run-1", "run-1", "run-2", "run-2"]
    assert got["ranges"] == [{"range_name": "test", "range_first": TEST[0],
                              "range_last": TEST[1], "variants": 2, "looks": 4}]  # fmt: skip


def test_no_ledger_yet_is_an_empty_list_and_creates_nothing(tmp_path):
    result = runner.invoke(app, ["ledger", "--runs", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["looks"] == [] and "no ledger" in got["note"]
    assert not ledger_path(tmp_path).exists()


def test_a_damaged_ledger_is_one_line_and_left_as_it_was(tmp_path):
    damaged = b"these bytes are not an sqlite database " * 200
    ledger_path(tmp_path).write_bytes(damaged)
    one_line_error(runner.invoke(app, ["ledger", "--runs", str(tmp_path)]), "ledger.sqlite")
    with pytest.raises(FcError, match="not a readable ledger"):
        record(tmp_path, 1)
    assert ledger_path(tmp_path).read_bytes() == damaged


def test_a_ledger_from_before_costs_were_counted_gains_the_column(tmp_path):
    """A ledger whose table lacks cost_bps (written before looks were counted per cost) is
    upgraded in place: its rows are kept, counted at 0 bps."""
    import sqlite3

    from fc.core.studies.ledger import ledger_path, ledger_rows, look, record_looks

    path = ledger_path(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE looks (time TEXT, run TEXT, config_hash TEXT, data_hash TEXT, "
                   "range_name TEXT, range_first TEXT, range_last TEXT, strategy TEXT, "
                   "sharpe_per_bar REAL, sharpe_annualised REAL, decisions INTEGER, bars INTEGER, "
                   "skewness REAL, kurtosis REAL, UNIQUE (config_hash, data_hash, range_first, "
                   "range_last, strategy))")  # fmt: skip
    returns = np.random.default_rng(0).normal(0.001, 0.01, 500)
    first = record_looks(tmp_path, "a", "h1", "d", "test", "2025-01-01", "2025-02-01",
                         {"discrete": look(returns, 17520)})  # fmt: skip
    second = record_looks(tmp_path, "b", "h2", "d", "test", "2025-01-01", "2025-02-01",
                          {"discrete": look(returns[::-1] * 0.5, 17520)})  # fmt: skip
    assert first["discrete"]["variants"] == 1 and second["discrete"]["variants"] == 2
    assert {row["cost_bps"] for row in ledger_rows(tmp_path)} == {0.0}
