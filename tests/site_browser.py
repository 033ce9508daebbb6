"""Screenshots of the built site: serve a folder on loopback and open pages in headless Chromium
(Debian's `chromium` package; no browser is ever downloaded).

`python tests/site_browser.py SITE OUT` writes OUT/home.png and OUT/results.png
(`make docs-screenshots`); tests/test_docs_site.py takes them again into a temporary folder.
"""

import functools
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from browser import FLAGS  # the one list of headless, offline Chromium flags

PAGES = {"home.png": "index.html", "results.png": "results.html"}
SIZE = (1280, 900)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the stdlib's name)
        pass


@contextmanager
def served(folder: Path) -> Iterator[str]:
    """The folder over HTTP on 127.0.0.1 at a free port; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def screenshot(url: str, out: Path, browser: str) -> None:
    """One page in headless Chromium into a PNG of SIZE (browser.FLAGS: --no-sandbox because
    CI and the development machines run as root, the background networking off offline)."""
    with tempfile.TemporaryDirectory() as profile:
        command = [
            browser, *FLAGS, "--disable-dev-shm-usage", "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={SIZE[0]},{SIZE[1]}", f"--screenshot={out}", url,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"chromium could not screenshot {url}: {done.stderr[-500:]}")


def screenshots(site: Path, out: Path) -> list[Path]:
    browser = chromium()
    if browser is None:
        raise RuntimeError("no chromium on PATH: apt-get install -y chromium")
    out.mkdir(parents=True, exist_ok=True)
    with served(site) as base:
        for name, page in PAGES.items():
            screenshot(base + page, out / name, browser)
    return [out / name for name in PAGES]


if __name__ == "__main__":
    for path in screenshots(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path)
