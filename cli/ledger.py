"""`fc ledger`: parse options, read core.studies.ledger, print the looks as a table or one JSON
object."""

import json
from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option


def ledger_command(
    runs: Annotated[Path, Opt(help="Folder of the runs; the ledger is RUNS/ledger.sqlite.")] = Path(
        "runs"
    ),
    range_name: Annotated[
        str | None, Opt("--range", help="Only the looks at this range: test, walk.")
    ] = None,
    as_json: Annotated[bool, Opt("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every look at an untouched range (test, walk-forward) that fc backtest and fc walk have
    recorded, one row per strategy, and how many distinct variants each range has seen: the N
    that each report's deflated Sharpe is deflated for.

    Example: fc ledger --runs runs --range test
    """
    from fc.core.studies.ledger import ledger_path, ledger_rows, range_counts

    path = ledger_path(runs)
    rows = ledger_rows(runs, range_name)
    note = None if path.is_file() else f"no ledger at {path} yet: no untouched range scored"
    if as_json:
        out = {"ledger": str(path), "range": range_name, "ranges": range_counts(rows),
               "looks": rows}  # fmt: skip
        typer.echo(json.dumps(out if note is None else {**out, "note": note}))
        return
    if note is not None:
        typer.echo(note)
        return
    _print_looks(rows, range_counts(rows))


def _print_looks(rows: list[dict], ranges: list[dict]) -> None:
    """One table per range, titled with its dates and its count of variants."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for seen in ranges:
        key = (seen["range_name"], seen["range_first"], seen["range_last"])
        table = Table(title=f"{key[0]} {key[1][:16]} .. {key[2][:16]}: {seen['variants']} "
                      f"variant(s), {seen['looks']} look(s)")  # fmt: skip
        for col in ("recorded", "run", "strategy", "sharpe/yr", "decisions", "config/data"):
            table.add_column(col, justify="right" if col in ("sharpe/yr", "decisions") else "left")
        for r in rows:
            if (r["range_name"], r["range_first"], r["range_last"]) != key:
                continue
            sharpe = "-" if r["sharpe_annualised"] is None else f"{r['sharpe_annualised']:+.2f}"
            table.add_row(r["time"][:10], r["run"], r["strategy"], sharpe, f"{r['decisions']:,}",
                          f"{r['config_hash'][:6]}/{r['data_hash'][:6]}")  # fmt: skip
        console.print(table)


def register(root: typer.Typer) -> None:
    root.command("ledger")(ledger_command)
