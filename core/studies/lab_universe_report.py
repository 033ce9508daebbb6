"""The pooled-universe variants of a lab's report: their entries in report.json and their tables
(report.md and report.html render the same ones), from the stored summaries alone
(core.studies.lab_universe). One-symbol variants keep their own tables (core.studies.lab_report).

Per variant: the pooled classifier beside the class prior; at each fee and each long-short k, the
model's books (the long-short for the relative target, the equal-weight books for next) with
Sharpe and its 95 % interval, break-even fee, turnover and the candles where k was capped; the
universe's baselines (cross-sectional reversal and momentum, buy-and-hold); and the deflated
Sharpe of the best book, deflated for N = the lab's universe variants (a universe walk records
no look in the ledger yet, so there are no earlier looks to count).
"""

import math

from fc.core.evaluation.portfolio import BASELINES
from fc.core.evaluation.significance import deflated_from_moments, psr_from_moments
from fc.core.studies.lab_report import bps, diff_ci, num, pct, sharpe_ci
from fc.core.studies.lab_variant import fee_name

BOOK_TITLES = {"long_short": "long-short", "equal_weight_discrete": "equal-weight discrete",
               "equal_weight_proportional": "equal-weight proportional",
               "buy_and_hold": "buy and hold of the universe",
               "cross_sectional_reversal": "cross-sectional reversal",
               "cross_sectional_momentum": "cross-sectional momentum"}  # fmt: skip


def is_universe(summary: dict | None) -> bool:
    return bool(summary) and summary.get("kind") == "universe"


def model_books(summary: dict) -> list[str]:
    """The books of the model a table shows: the long-short of the relative target (ranking is
    what that target learns), the equal-weight books of next."""
    if summary["target"] == "relative":
        return ["long_short"]
    return [s for s in summary["strategies"] if s != "long_short"]


def universe_entries(manifest: dict, stored: dict, walk_command) -> list[dict]:
    """report.json's `universe_variants`: each finished universe variant's numbers."""
    declared = [v for v in manifest["variants"] if v.get("universe")]
    out = []
    for v in declared:
        s = stored[v["id"]]
        if s is None:
            continue
        best = {f: {k: _best(s, f, k, declared, stored) for k in s["books"][f]} for f in s["books"]}
        out.append({"name": v["name"], "id": v["id"], "options": v["options"],
                    "walk_command": walk_command(v["options"]), "symbols": s["symbols"],
                    "target": s["target"], "horizon": s["horizon"], "folds": len(s["folds"]),
                    "decisions": s["decisions"], "first_decision": s["first_decision"],
                    "last_decision": s["last_decision"], "classifier": s["classifier"],
                    "model_books": model_books(s), "books": s["books"],
                    "best": best})  # fmt: skip
    return out


def _best(summary: dict, fee: str, k: str, declared: list, stored: dict) -> dict:
    """The variant's model book with the highest per-bar Sharpe at (fee, k), its PSR and its
    deflated Sharpe for N = the universe variants the lab declares (one finished without that
    book, or not finished, counts in N without a Sharpe)."""
    moments = {b: m for b, m in summary["moments"][fee][k].items() if b in model_books(summary)
               and m["sharpe"] is not None and math.isfinite(m["sharpe"])}  # fmt: skip
    if not moments:
        return {"strategy": None}
    strategy = max(moments, key=lambda b: moments[b]["sharpe"])
    best = moments[strategy]
    trials = [_per_bar(stored[v["id"]], fee, k, strategy) for v in declared]
    dsr = deflated_from_moments(best, trials)
    psr = psr_from_moments(best["sharpe"], best["skewness"], best["kurtosis"], best["n"])
    return {"strategy": strategy, "sharpe": summary["books"][fee][k][strategy]["sharpe"],
            "sharpe_per_bar": best["sharpe"], "psr": psr if math.isfinite(psr) else None,
            "trials": len(trials),
            "deflated_sharpe": dsr if math.isfinite(dsr) else None}  # fmt: skip


def _per_bar(summary: dict | None, fee: str, k: str, strategy: str) -> float:
    try:
        value = summary["moments"][fee][k][strategy]["sharpe"]
    except (TypeError, KeyError):
        return float("nan")  # not finished, another fee or k, or no such book
    return float("nan") if value is None else float(value)


def universe_tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The universe variants' tables as (title, header, rows): the pooled classifier, one
    table of books per (fee, k), the deflated Sharpe."""
    variants = report.get("universe_variants") or []
    if not variants:
        return []
    lead = variants[0]
    head = ["variant", "symbols", "target, H", "folds", "scored", "accuracy", "prior accuracy",
            "acc − prior (95 % CI)", "acc − MR (95 % CI)", "log loss",
            "prior log loss"]  # fmt: skip
    rows = []
    for v in variants:
        c = v["classifier"]
        rows.append([v["name"], str(len(v["symbols"])), f"{v['target']}, {v['horizon']}",
                     str(v["folds"]), f"{c['scored']:,}", pct(c["model"]["accuracy"]),
                     pct(c["class_prior"]["accuracy"]), diff_ci(c, "prior"),
                     diff_ci(c, "mean_reversion"), f"{c['model']['log_loss']:.5f}",
                     f"{c['class_prior']['log_loss']:.5f}"])  # fmt: skip
    span = f"{lead['first_decision'][:10]} to {lead['last_decision'][:10]}"
    tables = [(f"Pooled universes, walk-forward {span}: the classifier", head, rows)]
    book_head = ["variant", "book", "final wealth", "Sharpe (95 % CI)", "break-even fee",
                 "turnover a bar", "k capped at (candles)"]  # fmt: skip
    for fee in map(fee_name, report["fees_bps"]):
        for k in map(str, report["k"]):
            tables.append((f"Universe books at {fee} bps, k = {k}", book_head,
                           _book_rows(variants, fee, k)))  # fmt: skip
    rows = []
    for v in variants:
        for fee in map(fee_name, report["fees_bps"]):
            for k in map(str, report["k"]):
                b = v["best"][fee][k]
                if b["strategy"] is None:
                    continue
                rows.append([v["name"], f"{fee} bps", k, BOOK_TITLES[b["strategy"]],
                             f"{b['sharpe']:+.2f}", num(b["psr"], 3), str(b["trials"]),
                             num(b["deflated_sharpe"], 3)])  # fmt: skip
    tables.append(("Deflated Sharpe of each universe variant's best book",
                   ["variant", "fee", "k", "best book", "Sharpe", "PSR(0)",
                    "N (universe variants)", "DSR"], rows))  # fmt: skip
    return tables


def _book_rows(variants: list[dict], fee: str, k: str) -> list[list[str]]:
    """The model books of every variant, then each distinct baseline (the baselines depend on
    the universe, the horizon and k, not on the model: shown once where variants share them)."""
    rows, seen = [], set()
    for v in variants:
        books = v["books"][fee][k]
        rows += [[v["name"], BOOK_TITLES[b], *_book_cells(books[b])]
                 for b in v["model_books"]]  # fmt: skip
    for v in variants:
        books = v["books"][fee][k]
        for b in BASELINES:
            row = [f"baseline: {len(v['symbols'])} symbols, H = {v['horizon']}", BOOK_TITLES[b],
                   *_book_cells(books[b])]  # fmt: skip
            if tuple(row[1:]) not in seen:
                seen.add(tuple(row[1:]))
                rows.append(row)
    return rows


def _book_cells(st: dict) -> list[str]:
    capped = st.get("k_capped")
    return [f"{st['final_wealth']:.4f}", sharpe_ci(st), bps(st),
            f"{st['turnover']:.3f}", "–" if capped is None else str(capped)]  # fmt: skip
