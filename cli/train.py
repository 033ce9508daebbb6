"""`fc train` and `fc sweep`: parse options, call core.training / core.sweep, print."""

import time
from pathlib import Path
from typing import Annotated

import typer

from fc.cli.executor_options import runs_units
from fc.cli.train_options import trains

Opt = typer.Option


@trains()
def train_command(
    quiet: Annotated[bool, Opt(help="No progress bar.")] = False,
    as_json: Annotated[
        bool, Opt("--json", help="One JSON object: run folder, validation, timing in seconds.")
    ] = False,
    *,
    given,
) -> None:
    """Train a model on candles; the last line printed is the run folder (with --json: one
    JSON object, `run` and the seconds before the first step, training, after the last step).

    Example: fc train --data ../shared/data/btc_usdt_30m.parquet --loss ce --epochs 7
    """
    from fc.core.learning.config import TrainConfig
    from fc.core.learning.ensemble import check_ensemble_options
    from fc.core.learning.training import resolve_device
    from fc.core.studies.train import train_ensemble

    stamps: dict = {"imported": time.time()}  # --json's timing: what start-up is made of
    resolve_device(given.fields["device"])  # a missing CUDA is a user error before any work
    if given.symbols():
        return _train_universe(given, quiet or as_json, as_json, stamps)
    check_ensemble_options(TrainConfig(**given.fields))
    grid, config = given.load()
    stamps["data_loaded"] = time.time()
    runs = given.data["runs"]
    job = lambda report: train_ensemble(config, grid, runs, report, timing=stamps)  # noqa: E731
    _run_and_print(job, quiet or as_json, as_json, stamps, _print_summary)


def _run_and_print(job, quiet: bool, as_json: bool, stamps: dict, summary) -> None:
    """job(progress or None) -> run folder, with a progress bar unless quiet; then one JSON
    object (run folder and timing) or the summary and the run folder as the last line."""
    run_dir = job(None) if quiet else _with_progress(job)
    if as_json:
        import json

        from fc.core.learning.timing import train_result

        typer.echo(json.dumps(train_result(run_dir, stamps)))
        return
    summary(run_dir)
    typer.echo(str(run_dir))


def _train_universe(given, quiet: bool, as_json: bool, stamps: dict) -> None:
    """fc train --symbols: one model pooled over the universe (core.studies.universe)."""
    from fc.core.studies.universe import train_universe

    grids, config = given.load_universe()
    stamps["data_loaded"] = time.time()
    runs = given.data["runs"]
    job = lambda report: train_universe(config, grids, runs, report, timing=stamps)  # noqa: E731
    _run_and_print(job, quiet, as_json, stamps, _print_universe)


def _print_universe(run_dir: Path) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    from fc.core.studies.runs import read_config

    metrics = json.loads((run_dir / "metrics.json").read_text())
    val, how = metrics["validation"], _how(read_config(run_dir).family)
    table = Table(title=f"validation, target {metrics['target']} ({val['decisions']} decisions "
                  f"over every symbol, {how})")  # fmt: skip
    for col in ("", "log loss", "accuracy", "prior log loss", "mean reversion acc"):
        table.add_column(col, no_wrap=True)
    rows = [("pooled", val, metrics["baselines"])]
    rows += [(s, m["validation"], m["baselines"]) for s, m in metrics["symbols"].items()]
    for name, v, base in rows:
        table.add_row(name, f"{v['ce']:.5f}", f"{v['accuracy']:.4f}",
                      f"{base['class_prior']['ce']:.5f}",
                      f"{base['mean_reversion_accuracy']:.4f}")  # fmt: skip
    Console(stderr=True).print(table)
    Console(stderr=True).print(_test_line(run_dir, metrics))


def _how(family: str) -> str:
    """What a decision reads, in a table's title (the words only)."""
    return "exact windows" if family == "gru" else f"{family}, lagged rows"


def _with_progress(job):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[losses]}"), TimeElapsedColumn()]  # fmt: skip
    from rich.console import Console

    # on stderr: stdout carries only the run folder, for scripts
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("train", total=None, losses="")
        last_val = [None]

        def on_progress(step, total, train_loss, val_loss):
            if val_loss is not None:
                last_val[0] = val_loss
            val = "" if last_val[0] is None else f"  val {last_val[0]:.6g}"
            progress.update(task, completed=step, total=total, losses=f"loss {train_loss:.6g}{val}")

        return job(on_progress)


def _print_summary(run_dir: Path) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    metrics = json.loads((run_dir / "metrics.json").read_text())
    val, base = metrics["validation"], metrics["baselines"]
    from fc.core.studies.runs import read_config

    config = read_config(run_dir)
    table = Table(title=f"validation ({val['decisions']} decisions, {_how(config.family)})")
    members, calibration = metrics.get("members"), metrics.get("calibration")
    for col in ("", "log loss", "accuracy"):
        table.add_column(col, no_wrap=True)
    name = f"mean of {len(members)} members" if members else "model"
    name += f", T = {calibration['temperature']:.3g}" if calibration else ""
    table.add_row(name, f"{val['ce']:.5f}", f"{val['accuracy']:.4f}")
    for member in members or []:
        mv = member["validation"]
        table.add_row(f"member seed {member['seed']}", f"{mv['ce']:.5f}", f"{mv['accuracy']:.4f}")
    prior = base["class_prior"]
    table.add_row("class prior", f"{prior['ce']:.5f}", f"{prior['accuracy']:.4f}")
    for key in ("last_direction", "momentum", "mean_reversion"):  # momentum: at a horizon H > 1
        if f"{key}_accuracy" in base:
            table.add_row(key.replace("_", " "), "", f"{base[f'{key}_accuracy']:.4f}")
    Console(stderr=True).print(table)
    if "purged" in metrics:  # H > 1: decisions whose label read past a range's end
        words = ", ".join(f"{k} {v}" for k, v in metrics["purged"].items())
        Console(stderr=True).print(f"purged (label {config.horizon} candles ahead): {words}")
    Console(stderr=True).print(
        f"log growth per decision: policy f = p_up - p_down {val['log_growth']:.3g}, "
        f"buy and hold {base.get('buy_and_hold_log_growth', float('nan')):.3g}"
    )
    if calibration:
        Console(stderr=True).print(
            f"temperature {calibration['temperature']:.4g} fitted on validation: log loss "
            f"{calibration['validation_ce_before']:.5f} -> {calibration['validation_ce_after']:.5f}"
            " (in-sample for T; judge it on later candles)"
        )
    Console(stderr=True).print(_test_line(run_dir, metrics))


def _test_line(run_dir: Path, metrics: dict) -> str:
    import json

    config = json.loads((run_dir / "config.json").read_text())
    if not config.get("test_range"):
        return "no test range (--test-from none): every number above chose the checkpoint"
    first, last = config["test_range"]
    return (
        f"test range {first} .. {last} ({metrics.get('test_decisions', '?')} decisions): "
        f"untouched by training and selection; `fc backtest {run_dir}` reports it"
    )


def register(root: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    root.command("train")(train_command)
    root.command("sweep")(sweep_command)


def _best_line(best: dict) -> str:
    """The sweep's best run, always with the number of runs it is the best of."""
    n = best["n_trials"]
    if best.get("best") is None:
        return f"best of {n}: none (no run has a validation Sharpe)"
    return (
        f"best of {n} by validation Sharpe of f = p_up - p_down: {Path(best['best']).name}; "
        f"PSR(0) {best['psr']:.3f}, deflated Sharpe ratio for {n} trials {best['dsr']:.3f} "
        "(validation also chose each checkpoint: the test range is the honest check)"
    )


def _ints(text: str) -> list[int]:
    from fc.core.errors import FcError

    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise FcError(f"{text!r}: give comma-separated whole numbers, like 8,16,32") from None


# each sweep unit sets its own torch threads (core.studies.sweep); --workers: by default one
# process per core on CPU, one looping on CUDA (core.studies.sweep.sweep_executor)
@trains(skip=("threads",), defaults={"threads": 0})
@runs_units
def sweep_command(
    layers: Annotated[str, Opt(help="Layer counts to try, comma-separated.")] = "1,3",
    hidden: Annotated[str, Opt(help="Hidden sizes to try, comma-separated.")] = "8,16,32",
    loss: Annotated[str, Opt(help="Losses to try: ce, profit or ce,profit.")] = "ce,profit",
    *,
    given,
    executor,
) -> None:
    """Train the workshop's grid (layers x hidden x loss), then a table and one plot of the
    validation curves (runs/sweep-<time>.png, its path the last line printed).

    Example: fc sweep --data ../shared/data/btc_usdt_30m.parquet --hidden 8,16,32 --loss ce
    """
    import json
    from dataclasses import replace
    from datetime import datetime, timezone

    from rich.console import Console
    from rich.table import Table

    from fc.core.errors import FcError
    from fc.core.learning.config import TrainConfig
    from fc.core.learning.ensemble import check_ensemble_options
    from fc.core.learning.family import family_of
    from fc.core.learning.plots import sweep_figure
    from fc.core.learning.training import resolve_device
    from fc.core.studies.sweep import run_sweep, sweep_best, sweep_curves, sweep_grid, sweep_table

    # before any work: --device cuda without CUDA is one line
    device = resolve_device(given.fields["device"])
    family_of(given.fields["family"])  # an unknown family is that, first
    family = given.fields["family"]
    if family != "gru":  # the grid's three axes are the GRU's own options
        raise FcError(f"fc sweep runs the workshop's GRU grid (layers x hidden x loss); for "
                      f"--family {family} search with fc tune --family")  # fmt: skip
    losses = [v.strip() for v in loss.split(",") if v.strip()]
    if not losses or any(v not in ("ce", "profit") for v in losses):
        raise FcError(f"--loss {loss!r}: use ce, profit or ce,profit")
    check_ensemble_options(TrainConfig(**given.fields))
    grid, base = given.load_universe() if len(given.symbols()) > 1 else given.load()
    base = replace(base, device=device)
    runs = given.data["runs"]
    configs = sweep_grid(base, _ints(layers), _ints(hidden), losses)
    err = Console(stderr=True, width=120)
    err.print(f"{len(configs)} runs")
    results = run_sweep(configs, grid, runs, executor,
                        on_done=lambda r: err.print(f"done {r['run']}"))  # fmt: skip
    frame = sweep_table(results)
    table = Table(title="fc sweep: validation (exact windows) beside the class prior")
    for col in ("loss", "layers", "hidden", "val CE", "val acc", "log growth", "val Sharpe",
                "prior CE", "prior acc", "s"):  # fmt: skip
        table.add_column(col, no_wrap=True)
    for row in frame.itertuples():
        cells = [f"{row.val_ce:.5f}", f"{row.val_accuracy:.4f}", f"{row.val_log_growth:.3g}"]
        cells.append(f"{row.val_sharpe:+.2f}")
        cells += [f"{row.prior_ce:.5f}", f"{row.prior_accuracy:.4f}", f"{row.seconds:.0f}"]
        table.add_row(row.loss, str(row.layers), str(row.hidden), *cells)
    err.print(table)
    best = sweep_best(results)
    err.print(_best_line(best))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    png = Path(runs) / f"sweep-{stamp}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    figure = sweep_figure(sweep_curves(results))
    figure.savefig(png, dpi=100)
    frame.to_csv(png.with_suffix(".csv"), index=False)
    png.with_suffix(".best.json").write_text(json.dumps(best, indent=2) + "\n")
    typer.echo(str(png))
