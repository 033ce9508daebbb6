"""The ledger of looks at untouched ranges: every backtest that scores a test or walk-forward range
appends one row per strategy to RUNS/ledger.sqlite, and learns how many distinct variants have
been scored on that range so far and the deflated Sharpe of this one for that many (Bailey and
Lopez de Prado: the best of many looks is not evidence).

A variant is (config hash, data hash, range first, range last): a rerun of the same run on the
same candles is not a new look, so the unique key makes a repeat insert nothing (INSERT OR
IGNORE) and the repeat is answered with the figures of its first recording. The range a variant
counts on is its dates; the range name ("test", "walk") is a label. The schema lives here only.
"""

import math
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.errors import FcError
from fc.core.evaluation.metrics import sharpe as annualised_sharpe
from fc.core.evaluation.significance import deflated_from_moments, moments

LEDGER_FILE = "ledger.sqlite"
# Two backtests finishing together wait for each other's transaction rather than fail.
BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS looks (
    time TEXT NOT NULL,               -- when the look was recorded, UTC ISO
    run TEXT NOT NULL,                -- the run (or walk) folder's name
    config_hash TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    range_name TEXT NOT NULL,         -- test, walk, ...
    range_first TEXT NOT NULL,        -- first and last decision of the range, UTC ISO
    range_last TEXT NOT NULL,
    strategy TEXT NOT NULL,
    sharpe_per_bar REAL,              -- NULL when the returns have no dispersion
    sharpe_annualised REAL,
    decisions INTEGER NOT NULL,
    bars INTEGER NOT NULL,            -- per-bar returns behind the moments
    skewness REAL,
    kurtosis REAL,                    -- non-excess, as significance.moments gives it
    cost_bps REAL NOT NULL DEFAULT 0, -- fee + slippage the returns paid: looks are counted per cost
    UNIQUE (config_hash, data_hash, range_first, range_last, strategy)
)
"""
COLUMNS = ("time", "run", "config_hash", "data_hash", "range_name", "range_first", "range_last",
           "strategy", "sharpe_per_bar", "sharpe_annualised", "decisions", "bars", "skewness",
           "kurtosis", "cost_bps")  # fmt: skip


def ledger_path(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / LEDGER_FILE


def look(step_returns: np.ndarray, bars_per_year: float, decisions: int | None = None) -> dict:
    """What record_looks needs of one strategy, from its per-bar returns over the range: the
    moments (n, per-bar sharpe, skewness, kurtosis), the annualised Sharpe and the decisions."""
    r = np.asarray(step_returns, dtype=np.float64)
    return {
        **moments(r),
        "sharpe_annualised": annualised_sharpe(r, bars_per_year),
        "decisions": len(r) if decisions is None else int(decisions),
    }


def record_looks(
    runs_dir: str | Path,
    run: str,
    config_hash: str,
    data_hash: str,
    range_name: str,
    first,
    last,
    strategies: dict[str, dict],
    now: datetime | None = None,
    cost_bps: float = 0.0,
) -> dict:
    """Append one look per strategy ({name: look(...)}) at the range [first, last] and return
    {strategy: {"variants": N, "deflated_sharpe": DSR or None, "new_look": bool}}: N distinct
    variants scored on these dates for that strategy so far (this one included), and the DSR of
    this variant's Sharpe for N trials (N = 1: PSR(0)). Variants are counted among the looks at
    the same cost (`cost_bps`, fee + slippage): a fee is the market's, not a choice among
    alternatives, and 0-bps and 5-bps Sharpes of one model side by side would inflate the
    spread the deflation reads. One transaction, safe for concurrent processes; `now` (UTC) is
    the clock, passed in for tests."""
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat()
    first, last = _iso(first), _iso(last)
    key = (config_hash, data_hash, first, last)
    path = ledger_path(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    with _transaction(path, create=True) as db:
        for name, m in strategies.items():
            row = (stamp, run, *key[:2], range_name, first, last, name, _real(m["sharpe"]),
                   _real(m.get("sharpe_annualised")), int(m["decisions"]), int(m["n"]),
                   _real(m["skewness"]), _real(m["kurtosis"]), float(cost_bps))  # fmt: skip
            cursor = db.execute(
                f"INSERT OR IGNORE INTO looks ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(COLUMNS))})",
                row,
            )
            out[name] = {**_deflate(db, key, name, cost_bps), "new_look": cursor.rowcount == 1}
    return out


def _deflate(db: sqlite3.Connection, key: tuple, strategy: str, cost_bps: float) -> dict:
    """N and the DSR of the variant `key` against every variant of `strategy` on its dates at
    the same cost."""
    _, _, first, last = key
    trials = db.execute(
        "SELECT sharpe_per_bar FROM looks WHERE range_first = ? AND range_last = ? "
        "AND strategy = ? AND cost_bps = ?",
        (first, last, strategy, float(cost_bps)),
    ).fetchall()
    sharpe, skewness, kurtosis, bars = db.execute(
        "SELECT sharpe_per_bar, skewness, kurtosis, bars FROM looks WHERE config_hash = ? "
        "AND data_hash = ? AND range_first = ? AND range_last = ? AND strategy = ?",
        (*key, strategy),
    ).fetchone()
    this = {"sharpe": _float(sharpe), "skewness": _float(skewness), "kurtosis": _float(kurtosis),
            "n": bars}  # fmt: skip
    # a variant without a Sharpe (never traded) counts in N, not in the variance (significance)
    dsr = deflated_from_moments(this, [_float(s) for (s,) in trials])
    return {"variants": len(trials), "deflated_sharpe": dsr if math.isfinite(dsr) else None}


def ledger_rows(runs_dir: str | Path, range_name: str | None = None) -> list[dict]:
    """Every look in the ledger (oldest first), or those of one range name; [] without a
    ledger (nothing has been scored yet: no file is created)."""
    path = ledger_path(runs_dir)
    if not path.is_file():
        return []
    where, args = ("WHERE range_name = ?", (range_name,)) if range_name else ("", ())
    with _transaction(path, create=False) as db:
        rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM looks {where} ORDER BY rowid", args)
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows.fetchall()]


def range_counts(rows: list[dict]) -> list[dict]:
    """Per range (name, first, last) of `rows`: distinct variants and looks recorded, in order
    of first appearance."""
    ranges: dict[tuple, dict] = {}
    for row in rows:
        key = (row["range_name"], row["range_first"], row["range_last"])
        seen = ranges.setdefault(key, {"variants": set(), "looks": 0})
        seen["variants"].add((row["config_hash"], row["data_hash"]))
        seen["looks"] += 1
    return [
        {"range_name": n, "range_first": f, "range_last": la, "variants": len(s["variants"]),
         "looks": s["looks"]}
        for (n, f, la), s in ranges.items()
    ]  # fmt: skip


@contextmanager
def _transaction(path: Path, create: bool):
    """One transaction on the ledger, write-locked from its start when it may write (BEGIN
    IMMEDIATE: a second process waits for the first instead of failing on a read-then-write
    upgrade); a file that is not a ledger is a user error that leaves it untouched."""
    db = None
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        # WAL: readers (fc ledger) never block a backtest that is appending
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN IMMEDIATE" if create else "BEGIN")
        if create:
            db.execute(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(looks)")}
            if "cost_bps" not in columns:  # a ledger written before looks were counted per cost
                db.execute("ALTER TABLE looks ADD COLUMN cost_bps REAL NOT NULL DEFAULT 0")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except (sqlite3.ProgrammingError, sqlite3.IntegrityError):
        raise  # fc's own mistakes, not the user's file
    except sqlite3.DatabaseError as exc:
        raise FcError(
            f"{path} is not a readable ledger of looks ({exc}); move it aside and rerun "
            "to start a new one"
        ) from None
    finally:
        if db is not None:
            db.close()


def _iso(value) -> str:
    """A range bound as UTC ISO, whatever form it came in (a date, a Timestamp, an ISO string),
    so the same dates are the same range."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


def _real(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _float(value) -> float:
    return float("nan") if value is None else float(value)
