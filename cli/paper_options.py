"""Options shared by the `fc paper` commands (paper.py, paper_diff.py): defined once, here."""

from pathlib import Path
from typing import Annotated

import typer

Journal = Annotated[
    Path, typer.Option(envvar="FC_JOURNAL", help="The SQLite journal of decisions.")
]
Market = Annotated[str | None, typer.Option(help="Market, when the journal has several.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
