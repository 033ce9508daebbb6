"""`fc export` as a library call: write a run's graphs into RUN/export/ and prove them equal to
torch (export/parity.py), returning a report whose `ok` says every difference is within tolerance.
A tabular family's model (LightGBM, logistic) goes to export/tabular_run.py instead.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from fc.core.errors import FcError
from fc.core.evaluation.policies import POLICIES, params_by_policy, with_overrides
from fc.core.evaluation.policy_grid import CHOSEN_FILE, read_chosen
from fc.core.learning.family import family_of
from fc.core.studies.runs import load_run
from fc.export import graphs, parity
from fc.export.tabular_run import export_tabular, is_tabular
from fc.live.predictor import load_predictor, load_step_predictor


@dataclass
class ExportReport:
    onnx: str | None = None
    step_onnx: str | None = None
    torchscript: str | None = None
    max_abs_diff: dict[str, float | None] = field(default_factory=dict)  # None: check skipped
    windows: dict[str, int] = field(default_factory=dict)  # how many windows each check read
    tolerance: float = 1e-5
    opset: int | None = None
    exporter: str = ""
    notes: list[str] = field(default_factory=list)
    # measured, not bounded: step graph with its state carried since the first candle vs windows
    carried_state_drift: float | None = None
    # {policy: {parameter: value}} stamped into the graphs, and where they came from
    policy_params: dict = field(default_factory=dict)
    policy_source: str = ""

    @property
    def ok(self) -> bool:
        return all(d is None or d <= self.tolerance for d in self.max_abs_diff.values())

    def to_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def export_run(
    run_dir: str | Path,
    onnx: bool = True,
    torchscript: bool = False,
    tolerance: float = 1e-5,
    data: str | Path | None = None,
    windows: int = 2048,
    exporter: str = "legacy",
    drift: bool = True,
    policy: dict | None = None,
) -> ExportReport:
    """Write RUN/export/model.onnx and model.step.onnx (onnx) and/or model.torchscript.pt, run
    the parity checks and keep their report beside the graphs (parity.json). `windows` caps the
    real validation windows read (0: all); `drift` also measures carried_state_drift (the model
    run once over the whole file). `policy` {parameter: value or None}: see export_policy."""
    if not (onnx or torchscript):
        raise FcError("nothing to export: pass --onnx, --torchscript or both")
    if not tolerance > 0:
        raise FcError(f"--tolerance {tolerance} must be positive, e.g. 1e-5")
    if exporter not in graphs.OPSET:
        raise FcError(f"--exporter {exporter!r} is not one of {', '.join(graphs.OPSET)}")
    if windows < 0:
        raise FcError(f"--windows {windows} must be 0 (all) or a positive count")
    # One torch thread: on a busy machine two threads ran the GRU's many small per-step ops 30x
    # slower than one (threads waiting on each other), and parity needs no speed.
    threads = torch.get_num_threads()
    params, source = export_policy(run_dir, policy or {})
    torch.set_num_threads(1)
    try:
        return _export(Path(run_dir), onnx, torchscript, tolerance, data, windows, exporter, drift,
                       params, source)  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def export_policy(run_dir, overrides: dict) -> tuple[dict, str]:
    """The policy parameters the graphs carry: those the run's last grid backtest chose
    (RUN/backtest/chosen_policy.json), else the defaults; a parameter given on the command line
    replaces that parameter for both policies."""
    chosen = read_chosen(run_dir)
    params = with_overrides(params_by_policy(chosen), overrides)
    source = f"{CHOSEN_FILE} (chosen on validation)" if chosen else "defaults"
    if any(v is not None for v in overrides.values()):
        source += ", overridden on the command line"
    return params, source


def _export(run_dir, onnx, torchscript, tolerance, data, windows, exporter, drift, params,
            source) -> ExportReport:  # fmt: skip
    config, model, scaling = load_run(run_dir)
    if not config.symbols and params["discrete"].k != 1:
        raise FcError("--k is the long-short of a multi-symbol run; this run has one symbol")
    out = run_dir / "export"
    out.mkdir(exist_ok=True)
    report = ExportReport(tolerance=tolerance, policy_source=source)
    report.policy_params = {p: params[p].to_dict() for p in POLICIES}
    exported = family_of(config).export_model(model)
    if config.symbols:  # a pooled universe: one window graph, each symbol's scaling beside it
        from fc.export.universe_run import export_universe

        export_universe(run_dir, config, model, scaling, report, (onnx, torchscript), data,
                        windows, exporter, params)  # fmt: skip
        (out / "parity.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        return report
    if is_tabular(exported):  # LightGBM, logistic: one window-only graph of lagged rows
        if onnx:
            export_tabular(run_dir, config, exported, report, torchscript, data, params)
        else:
            raise FcError(f"--torchscript: a {config.family} run has no torch model; use --onnx")
        (out / "parity.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        return report
    real, note = parity.real_windows(config, data, windows)
    report.notes.append(note)

    if onnx:
        report.opset, report.exporter = graphs.OPSET[exporter], f"torch.onnx ({exporter})"
        window_path = graphs.write_window_onnx(
            model, scaling, config, out / graphs.ONNX_NAME, exporter, params
        )
        step_path = graphs.write_step_onnx(
            model, scaling, config, out / graphs.STEP_NAME, exporter, params
        )
        report.onnx, report.step_onnx = str(window_path), str(step_path)
        # the checks load the graphs the way the live loop does, so they test its loader too
        predictor = load_predictor(window_path, config.symbol, config.timeframe)
        step = load_step_predictor(step_path, config.symbol, config.timeframe)
        checks = {}
        if real is not None:
            checks["onnx_real"] = lambda: parity.onnx_vs_torch_real(model, scaling, predictor, real)
            positions = run_dir / "backtest" / "positions.parquet"
            if positions.is_file():
                checks["onnx_backtest"] = lambda: parity.onnx_vs_backtest(
                    predictor, positions, real
                )
        else:
            report.max_abs_diff["onnx_real"] = None
        checks["onnx_random"] = lambda: parity.onnx_vs_torch_random(
            model, scaling, config, predictor
        )
        checks["step_onnx"] = lambda: parity.step_vs_window(step, predictor, config, real)
        for name, check in checks.items():
            report.max_abs_diff[name], report.windows[name] = check()
        if real is not None and drift:
            report.carried_state_drift = parity.carried_state_drift(model, scaling, predictor, real)
    if torchscript:
        ts_path = graphs.write_torchscript(
            model, scaling, config, out / graphs.TORCHSCRIPT_NAME, params
        )
        report.torchscript = str(ts_path)
        traced, _ = graphs.load_torchscript(ts_path)
        report.max_abs_diff["torchscript"], report.windows["torchscript"] = (
            parity.torchscript_vs_torch(model, scaling, config, traced, real)
        )
    (out / "parity.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report
