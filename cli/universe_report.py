"""`fc backtest RUN` for a multi-symbol run: the portfolio per range and each symbol's rows."""

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

PORTFOLIO = (
    ("long_short", "long-short"),
    ("equal_weight_discrete", "eq. discrete"),
    ("equal_weight_proportional", "eq. proportional"),
    ("buy_and_hold", "buy and hold"),
    ("cross_sectional_reversal", "xs reversal"),
    ("cross_sectional_momentum", "xs momentum"),
)


def _ci(pair) -> str:
    return f"{pair[0]:+.2f}..{pair[1]:+.2f}" if pair else ""


def _num(value, fmt: str) -> str:
    return "-" if value is None or value != value else format(value, fmt)


def _range_name(name: str, part: dict) -> str:
    info = part.get("range") or {}
    label = "test (untouched by training and selection)" if name == "test" else name
    return label + (f" {info['first'][:10]}..{info['last'][:10]}" if info.get("first") else "")


def backtest_universe_command(run: Path, cfg, data, model, policies, device, as_json,
                              progress, schedule=None) -> None:  # fmt: skip
    """Backtest a multi-symbol run (core.studies.universe) and print its tables or JSON;
    progress(done, total) while predicting (cli.backtest.ProgressAfter)."""
    from fc.core.errors import FcError
    from fc.core.studies.universe import backtest_universe

    if policies.is_grid:
        raise FcError("policy grids are for one symbol yet: give one value per parameter")
    predict = None
    if model is not None:
        from fc.core.studies.runs import read_config
        from fc.live.universe_model import load_universe_predictor

        graph, symbols = load_universe_predictor(model), read_config(run).symbols
        if list(graph.symbols) != list(symbols):
            raise FcError(
                f"--model {model}: exported for {','.join(graph.symbols)}, the run trades "
                f"{','.join(symbols)}; export this run with fc export --onnx"
            )
        predict = graph.p_up_at
    report = backtest_universe(run, cfg, data, policies.single(), device, progress, predict,
                               schedule)  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report))
        return
    console = Console()
    for name in ("train", "validation", "test"):
        if name not in report:
            continue
        part = report[name]
        label = _range_name(name, part)
        for table in universe_tables(label, part, report, cfg.cost * 1e4):
            console.print(table)
    console.print(f"files in {run / 'backtest'}")


def universe_tables(label: str, part: dict, report: dict, fee: float) -> tuple[Table, Table]:
    """One range of a universe's backtest (fc backtest, fc walk --symbols): the portfolio's
    strategies and each symbol's classifier."""
    size = len(report["symbols"])
    table = Table(title=f"{label}: portfolio of {size} symbols at {fee:g} bps (wealth from "
                  "1.0; Sharpe annualised, 95 % CI; b/e: break-even fee, bps)")  # fmt: skip
    for col in ("strategy", "wealth", "Sharpe", "CI", "PSR(0)", "max DD", "turnover", "b/e"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for key, row in PORTFOLIO:
        m = part["portfolio"].get(key)
        if m is not None:
            table.add_row(row, f"{m['final_wealth']:.3f}", f"{m['sharpe']:+.2f}",
                          _ci(m.get("sharpe_ci95")), _num(m.get("psr"), ".3f"),
                          f"{m['max_drawdown']:.1%}", f"{m['turnover']:.3f}",
                          _num(m.get("break_even_fee_bps"), ",.1f"))  # fmt: skip
    return table, _classifier_table(label, report["target"], part["symbols"])


def _classifier_table(label: str, target: str, symbols: dict) -> Table:
    what = "beats the universe's mean" if target == "relative" else "goes up"
    table = Table(title=f"{label}: whether each symbol's next candle {what}")
    for col in ("symbol", "scored", "model acc", "log loss", "prior log loss", "reversal acc"):
        table.add_column(col, justify="left" if col == "symbol" else "right")
    for symbol, section in symbols.items():
        c = section["classifier"]
        table.add_row(symbol, f"{c['scored']:,}", f"{c['model']['accuracy']:.2%}",
                      f"{c['model']['log_loss']:.4f}", f"{c['class_prior']['log_loss']:.4f}",
                      f"{c['mean_reversion']['accuracy']:.2%}")  # fmt: skip
    return table
