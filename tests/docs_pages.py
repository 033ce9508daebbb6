"""The fenced shell blocks of README.md and docs/**/*.md, and how the tests run them.

Every ```sh, ```bash and ```console block runs, a page's blocks in order in one fresh folder that
holds `.venv` (a link to the venv this suite runs from, activated) and, beside the folder,
`../shared` (a link to the checkout's ../shared when there is one). The line right before a fence
may mark it: `<!-- not run: REASON -->` (a reason is required) or `<!-- slow -->` (more than a
few seconds). `make test` runs each page's blocks up to its first slow one, `make test-all` the
whole page. In a ```console block the lines after `$ ` are the commands, the rest is output.
"""

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHELLS = ("sh", "bash", "console")
# an info string holds no backtick: "```` ```sh ````" inline is not a fence
FENCE = re.compile(r"^(\s*)(```|~~~)\s*([\w+-]*)[^`]*$")
MARKER = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")
ACTIVATE = ". .venv/bin/activate"
FIX = "fix the page or the code, or mark the block <!-- slow --> or <!-- not run: REASON -->"


@dataclass(frozen=True)
class Block:
    page: str  # relative to the checkout: README.md, docs/data.md
    line: int  # of the opening fence, 1-based
    script: str
    mark: str  # "run", "slow" or "not run"
    reason: str = ""

    @property
    def first_line(self) -> str:
        return next((s.strip() for s in self.script.splitlines() if s.strip()), "")

    @property
    def name(self) -> str:
        return f"{self.page}, block at line {self.line} (`{self.first_line}`)"

    @property
    def reads_shared(self) -> bool:
        return "../shared" in self.script


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def console_commands(text: str) -> str:
    """The commands of a console block: lines after `$ `, with their `\\` continuations."""
    commands, continued = [], False
    for line in text.splitlines():
        if line.startswith("$ ") or continued:
            commands.append(line[2:] if line.startswith("$ ") and not continued else line)
            continued = line.rstrip().endswith("\\")
    return "\n".join(commands) + "\n"


def parse(text: str, page: str) -> tuple[list[Block], list[str]]:
    """The page's shell blocks and its marker problems (one line each, naming page and line)."""
    blocks, problems = [], []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            marker = MARKER.match(lines[i])
            if marker and _is_block_marker(marker.group(1)):
                after = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
                if not after or after.group(3) not in SHELLS:
                    problems.append(f"{page}:{i + 1}: `{lines[i].strip()}` is not right before a "
                                    "```sh, ```bash or ```console fence")  # fmt: skip
            i += 1
            continue
        indent, fence, language = opened.groups()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        body = "\n".join(line[len(indent) :] for line in lines[i + 1 : end]) + "\n"
        if language in SHELLS:
            script = console_commands(body) if language == "console" else body
            mark, reason, problem = _mark(lines[i - 1] if i else "")
            if problem:
                problems.append(f"{page}:{i}: {problem}")
            blocks.append(Block(page, i + 1, script, mark, reason))
        elif language in ("shell", "zsh", "shell-session", "sh-session"):
            problems.append(f"{page}:{i + 1}: ```{language}: write ```sh (or ```console with $ "
                            "prompts) so the tests run it, or ```text for output")  # fmt: skip
        i = end + 1
    return blocks, problems


def _is_block_marker(comment: str) -> bool:
    return comment == "slow" or comment.startswith(("not run", "test:"))


def _mark(previous: str) -> tuple[str, str, str]:
    """(mark, reason, problem) from the line right before a fence."""
    marker = MARKER.match(previous)
    if not marker or not _is_block_marker(marker.group(1)):
        return "run", "", ""
    comment = marker.group(1)
    if comment == "slow":
        return "slow", "", ""
    if comment.startswith("test:"):
        return "run", "", f"`{previous.strip()}` is the old marker: every block runs now; remove it"
    reason = comment[len("not run") :].lstrip(":").strip()
    if not comment.startswith("not run:") or not reason:
        return "not run", reason, "`<!-- not run: REASON -->` needs a reason after the colon"
    return "not run", reason, ""


def all_blocks() -> tuple[list[Block], list[str]]:
    blocks, problems = [], []
    for path in pages():
        found, wrong = parse(path.read_text(), str(path.relative_to(ROOT)))
        blocks += found
        problems += wrong
    return blocks, problems


def plan(blocks: list[Block], slow: bool) -> list[Block]:
    """What a run of one page executes: every block not marked not run, in order; without slow
    ones, only those before the page's first slow block (later ones may read what it made)."""
    out = []
    for block in blocks:
        if block.mark == "slow" and not slow:
            break
        if block.mark != "not run":
            out.append(block)
    return out


def user_folder(base: Path, shared: Path = SHARED) -> Path:
    """base/page (the working folder, with .venv) beside base/shared (the shared data, if any)."""
    folder = base / "page"
    folder.mkdir()
    (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    if shared.is_dir():
        (base / "shared").symlink_to(shared, target_is_directory=True)
    return folder


def run_block(script: str, cwd: Path, limit: float = 1200) -> subprocess.CompletedProcess:
    """One block in `bash -i` with a clean environment: the venv activated as the README says,
    then every command must succeed (errexit, pipefail)."""
    env = {"HOME": str(cwd), "PATH": "/usr/bin:/bin", "TERM": "dumb", "LANG": "C.UTF-8",
           "COLUMNS": "120", "OMP_WAIT_POLICY": "PASSIVE"}  # fmt: skip
    command = ["bash", "--norc", "-i", "-c", f"{ACTIVATE}\nset -e -o pipefail\n{script}"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=limit)


def run_page(blocks: list[Block], cwd: Path) -> tuple[int, str]:
    """Run the blocks in order in cwd; (blocks run, why the rest did not run: '' when all ran).
    A failing block raises AssertionError whose first line names the page, the block and what
    to do."""
    for count, block in enumerate(blocks):
        if block.reads_shared and not (cwd.parent / "shared").is_dir():
            return count, f"{block.name} reads ../shared, which is absent here"
        done = run_block(block.script, cwd)
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-3000:]
            raise AssertionError(f"{block.name} exited {done.returncode}: {FIX}\n{output}")
    return len(blocks), ""
