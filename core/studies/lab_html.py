"""report.html: one self-contained page of a lab (no network: no script, font or image from
anywhere else; every chart an inline base64 PNG): the report's tables, per variant its equity
beside the one-liners, its Sharpe against the fee with the break-even marked and its per-fold
log loss against the prior, every variant's calibration, and the lab file itself."""

import base64
from html import escape

from fc.core.studies import lab_charts
from fc.core.studies.lab_report import report_tables
from fc.core.studies.lab_universe_report import universe_tables
from fc.core.studies.lab_variant import fee_name

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
.charts { display: flex; flex-wrap: wrap; gap: 0.5em; }
figure.chart { margin: 0; }
figure.chart img { display: block; width: 512px; height: 240px; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
"""


def report_html(report: dict, stored: dict, lab_text: str) -> str:
    """The page of report.json's content, the variants' stored summaries and the lab file."""
    first = fee_name(report["fees_bps"][0])
    parts = [f"<h1>Lab {escape(report['lab'])}</h1>",
             f"<p>{report['variants_finished']} of {report['variants_declared']} variants "
             "finished. Walk-forward: every fold predicted by a model trained before it. Sharpe "
             "is annualised; intervals are 95 % stationary block bootstraps.</p>"]  # fmt: skip
    if report["unfinished"]:
        parts.append(f"<p>Not finished: {escape(', '.join(report['unfinished']))}.</p>")
    if report["variants"]:
        parts += _symbol_parts(report, stored, first)
    if report.get("universe_variants"):
        parts += _universe_parts(report, stored, first)
    parts.append(
        f"<h2>The lab file</h2><p>Made by <code>{escape(report['command'])}</code>."
        f"</p><pre>{escape(lab_text)}</pre><h2>Each variant as one fc walk</h2><ul>"
    )
    parts += [f"<li>{escape(v['name'])}: <code>{escape(v['walk_command'])}</code></li>"
              for v in report["variants"] + report.get("universe_variants", [])]  # fmt: skip
    parts.append("</ul>")
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Lab {escape(report['lab'])}</title><style>{STYLE}</style></head>"
            f"<body>\n{body}\n</body></html>\n")  # fmt: skip


def _symbol_parts(report: dict, stored: dict, first: str) -> list[str]:
    """The one-symbol variants: the headline and the deflated Sharpe first, the charts, then
    each fee's strategies."""
    parts = []
    headline, *by_fee, deflated = report_tables(report)
    parts += [_table(*headline), _table(*deflated)]
    calibration = {v["name"]: stored[v["id"]]["calibration"] for v in report["variants"]}
    for v in report["variants"]:
        s = stored[v["id"]]
        at = s["fees"][first]
        breaks = {p: at["strategies"][p]["break_even_fee_bps"] for p in ("discrete",
                  "proportional")}  # fmt: skip
        name = v["name"]
        parts.append(f"<h2>{escape(name)}</h2>")
        parts.append(_charts([
            ("equity", lab_charts.equity_figure(at["equity"], f"{name}: wealth at {first} bps")),
            ("sharpe-fee", lab_charts.sharpe_fee_figure(s["sharpe_by_fee"], breaks,
                                                        f"{name}: Sharpe against the fee")),
            ("fold-log-loss", lab_charts.fold_loss_figure(s["folds"],
                                                          f"{name}: log loss per fold")),
        ]))  # fmt: skip
    parts.append("<h2>Calibration</h2>")
    parts.append(_charts([("calibration", lab_charts.calibration_figure(
        calibration, "reliability of the stitched out-of-sample predictions"))]))  # fmt: skip
    parts += [_table(*table) for table in by_fee]
    return parts


def _universe_parts(report: dict, stored: dict, first: str) -> list[str]:
    """The pooled universes: their tables, then each variant's wealth at the first fee and k
    beside the universe's baselines."""
    k = report["k"][0]
    parts = ["<h2>Pooled universes</h2>"]
    parts += [_table(*table) for table in universe_tables(report)]
    for v in report["universe_variants"]:
        title = f"{v['name']}: wealth at {first} bps, k = {k}"
        figure = lab_charts.equity_figure(stored[v["id"]]["equity"], title, lab_charts.BOOKS)
        parts.append(_charts([("equity", figure)]))
    return parts


def _table(title: str, head: list[str], rows: list[list[str]]) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)  # fmt: skip
    return f"<h2>{escape(title)}</h2><table><thead><tr>{header}</tr></thead>" \
           f"<tbody>{body}</tbody></table>"  # fmt: skip


def _charts(figures: list) -> str:
    out = []
    for kind, fig in figures:
        data = base64.b64encode(lab_charts.png_data(fig)).decode()
        out.append(f'<figure class="chart" data-chart="{kind}"><img alt="{kind} chart" '
                   f'src="data:image/png;base64,{data}"></figure>')  # fmt: skip
    return '<div class="charts">' + "".join(out) + "</div>"
