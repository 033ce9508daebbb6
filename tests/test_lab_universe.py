"""fc lab of pooled universes: a variant is fc walk --symbols (predictions and portfolio figures
to the last digit, a late listing included), [report] k re-ranks the same predictions without
refitting (k capped exactly where the late symbol is not yet eligible), the pooled classifier
is the symbols' rows pooled, the report renders the universe tables, and bad input is one line."""

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import one_line_error
from lab_files import LATE, UNIVERSE, universe_lab
from typer.testing import CliRunner

from fc.cli.main import app

runner = CliRunner()
SEQ_LEN = 24
START, END = "2024-02-05", "2024-02-19"  # the two weekly folds
BOOK_KEYS = ("final_wealth", "sharpe", "sharpe_ci95", "psr", "break_even_fee_bps", "turnover",
             "max_drawdown", "k_capped")  # fmt: skip


def invoke(*args) -> dict:
    result = runner.invoke(app, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The universe lab run once at k = 1 and 2: (its folder, run_lab's answer)."""
    path = universe_lab(tmp_path_factory.mktemp("ulab"), k="k = [1, 2]")
    return path, invoke("lab", "run", path)


def summaries(out: Path) -> dict:
    """{variant name: variant.json} of a lab folder."""
    manifest = json.loads((out / "manifest.json").read_text())
    return {v["name"]: json.loads((out / "variants" / v["id"] / "variant.json").read_text())
            for v in manifest["variants"]}  # fmt: skip


def fc_walk(folder: Path, fee: float, *options) -> Path:
    """fc walk --symbols over the lab's files with the lab's [data] and [walk]; its folder."""
    data = [a for s in UNIVERSE for a in ("--data", f"{s}={folder / s.split('/')[0]}.parquet")]
    args = ["walk", "--symbols", f"@{folder / 'universe.txt'}", *data, "--timeframe", "1h",
            "--seq-len", str(SEQ_LEN), "--start", START, "--every", "1W", "--val", "1W",
            "--runs", folder / "walks", "--fee-bps", fee, "--quiet", *options]  # fmt: skip
    result = runner.invoke(app, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


VARIANTS = {
    "LightGBM relative": ("--family", "lightgbm", "--target", "relative", "--lags", "4",
                          "--min-data-in-leaf", "20"),
    "logistic next": ("--family", "logistic", "--lags", "4"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_universe_variant_is_fc_walk_symbols(lab, name):
    path, answer = lab
    assert (answer["units"], answer["computed"], answer["variants"]) == (4, 4, 2)
    mine = summaries(path.parent / "universe")[name]
    variant_dir = next(
        d for d in (path.parent / "universe" / "variants").iterdir()
        if json.loads((d / "variant.json").read_text())["target"] == mine["target"]
    )  # fmt: skip
    walk = fc_walk(path.parent, 5, *VARIANTS[name])
    theirs = pd.read_parquet(walk / "predictions.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(variant_dir / "predictions.parquet"), theirs)
    late = theirs[theirs["symbol"] == "DDD/USDT"]["time"].min()
    assert late == pd.Timestamp(LATE, tz="UTC") + pd.Timedelta(hours=SEQ_LEN)  # DDD traded
    report = json.loads((walk / "backtest" / "metrics.json").read_text())["walk_forward"]
    portfolio = report["portfolio"]
    books = mine["books"]["5"]["1"]  # fc walk's k is the policy default, 1
    assert set(books) == set(portfolio)
    for book, stats in portfolio.items():
        for key in BOOK_KEYS:  # to the last digit (JSON: null for a NaN)
            assert books[book][key] == stats.get(key), (book, key)
    # the pooled classifier is the symbols' rows pooled (fc walk scores each symbol alone)
    rows = report["symbols"]
    if mine["target"] == "relative":
        scored = sum(r["classifier"]["scored"] for r in rows.values())
        right = sum(r["classifier"]["model"]["accuracy"] * r["classifier"]["scored"]
                    for r in rows.values())  # fmt: skip
        assert mine["classifier"]["scored"] == scored
        assert mine["classifier"]["model"]["accuracy"] == pytest.approx(right / scored, abs=1e-12)


def test_k_reranks_the_same_predictions_and_is_capped_where_the_late_symbol_is_not_eligible(lab):
    path, _ = lab
    relative = summaries(path.parent / "universe")["LightGBM relative"]
    one, two = relative["books"]["0"]["1"], relative["books"]["0"]["2"]
    # before DDD has SEQ_LEN candles of its own only 3 symbols are eligible: k = 2 is capped at
    # every decision candle of the walk until then (a candle an hour)
    eligible = pd.Timestamp(LATE, tz="UTC") + pd.Timedelta(hours=SEQ_LEN)
    before = int((eligible - pd.Timestamp(START, tz="UTC")) / pd.Timedelta(hours=1))
    assert (one["long_short"]["k_capped"], two["long_short"]["k_capped"]) == (0, before)
    assert two["cross_sectional_reversal"]["k_capped"] == before
    assert one["long_short"]["final_wealth"] != two["long_short"]["final_wealth"]
    assert one["buy_and_hold"] == two["buy_and_hold"]  # k moves the rankings only
    # a fee costs turnover x fee a bar: the 5 bps book is the 0 bps one less its costs
    assert relative["books"]["5"]["2"]["long_short"]["turnover"] == two["long_short"]["turnover"]
    assert (
        relative["books"]["5"]["2"]["long_short"]["final_wealth"]
        < two["long_short"]["final_wealth"]
    )


def test_the_report_shows_the_universe_tables(lab):
    path, _ = lab
    out = path.parent / "universe"
    report = json.loads((out / "report.json").read_text())
    assert report["variants"] == [] and report["k"] == [1, 2]
    names = [v["name"] for v in report["universe_variants"]]
    assert names == ["LightGBM relative", "logistic next"]
    relative = report["universe_variants"][0]
    assert relative["model_books"] == ["long_short"] and len(relative["symbols"]) == 4
    best = relative["best"]["5"]["2"]
    assert best["strategy"] == "long_short" and best["trials"] == 2
    markdown = (out / "report.md").read_text()
    for fee in ("0", "5"):
        for k in ("1", "2"):
            assert f"## Universe books at {fee} bps, k = {k}" in markdown
    stats = relative["books"]["5"]["2"]["long_short"]
    lo, hi = stats["sharpe_ci95"]
    row = f"| LightGBM relative | long-short | {stats['final_wealth']:.4f} | "
    assert row + f"{stats['sharpe']:+.2f} ({lo:+.2f} .. {hi:+.2f}) |" in markdown
    for baseline in ("cross-sectional reversal", "cross-sectional momentum",
                     "buy and hold of the universe"):  # fmt: skip
        assert f"| baseline: 4 symbols, H = 1 | {baseline} |" in markdown
    assert "## Deflated Sharpe of each universe variant's best book" in markdown
    html = (out / "report.html").read_text()
    assert "Universe books at 5 bps, k = 2" in html and "Pooled universes" in html


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("k = [1, 2]", "k = [3]"), ("k = 3", "more than half the universe of 4 symbols")),
        (("fees = [0, 5]", 'fees = [0, 5]\nfee-bps = "AAA/USDT=9"'), ("unknown key 'fee_bps'",)),
        (("seq_len = 24", 'seq_len = 24\nfee-bps = ["AAA/USDT=9"]'), ("fee_bps", "per-symbol")),
        (("seq_len = 24", "seq_len = 24\ntop = 2"), ("top", "fc walk --symbols --top")),
        (("k = [1, 2]", "k = [0]"), ("[report] k",)),
    ],
)
def test_bad_universe_input_is_one_line(tmp_path, change, words):
    path = universe_lab(tmp_path, k="k = [1, 2]")
    path.write_text(path.read_text().replace(*change))
    result = runner.invoke(app, ["lab", "plan", str(path)])
    one_line_error(result, *words)
    assert not (tmp_path / "universe").exists()


def test_k_is_refused_for_a_lab_of_one_symbol(tmp_path):
    from lab_files import lab_file

    path = lab_file(tmp_path)
    path.write_text(path.read_text().replace("fees = [0, 2]", "fees = [0, 2]\nk = [2]"))
    one_line_error(runner.invoke(app, ["lab", "plan", str(path)]), "[report] k", "one symbol")


def test_a_resumed_lab_reruns_nothing_and_a_new_k_refits_nothing(lab):
    path, _ = lab
    again = invoke("lab", "run", path)
    assert (again["computed"], again["reused"], again["summarised"]) == (0, 4, 0)
    path.write_text(path.read_text().replace("k = [1, 2]", "k = [2]"))  # last: it moves k
    moved = invoke("lab", "run", path)
    assert (moved["computed"], moved["summarised"]) == (0, 2)
    report = json.loads((path.parent / "universe" / "report.json").read_text())
    assert report["k"] == [2] and list(report["universe_variants"][0]["books"]["5"]) == ["2"]
