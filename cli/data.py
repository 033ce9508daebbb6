"""`fc data …`: pull, import, info, synth."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Get candles into the store: pull from an exchange, import a file, synth.",
    no_args_is_help=True,
)
console = Console()


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")


Store = Annotated[Path, typer.Option(envvar="FC_STORE", help="Candle store folder.")]
Symbol = Annotated[str, typer.Option(help="Market symbol, BASE/QUOTE.")]


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="parquet, CSV, freqtrade feather or json file")],
    symbol: Symbol = "BTC/USDT",
    timeframe: Annotated[
        str | None, typer.Option(help="The file's timeframe (default: inferred).")
    ] = None,
    exchange: Annotated[str, typer.Option(help="Store folder to file it under.")] = "binance",
    store: Store = Path("data"),
) -> None:
    """Validate a local candle file and merge it into the store.

    Example: fc data import BTC_USDT-5m.feather --symbol BTC/USDT
    """
    from fc.core.store import import_file

    path, rows = import_file(file, store, exchange, symbol, timeframe)
    console.print(f"{rows:,} candles in {path}")


@app.command()
def info(
    symbol: Symbol = "BTC/USDT",
    timeframe: Annotated[str, typer.Option(help="Report at this timeframe (resampled).")] = "30m",
    exchange: Annotated[str | None, typer.Option(help="Store folder (default: any).")] = None,
    store: Store = Path("data"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Range, rows, gaps and filled bars of stored candles, at the stored or a resampled timeframe.

    Example: fc data info --symbol BTC/USDT --timeframe 30m --json
    """
    from fc.core.report import data_info

    report = data_info(store, symbol, timeframe, exchange)
    if as_json:
        typer.echo(json.dumps(report))
        return
    table = Table(title=f"{symbol} {timeframe}" + (" (synthetic)" if report["synthetic"] else ""))
    table.add_column("field")
    table.add_column("value", justify="right")
    for key, value in report.items():
        shown = f"{value:,}" if type(value) is int else str(value)
        table.add_row(key, shown)
    console.print(table)


@app.command()
def synth(
    symbol: Symbol = "SYNTH/USDT",
    timeframe: Annotated[str, typer.Option(help="Candle timeframe.")] = "5m",
    days: Annotated[int, typer.Option(min=1, help="Length in days.")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    store: Store = Path("data"),
) -> None:
    """Write a seeded SYNTHETIC series (fat tails, volatility clusters, weak planted signal).

    Example: fc data synth --days 200 --seed 1
    """
    from fc.core.store import candle_path, write_candles
    from fc.core.synth import synth_candles

    df = synth_candles(days=days, timeframe=timeframe, seed=seed)
    path = candle_path(store, "synth", symbol, timeframe)
    write_candles(path, df)
    console.print(f"{len(df):,} synthetic candles in {path}")
