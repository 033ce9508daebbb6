"""Import candle files into the store, each under the symbol and timeframe its freqtrade name
gives (`fc data import FILE… | DIR`). A name contradicted by --symbol, --timeframe or the
candles' own spacing, or a candle that differs from a stored one, refuses the whole import:
every result is staged beside the store first and only then renamed into place, so a refusal
leaves every stored file as it was.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fc.core.data.candles import infer_timeframe, load_candles, timeframe_delta, timeframe_name
from fc.core.data.freqtrade_names import (
    CandleName,
    list_candle_files,
    read_name,
    require_trade_candles,
)
from fc.core.data.store import candle_path, merge_candles, read_candles, stage_candles
from fc.core.errors import FcError

# A file whose name gives no symbol (`in.parquet`) and no --symbol: BTC/USDT, as before names
# were read; the summary line names the file it went to.
DEFAULT_SYMBOL = "BTC/USDT"


@dataclass(frozen=True)
class Target:
    """One file to import and where it goes."""

    file: Path
    symbol: str
    timeframe: str | None  # None: the file's name gives none; taken from the spacing


def plan_import(
    sources: list[Path], symbols: list[str], timeframe: str | None
) -> tuple[list[Target], dict[str, int]]:
    """Where each file goes. A folder is read as a freqtrade data folder; there --symbol and
    --timeframe choose files, and each chosen symbol must be found. Returns the targets and
    the counts of files skipped by kind."""
    wanted = [s.upper() for s in symbols]
    targets, skipped = [], {}
    for source in map(Path, sources):
        if not source.is_dir():
            targets.append(_target(source, read_name(source), wanted, timeframe))
            continue
        listing = list_candle_files(source)
        for label, count in listing.skipped.items():
            skipped[label] = skipped.get(label, 0) + count
        chosen = [
            (path, name)
            for path, name in listing.candles
            if (not wanted or name.symbol in wanted)
            and (timeframe is None or _delta(path, name) == timeframe_delta(timeframe))
        ]
        found = {name.symbol for _, name in chosen}
        absent = [s for s in wanted if s not in found]
        if absent or not chosen:
            at = f" at {timeframe}" if timeframe else ""
            raise FcError(
                f"{source}: no candle file of {', '.join(absent or wanted)}{at} in it; "
                "its files are named like BTC_USDT-5m.feather"
            )
        # inside a folder every file speaks for itself: the options only chose them
        targets += [_target(path, name, [], None) for path, name in chosen]
    return targets, skipped


def _delta(path: Path, name: CandleName) -> pd.Timedelta:
    try:
        return timeframe_delta(name.timeframe)
    except FcError:
        raise FcError(
            f"{path}: its name's timeframe {name.timeframe!r} is not one fc reads (5m, 1h, 1d, 1w)"
        ) from None


def _target(
    path: Path, name: CandleName | None, wanted: list[str], timeframe: str | None
) -> Target:
    """Where one file goes: its name's symbol and timeframe, checked against the options."""
    if name is None:
        if len(wanted) > 1:
            raise FcError(f"{path}: its name gives no symbol; import it alone with one --symbol")
        return Target(path, wanted[0] if wanted else DEFAULT_SYMBOL, timeframe)
    require_trade_candles(path, name)
    named = _delta(path, name)
    if timeframe is not None and timeframe_delta(timeframe) != named:
        raise FcError(
            f"{path}: its name says {name.timeframe}, not --timeframe {timeframe}; "
            "drop --timeframe or rename the file"
        )
    if name.symbol is None:
        base = name.pair.upper()
        if len(wanted) != 1:
            raise FcError(
                f"{path}: its name gives {base} with no quote currency; "
                f"say which market with --symbol {base}/QUOTE"
            )
        if wanted[0].split("/")[0] != base:
            raise FcError(f"{path}: its name says {base}, not --symbol {wanted[0]}")
        return Target(path, wanted[0], name.timeframe)
    if wanted and name.symbol not in wanted:
        raise FcError(
            f"{path}: its name says {name.symbol}, not --symbol {', '.join(wanted)}; "
            "drop --symbol or rename the file"
        )
    return Target(path, name.symbol, name.timeframe)


def read_target(target: Target) -> tuple[pd.DataFrame, str]:
    """The file's validated candles and their timeframe, which the spacing must confirm."""
    df = load_candles(target.file)
    spacing = infer_timeframe(df)
    if target.timeframe is None:
        return df, timeframe_name(spacing)
    if timeframe_delta(target.timeframe) != spacing:
        raise FcError(
            f"{target.file}: the candles are {timeframe_name(spacing)} apart, not "
            f"{target.timeframe} as its name or --timeframe says; fix the name or the option"
        )
    return df, target.timeframe


def import_candles(
    sources: list[Path],
    store: str | Path,
    exchange: str,
    symbols: Sequence[str] = (),
    timeframe: str | None = None,
) -> tuple[list[dict], dict[str, int]]:
    """Import files and freqtrade data folders into the store, all or nothing. Returns one
    summary per stored file (symbol, timeframe, path, rows, added) and the skipped counts."""
    targets, skipped = plan_import(list(sources), list(symbols), timeframe)
    groups: dict[Path, list] = {}
    for target in targets:
        # a name gives the store file without reading; a nameless file's spacing gives it
        tf = target.timeframe or read_target(target)[1]
        groups.setdefault(candle_path(store, exchange, target.symbol, tf), []).append(target)
    staged, summaries = [], []
    try:
        for path, group in groups.items():
            # one store file at a time: a folder of many years-long files never sits in memory
            stored = read_candles(path)
            merged = stored
            for target in group:
                df, tf = read_target(target)
                merged = merge_candles(merged, df, str(target.file), str(path))
            staged.append((stage_candles(path, merged), path))
            before = 0 if stored is None else len(stored)
            summaries.append(
                {"symbol": group[0].symbol, "timeframe": tf, "path": str(path),
                 "rows": len(merged), "added": len(merged) - before}
            )  # fmt: skip
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink()
        raise
    for tmp, path in staged:
        tmp.replace(path)
    return summaries, skipped
