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


@app.command()
def pull(
    symbol: Symbol = "BTC/USDT",
    exchange: Annotated[
        str, typer.Option(envvar="FC_EXCHANGE", help="ccxt exchange id.")
    ] = "binance",
    timeframe: Annotated[str, typer.Option(help="Candle timeframe.")] = "5m",
    since: Annotated[
        str, typer.Option(help="First candle to fetch when nothing is stored yet (UTC date).")
    ] = "2017-08-17",
    store: Store = Path("data"),
    exchange_url: Annotated[
        str | None,
        typer.Option(envvar="FC_EXCHANGE_URL", help="Replace the exchange's public REST base URL."),
    ] = None,
) -> None:
    """Fetch closed candles from the exchange into the store; a second run fetches only what
    is new. The candle still in progress is never stored.

    Example: fc data pull --symbol BTC/USDT --timeframe 5m --since 2017-08-17
    """
    import sys

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from fc.live.pull import pull_candles

    err = Console(stderr=True)
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    with bar:
        task = bar.add_task(f"{symbol} {timeframe}", total=None)
        summary = pull_candles(
            store,
            exchange,
            symbol,
            timeframe,
            since,
            url=exchange_url,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"{summary['added']:,} candles added; {summary['rows']:,} in {summary['path']} "
        f"from {summary['first']} to {summary['last']}"
    )


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
    from fc.core.data.store import import_file

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
    from fc.core.data.report import data_info

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
    from fc.core.data.store import candle_path, write_candles
    from fc.core.data.synth import synth_candles

    df = synth_candles(days=days, timeframe=timeframe, seed=seed)
    path = candle_path(store, "synth", symbol, timeframe)
    write_candles(path, df)
    console.print(f"{len(df):,} synthetic candles in {path}")
