"""Which model file wrote a journal: its sha256, journalled on every row, and the guard that
keeps one model per history unless the user says a new one takes over (`--new-model`)."""

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
