"""A lab's report from its folder alone: report.json (every variant's numbers and intervals, and
the deflated Sharpe of its best strategy at each fee), report.md (the tables) and report.html
(core.studies.lab_html). Nothing is refitted or backtested: the numbers are those stored when
each variant's units finished; only the ledger is read again, for the N of the deflation.

N for a variant at a fee = the variants the lab file declares (one trial each: their Sharpe of
the same strategy, a variant not finished counting in N without a Sharpe) + the distinct
variants (config hash, data hash) of earlier looks in the ledger at the same dates, strategy and
cost that are none of this lab's own.
"""

import json
import math
from pathlib import Path

import pandas as pd

from fc.core.errors import FcError
from fc.core.evaluation.policies import POLICIES
from fc.core.evaluation.significance import deflated_from_moments, psr_from_moments
from fc.core.studies.lab_folder import LabFolder, write_atomic
from fc.core.studies.lab_variant import ONE_LINERS, fee_name
from fc.core.studies.ledger import ledger_rows

TITLES = {"discrete": "discrete", "proportional": "proportional", "buy_and_hold": "buy and hold",
          "mean_reversion": "mean reversion", "last_direction": "last direction",
          "momentum": "momentum",
          "class_prior": "class prior"}  # fmt: skip


def lab_report(folder: LabFolder) -> tuple[dict, dict]:
    """(report.json's content, {variant id: stored summary}) of a lab folder; FcError when no
    variant has finished."""
    from fc.core.studies.lab_universe_report import is_universe, universe_entries

    manifest = folder.require_manifest()
    stored = {v["id"]: folder.read_variant(v["id"]) for v in manifest["variants"]}
    finished = [v for v in manifest["variants"] if stored[v["id"]] is not None]
    if not finished:
        raise FcError(f"{folder.path}: no variant has finished all its units yet; run fc lab run "
                      "first (fc lab status shows what is left)")  # fmt: skip
    fees = [fee_name(f) for f in manifest["fees"]]
    variants = []
    for v in (v for v in finished if not is_universe(stored[v["id"]])):
        s = stored[v["id"]]
        c = s["classifier"]
        variants.append({
            "name": v["name"], "id": v["id"], "options": v["options"],
            "walk_command": walk_command(v["options"]),
            "folds": len(s["folds"]), "decisions": s["decisions"],
            "first_decision": s["first_decision"], "last_decision": s["last_decision"],
            "classifier": c,
            "log_loss": c["model"]["log_loss"], "prior_log_loss": c["class_prior"]["log_loss"],
            "log_loss_minus_prior": c["model"]["log_loss"] - c["class_prior"]["log_loss"],
            "fees": {f: {"strategies": s["fees"][f]["strategies"],
                         "best": _best(v, s, f, manifest, stored)} for f in fees},
        })  # fmt: skip
    lab_file = manifest.get("lab_file", Path(manifest["lab"]).name)
    report = {"lab": manifest["name"], "command": f"fc lab run {lab_file}",
              "fees_bps": manifest["fees"],
              "variants_declared": len(manifest["variants"]), "variants_finished": len(finished),
              "unfinished": [v["name"] for v in manifest["variants"] if stored[v["id"]] is None],
              "variants": variants}  # fmt: skip
    if any(v.get("universe") for v in manifest["variants"]):  # pooled universes: their own
        report |= {
            "k": manifest["k"],
            "universe_variants": universe_entries(manifest, stored, walk_command),
        }
    return report, stored


def _best(variant: dict, summary: dict, fee: str, manifest: dict, stored: dict) -> dict:
    """The variant's policy with the highest Sharpe at `fee`, its PSR and its deflated Sharpe
    for N = the lab's variants + the distinct earlier looks (module docstring)."""
    moments = summary["moments"][fee]
    finite = {p: m for p, m in moments.items() if m["sharpe"] is not None and
              math.isfinite(m["sharpe"])}  # fmt: skip
    if not finite:
        return {"strategy": None}
    strategy = max(finite, key=lambda p: finite[p]["sharpe"])
    best = finite[strategy]
    lab_trials = [_sharpe(stored[v["id"]], fee, strategy) for v in manifest["variants"]
                  if not v.get("universe")]  # fmt: skip
    earlier = _earlier_looks(variant, summary, fee, strategy, stored)
    trials = lab_trials + list(earlier.values())
    dsr = deflated_from_moments(best, trials)
    psr = psr_from_moments(best["sharpe"], best["skewness"], best["kurtosis"], best["n"])
    return {
        "strategy": strategy,
        "sharpe": summary["fees"][fee]["strategies"][strategy]["sharpe"],
        "sharpe_per_bar": best["sharpe"],
        "psr": psr if math.isfinite(psr) else None,
        "trials": len(trials),
        "trials_in_lab": len(lab_trials),
        "earlier_looks": len(earlier),
        "deflated_sharpe": dsr if math.isfinite(dsr) else None,
    }


def _sharpe(summary: dict | None, fee: str, strategy: str) -> float:
    if summary is None:
        return float("nan")  # declared, not finished: counts in N, not in the variance
    value = summary["moments"][fee][strategy]["sharpe"]
    return float("nan") if value is None else float(value)


def _earlier_looks(variant: dict, summary: dict, fee: str, strategy: str, stored: dict) -> dict:
    """{(config hash, data hash): per-bar Sharpe} of the ledger's looks at the variant's dates,
    strategy and cost, none of them a variant of this lab (a lab variant's own look, or the same
    variant run by fc walk, is counted once, as the lab's)."""
    own = {(s["fees"][f]["variant_hash"], s["data_hash"]) for s in stored.values()
           if s and "fees" in s for f in s["fees"]}  # fmt: skip
    cost = float(fee) + float(summary.get("slippage_bps", 0.0))
    first, last = (pd.Timestamp(summary[k]).isoformat() for k in ("first_decision",
                                                                  "last_decision"))  # fmt: skip
    out = {}
    for row in ledger_rows(variant["runs"]):
        key = (row["config_hash"], row["data_hash"])
        same = (pd.Timestamp(row["range_first"]).isoformat() == first
                and pd.Timestamp(row["range_last"]).isoformat() == last
                and row["strategy"] == strategy and row["cost_bps"] == cost)  # fmt: skip
        if same and key not in own and key not in out:
            value = row["sharpe_per_bar"]
            out[key] = float("nan") if value is None else float(value)
    return out


def write_reports(folder: LabFolder) -> dict:
    """Write report.json, report.md and report.html into the folder; returns their paths."""
    from fc.core.studies.lab_html import report_html

    report, stored = lab_report(folder)
    paths = {name: folder.path / f"report.{name}" for name in ("json", "md", "html")}
    write_atomic(paths["json"], json.dumps(report, indent=1, default=_null) + "\n")
    write_atomic(paths["md"], report_markdown(report))
    lab_text = (folder.path / "lab.toml").read_text()
    write_atomic(paths["html"], report_html(report, stored, lab_text))
    return {k: str(v) for k, v in paths.items()}


def _null(value):
    raise TypeError(type(value))


def report_tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The one-symbol variants' tables as (title, header, rows) of text cells: report.md and
    report.html render the same ones (none in a lab of pooled universes only: theirs are
    lab_universe_report.universe_tables)."""
    if not report["variants"]:
        return []
    fees = [fee_name(f) for f in report["fees_bps"]]
    first = fees[0]
    head = ["variant", "folds", "accuracy", "acc − MR (95 % CI)", "acc − prior (95 % CI)",
            "log loss", "prior log loss", f"discrete Sharpe, {first} bps (CI)",
            f"proportional Sharpe, {first} bps (CI)", "break-even, disc. / prop."]  # fmt: skip
    rows = []
    for v in report["variants"]:
        c, s = v["classifier"], v["fees"][first]["strategies"]
        rows.append([v["name"], str(v["folds"]), pct(c["model"]["accuracy"]),
                     diff_ci(c, "mean_reversion"), diff_ci(c, "prior"), f"{v['log_loss']:.5f}",
                     f"{v['prior_log_loss']:.5f}", sharpe_ci(s["discrete"]),
                     sharpe_ci(s["proportional"]),
                     f"{bps(s['discrete'])} / {bps(s['proportional'])}"])  # fmt: skip
    lead = report["variants"][0]
    c, s = lead["classifier"], lead["fees"][first]["strategies"]
    for name in [
        n for n in ("mean_reversion", "last_direction", "momentum", "buy_and_hold") if n in s
    ]:
        acc = pct(c[name]["accuracy"]) if name in c else ""
        rows.append([f"{TITLES[name]} (one-liner)", "", acc, "", "", "", "", sharpe_ci(s[name]),
                     "", bps(s[name])])  # fmt: skip
    tables = [(f"Walk-forward, {lead['first_decision'][:10]} to {lead['last_decision'][:10]}",
               head, rows)]  # fmt: skip
    for fee in fees:
        rows = [[v["name"], *_strategy_cells(name, v["fees"][fee]["strategies"][name])]
                for v in report["variants"] for name in POLICIES]  # fmt: skip
        rows += [[f"{TITLES[name]} (one-liner)", *_strategy_cells(name, lead["fees"][fee][
                 "strategies"][name])] for name in ONE_LINERS
                 if name in lead["fees"][fee]["strategies"]]  # fmt: skip
        tables.append(
            (
                f"Strategies at {fee} bps",
                [
                    "variant",
                    "strategy",
                    "final wealth",
                    "Sharpe (95 % CI)",
                    "PSR(0)",
                    "break-even fee",
                    "turnover a bar",
                ],
                rows,
            )
        )
    rows = []
    for v in report["variants"]:
        for fee in fees:
            b = v["fees"][fee]["best"]
            if b["strategy"] is None:
                continue
            rows.append([v["name"], f"{fee} bps", TITLES[b["strategy"]], f"{b['sharpe']:+.2f}",
                         num(b["psr"], 3), f"{b['trials']} ({b['trials_in_lab']} + "
                         f"{b['earlier_looks']})", num(b["deflated_sharpe"], 3)])  # fmt: skip
    tables.append(
        (
            "Deflated Sharpe of each variant's best strategy",
            [
                "variant",
                "fee",
                "best strategy",
                "Sharpe",
                "PSR(0)",
                "N (lab + earlier looks)",
                "DSR",
            ],
            rows,
        )
    )
    return tables


def _strategy_cells(name: str, st: dict) -> list[str]:
    return [TITLES[name], f"{st['final_wealth']:.4f}", sharpe_ci(st), num(st["psr"], 3),
            bps(st), f"{st['turnover']:.3f}"]  # fmt: skip


UNIVERSE_WALK = (
    "A pooled universe's `fc walk --symbols` reports the long-short at the policy's "
    "default k (1); the lab's other k are the same predictions ranked again. "
    "`--data …` stands for the lab file's other `data` entries, one `--data "
    "SYMBOL=FILE` each."
)
SHOWN_DATA = 2  # --data entries of a universe's command shown in report.md (report.json: all)


def short_command(options: dict) -> str:
    """walk_command with a long list of --data SYMBOL=FILE (a universe's) cut to its first
    entries and `…`: a readable line of report.md."""
    data = options.get("data")
    if not isinstance(data, list) or len(data) <= SHOWN_DATA:
        return walk_command(options)
    return walk_command({**options, "data": [*data[:SHOWN_DATA], "…"]})


def report_markdown(report: dict) -> str:
    from fc.core.studies.lab_universe_report import universe_tables

    lines = [f"# Lab {report['lab']}", "",
             f"{report['variants_finished']} of {report['variants_declared']} variants finished; "
             "walk-forward, every fold predicted by a model trained before it. Sharpe is "
             "annualised; intervals are 95 % stationary block bootstraps."]  # fmt: skip
    if report["unfinished"]:
        lines.append(f"Not finished: {', '.join(report['unfinished'])}.")
    lines += ["", f"Made by `{report['command']}`."]
    for title, head, rows in report_tables(report) + universe_tables(report):
        lines += ["", f"## {title}", "", "| " + " | ".join(head) + " |",
                  "| --- |" + " ---: |" * (len(head) - 1)]  # fmt: skip
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [
        "",
        "## Each variant as one fc walk",
        "",
        "Paths are relative to the lab file; add `--fee-bps F` for each fee.",
        "",
    ]
    lines += [f"- {v['name']}: `{v['walk_command']}`" for v in report["variants"]]
    if report.get("universe_variants"):
        lines += ["", UNIVERSE_WALK, ""] if report["variants"] else [UNIVERSE_WALK, ""]
        lines += [f"- {v['name']}: `{short_command(v['options'])}`"
                  for v in report["universe_variants"]]  # fmt: skip
    return "\n".join(lines) + "\n"


def walk_command(options: dict) -> str:
    """The `fc walk` command line of a variant's lab keys (what a reader reruns for one row)."""
    words = ["fc walk"]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, bool):
                words.append(flag if one else f"--no-{flag[2:]}")
            else:
                text = str(one)
                words += [flag, text if text and " " not in text else repr(text)]
    return " ".join(words)


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def num(x, digits: int) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def diff_ci(c: dict, other: str) -> str:
    lo, hi = c[f"accuracy_minus_{other}_ci95"] or (None, None)
    ci = "" if lo is None else f" ({100 * lo:+.2f} .. {100 * hi:+.2f})"
    return f"{100 * c[f'accuracy_minus_{other}']:+.2f}{ci}"


def sharpe_ci(st: dict) -> str:
    lo, hi = st.get("sharpe_ci95") or (None, None)
    ci = "" if lo is None else f" ({lo:+.2f} .. {hi:+.2f})"
    return f"{st['sharpe']:+.2f}{ci}"


def bps(st: dict) -> str:
    fee = st.get("break_even_fee_bps")
    return "none" if fee is None else f"{fee:.2f} bps"
