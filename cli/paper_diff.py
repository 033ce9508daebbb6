"""`fc paper diff`: the journal against the backtest of the same candles (live/diff.py)."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fc.cli.paper_options import Journal, JsonOut

console = Console()


def diff(
    run: Annotated[Path, typer.Option(help="The run folder whose model the journal traded.")],
    journal: Journal = Path("paper-journal.sqlite"),
    model: Annotated[
        Path | None,
        typer.Option(help="The exported graph the service ran (default: RUN/export/model.onnx)."),
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            help="A candle file instead of the exchange's candles; SYMBOL=FILE (repeatable) for "
            "the other symbols a run of several reads (default: the files it trained on).",
        ),
    ] = None,
    exchange: Annotated[str, typer.Option(envvar="FC_EXCHANGE", help="ccxt exchange id.")] = (
        "binance"
    ),
    exchange_url: Annotated[
        str | None,
        typer.Option(envvar="FC_EXCHANGE_URL", help="Replace the exchange's public REST base URL."),
    ] = None,
    fee_bps: Annotated[
        float | None,
        typer.Option(help="Cost per unit of position change, bps (default: the journal's)."),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """The journal against the backtest of the same candles, candle by candle (p_up, positions,
    wealth): the first candle that differs and why, and a summary. Exit 0 when every candle
    matches within 1e-9, 1 when not, 2 on bad input.

    Example: fc paper diff --journal paper.sqlite --run runs/RUN --json
    """
    from fc.core.studies.runs import read_config
    from fc.live.diff import candle_source, paper_diff

    predict = None
    if model is None and not (run / "export" / "model.onnx").is_file():
        predict = _torch_predict(run)
    source = candle_source(data or None, exchange, exchange_url, read_config(run))
    result = paper_diff(journal, run, source, model, predict, fee_bps)
    if json_out:
        typer.echo(json.dumps(result))
    else:
        _print_diff(result)
    raise typer.Exit(0 if result["matches"] else 1)


def _torch_predict(run: Path):
    """The run's torch model, for a run never exported (core may import torch, live may not)."""
    from fc.core.errors import FcError

    try:
        from fc.core.studies.backtest_run import torch_predict

        return torch_predict(run)
    except ImportError:
        raise FcError(
            f"{run}: no export/model.onnx and torch is not installed; give --model FILE.onnx"
        ) from None


def _print_diff(r: dict) -> None:
    if "portfolio" in r:
        return _print_universe_diff(r)
    console.print(
        f"{r['symbol']} {r['timeframe']}: journal {r['journal']} against the backtest of {r['run']}"
        f" (predictions {r['predictions']}, fee {r['fee_bps']:g} bps from {r['fee_from']})"
    )
    if r["matches"]:
        console.print(f"{r['compared']:,} candles compared: all match within {r['tolerance']:g}")
    else:
        f = r["first"]
        console.print(f"{r['compared']:,} candles compared: {r['differing']:,} differ; first "
                      f"{f['candle']} (journal row: {f['journal']['kind'] or 'none'})")  # fmt: skip
        for q, j in f["journal"].items():
            b = f["backtest"].get(q)
            if q != "kind" and j != b:
                console.print(f"  {q}: journal {j!r}, backtest {b!r}")
        for reason in f["reasons"]:
            console.print(f"  why: {reason['reason']}: {reason['detail']}")
    deltas = ", ".join(f"{q} {'-' if d is None else f'{d:.3g}'}"
                       for q, d in r["max_abs_diff"].items())  # fmt: skip
    console.print(f"max |Δ| (wealth relative): {deltas}")


def _print_universe_diff(r: dict) -> None:
    """A universe's diff: one line a symbol and one a portfolio strategy."""
    head = f"{r['symbol']} {r['timeframe']}: journal {r['journal']} against the backtest"
    console.print(
        f"{head} of {r['run']} (predictions {r['predictions']}, fee {r['fee_bps']:g} bps)"
    )
    for symbol, s in r["symbols"].items():
        console.print(f"  {symbol}: {s['compared']:,} candles, {s['differing']:,} differ")
    for strategy, p in r["portfolio"].items():
        delta = p["max_rel_wealth_diff"]
        shown = "-" if delta is None else f"{delta:.3g}"
        console.print(f"  portfolio {strategy}: {p['compared']:,} candles, {p['differing']:,} "
                      f"differ (max relative wealth Δ {shown})")  # fmt: skip
    console.print(f"{r['differing']:,} differences (tolerance {r['tolerance']:g})")
