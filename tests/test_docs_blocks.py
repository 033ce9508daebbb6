"""Every fenced shell block of README.md and docs/ is part of the test suite (tests/docs_pages.py
says how they run): `make test` runs each page's blocks up to its first `<!-- slow -->` one,
`make test-all` whole pages; `<!-- not run: REASON -->` blocks are counted, never run."""

import re

import pytest
from docs_pages import ROOT, all_blocks, pages, parse, plan, run_block, run_page, user_folder

from fc import __version__

BLOCKS, PROBLEMS = all_blocks()
BY_PAGE = {p: [b for b in BLOCKS if b.page == p] for p in dict.fromkeys(b.page for b in BLOCKS)}
FAST = [p for p, blocks in BY_PAGE.items() if plan(blocks, slow=False)]
SLOW = [p for p, blocks in BY_PAGE.items() if any(b.mark == "slow" for b in blocks)]
# Counted apart from the parser: any fence (indented too) that opens a shell block.
SHELL_FENCE = re.compile(r"^[ \t]*(?:```|~~~)[ \t]*(?:sh|bash|console)[ \t]*$", re.MULTILINE)


def test_readme_is_at_most_250_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_every_marker_is_right_and_every_not_run_has_a_reason():
    assert PROBLEMS == []
    assert all(b.reason for b in BLOCKS if b.mark == "not run")


def test_blocks_run_are_all_the_blocks_less_those_marked_not_run():
    # a fence line with a language opens a block; closing fences are bare ```
    fences = sum(len(SHELL_FENCE.findall(p.read_text())) for p in pages())
    assert fences == len(BLOCKS)
    run = {b for blocks in BY_PAGE.values() for b in plan(blocks, slow=True)}
    assert len(run) >= len(BLOCKS) - sum(b.mark == "not run" for b in BLOCKS)


def test_readme_runs_the_setup_check_and_the_main_job():
    readme = [b for b in BLOCKS if b.page == "README.md" and b.mark != "not run"]
    assert "fc --version" in readme[0].script and readme[0].mark == "run"
    commands = " ".join(b.script for b in readme)
    for step in ("fc data synth", "fc train", "fc backtest", "fc export", "fc paper --replay",
                 "fc paper report"):  # fmt: skip
        assert step in commands, step


def test_readme_setup_check_prints_the_version_three_times(tmp_path):
    check = next(b for b in BY_PAGE["README.md"] if "fc --version" in b.script)
    done = run_block(check.script, user_folder(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split("\n")[:3] == [f"fc {__version__}"] * 3


def assert_page_runs(page: str, slow: bool, tmp_path) -> None:
    """The page's planned blocks all run in one user folder (a skip names what is absent)."""
    blocks = plan(BY_PAGE[page], slow=slow)
    ran, why = run_page(blocks, user_folder(tmp_path))
    if why:
        pytest.skip(why)
    assert ran == len(blocks)


@pytest.mark.parametrize("page", FAST)
def test_page_blocks_run_up_to_the_first_slow_one(page, tmp_path):
    assert_page_runs(page, False, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("page", SLOW)
def test_whole_page_runs(page, tmp_path):
    assert_page_runs(page, True, tmp_path)


def test_a_failing_block_names_the_page_the_block_and_what_to_do(tmp_path):
    text = "# Page\n\n```sh\nfc --version\n```\n\n```sh\nfc backtest no-such-run\n"
    text += "echo not reached\n```\n"
    blocks, problems = parse(text, "docs/page.md")
    with pytest.raises(AssertionError) as failed:
        run_page(blocks, user_folder(tmp_path))
    first = str(failed.value).splitlines()[0]
    assert first == (
        "docs/page.md, block at line 7 (`fc backtest no-such-run`) exited 2: fix the page or the "
        "code, or mark the block <!-- slow --> or <!-- not run: REASON -->"
    )
    assert "fc: error:" in str(failed.value) and "not reached" not in str(failed.value)
    assert problems == []


def test_markers_without_a_reason_or_a_fence_are_refused():
    text = ("<!-- not run: -->\n```sh\nfc\n```\n<!-- not run -->\n```bash\nfc\n```\n"
            "<!-- slow -->\n```text\nout\n```\n<!-- test: offline -->\n```sh\nfc\n```\n"
            "```shell\nfc\n```\n<!-- not run: needs the exchange -->\n```console\n"
            "$ fc data pull \\\n  --symbol BTC/USDT\nfetched\n```\n")  # fmt: skip
    blocks, problems = parse(text, "p.md")
    assert [p.split(":")[1] for p in problems] == ["1", "5", "9", "13", "17"]
    assert [b.mark for b in blocks] == ["not run", "not run", "run", "not run"]
    assert blocks[-1].reason == "needs the exchange"
    assert blocks[-1].script == "fc data pull \\\n  --symbol BTC/USDT\n"


def test_a_block_reading_shared_skips_with_a_reason_where_it_is_absent(tmp_path):
    blocks, _ = parse("```sh\necho ok > a\n```\n```sh\nls ../shared/data\n```\n", "p.md")
    folder = user_folder(tmp_path, shared=tmp_path / "absent")
    ran, why = run_page(blocks, folder)
    assert ran == 1 and why == "p.md, block at line 4 (`ls ../shared/data`) reads ../shared, " \
        "which is absent here" and (folder / "a").read_text() == "ok\n"  # fmt: skip
