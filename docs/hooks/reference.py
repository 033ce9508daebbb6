"""MkDocs hook: the command reference page, generated from fc's Typer app at every build.

A hook rather than a script run by `make docs`: `mkdocs build` and `mkdocs serve` (and CI's
`mkdocs build --strict`) all regenerate it with no extra step, and nothing generated is committed,
so the page cannot drift from the code. Typer's own Markdown writer (what `typer ... utils docs`
prints) renders every command, sub-command, option, default and help text.
"""

import typer
import typer.main
from typer.cli import get_docs_for_click

PAGE = "reference.md"


def reference_markdown() -> str:
    """Every command of `fc` as Markdown, `## fc` first, one heading level per sub-app."""
    from fc.cli.main import app

    command = typer.main.get_command(app)
    context = typer.Context(command, info_name="fc")
    return get_docs_for_click(obj=command, ctx=context, name="fc", indent=1)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != PAGE:
        return markdown
    return markdown.rstrip() + "\n\n" + reference_markdown()
