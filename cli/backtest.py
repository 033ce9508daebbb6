"""`fc backtest`, `fc compare`, `fc explore`: the evidence a user decides on."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]

ROWS = (
    ("discrete", "model: discrete"),
    ("proportional", "model: proportional"),
    ("buy_and_hold", "buy and hold"),
    ("mean_reversion", "mean reversion"),
    ("last_direction", "last direction"),
    ("class_prior", "class prior"),
)


def _ci(pair) -> str:
    return f"[{pair[0]:+.2f}, {pair[1]:+.2f}]" if pair else ""


def _strategy_table(report: dict) -> Table:
    table = Table(title="Trading (wealth starts at 1.0; Sharpe annualised, 95 % bootstrap CI)")
    table.add_column("strategy")
    ranges = [r for r in ("train", "validation") if r in report]
    for r in ranges:
        for col in ("wealth", "Sharpe", "CI", "max DD"):
            table.add_column(f"{r} {col}", justify="right")
    for key, label in ROWS:
        cells = []
        for r in ranges:
            m = report[r][key]
            cells += [
                f"{m['final_wealth']:.3f}",
                f"{m['sharpe']:+.2f}",
                _ci(m.get("sharpe_ci95")),
                f"{m['max_drawdown']:.1%}",
            ]
        table.add_row(label, *cells)
    return table


def _classifier_table(report: dict) -> Table:
    table = Table(title="Direction of the next candle")
    table.add_column("predictor")
    ranges = [r for r in ("train", "validation") if r in report]
    for r in ranges:
        for col in ("accuracy", "log loss", "Brier"):
            table.add_column(f"{r} {col}", justify="right")
    for key in ("model", "class_prior", "always_up", "last_direction", "mean_reversion"):
        cells = []
        for r in ranges:
            m = report[r]["classifier"][key]
            cells += [f"{m['accuracy']:.2%}", f"{m['log_loss']:.4f}", f"{m['brier']:.4f}"]
        table.add_row(key.replace("_", " "), *cells)
    return table


def backtest(
    run: Annotated[Path, typer.Argument(help="A run folder made by `fc train`.")],
    fee_bps: Annotated[float, typer.Option(min=0, help="Fee per unit traded, basis points.")] = 0.0,
    slippage_bps: Annotated[float, typer.Option(min=0, help="Slippage, basis points.")] = 0.0,
    start: Annotated[str | None, typer.Option(help="First decision time (UTC date).")] = None,
    end: Annotated[str | None, typer.Option(help="End (exclusive) of decisions.")] = None,
    data: Annotated[Path | None, typer.Option(help="Candle file (default: the run's).")] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Predict with this exported ONNX graph (the live service's numbers)."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Backtest both policies and the baselines on the training and validation ranges.

    Example: fc backtest runs/20260101T000000-ce-h16-l3 --fee-bps 5
    """
    from fc.core.backtest import BacktestConfig
    from fc.core.backtest_run import backtest_run
    from fc.core.runs import read_config

    cfg = BacktestConfig(fee_bps=fee_bps, slippage_bps=slippage_bps, start=start, end=end)
    predict = None
    if model is not None:
        from fc.live.predictor import load_predictor

        config = read_config(run)
        predict = load_predictor(model, config.symbol, config.timeframe).p_up_at
    report = backtest_run(run, cfg, data, predict, str(model) if model else "torch")
    if as_json:
        typer.echo(json.dumps(report))
        return
    console.print(_strategy_table(report))
    console.print(_classifier_table(report))
    for r in ("train", "validation"):
        if r in report:
            c = report[r]["classifier"]
            lo, hi = c["accuracy_minus_prior_ci95"]
            console.print(
                f"{r}: accuracy minus class prior {c['accuracy_minus_prior']:+.2%} "
                f"(95 % CI {lo:+.2%} .. {hi:+.2%}) over {c['scored']:,} candles"
            )
    console.print(f"files in {run / 'backtest'}")


def compare(
    runs: Annotated[list[Path], typer.Argument(help="Backtested run folders.")],
    out: Annotated[Path, typer.Option(help="Where to write the equity plot.")] = Path(
        "compare.png"
    ),
    section: Annotated[str, typer.Option(help="train or validation")] = "validation",
    as_json: Json = False,
) -> None:
    """One table and one overlaid equity plot for several backtested runs.

    Example: fc compare runs/*-ce-* runs/*-profit-*
    """
    from fc.core.backtest_plots import save_figure
    from fc.core.compare import compare_figure, compare_rows

    rows = compare_rows(runs, section)
    save_figure(compare_figure(runs, section), out)
    if as_json:
        typer.echo(json.dumps({"rows": rows, "plot": str(out)}))
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
            f"{r['max_drawdown']:.1%}",
            f"{r['accuracy']:.2%}",
            f"{r['mean_reversion_accuracy']:.2%}",
        )
    console.print(table)
    console.print(f"equity plot: {out}")


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
    from fc.core.backtest_plots import save_figure
    from fc.core.candles import load_candles, resample
    from fc.core.explore import exploration_figures
    from fc.core.store import find_candles

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
