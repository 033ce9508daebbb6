"""report.html in a real browser (Debian's headless Chromium, offline): the tables and every chart
render and the console is clean; the same check fails on a page with one chart planted broken."""

import re

import pytest
from browser import chromium, look_at, missing, rendered
from lab_files import lab_file
from typer.testing import CliRunner

from fc.cli.main import app

pytestmark = pytest.mark.slow  # a lab run and a browser: ~30 s on 2 cores


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    why = missing()
    if why:
        pytest.skip(why)
    folder = tmp_path_factory.mktemp("page")
    result = CliRunner().invoke(app, ["lab", "run", str(lab_file(folder)), "--quiet"])
    assert result.exit_code == 0, result.output
    return folder / "study" / "report.html"


def test_every_table_and_chart_renders_offline(page, tmp_path):
    with chromium() as browser:
        seen = look_at(browser, page, screenshot=tmp_path / "page.png")
    assert len(seen["tables"]) == 4 and all(seen["tables"]), seen["tables"]  # 2 fees
    kinds = 3 * ["equity", "sharpe-fee", "fold-log-loss"] + ["calibration"]
    assert [c["chart"] for c in seen["charts"]] == kinds
    assert all(c["decoded"] and c["ink"] > 0.01 for c in seen["charts"]), seen["charts"]
    assert seen["errors"] == [] and rendered(seen)
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_a_chart_planted_broken_fails_the_check(page, tmp_path):
    html = page.read_text()
    payloads = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    broken = tmp_path / "broken.html"
    broken.write_text(html.replace(payloads[4], "bm90IGEgcG5n", 1))  # "not a png"
    with chromium() as browser:
        seen = look_at(browser, broken)
    assert not rendered(seen)
    assert [c["decoded"] for c in seen["charts"]].count(False) == 1
