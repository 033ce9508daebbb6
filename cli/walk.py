"""`fc walk`: parse options, call core.walk.walk_forward, print the folds and the backtest."""

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from fc.cli.backtest_options import FeeBps, Top, backtest_config
from fc.cli.executor_options import runs_units, unit_progress
from fc.cli.train_options import trains

Opt = typer.Option
# Per-fold training is shorter than `fc train`'s 7 epochs so that ten quarterly folds of the
# 30m file finish in minutes on 2 CPU cores (docs/walk-forward.md).
WALK_EPOCHS = 4


# a fold's split is set per fold (core.studies.walk.fold_config), and it has no test range
@trains(skip=("split", "test_from", "calibrate"), defaults={"epochs": WALK_EPOCHS})
@runs_units
def walk_command(
    start: Annotated[str, Opt(help="First fold's start (UTC date).")],
    every: Annotated[str, Opt(help="Fold length: 10D, 6W, 3M (months) or 1Y.")] = "3M",
    val: Annotated[str, Opt(help="Part before each fold that chooses its checkpoint.")] = "3M",
    window: Annotated[str, Opt(help="Rolling training window, e.g. 2Y ('': all the past).")] = "",
    fee_bps: FeeBps = None,
    slippage_bps: Annotated[float, Opt(min=0, help="Backtest slippage, bps.")] = 0.0,
    top: Top = None,
    out: Annotated[
        Path | None, Opt(help="The walk folder; the same command again finishes what is missing.")
    ] = None,
    quiet: Annotated[bool, Opt(help="No fold progress on stderr.")] = False,
    as_json: Annotated[bool, Opt("--json", help="Print one JSON object.")] = False,
    *,
    given,
    executor,
) -> None:
    """Walk-forward: per fold, train on the past, choose on its last --val, predict the fold;
    backtest the stitched out-of-sample predictions. The last line printed is the walk folder.
    With --symbols A,B,…: one model pooled over them per fold, and the portfolio's backtest
    (--fee-bps SYMBOL=BPS per symbol beside the default, --top N).

    Example: fc walk --data ../shared/data/btc_usdt_30m.parquet --start 2023-01-01 --every 3M
    """
    from fc.core.evaluation.backtest import check_universe
    from fc.core.studies.walk import FoldUnits, WalkConfig

    cfg = backtest_config(fee_bps, slippage_bps, top)
    check_universe(cfg, given.symbols())
    walk = WalkConfig(start=start, every=every, val=val, window=window)
    # serial: a line a fold, as always; units elsewhere: one progress bar of them all
    serial = executor.kind == "serial"
    on_fold = None if quiet or as_json or not serial else _print_fold
    on_event, progress = unit_progress(quiet or as_json or serial)
    units = FoldUnits(executor, out, given.data["threads"], on_event)
    with progress or nullcontext():
        return _walk(given, walk, cfg, on_fold, units, as_json)


def _walk(given, walk, cfg, on_fold, units, as_json: bool) -> None:
    from fc.core.studies.inputs import pooled
    from fc.core.studies.walk import walk_forward

    if pooled(given.data, given.fields):
        return _walk_universe(given, walk, cfg, on_fold, units, as_json)
    grid, base = given.load()
    runs = given.data["runs"]
    walk_dir, result = walk_forward(base, walk, grid, runs, cfg, on_fold, units)
    if as_json:
        typer.echo(json.dumps(result))
        return
    _print_report(result)
    typer.echo(str(walk_dir))


def _walk_universe(given, walk, cfg, on_fold, units, as_json: bool) -> None:
    """fc walk --symbols: a pooled model per fold (core.studies.universe_walk)."""
    from fc.core.studies.universe_walk import walk_universe

    grids, base = given.load_universe()
    walk_dir, result = walk_universe(base, walk, grids, given.data["runs"], cfg, on_fold, units)
    if as_json:
        typer.echo(json.dumps(result))
        return
    from rich.console import Console

    from fc.cli.universe_report import universe_tables
    from fc.core.studies.walk_report import RANGE

    err, report = Console(stderr=True), result["backtest"]  # stdout: only the walk folder
    label = f"walk-forward {report['first_decision'][:10]}..{report['last_decision'][:10]}"
    for table in universe_tables(label, report[RANGE], report, report["config"]["fee_bps"]):
        err.print(table)
    err.print(f"{result['timing']['total_seconds']:.0f} s; files in {walk_dir}")
    typer.echo(str(walk_dir))


def _print_fold(fold, event: str, record: dict) -> None:
    err = typer.get_text_stream("stderr")
    head = f"fold {fold.number} [{fold.start:%Y-%m-%d}, {fold.end:%Y-%m-%d})"
    if event == "start":
        err.write(f"{head}: train from {fold.train_start:%Y-%m-%d}, validate from "
                  f"{fold.validation_start:%Y-%m-%d}\n")  # fmt: skip
    elif "model" not in record:  # a pooled fold: its scores are in the backtest's symbol rows
        err.write(f"{head}: {record['decisions']} decisions, {record['train_seconds']:.0f} s\n")
    else:
        m = record["model"]
        err.write(f"{head}: {record['decisions']} decisions, accuracy {m['accuracy']:.2%}, "
                  f"log loss {m['log_loss']:.4f}, {record['train_seconds']:.0f} s\n")  # fmt: skip
    err.flush()


def _print_report(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from fc.cli.backtest import _edges, _range_tables, ledger_line
    from fc.core.studies.walk_report import RANGE

    err = Console(stderr=True)  # stdout carries only the walk folder, for scripts
    table = Table(title="folds: direction of the next candle, each out of sample")
    for col in ("fold", "from", "decisions", "acc", "log loss", "prior LL", "mean-rev acc"):
        table.add_column(col, justify="right")
    for r in result["folds"]:
        table.add_row(str(r["fold"]), r["start"][:10], f"{r['decisions']:,}",
                      f"{r['model']['accuracy']:.2%}", f"{r['model']['log_loss']:.4f}",
                      f"{r['class_prior']['log_loss']:.4f}",
                      f"{r['mean_reversion_accuracy']:.2%}")  # fmt: skip
    err.print(table)
    section = result["backtest"][RANGE]
    for part in _range_tables("walk-forward", section):
        err.print(part)
    err.print(_edges("walk-forward", section["classifier"]))
    err.print(ledger_line("walk", section, result["backtest"]["ledger"]), soft_wrap=True,
              markup=False)  # fmt: skip
    err.print(f"{result['timing']['total_seconds']:.0f} s; files in {result['walk']}")


def register(root: typer.Typer) -> None:
    root.command("walk")(walk_command)
