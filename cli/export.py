"""`fc export`: a run's ONNX (window + step) and TorchScript graphs, with parity against torch."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fc.cli.policy_options import (
    Band,
    Cap,
    FlatInside,
    Inside,
    K,
    MinHold,
    Rebalance,
    policy_texts,
)

console = Console()

CHECKS = {
    "onnx_real": "window graph vs torch window_p_up, real windows",  # :SYMBOL of a universe
    "onnx_backtest": "window graph vs the run's backtest p_up",
    "onnx_random": "window graph vs torch, random batches/lengths",
    "step_onnx": "step graph streamed vs window graph",
    "torchscript": "TorchScript vs torch",
}


def export(
    run: Annotated[Path, typer.Argument(help="A run folder made by `fc train`.")],
    onnx: Annotated[
        bool, typer.Option("--onnx", help="Write model.onnx + model.step.onnx.")
    ] = False,
    torchscript: Annotated[
        bool, typer.Option("--torchscript", help="Write model.torchscript.pt.")
    ] = False,
    tolerance: Annotated[
        float, typer.Option(help="Largest |p_up difference| a check may show.")
    ] = 1e-5,
    data: Annotated[Path | None, typer.Option(help="Candle file (default: the run's).")] = None,
    windows: Annotated[
        int, typer.Option(help="Real validation windows to check (0: every one).")
    ] = 2048,
    exporter: Annotated[
        str, typer.Option(help="legacy (opset 17, fast) or dynamo (opset 18, ~20 s).")
    ] = "legacy",
    band: Band = None,
    flat_inside: FlatInside = False,
    inside: Inside = None,
    rebalance: Rebalance = None,
    cap: Cap = None,
    min_hold: MinHold = None,
    k: K = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Export a run into RUN/export/ and check the graphs against torch; exit 1 if one differs
    by more than --tolerance.

    The graphs carry the policy parameters `fc paper` trades with: those the run's last grid
    backtest chose on validation (RUN/backtest/chosen_policy.json), else the defaults; an
    option given here replaces that parameter for both policies.

    Example: fc export runs/20260101T000000-ce-h16-l3 --onnx --torchscript
    """
    from fc.core.evaluation.policies import PolicyParams
    from fc.core.evaluation.policy_grid import policy_overrides
    from fc.export.run import export_run

    policy = policy_overrides(policy_texts(band, flat_inside, inside, rebalance, cap, min_hold, k))
    report = export_run(run, onnx, torchscript, tolerance, data, windows, exporter, policy=policy)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        table = Table(title=f"Parity, max |Δ p_up| (tolerance {tolerance:g})")
        for col in ("check", "windows", "max abs diff", "", "what"):
            table.add_column(col, justify="right" if col in ("windows", "max abs diff") else "left")
        for name, diff in report.max_abs_diff.items():
            seen = report.windows.get(name, "")
            mark = "skipped" if diff is None else ("ok" if diff <= tolerance else "FAIL")
            shown = "—" if diff is None else f"{diff:.3g}"
            table.add_row(name, str(seen), shown, mark, CHECKS[name.split(":")[0]])
        console.print(table)
        for note in report.notes:
            console.print(note)
        if report.carried_state_drift is not None:
            console.print(
                f"state carried since the first candle vs windows: max |Δ p_up| "
                f"{report.carried_state_drift:.3g} (measured, not a parity check)"
            )
        for label, path in (("onnx", report.onnx), ("step", report.step_onnx)):
            if path:
                console.print(f"{label}: {path} (opset {report.opset}, {report.exporter})")
        if report.torchscript:
            console.print(f"torchscript: {report.torchscript}")
        words = [f"{p}: {PolicyParams(**v).label(p)}" for p, v in report.policy_params.items()]
        console.print(f"policy parameters ({report.policy_source}): " + "; ".join(words))
    if not report.ok:
        if not as_json:
            console.print("parity FAILED: a graph differs from torch by more than --tolerance")
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    root.command()(export)
