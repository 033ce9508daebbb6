"""What the journal says: wealth, return, drawdown and trades per policy, the downtime, and
whether the service is late (for a health check)."""

import numpy as np
import pandas as pd

from fc.core.data.candles import timeframe_ms
from fc.core.errors import FcError
from fc.core.evaluation.policies import POLICIES
from fc.live.journal import Journal
from fc.live.service import iso


def _market(rows: pd.DataFrame, symbol: str | None) -> tuple[str, str, pd.DataFrame]:
    if symbol:
        rows = rows[rows.symbol == symbol]
    markets = rows[["symbol", "timeframe"]].drop_duplicates()
    if len(markets) == 0:
        raise FcError("the journal has no decisions" + (f" for {symbol}" if symbol else ""))
    if len(markets) > 1:
        names = ", ".join(f"{s} {t}" for s, t in markets.itertuples(index=False))
        raise FcError(f"the journal holds several markets ({names}); pass --symbol")
    sym, tf = markets.iloc[0]
    return sym, tf, rows


def _downtime(held: pd.DataFrame, tf: int) -> dict:
    """Runs of held candles: when the service (or the exchange) did not decide."""
    times = np.sort(held.candle_ms.to_numpy())
    periods = []
    if len(times):
        breaks = np.flatnonzero(np.diff(times) != tf) + 1
        for run in np.split(times, breaks):
            periods.append({"from": iso(run[0]), "to": iso(run[-1] + tf), "candles": len(run)})
    return {"held_candles": len(times), "seconds": len(times) * tf / 1000, "periods": periods}


def paper_report(journal: Journal, symbol: str | None = None) -> dict:
    sym, tf_name, rows = _market(journal.decisions(), symbol)
    tf = timeframe_ms(tf_name)
    out = {"symbol": sym, "timeframe": tf_name}
    for policy in POLICIES:
        got = rows[rows.policy == policy].sort_values("candle_ms")
        decided = got[got.kind == "decision"]
        wealth = got.wealth.to_numpy()
        start = float(wealth[0])
        peak = np.maximum.accumulate(wealth)
        out[policy] = {
            "final_wealth": float(wealth[-1]),
            "capital": start,
            "return": float(wealth[-1] / start - 1.0),
            "max_drawdown": float((1.0 - wealth / peak).max()),
            "decisions": len(decided),
            "trades": int((decided.trade != 0).sum()),
            "turnover": float(decided.trade.abs().sum()),
            "position": float(got.position.iloc[-1]),
            "first": iso(decided.candle_ms.iloc[0]),
            "last": iso(decided.candle_ms.iloc[-1]),
        }
    held = rows[(rows.kind == "held") & (rows.policy == POLICIES[0])]
    out["downtime"] = _downtime(held, tf)
    events = journal.events()
    out["skipped"] = int((events.kind == "skip").sum()) if len(events) else 0
    out["starts"] = int((events.kind == "start").sum()) if len(events) else 0
    out["by_model"] = by_model(rows)
    return out


def by_model(rows: pd.DataFrame) -> dict:
    """The figures split by the model file (sha256) that decided: {sha256: {"model", "first",
    "last", policy: {...}}}, in the order the models took over. A step's return belongs to the
    model that decided the position earning it; held rows carry the last decision's model."""
    out = {}
    for policy in POLICIES:
        got = rows[rows.policy == policy].sort_values("candle_ms")
        decided = got.kind == "decision"
        # who decided the position each row holds (an old row without a hash: "")
        decider = got.model_sha256.where(decided).ffill().fillna("").to_numpy()
        wealth = got.wealth.to_numpy()
        step = np.r_[1.0, wealth[1:] / wealth[:-1]]
        earner = np.r_[decider[:1], decider[:-1]]  # step k is earned by row k-1's position
        for sha in pd.unique(decider):
            mine = got[decided & (got.model_sha256 == sha)]
            growth = np.cumprod(np.r_[1.0, step[earner == sha]])
            entry = out.setdefault(sha, {"model": "", "first": "", "last": ""})
            if len(mine):
                entry.update(model=mine.model.iloc[-1], first=iso(mine.candle_ms.iloc[0]),
                             last=iso(mine.candle_ms.iloc[-1]))  # fmt: skip
            entry[policy] = {
                "decisions": len(mine),
                "trades": int((mine.trade != 0).sum()),
                "turnover": float(mine.trade.abs().sum()),
                "return": float(growth[-1] - 1.0),
                "max_drawdown": float((1.0 - growth / np.maximum.accumulate(growth)).max()),
            }
    return out


def paper_status(
    journal: Journal, now_ms: int, symbol: str | None = None, grace_s: float | None = None
) -> dict:
    """The last decision and whether the next one is overdue: due at the close after the next
    candle, plus `grace_s` (default: the decision window plus a minute)."""
    sym, tf_name, rows = _market(journal.decisions(), symbol)
    tf = timeframe_ms(tf_name)
    decided = rows[rows.kind == "decision"]
    last = int(decided.candle_ms.max())
    grace_ms = (min(tf // 2, 300_000) + 60_000) if grace_s is None else int(grace_s * 1000)
    due = last + 2 * tf + grace_ms
    latest = decided[decided.candle_ms == last]
    return {
        "symbol": sym,
        "timeframe": tf_name,
        "last_candle": iso(last),
        "decided_at": iso(int(latest.decided_ms.max())),
        "positions": {r.policy: float(r.position) for r in latest.itertuples()},
        "wealth": {r.policy: float(r.wealth) for r in latest.itertuples()},
        "now": iso(now_ms),
        "next_due_by": iso(due),
        "late": bool(now_ms > due),
        "late_by_s": max(0.0, (now_ms - due) / 1000),
    }
