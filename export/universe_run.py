"""`fc export` of a pooled universe run (`fc train --symbols`): one window graph for every symbol.

The pooled GRU is one model; only each symbol's scaling differs. So the graph is written with a
neutral scaling (centre 0.0, scale 1.0: (x - 0) / 1 is x to the bit, then float32) and reads
inputs already scaled; each symbol's [center, scale] sits in the metadata (`symbol_scaling`),
beside `symbols`, `target` and the portfolio's parameters (`portfolio_params`, k included).
live/universe_model.py scales a symbol's raw window in float64 as core's Scaling.apply does, so
p_up is window_p_up's. Parity is checked per symbol on its validation windows.
A pooled LightGBM or logistic run: the family's row graph (export/tabular_run.py) with the same
universe keys, each symbol's scaling neutral (the rows are raw features), so live/universe_model.py
and the live service read it as they read the GRU's.
A step graph, TorchScript and declared feature specs are refused in one line (not yet written).
"""

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from fc.core.data.inputs import grid_features, plain_close
from fc.core.data.universe import universe_eligible
from fc.core.errors import FcError
from fc.core.learning.model import Scaling, window_p_up
from fc.core.learning.pooled import universe_series
from fc.core.learning.tabular_family import rows_at
from fc.core.studies.universe import check_k, run_universe_grids
from fc.export import graphs, parity
from fc.export.tabular_run import is_tabular, tabular_metadata, write_tabular_graph
from fc.live.universe_model import load_universe_predictor


def universe_metadata(config, params: dict) -> dict[str, str]:
    """The keys a universe graph adds: its symbols, target, each symbol's scaling and the
    long-short's parameters (the same as the per-symbol policies', as fc backtest takes them)."""
    book = params["discrete"]
    return {
        "symbols": json.dumps(list(config.symbols)),
        "target": config.target,
        "symbol_scaling": json.dumps(config.symbol_scaling, sort_keys=True),
        "portfolio_params": json.dumps(
            {"long_short": book.to_dict() | {"k": book.k}}, sort_keys=True
        ),
    }


def check_exportable(config, onnx: bool, torchscript: bool) -> None:
    if torchscript or not onnx:
        raise FcError(
            "--torchscript: a multi-symbol run exports one ONNX window graph; use --onnx alone"
        )
    if not plain_close(config.spec):
        raise FcError(
            f"--features {config.features}: a multi-symbol run of declared features is not "
            "exportable yet; train it with --features close"
        )


def export_universe(run_dir, config, model, scaling, report, kinds, data, windows, exporter,
                    params) -> None:  # fmt: skip
    """Write RUN/export/model.onnx of a universe run and fill `report` with one parity check
    per symbol (`onnx_real:<SYMBOL>`, within report.tolerance)."""
    check_exportable(config, *kinds)
    check_k({"long_short": params["discrete"]}, config.symbols)
    if is_tabular(model):
        export_tabular_universe(run_dir, config, model, report, data, windows, params)
        return
    neutral = replace(config, scale_center=0.0, scale_scale=1.0)
    report.opset, report.exporter = graphs.OPSET[exporter], f"torch.onnx ({exporter})"
    path = graphs.write_window_onnx(
        model, Scaling(0.0, 1.0), neutral, run_dir / "export" / graphs.ONNX_NAME, exporter,
        params, universe_metadata(config, params),
    )  # fmt: skip
    report.onnx = str(path)
    report.notes.append("a universe graph: no step graph (live decides from windows)")
    predictor = load_universe_predictor(path)
    grids = run_universe_grids(config, data)
    eligible = universe_eligible(grids, config.first_decision)
    for i, (symbol, grid) in enumerate(grids.items()):
        after = np.asarray(grid.index >= pd.Timestamp(config.split or 0, tz="UTC"))
        ends = np.flatnonzero(eligible[:, i] & after)  # the symbol's own validation decisions
        if windows and len(ends) > windows:
            ends = ends[np.linspace(0, len(ends) - 1, windows).round().astype(np.int64)]
        features = grid_features(grid)
        center, scale = config.symbol_scaling[symbol]
        torch_p = window_p_up(model, features, ends, config.seq_len, Scaling(center, scale))
        onnx_p = predictor.p_up_at(symbol, features, ends)
        name = f"onnx_real:{symbol}"
        report.max_abs_diff[name] = float(np.max(np.abs(torch_p - onnx_p))) if len(ends) else None
        report.windows[name] = len(ends)
    report.notes.append(f"real windows: up to {windows or 'all'} validation decisions a symbol")
    report.max_abs_diff["onnx_random"], report.windows["onnx_random"] = parity.onnx_vs_torch_random(
        model, Scaling(0.0, 1.0), neutral, predictor.graph
    )


def export_tabular_universe(run_dir, config, model, report, data, windows, params) -> None:
    """RUN/export/model.onnx of a pooled LightGBM or logistic run: the family's row graph with
    the universe's keys, each symbol's scaling neutral ([0.0, 1.0]: the rows are raw, and
    (x - 0.0) / 1.0 is x to the bit); parity per symbol (`onnx_real:<SYMBOL>`) between the
    graph, read as the live service reads it, and the model's own p_up on the rows of that
    symbol's validation decisions (at most `windows` of them, evenly spaced; 0: all)."""
    neutral = replace(config, symbol_scaling={s: [0.0, 1.0] for s in config.symbols})
    metadata = tabular_metadata(config, params) | universe_metadata(neutral, params)
    write_tabular_graph(run_dir, config, model, metadata, report)
    predictor = load_universe_predictor(run_dir / "export" / graphs.ONNX_NAME)
    series, _ = universe_series(config, run_universe_grids(config, data))
    for symbol, one in series.items():
        ends = np.flatnonzero(one.validation)
        if windows and len(ends) > windows:
            ends = ends[np.linspace(0, len(ends) - 1, windows).round().astype(np.int64)]
        mine = model.p_up(rows_at(one.features, ends, config.lags))
        onnx_p = predictor.p_up_at(symbol, one.features, ends)
        name = f"onnx_real:{symbol}"
        report.max_abs_diff[name] = float(np.max(np.abs(mine - onnx_p))) if len(ends) else None
        report.windows[name] = len(ends)
    report.notes.append("real rows: the validation decisions of each symbol")
