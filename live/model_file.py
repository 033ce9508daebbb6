"""Which model file wrote a journal: its sha256, journalled on every row, and the guard that
keeps one model per history unless the user says a new one takes over (`--new-model`)."""

import json
from pathlib import Path

from fc.core.data.store import file_sha256
from fc.core.errors import FcError
from fc.core.evaluation.policies import POLICIES


def model_sha256(path: str | Path) -> str:
    """The sha256 of the model file's bytes, hex."""
    return file_sha256(path)


def check_journal_model(
    journal_path: str | Path, symbol: str, timeframe: str, sha256: str, model: str, new_model: bool
) -> None:
    """Refuse (FcError) to append to a journal whose last row of this market was written by
    another model file, unless `new_model`. Reads the journal read-only and before anything opens
    it for writing, so a refused journal is left byte for byte as it was. Rows journalled before
    model hashes were recorded (sha256 '') belong to no known model and are not a reason."""
    from fc.live.journal import Journal

    path = Path(journal_path)
    if str(journal_path) == ":memory:" or not path.is_file() or path.stat().st_size == 0:
        return
    book = Journal(path, read_only=True)
    try:
        last = book.last(symbol, timeframe, POLICIES[0])
    finally:
        book.close()
    if new_model or last is None or last.model_sha256 in ("", sha256):
        return
    raise FcError(
        f"{path}: its {symbol} {timeframe} history was written by model {last.model_sha256[:12]} "
        f"({last.model}), not by {model} ({sha256[:12]}); pass --new-model to continue that "
        "history with this model, or give another --journal"
    )


def check_journal_schedule(journal_path: str | Path, symbol: str, timeframe: str, schedule) -> None:
    """Refuse (FcError) a journal whose rows of this market were decided on another schedule
    (cadence) than the graph's: continuing it would change the candles decisions fall on.
    The journal's schedule is its meta key schedule:SYMBOL:TIMEFRAME, written by the service
    (record_schedule) only when not default; read-only here, so a refused journal is unchanged."""
    from fc.live.journal import Journal

    path = Path(journal_path)
    if str(journal_path) == ":memory:" or not path.is_file() or path.stat().st_size == 0:
        return
    book = Journal(path, read_only=True)
    try:
        if book.last(symbol, timeframe, POLICIES[0]) is None:
            return
        found = book.meta(schedule_key(symbol, timeframe)) or "{}"
    finally:
        book.close()
    if json.loads(found) != schedule.to_dict():
        raise FcError(
            f"{path}: its {symbol} {timeframe} history was decided on {_words(json.loads(found))},"
            f" the model decides on {_words(schedule.to_dict())}; give another --journal"
        )


def schedule_key(symbol: str, timeframe: str) -> str:
    return f"schedule:{symbol}:{timeframe}"


def _words(schedule: dict) -> str:
    if "sleeves" in schedule:
        return f"{schedule['sleeves']} sleeves"
    return f"a cadence of {schedule.get('cadence', 1)} candles"


def check_universe_journal(journal_path: str | Path, symbols, timeframe: str) -> None:
    """Refuse (FcError) a journal whose rows of this timeframe name a symbol the universe model
    does not trade (another model's history); read-only, so a refused journal is unchanged."""
    from fc.live.journal import Journal

    path = Path(journal_path)
    if str(journal_path) == ":memory:" or not path.is_file() or path.stat().st_size == 0:
        return
    book = Journal(path, read_only=True)
    try:
        found = set(book.decisions(timeframe=timeframe).symbol)
    finally:
        book.close()
    others = sorted(found - set(symbols) - {"portfolio"})
    if others:
        raise FcError(
            f"{path}: its {timeframe} history holds {', '.join(others)}, which this model "
            f"({', '.join(symbols)}) does not trade; give another --journal"
        )


def lock_journal(journal_path: str | Path):
    """An exclusive lock on the journal file for this process's life (the open file it
    returns holds it; the kernel drops it when the process ends, kill -9 too): a second
    service pointed at the same journal is refused before it writes anything. None when the
    file does not exist yet (nobody holds it): lock it again once the journal created it."""
    import fcntl

    if not Path(journal_path).is_file():
        return None
    handle = open(journal_path, "rb")  # noqa: SIM115 - held open on purpose
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FcError(
            f"{journal_path}: another fc paper is trading with this journal (it is locked); "
            "stop that one or give another --journal"
        ) from None
    return handle
