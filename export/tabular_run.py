"""`fc export RUN --onnx` for the tabular families: the window-only graph (export/tabular_graphs.py)
with the run's metadata, proven equal to the library's own p_up on every validation decision.

There is no step graph (ExportReport.step_onnx stays None) and no TorchScript: the graph reads
the decision's lagged row (`rows`, float64) and writes `p_up`. Checks: `onnx_real` against
LightGBM's / the logistic model's p_up on the rows of every validation decision of the run's
candles, `onnx_backtest` against the backtest's p_up (RUN/backtest/positions.parquet) where the
run has one.
"""

import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd

from fc.core.errors import FcError
from fc.core.learning.lightgbm_model import LightGBMModel
from fc.core.learning.logistic_model import LogisticModel
from fc.core.learning.tabular_family import rows_at
from fc.export.graphs import ONNX_NAME, graph_metadata
from fc.export.tabular_graphs import lightgbm_onnx, logistic_onnx, parity

# the GRU graph's metadata that means nothing here (no recurrent state, no scaling, ce only)
GRU_ONLY_KEYS = ("hidden", "layers", "members", "temperature", "scale_center", "scale_scale")


def is_tabular(model) -> bool:
    """Whether a family's export_model is one this module writes."""
    return isinstance(model, LightGBMModel | LogisticModel)


def tabular_metadata(config, policy_params: dict) -> dict[str, str]:
    """The GRU graph's keys that apply, plus what a row is made of: the feature spec and its
    hash, the symbols it reads, lags, the family."""
    meta = graph_metadata(config, "window", "legacy", policy_params)
    for key in GRU_ONLY_KEYS:
        meta.pop(key)
    spec = config.spec
    return meta | {
        "features": spec.text,
        "feature_spec": json.dumps(spec.to_dict(), sort_keys=True),
        "feature_hash": spec.hash,
        "symbols": json.dumps(list(spec.symbols)),
        "lags": str(config.lags),
        "step_graph": "none",  # window-only: each decision reads its own row
    }


def export_tabular(run_dir: Path, config, model, report, torchscript: bool, data, params):
    """Write RUN/export/model.onnx for a tabular run and fill `report` (an ExportReport)."""
    if torchscript:
        raise FcError(f"--torchscript: a {config.family} run has no torch model; use --onnx")
    graph = write_tabular_graph(run_dir, config, model, tabular_metadata(config, params), report)
    times, rows = validation_rows(config, data)
    report.notes.append(f"real rows: every one of {len(rows)} validation decisions")
    report.max_abs_diff["onnx_real"] = parity(model, graph, rows)
    report.windows["onnx_real"] = len(rows)
    positions = run_dir / "backtest" / "positions.parquet"
    if positions.is_file():
        report.max_abs_diff["onnx_backtest"], report.windows["onnx_backtest"] = onnx_vs_backtest(
            graph, rows, times, positions
        )
    return report


def write_tabular_graph(run_dir: Path, config, model, metadata: dict, report):
    """Write RUN/export/model.onnx of a LightGBM or logistic model with `metadata`, and note it
    in `report`; the graph proto."""
    out = run_dir / "export"
    out.mkdir(exist_ok=True)
    n_features = config.n_inputs * config.lags
    write = lightgbm_onnx if isinstance(model, LightGBMModel) else logistic_onnx
    graph = write(model, n_features, metadata)
    path = out / ONNX_NAME
    onnx.save(graph, str(path))
    report.onnx, report.opset = str(path), graph.opset_import[0].version
    report.exporter = next(p.value for p in graph.metadata_props if p.key == "exporter")
    report.notes.append("no step graph: a tabular model reads each decision's lagged row")
    return graph


def validation_rows(config, data) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """(times, lagged rows) of every validation decision of the run's candles (or --data's)."""
    from fc.core.learning.training import checked_series
    from fc.core.studies.backtest_run import run_grid

    series, _ = checked_series(config, run_grid(config, data))
    ends = np.flatnonzero(series.validation)
    return series.time[ends], rows_at(series.features, ends, config.lags)


def onnx_vs_backtest(graph, rows, times, positions_path: Path) -> tuple[float | None, int]:
    """The graph's p_up against the backtest's own at the validation decisions it scored."""
    import onnxruntime as ort

    positions = pd.read_parquet(positions_path, columns=["time", "p_up"]).dropna()
    backtest = pd.Series(positions["p_up"].to_numpy(), index=pd.DatetimeIndex(positions["time"]))
    backtest = backtest[~backtest.index.duplicated()]
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    mine = pd.Series(session.run(["p_up"], {"rows": rows})[0], index=times)
    both = mine.index.intersection(backtest.index)
    if len(both) == 0:
        return None, 0
    return float(np.abs(mine[both].to_numpy() - backtest[both].to_numpy()).max()), len(both)
