"""`fc paper …`: trade a model on paper live (or replay a candle file), report, status."""

import json
import logging
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fc.cli.paper_options import Journal, JsonOut
from fc.cli.policy_options import Band, Cap, FlatInside, Inside, MinHold, Rebalance, policy_texts

app = typer.Typer(
    help="Paper-trade an exported model live, replay it over a candle file, report the journal.",
    epilog="Example: fc paper --symbol BTC/USDT --model runs/RUN/export/model.onnx "
    "--journal paper.sqlite  |  replay: fc paper --replay candles.parquet --model model.onnx "
    "|  fc paper report --journal paper.sqlite --json",
)
console = Console()


def register(root: typer.Typer) -> None:
    from fc.cli.paper_diff import diff  # `fc paper diff`, in a module of its own

    app.command()(diff)
    root.add_typer(app, name="paper")


@app.callback(invoke_without_command=True)
def paper(
    ctx: typer.Context,
    model: Annotated[
        Path | None,
        typer.Option(envvar="FC_MODEL", help="The exported window graph (model.onnx)."),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(envvar="FC_SYMBOL", help="Market to trade; must be the model's."),
    ] = None,
    exchange: Annotated[str, typer.Option(envvar="FC_EXCHANGE", help="ccxt exchange id.")] = (
        "binance"
    ),
    exchange_url: Annotated[
        str | None,
        typer.Option(envvar="FC_EXCHANGE_URL", help="Replace the exchange's public REST base URL."),
    ] = None,
    journal: Journal = Path("paper-journal.sqlite"),
    fee_bps: Annotated[
        float, typer.Option(envvar="FC_FEE_BPS", help="Cost per unit of position change, bps.")
    ] = 0.0,
    capital: Annotated[
        float, typer.Option(envvar="FC_CAPITAL", help="Paper capital at the first decision.")
    ] = 10_000.0,
    delay: Annotated[
        float, typer.Option(envvar="FC_DELAY_S", help="Seconds after each close to decide.")
    ] = 5.0,
    window: Annotated[
        float | None,
        typer.Option(
            envvar="FC_WINDOW_S",
            help="Seconds after a close within which a decision may still be made, retries "
            "included; later it is skipped. Default: half the timeframe, at most 300.",
        ),
    ] = None,
    deadline: Annotated[
        float | None,
        typer.Option(
            envvar="FC_DEADLINE_S",
            help="A universe: seconds after a close to wait for each symbol's candle; a symbol "
            "whose candle has not come is not decided then (it holds). Default: a tenth of the "
            "candle.",
        ),
    ] = None,
    log_json: Annotated[
        bool, typer.Option("--log-json", envvar="FC_LOG_JSON", help="Log JSON lines.")
    ] = False,
    replay: Annotated[
        list[str] | None,
        typer.Option(
            help="Replay this candle file with a simulated clock, as fast as it can; a model "
            "that reads several symbols: SYMBOL=FILE, repeated (or --store).",
        ),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            help="Replay: candle store for the symbols no --replay file gives "
            "(alone: every symbol from the store)."
        ),
    ] = None,
    start: Annotated[str | None, typer.Option(help="Replay: first decision (UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Replay: stop before this time (UTC).")] = None,
    band: Band = None,
    flat_inside: FlatInside = False,
    inside: Inside = None,
    rebalance: Rebalance = None,
    cap: Cap = None,
    min_hold: MinHold = None,
    json_out: JsonOut = False,
    new_model: Annotated[
        bool,
        typer.Option(
            "--new-model",
            envvar="FC_NEW_MODEL",
            help="Continue a journal another model file wrote (needed once).",
        ),
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(envvar="FC_METRICS_PORT", help="Serve Prometheus metrics on this port."),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(envvar="FC_METRICS_HOST", help="Address the metrics listen on.")
    ] = "127.0.0.1",
) -> None:
    """Run until SIGTERM/SIGINT, deciding a few seconds after every candle close (the timeframe
    is the model's); both policies' positions and wealth go to the journal.

    Example: fc paper --symbol BTC/USDT --model runs/RUN/export/model.onnx --journal paper.sqlite

    Replay: fc paper --replay data/binance/BTC_USDT-30m.parquet --model model.onnx --json

    Several symbols: fc paper --replay BTC.parquet --replay ETH/USDT=ETH.parquet --model m.onnx

    The policy parameters are those exported into the model (fc export); --band, --cap, …
    replace them. The journal records the parameters used on every row.
    """
    if ctx.invoked_subcommand is not None:
        return
    from fc.core.errors import FcError
    from fc.core.evaluation.policy_grid import policy_overrides
    from fc.live.logs import setup_logging

    policy = policy_overrides(policy_texts(band, flat_inside, inside, rebalance, cap, min_hold))

    if model is None:
        raise FcError("no model: pass --model FILE.onnx (or set FC_MODEL)")
    # a replay logs only what goes wrong (skips); its report is the summary of the decisions
    if store is not None and not replay:  # --store alone: replay every symbol from the store
        replay = []
    replaying = replay is not None and (replay or store is not None)
    setup_logging(json_lines=log_json, level=logging.WARNING if replaying else logging.INFO)
    if replaying and metrics_port is not None:
        raise FcError("--metrics-port serves a live service; drop it with --replay")
    if replaying:
        from fc.live.replay import replay_file

        journal_path = (
            str(journal) if ctx.get_parameter_source("journal").name != "DEFAULT" else (":memory:")
        )
        result, report = replay_file(
            replay,
            model,
            journal_path,
            symbol,
            fee_bps,
            capital,
            start,
            end,
            policy,
            new_model,
            store,
            deadline,
        )
        report["replay"] = {
            "decisions": result.decisions,
            "skipped": result.skipped,
            "seconds": round(result.seconds, 3),
            "per_second": round(result.per_second, 1),
        }
        _print_report(report, json_out)
        return
    from fc.live.scheduler import run_paper

    run_paper(
        str(model), symbol, exchange, exchange_url, str(journal), fee_bps, capital, delay, window,
        policy, new_model, metrics_port, metrics_host, deadline,
    )  # fmt: skip


@app.command()
def report(
    journal: Journal = Path("paper-journal.sqlite"),
    symbol: Annotated[
        str | None, typer.Option(help="Market, when the journal has several.")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Wealth, return, drawdown and trades per policy, and how long the service was down.

    Example: fc paper report --journal paper.sqlite --json
    """
    from fc.live.journal import open_journal
    from fc.live.report import paper_report
    from fc.live.universe_report import journal_universe, universe_report

    book = open_journal(journal, must_exist=True)
    try:
        # a universe's journal: every symbol and the portfolio (--symbol X: one symbol's)
        symbols = journal_universe(book) if symbol in (None, "portfolio") else None
        found = universe_report(book, symbols) if symbols else paper_report(book, symbol)
        _print_report(found, json_out)
    finally:
        book.close()


@app.command()
def status(
    journal: Journal = Path("paper-journal.sqlite"),
    symbol: Annotated[
        str | None, typer.Option(help="Market, when the journal has several.")
    ] = None,
    grace: Annotated[
        float | None, typer.Option(help="Seconds past the due time before it counts as late.")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """The last decision and whether the next one is overdue: exit 0 when on time, 1 when late
    (for a health check), 2 when the journal cannot be read.

    Example: fc paper status --journal /var/lib/fc-paper/journal.sqlite || alert
    """
    from fc.live.journal import open_journal
    from fc.live.report import paper_status
    from fc.live.universe_report import journal_universe

    book = open_journal(journal, must_exist=True)
    try:
        if symbol is None and journal_universe(book):  # a universe's: the portfolio's line
            symbol = "portfolio"
        state = paper_status(book, int(time.time() * 1000), symbol, grace)
    finally:
        book.close()
    if json_out:
        typer.echo(json.dumps(state))
    else:
        word = f"LATE by {state['late_by_s']:.0f} s" if state["late"] else "on time"
        positions = ", ".join(f"{p} {f:+.4f}" for p, f in state["positions"].items())
        console.print(
            f"{state['symbol']} {state['timeframe']}: last decided candle opened "
            f"{state['last_candle']}, decided {state['decided_at']}; {positions}; {word}"
        )
    raise typer.Exit(1 if state["late"] else 0)


def _print_report(report: dict, json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(report))
        return
    if "portfolio" in report:
        return _print_universe_report(report)
    table = Table(title=f"paper {report['symbol']} {report['timeframe']}")
    table.add_column("")
    for policy in ("discrete", "proportional"):
        table.add_column(policy, justify="right")
    lines = {
        "wealth": "{final_wealth:,.2f}",
        "return": "{return:+.2%}",
        "max drawdown": "{max_drawdown:.2%}",
        "decisions": "{decisions:,}",
        "trades": "{trades:,}",
        "position now": "{position:+.4f}",
        "first decision": "{first}",
        "last decision": "{last}",
    }
    for name, fmt in lines.items():
        table.add_row(name, *(fmt.format(**report[p]) for p in ("discrete", "proportional")))
    console.print(table)
    down = report["downtime"]
    console.print(
        f"held through {down['held_candles']} candle(s) without deciding "
        f"({down['seconds'] / 3600:.1f} h in {len(down['periods'])} period(s)); "
        f"{report['skipped']} skipped decision(s), {report['starts']} start(s)"
    )
    _print_models(report.get("by_model", {}))
    if "replay" in report:
        r = report["replay"]
        console.print(
            f"replay: {r['decisions']:,} decisions in {r['seconds']} s ({r['per_second']}/s)"
        )


def _print_models(models: dict) -> None:
    """The figures split by model file, when more than one model wrote the journal."""
    if len(models) < 2:
        return
    table = Table(title="by model: returns of the positions each decided")
    for col in ("sha256", "first decision", "decisions", "discrete", "proportional"):
        table.add_column(col, justify="left" if col == "sha256" else "right")
    for sha, m in models.items():
        returns = (f"{m[p]['return']:+.2%}" for p in ("discrete", "proportional"))
        name = sha[:12] or "(unrecorded)"
        table.add_row(name, m["first"], f"{m['discrete']['decisions']:,}", *returns)
    console.print(table)
    for sha, m in models.items():
        console.print(f"{sha[:12] or '(unrecorded)'}: {m['model'] or '?'}")


def _print_universe_report(report: dict) -> None:
    """A universe service's journal: one row a symbol (both policies), one a portfolio book."""
    table = Table(title=f"paper, {len(report['symbols'])} symbols {report['timeframe']}")
    for col in ("symbol", "policy", "wealth", "return", "max drawdown", "decisions", "position"):
        table.add_column(col, justify="left" if col in ("symbol", "policy") else "right")
    for symbol, one in report["symbols"].items():
        for policy in ("discrete", "proportional"):
            m = one[policy]
            table.add_row(symbol, policy, f"{m['final_wealth']:,.2f}", f"{m['return']:+.2%}",
                          f"{m['max_drawdown']:.2%}", f"{m['decisions']:,}",
                          f"{m['position']:+.4f}")  # fmt: skip
    for strategy, m in report["portfolio"].items():
        table.add_row("portfolio", strategy, f"{m['final_wealth']:,.2f}", f"{m['return']:+.2%}",
                      f"{m['max_drawdown']:.2%}", f"{m['decisions']:,}",
                      f"gross {m['gross_exposure']:.2f}")  # fmt: skip
    console.print(table)
    console.print(f"{report['skipped']} skipped decision(s)")
    if "replay" in report:
        r = report["replay"]
        console.print(
            f"replay: {r['decisions']:,} decisions in {r['seconds']} s ({r['per_second']}/s)"
        )
