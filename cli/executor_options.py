"""Where a command's units of work run (fc walk, sweep, tune, lab): --workers, --cluster, TLS
and --data-root, defined once. A command takes them with @runs_units and receives them as
`executor: ExecutorOptions` (core.studies.executor), already checked, the warning for a plain
tcp:// address off this machine printed."""

import functools
import inspect
from pathlib import Path
from typing import Annotated

import typer

from fc.core.studies.executor import ExecutorOptions

OPTIONS = (
    ("workers", int | None, "Local processes, one unit each (0: one per core); default: serial."),
    ("cluster", str | None, "A Dask scheduler: tcp://HOST:PORT, or tls://HOST:PORT."),
    ("tls_ca", Path | None, "With tls://: the CA certificate that signed the cluster's."),
    ("tls_cert", Path | None, "With tls://: this client's certificate."),
    ("tls_key", Path | None, "With tls://: this client's private key."),
    ("data_root", Path | None, "With --cluster: a folder every worker has, data by relative path "
     "(default: the data files are sent to the cluster once)."),
)  # fmt: skip


def runs_units(command):
    """Decorator: add the OPTIONS to the command's signature (typer reads it) and hand the
    command `executor=ExecutorOptions(...)` in their place."""
    own = inspect.signature(command)
    mine = [p for p in own.parameters.values() if p.name != "executor"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[kind, typer.Option(help=text)])
        for name, kind, text in OPTIONS
    ]  # fmt: skip

    @functools.wraps(command)
    def run(**kwargs):
        given = {name: kwargs.pop(name) for name, _, _ in OPTIONS}
        text = {k: str(v) if isinstance(v, Path) else v for k, v in given.items()}
        executor = ExecutorOptions(**text)
        executor.check()
        if executor.warning():
            typer.echo(executor.warning(), err=True)
        return command(**kwargs, executor=executor)

    params = mine + added
    run.__signature__ = own.replace(parameters=params)
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


def unit_progress(quiet: bool):
    """(on_event for the executor, the rich Progress to run it in), (None, None) when quiet:
    units done, running and failed, and the workers they are on. A study announces its count
    with the event "planned" (info: units to run, finished before)."""
    if quiet:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[state]}"), console=Console(stderr=True),
                        transient=False)  # fmt: skip
    bar = progress.add_task("units", total=None, state="")
    running, counts = {}, {"done": 0, "failed": 0}

    def on_event(key, event: str, info: dict) -> None:
        if event == "planned":
            progress.update(bar, total=info["units"] + info["finished"],
                            completed=info["finished"])  # fmt: skip
            return
        if event == "start":
            running[key] = info.get("worker") or "?"
        else:
            worker = running.pop(key, None)
            counts[event] = counts.get(event, 0) + 1
            info_worker = info.get("worker") or worker
            if event == "done":
                progress.advance(bar)
            else:
                progress.console.print(f"{key} failed on {info_worker}: {info.get('error', '')}")
        on = ", ".join(f"{k} on {w}" for k, w in list(running.items())[:3])
        progress.update(bar, state=f"{len(running)} running, {counts['failed']} failed"
                        + (f" ({on})" if on else ""))  # fmt: skip

    return on_event, progress
