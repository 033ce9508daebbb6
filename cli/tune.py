"""`fc tune` (an Optuna study of fc train runs) and `fc tune report`: parse options, call
core.tune / core.tune_report, print."""

import json
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from fc.cli.executor_options import runs_units, unit_progress
from fc.cli.train_options import trains

Opt = typer.Option


class _RunByDefault(TyperGroup):
    """`fc tune OPTIONS` is `fc tune run OPTIONS`; `fc tune report ...` is the report."""

    def parse_args(self, ctx, args):
        if not args or args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


class _RunCommand(TyperCommand):
    """Lists the searchable parameters in --help from core.tune's registry, read only when help
    is shown (core.tune needs numpy; `fc` itself starts without it)."""

    @property
    def epilog(self):
        from fc.core.studies.tune import SEARCHABLE, searchable

        def flags(how):
            return ", ".join(
                "--" + n.replace("_", "-") for n in searchable() if SEARCHABLE[n] == how
            )

        return (
            "A value 8,16,32 is a list, low:high a range, one value is fixed. Searchable: "
            f"{flags('log')} (ranges log-uniform); {flags('linear')} (uniform); {flags('list')} "
            "(lists). Any other fc train option is fixed: --epochs 2 --max-steps 50 --split "
            "2024-01-01 --device cpu ... The policy parameters (--band, --flat-inside true,false, "
            "--rebalance, --cap, --min-hold) change only --objective val-policy-log-growth: the "
            "--policy backtested on validation at --fee-bps."
        )

    @epilog.setter
    def epilog(self, value):  # click sets it in __init__; the property above answers
        pass


tune_app = typer.Typer(
    cls=_RunByDefault,
    help="Optuna studies of fc train runs (fc tune [run] ...) and their report.",
    add_completion=False,
)


def _on_trial(trial) -> None:
    from rich.console import Console

    value = "" if trial.value is None else f" value {trial.value:.6g}"
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in trial.params.items())  # fmt: skip
    run = trial.user_attrs.get("run_dir", "")
    Console(stderr=True, width=200).print(
        f"trial {trial.number} {trial.state.name}{value} {params} {run}", highlight=False
    )


@tune_app.command(
    "run",
    cls=_RunCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@trains(training=False)
@runs_units
def run_command(
    ctx: typer.Context,
    study: Annotated[str, Opt(help="Study name: the same name resumes or joins it.")] = "fc",
    storage: Annotated[
        str, Opt(help="sqlite:///FILE or postgresql://USER@HOST/DB; default RUNS/tune.sqlite3.")
    ] = "",
    objective: Annotated[
        str, Opt(help="val-ce (minimised), val-log-growth or val-policy-log-growth.")
    ] = "val-ce",
    policy: Annotated[
        str | None, Opt(help="val-policy-log-growth: discrete (default) or proportional.")
    ] = None,
    fee_bps: Annotated[
        float | None, Opt(help="val-policy-log-growth: fee per unit traded, bps (default 0).")
    ] = None,
    n_trials: Annotated[int, Opt(help="Trials this worker runs (0: until --timeout).")] = 20,
    timeout: Annotated[float, Opt(help="Stop starting trials after this many s (0: none).")] = 0,
    sampler_seed: Annotated[int, Opt(help="TPE sampler seed (give workers different ones).")] = 0,
    pruner: Annotated[
        str, Opt(help="median or none (default: median; none for val-policy-log-growth).")
    ] = "",
    prune_startup: Annotated[int, Opt(help="Completed trials before pruning starts.")] = 4,
    prune_warmup: Annotated[int, Opt(help="Validations of a trial before it can be pruned.")] = 3,
    as_json: Annotated[bool, Opt("--json", help="Print the study report as one JSON object.")] = (
        False
    ),
    *,
    given,
    executor,
) -> None:
    """Search fc train's parameters with Optuna (TPE, median pruning on the validation losses).

    The last line printed is the best trial's run folder. Examples:
    fc tune --data ../shared/data/btc_usdt_30m.parquet --study gru --hidden 8,16,32
    --layers 1:3 --lr 1e-3:1e-1 --loss ce,profit --epochs 3 --n-trials 40;
    fc tune --data FILE --study band --objective val-policy-log-growth --fee-bps 5
    --band 0:0.1 --min-hold 1:16 --hidden 8,16 --n-trials 40
    """
    from fc.core.evaluation.policies import NAMES
    from fc.core.studies import tune as search
    from fc.core.studies import tune_study
    from fc.core.studies.policy_objective import policy_target, split_policy

    fixed, space = search.search_space(search.option_values(ctx.args))
    fixed, fixed_policy = split_policy(fixed)
    search.check_objective(objective)
    searched = [d.name for d in space if d.name in NAMES]
    target = policy_target(objective, fixed_policy, searched, policy, fee_bps)
    prune = tune_study.pruner_for(objective, pruner, prune_startup, prune_warmup)
    threads = given.data["threads"]
    texts = search.feature_alternatives(replace(given.load_base(), **fixed), space)
    if len(given.symbols()) > 1:  # a universe: one pooled grid set, one feature spec
        from fc.core.errors import FcError

        if len(texts) > 1:
            raise FcError("--features given several times with --symbols: search one spec")
        grid, base = given.load_universe(replace(given.load_base(), **fixed).features)
    else:
        grids, base = given.load_features(texts)
        grid = grids if len(grids) > 1 else grids[texts[0]]
    base = replace(base, **fixed)
    runs = given.data["runs"]
    search.check_study_input(base, space, objective, grid, target)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line a trial is ours (_on_trial)
    url = tune_study.storage_url(storage, runs)
    study_ = tune_study.open_study(
        study, tune_study.open_storage(url), objective, sampler_seed, prune, target
    )
    if executor.kind != "serial":  # trials as units; quiet with --json
        from fc.core.studies.tune_units import tune_units

        on_event, progress = unit_progress(as_json)
        with progress or nullcontext():
            tune_units(study_, url, base, space, grid, runs, objective, n_trials, timeout or None,
                       _on_trial, target, executor, threads, on_event, sampler_seed)  # fmt: skip
        return _finish(study_, as_json)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    search.tune(study_, base, space, grid, runs, objective, n_trials or None, timeout or None,
                _on_trial, target)  # fmt: skip
    _finish(study_, as_json)


def _finish(study, as_json: bool) -> None:
    from fc.core.studies.tune_report import study_report

    report = study_report(study)
    if as_json:
        typer.echo(json.dumps(report))
        return
    _print_report(report)
    if report["best"]:
        typer.echo(report["best"]["run_dir"])


def _print_report(report: dict, file_console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = file_console or Console(stderr=True)
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(report["states"].items()))
    console.print(
        f"study {report['study']}: {report['trials']} trials ({states}); objective "
        f"{report['objective']} on the validation range ({report['direction']})",
        highlight=False,
    )
    table = Table(title="trials (validation)")
    for col in ("#", "state", "value", "params", "validations", "run_dir"):
        table.add_column(col, overflow="fold")
    for row in report["table"]:
        value = "" if row["value"] is None else f"{row['value']:.6g}"
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in row["params"].items())  # fmt: skip
        table.add_row(str(row["number"]), row["state"].lower(), value, params,
                      str(row["validations"]), row["run_dir"] or "")  # fmt: skip
    console.print(table)
    best = report["best"]
    if best is None:
        console.print("no completed trial yet: no best")
        return
    console.print(
        f"best of {report['best_of']} completed: trial {best['number']}, {report['objective']} "
        f"{best['value']:.6g}, {best['params']}",
        highlight=False,
    )
    if report["best_policy"]:
        console.print(f"policy of the best: {report['best_policy']} (validation; "
                      "RUN/backtest/chosen_policy.json, which fc export stamps)",
                      highlight=False)  # fmt: skip
    dsr = report["deflated_sharpe"]
    shown = "n/a" if dsr["value"] is None else f"{dsr['value']:.3f}"
    console.print(f"deflated Sharpe of the best ({dsr['policy']}, {dsr['range']}): {shown} "
                  f"({dsr['reason']})", highlight=False)  # fmt: skip


@tune_app.command("report")
def report_command(
    study: Annotated[str, Opt(help="Study name.")] = "fc",
    storage: Annotated[str, Opt(help="The study's URL; default RUNS/tune.sqlite3.")] = "",
    runs: Annotated[Path, Opt(help="Runs folder holding tune.sqlite3 (without --storage).")] = (
        Path("runs")
    ),
    out: Annotated[Path | None, Opt(help="Folder for the PNGs (default RUNS/tune-STUDY).")] = None,
    as_json: Annotated[bool, Opt("--json", help="Print one JSON object.")] = False,
) -> None:
    """Best trial of N, the table of trials, the deflated Sharpe of the best (when its
    backtest exists) and Optuna's optimisation-history and importance plots as PNGs.

    Example: fc tune report --study gru --storage postgresql://fc@db.internal/fc
    """
    from rich.console import Console

    from fc.core.errors import FcError
    from fc.core.studies.tune_report import (
        history_figure,
        importance_figure,
        load_study,
        study_report,
    )
    from fc.core.studies.tune_study import open_storage

    if not storage:
        path = Path(runs) / "tune.sqlite3"
        if not path.is_file():
            raise FcError(f"{path}: no study storage here; give --storage URL or --runs DIR")
        storage = f"sqlite:///{path}"
    study_ = load_study(study, open_storage(storage))
    report = study_report(study_)
    folder = Path(out or Path(runs) / f"tune-{study}")
    folder.mkdir(parents=True, exist_ok=True)
    report["history_png"] = report["importance_png"] = None
    figure = history_figure(study_)
    if figure is not None:
        report["history_png"] = str(folder / "history.png")
        figure.savefig(report["history_png"], dpi=100, bbox_inches="tight")
    figure, report["importance_note"] = importance_figure(study_)
    if figure is not None:
        report["importance_png"] = str(folder / "importances.png")
        figure.savefig(report["importance_png"], dpi=100, bbox_inches="tight")
    if as_json:
        typer.echo(json.dumps(report))
        return
    console = Console()
    _print_report(report, console)
    console.print(report["importance_note"] or f"importances: {report['importance_png']}")
    if report["history_png"]:
        console.print(f"history: {report['history_png']}")


def register(root: typer.Typer) -> None:
    """Add `fc tune` (and `fc tune report`) to the root app."""
    root.add_typer(tune_app, name="tune")
