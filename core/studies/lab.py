"""A lab file (LAB.toml): declared walk-forward studies, read and checked before any work.

[data] and [walk] hold fc walk's options shared by every variant, [report] the fees to report
(and the long-short's k of its pooled universes),
[grid] lists crossed into one variant per combination, and each [[variant]] one more variant on
its own. Keys are fc walk's own option names (dashes may be written as underscores); the caller
(cli.lab) hands in `resolve`, which turns one variant's keys into fc walk's resolved options
exactly as the command line would, so a new option of fc walk is a lab key with no line here.
"""

import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fc.core.errors import FcError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the same parser, as a package
    import tomli as tomllib

MAX_VARIANTS = 200
SHARED = ("data", "walk")  # sections whose keys every variant takes
REPORT_KEYS = ("fees", "k")
NAME_KEY = "name"  # a [[variant]]'s label, not an option

# resolve({key: value}, {key: section}) -> {"data", "fields", "walk", "backtest"}: fc walk's
# options for one variant; FcError naming the key and its section for anything refused
Resolve = Callable[[dict, dict], dict]


@dataclass(frozen=True)
class Variant:
    name: str  # what it sets: its grid values and [[variant]] keys, key=value
    options: dict  # the lab's keys for it, [data] and [walk] included
    resolved: dict  # {"data": DATA options, "fields": TrainConfig fields, "walk", "backtest"}


@dataclass(frozen=True)
class Lab:
    path: Path
    text: str  # the file itself, shown in the report
    fees: tuple[float, ...]
    variants: tuple[Variant, ...]
    ks: tuple[int, ...] = ()  # [report] k: its universes' long-shorts; () when not given

    @property
    def name(self) -> str:
        return self.path.stem


def read_lab(path: str | Path, resolve: Resolve, max_variants: int = MAX_VARIANTS) -> Lab:
    """The lab file at `path`, every variant resolved; FcError (one line naming the file and
    the key) for malformed TOML, an unknown section or key, a value an option refuses, an empty
    grid, two variants that are the same, or more variants than max_variants."""
    path = Path(path)
    if not path.is_file():
        raise FcError(f"{path}: no such lab file")
    text = path.read_text()
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FcError(f"{path}: not valid TOML: {exc}") from None
    doc = {section: _underscored(path, section, values) for section, values in doc.items()}
    unknown = sorted(set(doc) - {*SHARED, "report", "grid", "variant"})
    if unknown:
        raise FcError(f"{path}: unknown section [{unknown[0]}]; a lab file has [data], [walk], "
                      "[report], [grid] and [[variant]]")  # fmt: skip
    fees = _fees(path, doc.get("report", {}))
    ks = _ks(path, doc.get("report", {}))
    shared, where = {}, {}
    for section in SHARED:
        shared |= doc.get(section, {})
        where |= dict.fromkeys(doc.get(section, {}), section)
    declared = _declared(path, doc)
    if len(declared) > max_variants:
        raise FcError(
            f"{path} declares {len(declared)} variants, more than --max-variants "
            f"{max_variants}; give --max-variants {len(declared)} to run them all"
        )
    variants, seen = [], {}
    for name, options, section in declared:
        given = {**shared, **options}
        resolved = resolve(given, {**where, **dict.fromkeys(options, section)})
        key = repr(sorted((k, repr(v)) for k, v in resolved.items()))
        if key in seen:
            raise FcError(f"{path}: variant {name!r} is the same walk as {seen[key]!r}; "
                          "drop one (each variant counts once in the deflated Sharpe)")  # fmt: skip
        seen[key] = name
        variants.append(Variant(name, given, resolved))
    return Lab(path.resolve(), text, fees, tuple(variants), ks)


def _underscored(path: Path, section: str, values) -> dict | list:
    """A section's keys with dashes as underscores (a [[variant]] list: each table's)."""
    if section == "variant" and isinstance(values, list):
        return [_underscored(path, section, table) for table in values]
    if not isinstance(values, dict):
        raise FcError(f"{path}: {section} = … is not a section; write it as [{section}]")
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def _fees(path: Path, report: dict) -> tuple[float, ...]:
    """[report] fees: the fees every variant is backtested at, each the fee of every symbol
    (a universe's per-symbol fees are no lab key: fc walk --symbols --fee-bps SYMBOL=BPS)."""
    unknown = sorted(set(report) - set(REPORT_KEYS))
    if unknown:
        raise FcError(f"{path}: unknown key {unknown[0]!r} in [report]; it takes fees = [bps, …] "
                      "and k = [symbols, …]")  # fmt: skip
    fees = report.get("fees", [0])
    fees = fees if isinstance(fees, list) else [fees]
    ok = fees and all(isinstance(f, int | float) and not isinstance(f, bool) for f in fees)
    if not ok or any(f < 0 for f in fees) or len(set(fees)) != len(fees):
        raise FcError(f"{path}: [report] fees = {fees!r}: give distinct fees in bps >= 0, "
                      "e.g. fees = [0, 2, 5]")  # fmt: skip
    return tuple(float(f) for f in fees)


def _ks(path: Path, report: dict) -> tuple[int, ...]:
    """[report] k: the long-short's k (long the k highest p_up, short the k lowest) at which a
    universe variant is reported, each without refitting; () when not given (the policy's
    default k then, core.studies.lab_run.report_ks). Checked against each universe's size when
    the lab is planned."""
    if "k" not in report:
        return ()
    ks = report["k"] if isinstance(report["k"], list) else [report["k"]]
    ok = ks and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks)
    if not ok or len(set(ks)) != len(ks):
        raise FcError(f"{path}: [report] k = {report['k']!r}: give distinct whole numbers of "
                      "symbols >= 1, e.g. k = [3, 5]")  # fmt: skip
    return tuple(ks)


def _declared(path: Path, doc: dict) -> list[tuple[str, dict, str]]:
    """(name, options, section) of every variant: the grid's combinations, then each
    [[variant]]; an empty grid, an empty list in it or no variant at all is refused."""
    out = []
    if "grid" in doc:
        grid = doc["grid"]
        if not grid:
            raise FcError(f"{path}: [grid] is empty; give lists of values, e.g. family = "
                          '["gru", "lightgbm"], or drop the section')  # fmt: skip
        lists = {k: v if isinstance(v, list) else [v] for k, v in grid.items()}
        for key, values in lists.items():
            if not values:
                raise FcError(f"{path}: [grid] {key} = [] is empty; give at least one value")
        for combination in itertools.product(*lists.values()):
            options = dict(zip(lists, combination, strict=True))
            out.append((_label(options), options, "grid"))
    for i, table in enumerate(doc.get("variant", []), start=1):
        options = {k: v for k, v in table.items() if k != NAME_KEY}
        name = str(table.get(NAME_KEY) or _label(options) or f"variant {i}")
        out.append((name, options, "variant"))
    if not out:
        raise FcError(f"{path}: no variant; give a [grid] of lists or a [[variant]]")
    names = [name for name, _, _ in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise FcError(f"{path}: two variants are named {twice[0]!r}; give each a distinct name")
    return out


def _label(options: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in options.items())
