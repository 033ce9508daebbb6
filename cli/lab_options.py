"""A lab file's keys as fc walk's own options: each variant's keys are parsed by fc walk's click
command itself (types, ranges, choices, defaults, fc walk's 4 epochs, the family's unused
options), so a lab key is any option fc walk takes, with no list kept here; an option fc walk
gains is a lab key the day it lands."""

from dataclasses import fields
from pathlib import Path

import typer
from typer.core import TyperOption

from fc.cli.executor_options import OPTIONS
from fc.cli.train_options import CONTEXT, DATA, TRAINING, _without_unused
from fc.core.data.inputs import parse_data
from fc.core.errors import FcError

# fc walk's options a lab sets another way: the fees come from [report] (a universe's per-symbol
# fees and --top have no lab key yet: REFUSED says so); output, folder and where units run are
# the lab command's own
NOT_KEYS = ("fee_bps", "top", "quiet", "as_json", "out", CONTEXT, *(name for name, _, _ in OPTIONS))
REFUSED = {
    "fee_bps": "a lab's fees are [report] fees = [bps, …], each the fee of every symbol; "
    "per-symbol fees (SYMBOL=BPS) are no lab key yet: run fc walk --symbols --fee-bps "
    "SYMBOL=BPS for them",
    "top": "the N most traded symbols are no lab key yet: run fc walk --symbols --top N for them",
}


def walk_click_command():
    """fc walk as typer builds it for the command line."""
    from fc.cli.main import app

    return typer.main.get_command(app).commands["walk"]


def lab_keys() -> dict[str, TyperOption]:
    """{key: fc walk's click option} for every key a lab file may set."""
    return {p.name: p for p in walk_click_command().params
            if isinstance(p, TyperOption) and p.name not in NOT_KEYS}  # fmt: skip


def resolver(lab_file: Path):
    """resolve(given, where) for core.studies.lab.read_lab: paths relative to the lab file."""
    base = Path(lab_file).resolve().parent
    return lambda given, where: resolve(given, where, base, Path(lab_file).name)


def resolve(given: dict, where: dict, base: Path, name: str) -> dict:
    """One variant's {key: value} as fc walk would take them on the command line:
    {"data": DATA options, "fields": TrainConfig fields, "walk": WalkConfig fields,
    "backtest": the rest (slippage)}; FcError naming the file, the section and the key."""
    from fc.core.studies.walk import WalkConfig

    command, keys = walk_click_command(), lab_keys()
    argv = []
    for key, value in given.items():
        option = keys.get(key)
        if key in REFUSED:
            raise FcError(f"{name}: [{where[key]}] {key}: {REFUSED[key]}")
        if option is None:
            raise FcError(f"{name}: unknown key {key!r} in [{where[key]}]; a lab key is one of "
                          f"fc walk's options: {', '.join(sorted(keys))}")  # fmt: skip
        argv += _arguments(option, key, _relative(key, value, base), where, name)
    missing = sorted(k for k, o in keys.items() if o.required and k not in given)
    if missing:
        raise FcError(f"{name}: {missing[0]} is missing; give it in [walk] (fc walk "
                      f"--{missing[0].replace('_', '-')})")  # fmt: skip
    try:
        ctx = command.make_context("walk", argv)
    except typer.TyperException as exc:
        param = getattr(exc, "param", None)
        key = param.name if param is not None else ""
        value = f" = {given[key]!r}" if key in given else ""
        at = f"[{where.get(key, 'grid')}] {key}{value}: " if key else ""
        raise FcError(f"{name}: {at}{exc.format_message()}") from None
    values = {k: v for k, v in ctx.params.items() if k not in NOT_KEYS}
    data = {o.name: values.pop(o.name) for o in DATA if o.name in values}
    for key, value in data.items():  # defaults too: a lab's store and runs sit beside it
        if isinstance(value, Path) and not value.is_absolute():
            data[key] = base / value
    trained = {o.name: values.pop(o.name) for o in TRAINING if o.name in values}
    walk = {f.name: values.pop(f.name) for f in fields(WalkConfig) if f.name in values}
    return {"data": data, "fields": _without_unused(trained, ctx), "walk": walk,
            "backtest": values}  # fmt: skip


def _relative(key: str, value, base: Path):
    """--data FILE and SYMBOL=FILE, and --symbols @FILE, relative to the lab file."""
    if key == "data":
        out = []
        for text in map(str, value if isinstance(value, list) else [value]):
            _, pairs = parse_data([text])  # fc's own reading of FILE and SYMBOL=FILE
            out += [f"{symbol}={base / path}" for symbol, path in pairs.items()] or [
                str(base / text)
            ]
        return out
    if key == "symbols" and str(value).startswith("@"):
        return "@" + str(base / str(value)[1:])
    return value


def _arguments(option: TyperOption, key: str, value, where: dict, name: str) -> list[str]:
    flag = option.opts[0]
    if option.multiple:
        return [a for v in (value if isinstance(value, list) else [value]) for a in (flag, str(v))]
    if isinstance(value, list | dict):
        raise FcError(f"{name}: [{where[key]}] {key} takes one value; lists of values belong in "
                      "[grid]")  # fmt: skip
    if option.is_flag:
        return [flag if value else option.secondary_opts[0]]
    return [flag, str(value)]
