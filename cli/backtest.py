"""`fc backtest`, `fc compare`, `fc explore`: the evidence a user decides on."""

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from fc.cli.backtest_options import FeeBps, Top, backtest_config
from fc.cli.policy_options import Band, Cap, FlatInside, Inside, K, MinHold, Rebalance, policy_texts

console = Console()
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]

ROWS = (
    ("discrete", "model: discrete"),
    ("proportional", "model: proportional"),
    ("buy_and_hold", "buy and hold"),
    ("mean_reversion", "mean reversion"),
    ("last_direction", "last direction"),
    ("momentum", "momentum"),  # at a horizon H > 1, in place of the last direction
    ("class_prior", "class prior"),
)
Cadence = Annotated[
    int | None,
    typer.Option(help="Re-score on another cadence: re-decide every N candles, hold between."),
]
Sleeves = Annotated[
    int | None, typer.Option(help="Re-score with N overlapping sleeves, one re-decided a candle.")
]


PROGRESS_DELAY = 2.0  # seconds of work before a progress bar is worth showing


class ProgressAfter:
    """progress(done, total) as a rich bar on stderr, shown only once the work has taken longer
    than PROGRESS_DELAY seconds (stdout stays the table or the one JSON object)."""

    def __init__(self, what: str, console: Console | None = None):
        self.what, self.console, self.bar, self.task = what, console, None, None

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if time.monotonic() - self.start < PROGRESS_DELAY or done >= total:
                return
            console = self.console or Console(stderr=True)
            self.bar = Progress(*Progress.get_default_columns(), MofNCompleteColumn(),
                                console=console, transient=True)  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=total)
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _ci(pair) -> str:
    return f"{pair[0]:+.2f}..{pair[1]:+.2f}" if pair else ""


def _range_name(name: str, part: dict) -> str:
    """The range as tables name it: test says it is untouched, every range its dates."""
    info = part.get("range") or {}
    label = "test (untouched by training and selection)" if name == "test" else name
    if info.get("first"):
        label += f" {info['first'][:10]}..{info['last'][:10]}"
    return label


def _num(value, fmt: str) -> str:
    return "-" if value is None or value != value else format(value, fmt)


def _range_tables(name: str, part: dict, horizon: int = 1) -> tuple[Table, Table]:
    """Trading and direction tables of one range, each within 80 columns."""
    label = _range_name(name, part)
    trading = Table(title=f"{label}: trading (wealth from 1.0; Sharpe annualised, 95 % CI)")
    for col in ("strategy", "wealth", "Sharpe", "CI", "PSR(0)", "max DD", "turnover"):
        trading.add_column(col, justify="left" if col == "strategy" else "right")
    for key, label_row in ROWS:
        if key not in part:
            continue
        m = part[key]
        trading.add_row(label_row, f"{m['final_wealth']:.3f}", f"{m['sharpe']:+.2f}",
                        _ci(m.get("sharpe_ci95")), _num(m.get("psr"), ".3f"),
                        f"{m['max_drawdown']:.1%}", f"{m['turnover']:.3f}")  # fmt: skip
    c = part["classifier"]
    ahead = "the next candle" if horizon == 1 else f"the next {horizon} candles"
    direction = Table(title=f"{label}: direction of {ahead} ({c['scored']:,} candles)")
    for col in ("predictor", "accuracy", "log loss", "Brier", "ECE"):
        direction.add_column(col, justify="left" if col == "predictor" else "right")
    for key in ("model", "class_prior", "always_up", "last_direction", "momentum",
                "mean_reversion"):  # fmt: skip
        if key not in c:
            continue
        m = c[key]
        direction.add_row(key.replace("_", " "), f"{m['accuracy']:.2%}",
                          _num(m["log_loss"], ".4f"), f"{m['brier']:.4f}",
                          _num(m.get("ece"), ".4f"))  # fmt: skip
    return trading, direction


def _opt(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _cost_table(name: str, part: dict) -> Table:
    """What trading costs: trades, holding time and the fee at which wealth ends at 1.0."""
    costs = Table(title=f"{name}: trades, and the fee at which the final wealth is 1.0")
    for col in ("strategy", "trades", "mean hold, bars", "break-even fee, bps"):
        costs.add_column(col, justify="left" if col == "strategy" else "right")
    for key, label in ROWS:
        if key not in part:
            continue
        m = part[key]
        costs.add_row(label, f"{m.get('trades', 0):,}", _opt(m.get("mean_holding_bars")),
                      _opt(m.get("break_even_fee_bps")))  # fmt: skip
    return costs


def _policy_line(report: dict) -> str:
    from fc.core.evaluation.policies import POLICIES, PolicyParams

    given = report.get("policy_params", {})
    words = [f"{p}: {PolicyParams(**given[p]).label(p)}" for p in POLICIES if p in given]
    how = " (chosen on validation)" if "policy_grid" in report else ""
    return f"policy parameters{how}: " + "; ".join(words)


def _grid_tables(grid: dict) -> list[Table]:
    """Every setting tried on validation, one table per policy, the chosen one marked."""
    from rich import box

    fee = grid["fee_bps"] + grid["slippage_bps"]
    tables = []
    for policy in ("discrete", "proportional"):
        rows = [r for r in grid["rows"] if r["policy"] == policy]
        title = f"validation: model {policy}, {len(rows)} settings at {fee:g} bps"
        caption = ("* chosen: the highest final validation wealth. flat: flat inside the band; "
                   "hold: mean bars between trades; b/e: break-even fee, bps")  # fmt: skip
        table = Table(title=title, caption=caption, box=box.SIMPLE, pad_edge=False)
        for col in ("setting", "wealth", "Sharpe", "turnover", "trades", "hold", "b/e", ""):
            table.add_column(col, justify="left" if col == "setting" else "right",
                             no_wrap=col == "setting")  # fmt: skip
        for r in rows:
            table.add_row(r["label"], f"{r['final_wealth']:.3f}", f"{r['sharpe']:+.2f}",
                          f"{r['turnover']:.3f}", f"{r['trades']:,}",
                          _opt(r["mean_holding_bars"]), _opt(r["break_even_fee_bps"]),
                          "*" if r.get("chosen") else "")  # fmt: skip
        tables.append(table)
    return tables


def _edges(name: str, c: dict) -> str:
    parts = []
    for other in ("prior", "mean_reversion"):
        lo, hi = c[f"accuracy_minus_{other}_ci95"]
        parts.append(
            f"accuracy minus {other.replace('_', ' ')} "
            f"{c[f'accuracy_minus_{other}']:+.2%} (95 % CI {lo:+.2%}..{hi:+.2%})"
        )
    if "calibrated_mean_reversion" in c:  # fitted on the run's training range
        losses = (c["model"], c["calibrated_mean_reversion"], c["class_prior"])
        parts.append("log loss model {:.5f}, calibrated mean reversion {:.5f}, prior {:.5f}".format(
            *(m["log_loss"] for m in losses)))  # fmt: skip
    return f"{name}: " + "; ".join(parts)


def ledger_line(name: str, part: dict, ledger: dict) -> str:
    """The range's line about the ledger of looks: N variants so far and this one's deflated
    Sharpe for N, per model policy (core.studies.looks records both policies together)."""
    seen = {p: part[p]["ledger"] for p in ("discrete", "proportional") if "ledger" in part[p]}
    n = max(s["variants"] for s in seen.values())
    dsr = ", ".join(f"{p} {_num(s['deflated_sharpe'], '.3f')}" for p, s in seen.items())
    again = "" if any(s["new_look"] for s in seen.values()) else " (a rerun: not a new look)"
    return (f"{name} range scored by {n} variant{'s' * (n != 1)} so far ({ledger['file']}); "
            f"deflated Sharpe of this one for {n}: {dsr}{again}")  # fmt: skip


def backtest(
    run: Annotated[Path, typer.Argument(help="A run folder made by `fc train`.")],
    fee_bps: FeeBps = None,
    slippage_bps: Annotated[float, typer.Option(min=0, help="Slippage, basis points.")] = 0.0,
    start: Annotated[str | None, typer.Option(help="First decision time (UTC date).")] = None,
    end: Annotated[str | None, typer.Option(help="End (exclusive) of decisions.")] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            help="Candle file of the run's symbol (default: the run's); SYMBOL=FILE (repeatable)"
            " for another symbol its features read."
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Predict with this exported ONNX graph (the live service's numbers)."),
    ] = None,
    band: Band = None,
    flat_inside: FlatInside = False,
    inside: Inside = None,
    rebalance: Rebalance = None,
    cap: Cap = None,
    min_hold: MinHold = None,
    k: K = None,
    top: Top = None,
    cadence: Cadence = None,
    sleeves: Sleeves = None,
    device: Annotated[
        str, typer.Option(help="torch predictions on auto, cpu or cuda (not with --model).")
    ] = "auto",
    importance: Annotated[
        bool,
        typer.Option(
            "--importance",
            help="Permutation importance of each feature group on every range (test first).",
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Backtest both policies and the baselines on the train, validation and test ranges
    (test: from the run's --test-from, untouched by training and selection; later candles
    given with --data are test too), with PSR(0), calibration and RUN/backtest/*.png.

    Policy parameters take one value or a comma-separated grid; a grid is tried setting by
    setting on validation, the highest final validation wealth chosen per policy (written to
    RUN/backtest/chosen_policy.json for `fc export`) and then reported on every range.
    Predictions are kept in RUN/backtest/predictions-*.parquet: a second backtest of the same
    model on the same candles (other fees, ranges or policies) reads them back.

    A multi-symbol run takes --fee-bps SYMBOL=BPS per symbol beside the default and --top N.

    Example: fc backtest runs/20260101T000000-ce-h16-l3 --fee-bps 5 --band 0,0.01,0.02,0.05
    """
    from fc.core.evaluation.backtest import check_universe
    from fc.core.evaluation.policy_grid import PolicyGrid
    from fc.core.studies.backtest_run import backtest_run
    from fc.core.studies.runs import read_config

    texts = policy_texts(band, flat_inside, inside, rebalance, cap, min_hold, k)
    policies = PolicyGrid.parse(**texts)
    cfg = backtest_config(fee_bps, slippage_bps, top, start=start, end=end)
    schedule = {"cadence": cadence, "sleeves": sleeves}
    check_universe(cfg, read_config(run).symbols)
    if read_config(run).symbols:
        from fc.cli.universe_report import backtest_universe_command

        with ProgressAfter("predicting p_up") as progress:
            return backtest_universe_command(run, cfg, data, model, policies, device, as_json,
                                             progress, schedule)  # fmt: skip
    if k is not None:
        from fc.core.errors import FcError

        raise FcError("--k is the long-short of a multi-symbol run; this run has one symbol")
    if device != "auto":  # torch loads only here or when predicting: a cached backtest skips it
        from fc.core.learning.training import resolve_device

        resolve_device(device)  # a bad --device fails before anything is read
    predict, key = None, None
    if model is not None:
        from fc.core.data.store import file_sha256
        from fc.live.predictor import load_predictor

        config = read_config(run)
        predict = load_predictor(model, config.symbol, config.timeframe).p_up_at
        key = f"onnx:{file_sha256(model)}"
    with ProgressAfter("predicting p_up") as progress:
        report = backtest_run(run, cfg, data, predict, str(model) if model else "torch",
                              policies, device, progress, key, importance, schedule)  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report))
        return
    if "policy_grid" in report:
        for table in _grid_tables(report["policy_grid"]):
            console.print(table)
    for name in ("train", "validation", "test"):
        if name in report:
            for table in _range_tables(name, report[name], report.get("horizon", 1)):
                console.print(table)
            console.print(_cost_table(name, report[name]))
            console.print(_edges(_range_name(name, report[name]), report[name]["classifier"]))
            if name == "test" and "ledger" in report:
                # one unwrapped line: the ledger's path stays whole, to copy
                console.print(ledger_line(name, report[name], report["ledger"]), soft_wrap=True,
                              markup=False)  # fmt: skip
    if "test" not in report:
        console.print("no test range in this run (trained without one, or --start/--end)")
    if "importance" in report:
        console.print(_importance_table(report["importance"]))
    console.print(_policy_line(report))
    if "horizon" in report:
        console.print(_schedule_line(report))
    console.print(f"files in {run / 'backtest'}")


def _schedule_line(report: dict) -> str:
    how = (f"{report['sleeves']} sleeves, one re-decided each candle" if "sleeves" in report
           else f"re-decided every {report.get('cadence', 1)} candles, held between")  # fmt: skip
    return f"horizon {report['horizon']} candles; the book {how}"


def _importance_table(report: dict) -> Table:
    table = Table(title="permutation importance: log loss increase when a group is shuffled "
                  "(nats, 95 % block-bootstrap interval)")  # fmt: skip
    table.add_column("feature")
    for name in report:
        table.add_column(f"{name} range", justify="right")
    for group in next(iter(report.values())):
        cells = []
        for name in report:
            value, (low, high) = report[name][group]["delta_log_loss"], report[name][group]["ci95"]
            cells.append(f"{value:+.5f} [{low:+.5f}, {high:+.5f}]")
        table.add_row(group, *cells)
    return table


def compare(
    runs: Annotated[list[Path], typer.Argument(help="Backtested run folders.")],
    out: Annotated[Path, typer.Option(help="Where to write the equity plot.")] = Path(
        "compare.png"
    ),
    section: Annotated[str, typer.Option(help="train, validation or test")] = "validation",
    as_json: Json = False,
) -> None:
    """One table and one overlaid equity plot for several backtested runs.

    Example: fc compare runs/*-ce-* runs/*-profit-*
    """
    from fc.core.evaluation.backtest_plots import save_figure
    from fc.core.studies.compare import compare_best, compare_figure, compare_rows

    rows = compare_rows(runs, section)
    best = compare_best(runs, section)
    save_figure(compare_figure(runs, section), out)
    if as_json:
        typer.echo(json.dumps({"rows": rows, "best": best, "plot": str(out)}))
        return
    table = Table(title=f"{section} range")
    for col in (
        "run",
        "loss",
        "h",
        "l",
        "policy",
        "wealth",
        "Sharpe",
        "CI",
        "PSR(0)",
        "max DD",
        "acc",
        "mean-rev acc",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["run"],
            r["loss"],
            str(r["hidden"]),
            str(r["layers"]),
            r["policy"],
            f"{r['final_wealth']:.3f}",
            f"{r['sharpe']:+.2f}",
            _ci(r["sharpe_ci95"]),
            _num(r.get("psr"), ".3f"),
            f"{r['max_drawdown']:.1%}",
            f"{r['accuracy']:.2%}",
            f"{r['mean_reversion_accuracy']:.2%}",
        )
    console.print(table)
    console.print(_best_line(best))
    console.print(f"equity plot: {out}")


def _best_line(best: dict) -> str:
    n = best["n_trials"]
    if best.get("best") is None:
        return f"best of {n}: none (no run and policy has a Sharpe on {best['section']})"
    return (
        f"best of {n} (runs x policies) by {best['section']} Sharpe: {best['best']}; "
        f"PSR(0) {best['psr']:.3f}, deflated Sharpe ratio for {n} trials {best['dsr']:.3f}"
    )


def explore(
    symbol: Annotated[str, typer.Option(help="Market symbol in the store.")] = "BTC/USDT",
    timeframe: Annotated[str, typer.Option(help="Timeframe to look at.")] = "30m",
    store: Annotated[Path, typer.Option(envvar="FC_STORE", help="Candle store.")] = Path("data"),
    data: Annotated[Path | None, typer.Option(help="A candle file instead of the store.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the PNGs.")] = Path("explore"),
) -> None:
    """The workshop's exploration plots as PNGs.

    Example: fc explore --symbol BTC/USDT --out explore/
    """
    from fc.core.data.candles import load_candles, resample
    from fc.core.data.explore import exploration_figures
    from fc.core.data.store import find_candles
    from fc.core.evaluation.backtest_plots import save_figure

    df = (
        resample(load_candles(data), timeframe)
        if data
        else find_candles(store, symbol, timeframe)[0]
    )
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in exploration_figures(df, f"{symbol} {timeframe}").items():
        save_figure(fig, out / name)
        console.print(str(out / name))


def register(root: typer.Typer) -> None:
    root.command()(backtest)
    root.command()(compare)
    root.command()(explore)
