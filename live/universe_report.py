"""What the journal of a universe service says: each symbol's one-symbol report (live/report.py)
and the portfolio's strategies (wealth, return, drawdown, turnover, exposure)."""

import numpy as np

from fc.core.evaluation.portfolio import STRATEGIES
from fc.live.journal import Journal
from fc.live.report import paper_report
from fc.live.service import iso
from fc.live.universe_service import PORTFOLIO


def universe_report(journal: Journal, symbols) -> dict:
    """{"symbols": {symbol: paper_report}, "portfolio": {strategy: figures}, "skipped": n}."""
    out = {"symbols": {s: paper_report(journal, s) for s in symbols}, "portfolio": {}}
    rows = journal.decisions(PORTFOLIO)
    for strategy in STRATEGIES:
        got = rows[rows.policy == strategy].sort_values("candle_ms")
        if len(got) == 0:
            continue
        decided = got[got.kind == "decision"]
        wealth = got.wealth.to_numpy()
        out["portfolio"][strategy] = {
            "final_wealth": float(wealth[-1]),
            "capital": float(wealth[0]),
            "return": float(wealth[-1] / wealth[0] - 1.0),
            "max_drawdown": float((1.0 - wealth / np.maximum.accumulate(wealth)).max()),
            "decisions": len(decided),
            "turnover": float(decided.trade.sum()),
            "gross_exposure": float(got.position.iloc[-1]),
            "first": iso(decided.candle_ms.iloc[0]),
            "last": iso(decided.candle_ms.iloc[-1]),
        }
    first = next(iter(out["symbols"].values()))
    out["skipped"], out["timeframe"] = first["skipped"], first["timeframe"]
    return out


def journal_universe(journal: Journal) -> list | None:
    """The symbols of a universe service's journal (it has portfolio rows), else None."""
    symbols = sorted(set(journal.decisions().symbol))
    return [s for s in symbols if s != PORTFOLIO] if PORTFOLIO in symbols else None
