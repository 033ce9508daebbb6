"""Tabular families on the real 30m candles (issue 21): LightGBM training with early stopping
against the logistic model's fit on the same rows (8 simple columns x 16 lags, train before
2024-01-01, validation 2024), and one live decision (the lagged row from the last 16 values of
the columns + onnxruntime on that one row) against building the row alone.

Goals: LightGBM training under 60 s on 2 cores; one live decision under 1 ms (median of 1000).
Run: .venv/bin/python bench/tabular_speed.py   (LightGBM 2 threads, onnxruntime 1 thread)
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from timing import latencies as timed_calls

from fc.core.data.candles import load_candles
from fc.core.data.lags import lagged_rows
from fc.core.learning.lightgbm_model import LightGBMModel
from fc.core.learning.logistic_model import LogisticModel, log_loss
from fc.export.tabular_graphs import lightgbm_onnx, logistic_onnx, parity

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "btc_usdt_30m.parquet"
sys.path.insert(0, str(ROOT / "tests"))  # the 8 columns live beside the test that shares them
from tabular_columns import NAMES, WINDOW, simple_columns  # noqa: E402

LAGS, DECISIONS, WARMUP = 16, 1000, 50


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def latencies(decide, n: int = DECISIONS) -> np.ndarray:
    """Seconds per call of decide(i) over n decisions, after a warm-up."""
    return timed_calls(decide, n, WARMUP)


def main() -> None:
    candles = load_candles(DATA)
    columns = simple_columns(candles)
    ends = np.arange(WINDOW + LAGS - 2, len(candles) - 1)
    close = candles["close"].to_numpy()
    rows, up = lagged_rows(columns, ends, LAGS), (close[ends + 1] >= close[ends]).astype(int)
    times = candles.index[ends]
    train = times < pd.Timestamp("2024-01-01", tz="UTC")
    val = ~train & (times < pd.Timestamp("2025-01-01", tz="UTC"))
    split = (rows[train], up[train], rows[val], up[val])
    n = len(NAMES) * LAGS
    print(f"{DATA.name}: {train.sum()} train rows, {val.sum()} validation rows, {n} features")

    lightgbm, t_lgb = timed(lambda: LightGBMModel(threads=2).fit(*split))
    logistic, t_log = timed(lambda: LogisticModel().fit(*split))
    prior = log_loss(split[3], np.full(val.sum(), split[1].mean()))
    print(f"\n{'training (early stopping / C grid)':36} {'seconds':>8} {'val log loss':>13}")
    for name, model, t in (("lightgbm (2 threads)", lightgbm, t_lgb),
                           ("logistic (7 C values)", logistic, t_log)):  # fmt: skip
        print(f"{name:36} {t:8.2f} {log_loss(split[3], model.p_up(split[2])):13.5f}")
    print(f"{'class prior':36} {'':8} {prior:13.5f}")
    print(
        f"lightgbm: best round {lightgbm.best_iteration_} of {len(lightgbm.history_)} boosted; "
        f"{t_lgb / t_log:.1f}x the logistic fit (goal: under 60 s)"
    )

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    tail = columns[-(LAGS + DECISIONS + WARMUP) :]  # the live loop's buffer of recent columns
    last = np.array([LAGS - 1])

    def build(i):
        return lagged_rows(tail[i : i + LAGS], last, LAGS)

    print(f"\none live decision, median of {DECISIONS}   {'median ms':>10} {'p99 ms':>8} "
          f"{'vs row alone':>13}")  # fmt: skip
    rows_only = latencies(build)
    report = [("build the lagged row alone", rows_only)]
    for name, model, export in (("lightgbm", lightgbm, lightgbm_onnx),
                                ("logistic", logistic, logistic_onnx)):  # fmt: skip
        graph = export(model, n, {"lags": LAGS})
        session = ort.InferenceSession(
            graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        report.append((f"row + onnxruntime {name}", latencies(
            lambda i, s=session: s.run(["p_up"], {"rows": build(i)})[0][0]
        )))  # fmt: skip
        print(f"  parity {name}: max |p_up diff| {parity(model, graph, split[2]):.2e}")
    base = statistics.median(rows_only)
    for name, t in report:
        med = np.median(t)
        print(f"{name:38} {med * 1e3:10.4f} {np.percentile(t, 99) * 1e3:8.4f} {med / base:12.1f}x")


if __name__ == "__main__":
    main()
