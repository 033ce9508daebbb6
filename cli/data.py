"""`fc data …`: pull, import, info, synth."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
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
SymbolEach = Annotated[
    list[str] | None, typer.Option("--symbol", help="Market symbol, BASE/QUOTE; may be repeated.")
]
Symbols = Annotated[
    str | None,
    typer.Option(help="Several symbols at once: A,B,… or @FILE (one a line, or a freqtrade "
                 "config's exchange.pair_whitelist)."),
]  # fmt: skip


def chosen_symbols(each: list[str] | None, several: str | None) -> list[str]:
    """--symbol (repeated) and --symbols A,B or @FILE together, in order, each once."""
    from fc.core.data.universe import parse_symbols

    return list(dict.fromkeys(list(each or []) + list(parse_symbols(several))))


@app.command()
def pull(
    symbol: SymbolEach = None,
    symbols: Symbols = None,
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
    is new. The candle still in progress is never stored. Default symbol: BTC/USDT.

    Example: fc data pull --symbols BTC/USDT,ETH/USDT --timeframe 5m --since 2017-08-17
    """
    import sys

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from fc.live.pull import open_markets, pull_candles

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
    chosen = chosen_symbols(symbol, symbols) or ["BTC/USDT"]
    ex = open_markets(exchange, chosen, timeframe, url=exchange_url)
    with bar:
        for one in chosen:
            task = bar.add_task(f"{one} {timeframe}", total=None)
            summary = pull_candles(
                store,
                ex,
                one,
                timeframe,
                since,
                progress=lambda done, total, task=task: bar.update(
                    task, completed=done, total=total
                ),
            )
            console.print(
                f"{summary['added']:,} candles added; {summary['rows']:,} in {summary['path']} "
                f"from {summary['first']} to {summary['last']}"
            )


@app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(help="Candle files (parquet, CSV, feather, json, json.gz) or folders."),
    ],
    symbol: SymbolEach = None,
    symbols: Symbols = None,
    timeframe: Annotated[
        str | None, typer.Option(help="The files' timeframe (default: from name or spacing).")
    ] = None,
    exchange: Annotated[str, typer.Option(help="Store folder to file it under.")] = "binance",
    store: Store = Path("data"),
) -> None:
    """Validate local candle files and merge them into the store, all or nothing. A freqtrade
    name (ETH_BTC-5m.feather, XRP_USDT_USDT-1h-futures.json.gz) gives the symbol and timeframe,
    and an option that contradicts it is refused; a folder (freqtrade's user_data/data/binance,
    with its futures/) imports every candle file in it, --symbol/--timeframe choosing among
    them. A file without such a name is BTC/USDT unless --symbol says otherwise. Candles that
    differ from stored ones at the same time are refused.

    Example: fc data import user_data/data/binance --symbols BTC/USDT,ETH/USDT
    """
    from fc.core.data.imports import import_candles

    summaries, skipped = import_candles(
        files, store, exchange, chosen_symbols(symbol, symbols), timeframe
    )
    for s in summaries:
        console.print(f"{s['symbol']} {s['timeframe']}: {s['rows']:,} candles in {s['path']}")
    if skipped:
        counts = ", ".join(f"{n} {label}" for label, n in sorted(skipped.items()))
        console.print(f"skipped: {counts}")


@app.command()
def info(
    symbol: SymbolEach = None,
    symbols: Symbols = None,
    timeframe: Annotated[str, typer.Option(help="Report at this timeframe (resampled).")] = "30m",
    exchange: Annotated[str | None, typer.Option(help="Store folder (default: any).")] = None,
    store: Store = Path("data"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Range, rows, gaps and filled bars of stored candles, at the stored or a resampled timeframe.
    Several symbols: one row each with its candles each month, and whether they share one grid
    (over the overlap of their ranges, real bars at the same times). Default symbol: BTC/USDT.

    Example: fc data info --symbols @universe.txt --timeframe 1h --json
    """
    from fc.core.data.report import data_info, symbols_info

    chosen = chosen_symbols(symbol, symbols) or ["BTC/USDT"]
    if len(chosen) > 1:
        report = symbols_info(store, chosen, timeframe, exchange)
        typer.echo(json.dumps(report)) if as_json else _show_grid(report, timeframe)
        return
    report = data_info(store, chosen[0], timeframe, exchange)
    if as_json:
        typer.echo(json.dumps(report))
        return
    title = f"{chosen[0]} {timeframe}" + (" (synthetic)" if report["synthetic"] else "")
    table = Table(title=title)
    table.add_column("field")
    table.add_column("value", justify="right")
    for key, value in report.items():
        shown = f"{value:,}" if type(value) is int else str(value)
        table.add_row(key, shown)
    console.print(table)


def _show_grid(report: dict, timeframe: str) -> None:
    fields = ("first", "last", "rows", "gaps", "filled")
    table = Table(title=f"{len(report['symbols'])} symbols at {timeframe} (UTC)")
    table.add_column("symbol")
    for field in fields:
        table.add_column(field, justify="right")
    for sym, one in report["symbols"].items():
        # times are UTC and on whole minutes: so shown, a row fits an 80-column terminal
        shown = [one[f][:16].replace("T", " ") for f in fields[:2]]
        shown += [f"{one[f]:,}" for f in fields[2:]]
        table.add_row(sym, *shown)
    console.print(table)
    _show_months(report["symbols"])
    grid = report["grid"]
    if grid["overlap"] is None:
        console.print("not one grid: their ranges do not overlap")
    elif report["one_grid"]:
        console.print(f"one grid from {grid['overlap']['first']} to {grid['overlap']['last']}")
    else:
        for sym, lack in grid["missing"].items():
            console.print(
                f"not one grid: {sym} lacks {lack['bars']:,} bar(s) the others have, "
                f"first at {lack['first']}"
            )


def _show_months(symbols: dict) -> None:
    """Candles per symbol and month: where each symbol starts (listings) and where it thins."""
    months = sorted({m for one in symbols.values() for m in one["months"]})
    table = Table(title="candles per month", box=box.SIMPLE, pad_edge=False, padding=(0, 0, 0, 1))
    table.add_column("symbol", no_wrap=True)
    for month in months:
        table.add_column(month[2:], justify="right", min_width=5)  # "24-09": a year fits 80 columns
    for sym, one in symbols.items():
        table.add_row(sym, *(f"{one['months'].get(m, 0):,}" for m in months))
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
