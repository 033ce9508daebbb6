"""The root of the `fc` command: version, sub-apps, and one-line errors with exit status 2."""

import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from fc import __version__
from fc.core.errors import FcError


class _Group(TyperGroup):
    """Turns a user error raised anywhere below into one line on stderr and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FcError as exc:
            message = " ".join(str(exc).split())
            sys.stderr.write(f"fc: error: {message}\n")
            raise typer.Exit(2) from None


# `fc` is also a bash/zsh builtin that wins over any program on PATH: say which spelling works.
SPELLINGS = (
    "Forecast the next candle with a small GRU, backtest it honestly, paper-trade it live.\n\n"
    "In bash and zsh `fc` is also a shell builtin. In a venv activated with "
    "`source .venv/bin/activate` type `fc` (activation switches the builtin off until "
    "`deactivate`); elsewhere run `.venv/bin/fc` by path, `candlecast` or `python -m fc`: the same "
    "program."
)

app = typer.Typer(
    cls=_Group,
    help=SPELLINGS,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """fc: data, train, backtest, export, paper."""


# Each command module adds its commands or sub-app to `app` in its register(app).
from fc.cli import backtest, data, export, lab, ledger, paper, train, tune, walk  # noqa: E402

for _module in (data, train, backtest, export, paper, walk, tune, ledger, lab):
    _module.register(app)


def run() -> None:
    app()
