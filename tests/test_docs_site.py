"""The documentation site as built by `mkdocs build --strict` (what `make docs` and CI run): it
builds, every page has a title, nothing loads from another host, nothing of the README and
docs/lab.md from before the split is lost, and the generated command reference lists every
command and option of the app. The site is built once per session (a few seconds)."""

import json
import re
import shutil
import subprocess
import sys

import pytest
import typer.main
from docs_site import (
    FROZEN,
    ROOT,
    build_site,
    figure_pattern,
    read_page,
    reference_options,
)
from site_browser import chromium, screenshots

from fc.cli.main import app

# what loads by itself: script/img/iframe/source src, <link href> (stylesheets, fonts, preconnect)
EXTERNAL_HTML = re.compile(
    r"<(?:script|img|iframe|source|embed|audio|video)\b[^>]*\bsrc=[\"']?(?:https?:)?//"
    r"|<link\b[^>]*\bhref=[\"']?(?:https?:)?//|url\([\"']?(?:https?:)?//|fonts\.(?:googleapis|gstatic)",
    re.IGNORECASE,
)
EXTERNAL_CSS = re.compile(r"url\([\"']?(?:https?:)?//|@import\s+[^;]*(?:https?:)?//", re.IGNORECASE)


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    built = build_site(out)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def pages(site) -> dict[str, str]:
    return {str(p.relative_to(site)): p.read_text() for p in sorted(site.rglob("*.html"))}


def test_every_source_page_starts_with_its_title():
    for path in sorted((ROOT / "docs").rglob("*.md")):
        first = path.read_text().splitlines()[0] if path.read_text() else ""
        assert re.fullmatch(r"# \S.*", first), (
            f"{path.relative_to(ROOT)}: first line is not # Title"
        )


def test_every_built_page_has_a_title_and_one_h1(site):
    for name, html in pages(site).items():
        page = read_page(html)
        assert page.title.strip() and not page.title.strip().startswith("-"), name
        assert len(re.findall(r"<h1\b", html)) == 1, name


def test_nothing_loads_from_another_host(site):
    for name, html in pages(site).items():
        assert not EXTERNAL_HTML.search(html), f"{name}: {EXTERNAL_HTML.search(html).group(0)}"
    for css in site.rglob("*.css"):
        assert not EXTERNAL_CSS.search(css.read_text()), css.name


def test_nothing_of_the_old_readme_and_lab_page_is_lost(site):
    frozen = json.loads(FROZEN.read_text())
    built = [read_page(html) for html in pages(site).values()]
    headings = {h for page in built for h in page.headings}
    text = " ".join(" ".join("".join(page.text).split()) for page in built)
    assert [h for h in frozen["headings"] if h not in headings] == []
    assert [f for f in frozen["figures"] if not figure_pattern(f).search(text)] == []
    assert len(frozen["headings"]) == 41 and len(frozen["figures"]) == 597  # frozen, never shrunk


def app_options() -> dict[str, set[str]]:
    """{command path: option names} of every command `fc ... --help` shows."""
    out = {}

    # duck-typed: Typer builds on a click of its own (typer._click), not the click package
    def walk(command, path: str) -> None:
        out[path] = {name for p in command.params if p.param_type_name == "option" and not p.hidden
                     for name in (*p.opts, *p.secondary_opts)} | {"--help"}  # fmt: skip
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                if not sub.hidden:
                    walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "fc")
    return out


def test_the_reference_lists_every_command_and_option(site):
    listed = reference_options((site / "reference.html").read_text())
    expected = app_options()
    assert len(expected) > 20 and "fc data pull" in expected and "fc tune report" in expected
    assert listed == expected


def test_make_docs_without_the_docs_extra_says_what_to_install(tmp_path):
    """A venv whose python sees no site-packages: one line naming the install, exit 2."""
    (tmp_path / "bin").mkdir()
    python = tmp_path / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S "$@"\n')
    python.chmod(0o755)
    done = subprocess.run(["make", "--no-print-directory", "docs", f"VENV={tmp_path}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"run make install, or {tmp_path}/bin/pip install -e '.[docs]'" in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="no chromium: apt-get install -y chromium")
def test_headless_chromium_shows_the_home_and_a_results_page(site, tmp_path):
    shots = screenshots(site, tmp_path)
    for shot in shots:
        png = shot.read_bytes()
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and (width, height) == (1280, 900)
        assert len(png) > 20_000  # a rendered page, not a blank one
    committed = [ROOT / "docs" / "img" / s.name for s in shots]
    assert all(p.is_file() for p in committed)
    contributing = (ROOT / "docs" / "contributing.md").read_text()
    assert all(f"(img/{p.name})" in contributing for p in committed)


def test_make_docs_fails_on_a_broken_anchor(tmp_path):
    """What CI relies on: `make docs` is strict (a --quiet would hide the warning it counts)."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    with (tmp_path / "docs" / "paper.md").open("a") as page:
        page.write("\n[the results](results.md#no-such-anchor)\n")
    make = ["make", "--no-print-directory", "-f", ROOT / "Makefile", "docs", f"VENV={sys.prefix}"]
    done = subprocess.run(make, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "does not contain an anchor '#no-such-anchor'" in done.stdout + done.stderr
