"""The README's shell blocks marked `<!-- test: offline -->` are the user's manual: each runs in
an interactive bash, in order, in one temp folder, with the venv activated as the README says,
and must exit 0 at every command. The setup check runs in `make test`; the whole main job (data,
train, backtest, export, paper replay, report) takes a minute or more on 2 cores: `make test-all`.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fc import __version__

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- test: offline -->"
ACTIVATE = ". .venv/bin/activate"
BLOCK = re.compile(r"^" + re.escape(MARKER) + r"\s*\n```sh\n(.*?)```", re.DOTALL | re.MULTILINE)
MARKER_LINE = re.compile(r"^" + re.escape(MARKER) + r"\s*$", re.MULTILINE)


def offline_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = BLOCK.findall(text)
    markers = MARKER_LINE.findall(text)
    assert len(blocks) == len(markers), "a marker line not followed by a fenced sh block"
    return blocks


def run_block(block: str, cwd: Path) -> subprocess.CompletedProcess:
    """One block in `bash -i` with a clean environment: the venv activated as the README says,
    then every command must succeed (errexit, pipefail)."""
    script = f"{ACTIVATE}\nset -e -o pipefail\n{block}"
    env = {"HOME": str(cwd), "PATH": "/usr/bin:/bin", "TERM": "dumb", "LANG": "C.UTF-8",
           "COLUMNS": "120"}  # fmt: skip
    return subprocess.run(["bash", "--norc", "-i", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1200)  # fmt: skip


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A folder holding the checkout's .venv (a link to the one this suite runs from), so the
    README's relative paths work and nothing is written into the checkout."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return tmp_path


def test_readme_marks_the_setup_check_main_job_and_report():
    blocks = offline_blocks()
    assert ACTIVATE in blocks[0] and "fc --version" in blocks[0]
    commands = " ".join(blocks)
    for step in ("fc data synth", "fc train", "fc backtest", "fc export", "fc paper --replay",
                 "fc paper report"):  # fmt: skip
        assert step in commands, step


def test_readme_setup_check_runs(user_folder):
    done = run_block(offline_blocks()[0], user_folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split("\n")[:3] == [f"fc {__version__}"] * 3


def test_a_failing_command_fails_the_block(user_folder):
    done = run_block("fc --version\nfc backtest no-such-run\necho not reached", user_folder)
    assert done.returncode == 2 and "not reached" not in done.stdout


@pytest.mark.slow
def test_every_offline_readme_block_runs_in_order(user_folder):
    for block in offline_blocks():
        done = run_block(block, user_folder)
        assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
    assert (user_folder / "demo-out" / "paper.sqlite").is_file()
    assert list((user_folder / "demo-out" / "runs").glob("*/backtest/predictions-*.parquet"))
