"""The paper-trading journal: one SQLite file (WAL), the only place the live service persists.

One row per (symbol, timeframe, policy, candle): the primary key makes every write idempotent, so
a retried job or a restarted process never records a decision twice. A row at candle t holds the
close of t, the p_up read at that close, the position f_t decided there, the trade f_t - f_{t-1}
and the wealth realised at the close of t (before f_t earns R_{t+1}). Rows of kind 'held' are the
candles the service did not decide (downtime, exchange outages): the position was carried.
"""

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fc.core.errors import FcError

SCHEMA_VERSION = 2  # 2: model_sha256, policy_params
SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    symbol     TEXT    NOT NULL,
    timeframe  TEXT    NOT NULL,
    policy     TEXT    NOT NULL,
    candle_ms  INTEGER NOT NULL,  -- open time of candle t, ms since the epoch, UTC
    kind       TEXT    NOT NULL CHECK (kind IN ('decision', 'held')),
    decided_ms INTEGER NOT NULL,  -- the service clock when the row was written
    close      REAL    NOT NULL,
    p_up       REAL,              -- NULL on held rows
    position   REAL    NOT NULL,
    trade      REAL    NOT NULL,  -- position - previous position
    wealth     REAL    NOT NULL,  -- realised at the close of candle t
    model      TEXT    NOT NULL DEFAULT '',
    model_sha256 TEXT  NOT NULL DEFAULT '',  -- sha256 of the model file (version 2)
    policy_params TEXT NOT NULL DEFAULT '',  -- JSON: the policy's parameters (version 2)
    PRIMARY KEY (symbol, timeframe, policy, candle_ms)
);
CREATE TABLE IF NOT EXISTS events (
    id     INTEGER PRIMARY KEY,
    at_ms  INTEGER NOT NULL,
    kind   TEXT    NOT NULL,      -- start, stop, skip, ...
    detail TEXT    NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS absences (
    symbol     TEXT    NOT NULL,
    timeframe  TEXT    NOT NULL,
    candle_ms  INTEGER NOT NULL,  -- the candle a universe service decided without the symbol
    reason     TEXT    NOT NULL,  -- missing (no candle by the deadline), delisted (closed)
    detail     TEXT    NOT NULL DEFAULT '',
    noted_ms   INTEGER NOT NULL,
    PRIMARY KEY (symbol, timeframe, candle_ms)
);
"""
ABSENCE_COLUMNS = ("symbol", "timeframe", "candle_ms", "reason", "detail", "noted_ms")
COLUMNS = (
    "symbol",
    "timeframe",
    "policy",
    "candle_ms",
    "kind",
    "decided_ms",
    "close",
    "p_up",
    "position",
    "trade",
    "wealth",
    "model",
    "model_sha256",
    "policy_params",
)
# Columns added after version 1: (name, declaration, default). An older journal gains them when
# opened for writing; a read-only reader of one sees the default.
ADDED_COLUMNS = (
    ("model_sha256", "TEXT NOT NULL", "''"),
    ("policy_params", "TEXT NOT NULL", "''"),
)


@dataclass(frozen=True)
class Absence:
    """A universe service's symbol not decided at a candle the others were: its candle had not
    come by the deadline (`missing`; it held its weight), or its market is gone (`delisted`;
    closed there, once). One per (symbol, timeframe, candle), written with that candle's rows."""

    symbol: str
    timeframe: str
    candle_ms: int
    reason: str
    detail: str
    noted_ms: int


@dataclass(frozen=True)
class Row:
    symbol: str
    timeframe: str
    policy: str
    candle_ms: int
    kind: str
    decided_ms: int
    close: float
    p_up: float | None
    position: float
    trade: float
    wealth: float
    model: str = ""
    model_sha256: str = ""
    policy_params: str = ""


class Journal:
    """Open (or create) the journal at `path`; ':memory:' works for tests. Readers (report,
    status) open it read-only, so a health check run by another user never writes beside it."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = str(path)
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise FcError(f"{path}: the journal's folder does not exist; create it first")
        try:
            if read_only:
                uri = Path(self.path).resolve().as_uri() + "?mode=ro"
                self.db = sqlite3.connect(uri, uri=True, isolation_level=None)
                self.db.execute("PRAGMA busy_timeout = 5000")
                self.db.execute("SELECT COUNT(*) FROM decisions").fetchone()
                self._check_columns()
                return
            # autocommit off by hand: every write is one explicit transaction
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA busy_timeout = 5000")
            self.db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a process crash (kill -9); only power loss may lose
            # the last commits, which a restart then re-decides or holds.
            self.db.execute("PRAGMA synchronous = NORMAL")
            if self._tables():  # never create fc's tables inside another program's database
                self._check_columns()
            self.db.executescript(SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            msg = f"{path}: not a readable journal ({exc}); restore it from a backup"
            raise FcError(msg) from None

    def _tables(self) -> set[str]:
        found = self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in found}

    def _present(self) -> list[str]:
        return [r[1] for r in self.db.execute("PRAGMA table_info(decisions)")]

    def _check_columns(self) -> None:
        present = set(self._present())
        added = {name for name, _, _ in ADDED_COLUMNS}
        if not present or not set(COLUMNS) - added <= present:
            raise FcError(
                f"{self.path}: a SQLite file, but not an fc journal (no decisions table of fc's); "
                "give the --journal `fc paper` writes"
            )
        # what SELECTs read: a column an old journal lacks reads as its default
        defaults = {name: default for name, _, default in ADDED_COLUMNS}
        self._select = ", ".join(c if c in present else f"{defaults[c]} AS {c}" for c in COLUMNS)

    def _migrate(self) -> None:
        """Add the columns of later versions to an older journal, in one transaction; a journal
        already up to date is not written."""
        present = set(self._present())
        missing = [column for column in ADDED_COLUMNS if column[0] not in present]
        versioned = self.db.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone()
        if missing or not versioned:
            with self._transaction():
                for name, declaration, default in missing:
                    self.db.execute(
                        f"ALTER TABLE decisions ADD COLUMN {name} {declaration} DEFAULT {default}"
                    )
                self.db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        self._check_columns()

    def record(self, rows: list[Row], absences: list[Absence] = ()) -> int:
        """Write rows (and a universe's absences of that candle) in one transaction; a row whose
        key exists is left alone. Returns how many decision rows were new."""
        values = [tuple(getattr(r, c) for c in COLUMNS) for r in rows]
        marks = ", ".join("?" * len(COLUMNS))
        with self._transaction():
            before = self.db.total_changes
            self.db.executemany(
                f"INSERT OR IGNORE INTO decisions ({', '.join(COLUMNS)}) VALUES ({marks})", values
            )
            new = self.db.total_changes - before
            if new and absences:  # a candle journalled already keeps the absences it had
                self.db.executemany(
                    f"INSERT OR IGNORE INTO absences ({', '.join(ABSENCE_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(ABSENCE_COLUMNS))})",
                    [tuple(getattr(a, c) for c in ABSENCE_COLUMNS) for a in absences],
                )
            return new

    def absences(self, timeframe: str | None = None) -> pd.DataFrame:
        """A universe service's absences, oldest first (none in a journal without the table)."""
        if "absences" not in self._tables():
            return pd.DataFrame(columns=list(ABSENCE_COLUMNS))
        sql = f"SELECT {', '.join(ABSENCE_COLUMNS)} FROM absences"
        args = [] if timeframe is None else [timeframe]
        sql += " WHERE timeframe = ?" if timeframe else ""
        rows = self.db.execute(sql + " ORDER BY candle_ms, symbol", args).fetchall()
        return pd.DataFrame(rows, columns=list(ABSENCE_COLUMNS))

    def symbols(self, timeframe: str) -> set[str]:
        """The symbols with any row at the timeframe."""
        found = self.db.execute("SELECT DISTINCT symbol FROM decisions WHERE timeframe = ?",
                                (timeframe,))  # fmt: skip
        return {symbol for (symbol,) in found}

    def event(self, at_ms: int, kind: str, **detail) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT INTO events (at_ms, kind, detail) VALUES (?, ?, ?)",
                (int(at_ms), kind, json.dumps(detail, default=str)),
            )

    def meta(self, key: str) -> str | None:
        """A value of the meta table (schema_version, a market's schedule), None when absent."""
        found = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if found is None else found[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def has(self, symbol: str, timeframe: str, candle_ms: int) -> bool:
        cur = self.db.execute(
            "SELECT 1 FROM decisions WHERE symbol=? AND timeframe=? AND candle_ms=? LIMIT 1",
            (symbol, timeframe, int(candle_ms)),
        )
        return cur.fetchone() is not None

    def last(self, symbol: str, timeframe: str, policy: str) -> Row | None:
        cur = self.db.execute(
            f"SELECT {self._select} FROM decisions WHERE symbol=? AND timeframe=? "
            "AND policy=? ORDER BY candle_ms DESC LIMIT 1",
            (symbol, timeframe, policy),
        )
        found = cur.fetchone()
        return Row(*found) if found else None

    def last_change(self, symbol: str, timeframe: str, policy: str) -> int | None:
        """candle_ms of the policy's last position change (its minimum holding time runs from
        there), or None when it never held a position."""
        cur = self.db.execute(
            "SELECT MAX(candle_ms) FROM decisions WHERE symbol=? AND timeframe=? AND policy=? "
            "AND kind='decision' AND trade != 0",
            (symbol, timeframe, policy),
        )
        return cur.fetchone()[0]

    def decisions(self, symbol: str | None = None, timeframe: str | None = None) -> pd.DataFrame:
        """All rows (optionally of one symbol and timeframe), oldest first."""
        where, args = [], []
        if symbol:
            where.append("symbol = ?")
            args.append(symbol)
        if timeframe:
            where.append("timeframe = ?")
            args.append(timeframe)
        sql = f"SELECT {self._select} FROM decisions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY symbol, timeframe, policy, candle_ms"
        return pd.DataFrame(self.db.execute(sql, args).fetchall(), columns=list(COLUMNS))

    def events(self) -> pd.DataFrame:
        rows = self.db.execute("SELECT at_ms, kind, detail FROM events ORDER BY id").fetchall()
        return pd.DataFrame(rows, columns=["at_ms", "kind", "detail"])

    def integrity(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    def _transaction(self):
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, ROLLBACK on any error: a crash mid-write leaves no half row."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, tb):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        return False


def open_journal(path: str | Path, must_exist: bool = False) -> Journal:
    """The journal to read (must_exist: read-only, and a missing file is a user error)."""
    if must_exist and not Path(path).is_file():
        raise FcError(f"{path}: no such journal; give the --journal the service writes")
    return Journal(path, read_only=must_exist)
