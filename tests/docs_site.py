"""The built documentation site as the tests read it: build it once into a folder, its pages' text
and headings, and the headings and figures of a Markdown text (what tests/docs_frozen.json froze
from the README and docs/lab.md before they were split into the site)."""

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FROZEN = Path(__file__).with_name("docs_frozen.json")

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# A result figure: a decimal (0.69204, +1.58, −0.68), a number with thousands commas (42,332) or a
# percentage (52.20 %, 29 %); the sign is kept (U+2212 minus or +), versions and 1e-9 are not.
FIGURE = re.compile(
    r"(?<![\w.,])[+−]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d+(?= ?%))(?: ?%)?(?![\w]|[.,]\d)"
)


def plain(markdown: str) -> str:
    """A heading or cell as it reads once rendered: links become their text, no code ticks or
    emphasis, one space between words."""
    text = LINK.sub(r"\1", markdown).replace("`", "").replace("**", "").replace("*", "")
    return " ".join(text.replace("\\|", "|").split())


def headings_and_figures(markdown: str) -> tuple[list[str], list[str]]:
    """Every heading (outside code blocks) and every figure (outside shell blocks: the output
    shown in a ```text block is a result, a command's arguments are not)."""
    headings, figures, fence = [], [], None
    for line in markdown.splitlines():
        opened = FENCE.match(line)
        if opened and fence is None:
            fence = line.strip()[3:].strip() or "text"
            continue
        if opened:
            fence = None
            continue
        if fence is None and (m := HEADING.match(line)):
            headings.append(plain(m.group(2)))
        if fence in (None, "text", ""):
            figures += FIGURE.findall(plain(line))
    return headings, figures


def figure_pattern(figure: str) -> re.Pattern:
    """A frozen figure found as a whole number in text: 0.6920 is not inside 0.69204."""
    body = re.escape(figure).replace(r"\ ", r"\s?")
    return re.compile(r"(?<![\w.,])" + body + r"(?![\w]|[.,]\d)")


class _PageText(HTMLParser):
    """The text of a built page's article (Material's content area) and its headings."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.headings: list[str] = []
        self.title = ""
        self._heading: list[str] | None = None
        self._in_title = False
        self._depth = 0  # inside <article>: the page's own content, not the navigation

    def handle_starttag(self, tag, attrs):
        if tag == "article":
            self._depth += 1
        elif tag == "title":
            self._in_title = True
        elif self._depth and re.fullmatch(r"h[1-6]", tag):
            self._heading = []

    def handle_endtag(self, tag):
        if tag == "article":
            self._depth -= 1
        elif tag == "title":
            self._in_title = False
        elif self._heading is not None and re.fullmatch(r"h[1-6]", tag):
            self.headings.append(" ".join("".join(self._heading).replace("¶", "").split()))
            self._heading = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._depth:
            self.text.append(data)
            if self._heading is not None:
                self._heading.append(data)


def read_page(html: str) -> _PageText:
    page = _PageText()
    page.feed(html)
    page.close()
    return page


def build_site(out: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of the checkout into `out` (the same build `make docs` runs)."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", out]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


class _Reference(HTMLParser):
    """The command reference page: per heading (`fc data pull`), the option names its list items
    show in code (`--symbol <str>` is --symbol; `--quiet / --no-quiet` is both)."""

    def __init__(self) -> None:
        super().__init__()
        self.options: dict[str, set[str]] = {}
        self._heading: list[str] | None = None
        self._command = ""
        self._code: list[str] | None = None
        self._in_item = 0

    def handle_starttag(self, tag, attrs):
        if re.fullmatch(r"h[2-6]", tag):
            self._heading = []
        elif tag == "li":
            self._in_item += 1
        elif tag == "code" and self._in_item and self._command:
            self._code = []

    def handle_endtag(self, tag):
        if self._heading is not None and re.fullmatch(r"h[2-6]", tag):
            self._command = " ".join("".join(self._heading).split())
            self.options.setdefault(self._command, set())
            self._heading = None
        elif tag == "li":
            self._in_item -= 1
        elif tag == "code" and self._code is not None:
            text = "".join(self._code)
            if text.startswith("-"):
                for spelling in text.split(" / "):
                    self.options[self._command] |= {s for s in spelling.split()[0].split(",") if s}
            self._code = None

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)
        if self._code is not None:
            self._code.append(data)


def reference_options(html: str) -> dict[str, set[str]]:
    """{command path: its option names} as the built reference page lists them."""
    page = _Reference()
    page.feed(html)
    page.close()
    return {command: names for command, names in page.options.items() if command.startswith("fc")}
