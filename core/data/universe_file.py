"""Universes by name: `--symbols @FILE` reads a text file of symbols (one a line, `#` comments)
or a freqtrade config (its `exchange.pair_whitelist`; freqtrade's JSON allows comments and
trailing commas), so a universe is a file kept beside the study, not a command line."""

import json
import re
from pathlib import Path

from fc.core.errors import FcError

SYMBOL = re.compile(r"[A-Za-z0-9._-]+/[A-Za-z0-9._:-]+")
# what a plain pair never holds but freqtrade's regular-expression whitelist entries do
_REGEX = re.compile(r"[*+?^$|\\()\[\]{}]")
# a JSON string, else a // or /* */ comment; else a comma right before } or ]: strings are
# matched first so that a "//" inside one (a URL) is kept
_STRING = r'"(?:\\.|[^"\\])*"'
_COMMENT = re.compile(_STRING + r"|//[^\n]*|/\*.*?\*/", re.DOTALL)
_TRAILING_COMMA = re.compile(_STRING + r"|,(?=\s*[}\]])")


def read_universe(path: str | Path) -> tuple[str, ...]:
    """The symbols a universe file names, in its order; every problem is one FcError naming
    the file: missing, unreadable, no symbol, a regular expression, a malformed or a repeated
    symbol."""
    path = Path(path)
    where = f"--symbols @{path}"
    try:
        text = path.read_text()
    except OSError as e:
        raise FcError(f"{where}: cannot read it ({e.strerror}); give a text file of symbols, "
                      "one a line, or a freqtrade config.json") from None  # fmt: skip
    symbols = _whitelist(text, where) if text.lstrip().startswith("{") else _lines(text)
    if not symbols:
        raise FcError(f"{where} names no symbol; write one symbol a line, like BTC/USDT")
    seen = set()
    for symbol in symbols:
        if _REGEX.search(symbol):
            raise FcError(f"{where}: {symbol!r} is a regular expression, which fc does not "
                          "support; list the pairs themselves")  # fmt: skip
        if not SYMBOL.fullmatch(symbol):
            raise FcError(f"{where}: {symbol!r} is not a ccxt symbol like BTC/USDT")
        if symbol in seen:
            raise FcError(f"{where} names {symbol} twice; give each symbol once")
        seen.add(symbol)
    return tuple(symbols)


def _lines(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def _whitelist(text: str, where: str) -> list[str]:
    def strings_only(match: re.Match) -> str:
        return match.group(0) if match.group(0).startswith('"') else ""

    plain = _TRAILING_COMMA.sub(strings_only, _COMMENT.sub(strings_only, text))
    try:
        config = json.loads(plain)
    except json.JSONDecodeError as e:
        raise FcError(f"{where}: not valid JSON at line {e.lineno}, column {e.colno} "
                      f"({e.msg}); fix the file") from None  # fmt: skip
    pairs = config.get("exchange", {}).get("pair_whitelist") if isinstance(config, dict) else None
    if not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs):
        raise FcError(f"{where}: a JSON file must be a freqtrade config with a list of pairs "
                      "in exchange.pair_whitelist")  # fmt: skip
    return [p.strip() for p in pairs]
