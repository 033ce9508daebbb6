"""`fc lab run | plan | status | report`: a lab file's walk-forward studies (core.studies.lab_run,
core.studies.lab_report); each command parses options, calls one function and prints."""

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from fc.cli.executor_options import runs_units, unit_progress

Opt = typer.Option
Arg = typer.Argument
app = typer.Typer(no_args_is_help=True, help="Lab files: declared walk-forward studies that run, "
                  "resume and report themselves.")  # fmt: skip

OUT_HELP = "Lab folder (default: beside the lab file, named after it)."
MAX_HELP = "Refuse a lab file that declares more variants than this."


def _lab(lab_file: Path, max_variants: int):
    from fc.cli.lab_options import resolver
    from fc.core.studies.lab import read_lab

    return read_lab(lab_file, resolver(lab_file), max_variants)


def _out(lab, out: Path | None) -> Path:
    from fc.core.studies.lab_run import default_out

    return out if out is not None else default_out(lab)


@app.command("run")
@runs_units
def run_command(
    lab_file: Annotated[Path, Arg(help="The lab file (TOML).")],
    out: Annotated[Path | None, Opt(help=OUT_HELP)] = None,
    max_variants: Annotated[int, Opt(min=1, help=MAX_HELP)] = 200,
    quiet: Annotated[bool, Opt(help="No unit progress on stderr.")] = False,
    as_json: Annotated[bool, Opt("--json", help="Print one JSON object.")] = False,
    *,
    executor,
) -> None:
    """Run every (variant, fold) unit the lab folder lacks, summarise the finished variants and
    write report.json, report.md and report.html; run again to resume. The last line printed
    is the lab folder.

    Example: fc lab run example.toml (docs/lab-files.md makes it)
    """
    from fc.core.studies.lab_run import run_lab

    lab = _lab(lab_file, max_variants)
    # serial: a line a unit; units elsewhere (--workers, --cluster): one progress bar of them all
    serial = executor.kind == "serial"
    on_unit = None if quiet or as_json or not serial else _print_unit
    on_event, progress = unit_progress(quiet or as_json or serial)
    with progress or nullcontext():
        result = run_lab(lab, _out(lab, out), on_unit, executor, on_event)
    if as_json:
        typer.echo(json.dumps(result))
        return
    err = typer.get_text_stream("stderr")
    err.write(f"{result['computed']} units computed, {result['reused']} reused; "
              f"{result['variants']} variants; {result['report']['html']}\n")  # fmt: skip
    typer.echo(result["out"])


def _print_unit(done: int, total: int, variant: str, fold: int) -> None:
    err = typer.get_text_stream("stderr")
    err.write(f"unit {done}/{total}: {variant}, fold {fold}\n")
    err.flush()


@app.command("plan")
def plan_command(
    lab_file: Annotated[Path, Arg(help="The lab file (TOML).")],
    out: Annotated[Path | None, Opt(help=OUT_HELP)] = None,
    max_variants: Annotated[int, Opt(min=1, help=MAX_HELP)] = 200,
    as_json: Annotated[bool, Opt("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the variants and their (variant, fold) units, those done, and an estimate of the
    time left from the units already measured; computes nothing.

    Example: fc lab plan example.toml
    """
    from fc.core.studies.lab_run import lab_plan

    lab = _lab(lab_file, max_variants)
    plan = lab_plan(lab, _out(lab, out))
    if as_json:
        typer.echo(json.dumps(plan))
        return
    for v in plan["variants"]:
        typer.echo(f"{v['id']}  {v['name']}: {v['units']} units, {v['done']} done")
    seconds = plan["estimate_seconds"]
    estimate = "unknown (no unit measured yet)" if seconds is None else f"about {seconds:.0f} s"
    typer.echo(f"{len(plan['variants'])} variants, {plan['units']} units, {plan['left']} left; "
               f"time left: {estimate}")  # fmt: skip


@app.command("status")
def status_command(
    lab_dir: Annotated[Path, Arg(help="The lab folder.")],
    as_json: Annotated[bool, Opt("--json", help="Print one JSON object.")] = False,
) -> None:
    """Units done, running and left, per variant.

    Example: fc lab status example
    """
    from fc.core.studies.lab_run import lab_status

    status = lab_status(lab_dir)
    if as_json:
        typer.echo(json.dumps(status))
        return
    for v in status["variants"]:
        typer.echo(f"{v['name']}: {v['done']} done, {v['running']} running, {v['left']} left")
    typer.echo(f"{status['done']} done, {status['running']} running, {status['left']} left "
               f"of {status['units']} units")  # fmt: skip


@app.command("report")
def report_command(
    lab_dir: Annotated[Path, Arg(help="The lab folder.")],
    as_json: Annotated[bool, Opt("--json", help="Print report.json's content.")] = False,
) -> None:
    """Re-render report.json, report.md and report.html from the lab folder (nothing refitted).

    Example: fc lab report example
    """
    from fc.core.studies.lab_folder import LabFolder
    from fc.core.studies.lab_report import write_reports

    paths = write_reports(LabFolder(lab_dir))
    if as_json:
        typer.echo(Path(paths["json"]).read_text())
        return
    typer.echo(paths["html"])


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="lab")
