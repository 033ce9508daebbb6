"""freqtrade's candle file names, read as freqtrade writes them: what symbol, timeframe and
candle type a name gives, and which files of a freqtrade data folder hold trade candles.

Spot: `<BASE>_<QUOTE>-<tf>.<ext>` (`ETH_BTC-5m.feather`); futures, in the folder's `futures/`:
`<BASE>_<QUOTE>_<SETTLE>-<tf>-futures.<ext>` (symbol `BASE/QUOTE:SETTLE`, ccxt's form), beside
the same pair's `-mark`, `-index`, `-premiumIndex` and `-funding_rate` files, which are not
trade prices. ext is feather, parquet, json or json.gz.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from fc.core.data.candles import candle_format
from fc.core.errors import FcError

TRADE_KINDS = ("", "futures")  # "" is spot; both are OHLCV of trades
# freqtrade's own regex (IDataHandler._OHLCV_REGEX), anchored at both ends: a name with any
# other shape (`in.parquet`, `BTC_USDT-trades.feather`) is not a freqtrade candle name
_NAME = re.compile(r"^([A-Za-z_\d-]+)-(\d+[A-Za-z]{1,2})(?:-([A-Za-z_]+))?\.[^/]+$")


@dataclass(frozen=True)
class CandleName:
    """What a freqtrade candle file's name says."""

    pair: str  # as written in the name: XRP_USDT_USDT
    symbol: str | None  # ccxt's form, XRP/USDT:USDT; None when the name has no quote currency
    timeframe: str
    kind: str  # "" (spot), "futures", or a candle type that is not trades ("mark", …)


def read_name(path: str | Path) -> CandleName | None:
    """The freqtrade name of a candle file, or None when the name is not one."""
    m = _NAME.match(Path(path).name)
    if m is None:
        return None
    pair, timeframe, kind = m.group(1), m.group(2), m.group(3) or ""
    # freqtrade's rebuild_pair_from_filename: the first `_` is `/`, the second `:`
    symbol = pair.upper().replace("_", "/", 1).replace("_", ":", 1) if "_" in pair else None
    # freqtrade writes a month as `1Mo` (case-insensitive file systems); fc has no months
    return CandleName(pair, symbol, re.sub("Mo$", "M", timeframe), kind)


def require_trade_candles(path: Path, name: CandleName) -> None:
    if name.kind not in TRADE_KINDS:
        raise FcError(
            f"{path}: freqtrade's {name.kind!r} candles are not trade prices; "
            "import the spot or -futures file of that pair"
        )


@dataclass
class FolderListing:
    """A data folder's files: the trade candle files, and how many of each other kind."""

    candles: list[tuple[Path, CandleName]]
    skipped: dict[str, int]


def list_candle_files(folder: Path) -> FolderListing:
    """The candle files of a freqtrade data folder (`user_data/data/<exchange>/`): its own files
    and those of its `futures/` folder, as freqtrade lays them out; no deeper. Other candle types
    and other files are counted, not read. A candle file in a format fc cannot read (`.h5`, an
    unknown compression) is a user error: skipping it would lose a symbol without a word."""
    listing = FolderListing([], {})
    for sub in (folder, folder / "futures"):
        if not sub.is_dir():
            continue
        for path in sorted(p for p in sub.iterdir() if p.is_file()):
            name = read_name(path)
            if name is None:
                label = "not candle files"
            elif name.kind not in TRADE_KINDS:
                label = f"{name.kind} candles"
            else:
                candle_format(path)
                listing.candles.append((path, name))
                continue
            listing.skipped[label] = listing.skipped.get(label, 0) + 1
    if not listing.candles:
        raise FcError(f"{folder}: no freqtrade candle files (like BTC_USDT-5m.feather) in it")
    return listing
