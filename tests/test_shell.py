"""`fc` is also a bash/zsh builtin: the activated venv switches it off, deactivate switches it back
on, and `candlecast` and `python -m fc` are the same program. Run in interactive shells with a clean
environment, from the venv this suite runs in (the repo's .venv, which `make install` made)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fc import __version__

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
MARKER = "# fc: builtin-off"
VERSION = f"fc {__version__}"


@pytest.fixture(scope="module")
def activate() -> Path:
    path = VENV / "bin" / "activate"
    assert path.is_file(), f"{VENV} is not a venv: run the tests with .venv/bin/python"
    assert MARKER in path.read_text(), f"{path} lacks shell/activate-fc.sh: run `make install`"
    return path


def interactive(script: str, tmp_path: Path, shell: str = "bash") -> list[str]:
    """stdout lines of `script` in an interactive shell with a clean environment (no rc files)."""
    norc = ["--norc"] if shell == "bash" else ["-f"]
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "TERM": "dumb", "LANG": "C.UTF-8"}
    done = subprocess.run(
        [shell, *norc, "-i", "-c", script],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_bash_activate_switches_the_builtin_off_and_deactivate_on(activate, tmp_path):
    lines = interactive(
        f"type -t fc; . {activate} && fc --version && type -t fc && type -p fc; "
        "deactivate; type -t fc; type fc",
        tmp_path,
    )
    assert lines == [
        "builtin",
        VERSION,
        "file",
        str(VENV / "bin" / "fc"),
        "builtin",
        "fc is a shell builtin",
    ]


def test_bash_activating_twice_then_deactivate_restores_the_builtin(activate, tmp_path):
    lines = interactive(
        f". {activate}; . {activate}; fc --version; deactivate; type -t fc; "
        "type -t deactivate _fc_venv_deactivate || echo gone",
        tmp_path,
    )
    assert lines == [VERSION, "builtin", "gone"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed on this machine")
def test_zsh_activate_switches_the_builtin_off_and_deactivate_on(activate, tmp_path):
    lines = interactive(
        f"whence -w fc; . {activate} && fc --version && whence -w fc; deactivate; whence -w fc",
        tmp_path,
        shell="zsh",
    )
    assert lines == ["fc: builtin", VERSION, "fc: command", "fc: builtin"]


def test_fcast_and_python_m_fc_are_the_same_program(activate, tmp_path):
    lines = interactive(
        f". {activate} && candlecast --version && python -m fc --version && fc --version",
        tmp_path,
    )
    assert lines == [VERSION] * 3
    # without activation, by path, the builtin untouched
    bin_ = VENV / "bin"
    lines = interactive(f"{bin_}/candlecast --version; {bin_}/python -m fc --version", tmp_path)
    assert lines == [VERSION] * 2


def test_help_names_every_spelling(tmp_path):
    done = subprocess.run(
        [VENV / "bin" / "fc", "--help"], capture_output=True, text=True, env={"COLUMNS": "200"}
    )
    text = " ".join(done.stdout.split())
    for spelling in ("source .venv/bin/activate", ".venv/bin/fc", "candlecast", "python -m fc"):
        assert spelling in text, spelling


def test_make_shell_appends_the_snippet_once(tmp_path):
    (tmp_path / "bin").mkdir()
    original = "# a venv's activate\ndeactivate () { :; }\n"
    (tmp_path / "bin" / "activate").write_text(original)
    for _ in range(2):
        subprocess.run(["make", "-s", "-C", ROOT, "shell", f"VENV={tmp_path}"], check=True)
    text = (tmp_path / "bin" / "activate").read_text()
    assert text == original + (ROOT / "shell" / "activate-fc.sh").read_text()
