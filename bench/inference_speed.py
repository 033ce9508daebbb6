"""Per-decision latency of the model: torch eager on the window, the onnxruntime window graph, and
the onnxruntime step graph (one step with the carried hidden state), median and p99.

Run: .venv/bin/python bench/inference_speed.py [RUN]   (default: seeded h16 l3, seq_len 512;
torch 2 threads, and 1 for the window as a second row; onnxruntime intra-op 1 thread, and 2 for
the window graph as a second row)."""

import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from timing import latencies as timed_calls

from fc.core.learning.config import TrainConfig
from fc.core.learning.model import Forecast, Scaling
from fc.core.studies.runs import load_run
from fc.export.graphs import step_graph, window_graph, write_step_onnx, write_window_onnx
from fc.live.predictor import load_predictor, load_step_predictor, p_up_from_logits

DECISIONS, WARMUP = 500, 20


def latencies(decide, n: int = DECISIONS) -> np.ndarray:
    """Seconds per call of decide(i) over n decisions, after a warm-up."""
    return timed_calls(decide, n, WARMUP)


def main() -> None:
    torch.set_num_threads(2)
    if len(sys.argv) > 1:
        config, model, scaling = load_run(sys.argv[1])
    else:
        torch.manual_seed(0)
        config = TrainConfig(hidden=16, layers=3, seq_len=512, scale_center=1.0, scale_scale=0.005)
        model, scaling = Forecast(16, 3).eval(), Scaling(1.0, 0.005)
    L = config.seq_len
    rng = np.random.default_rng(0)
    features = 1 + 0.005 * rng.standard_normal(L + DECISIONS + WARMUP)  # values do not matter
    windows = np.lib.stride_tricks.sliding_window_view(features, L)

    with tempfile.TemporaryDirectory() as tmp:
        window_path = write_window_onnx(model, scaling, config, Path(tmp) / "model.onnx")
        step_path = write_step_onnx(model, scaling, config, Path(tmp) / "model.step.onnx")
        ort_1 = load_predictor(window_path, threads=1)
        ort_2 = load_predictor(window_path, threads=2)
        step = load_step_predictor(step_path, threads=1)

    graph, step_module = window_graph(model, scaling), step_graph(model, scaling)

    @torch.no_grad()
    def torch_window(i):
        logits, _ = graph(torch.from_numpy(windows[i][None, :, None].copy()))
        return p_up_from_logits(logits.numpy())[0]

    state = {"h": step.zero_state(1)}

    def ort_step(i):
        logits, state["h"] = step.step(features[L + i : L + i + 1], state["h"])
        return p_up_from_logits(logits)[0]

    torch_h = {"h": torch.from_numpy(step.zero_state(1))}  # members' states side by side

    @torch.no_grad()
    def torch_step(i):
        x = torch.from_numpy(features[L + i : L + i + 1].reshape(1, 1, 1))
        logits, torch_h["h"] = step_module(x, torch_h["h"])
        return p_up_from_logits(logits.numpy())[0]

    rows = [("torch eager, window (2 threads)", latencies(torch_window))]
    torch.set_num_threads(1)  # on a busy machine one thread can beat two: show both
    rows.append(("torch eager, window (1 thread)", latencies(torch_window)))
    torch.set_num_threads(2)
    rows += [
        ("onnxruntime window graph (1 thread)", latencies(lambda i: ort_1.p_up(windows[i]))),
        ("onnxruntime window graph (2 threads)", latencies(lambda i: ort_2.p_up(windows[i]))),
        ("torch eager, one step + state (2 threads)", latencies(torch_step)),
        ("onnxruntime step graph (1 thread)", latencies(ort_step)),
    ]
    base = statistics.median(rows[0][1])
    print(
        f"per-decision latency, {DECISIONS} decisions, seq_len {L}, "
        f"hidden {config.hidden}, layers {config.layers}, torch {torch.__version__}"
    )
    print(f"{'':44} {'median ms':>10} {'p99 ms':>9} {'vs torch window':>16}")
    for name, t in rows:
        med, p99 = np.median(t) * 1e3, np.percentile(t, 99) * 1e3
        print(f"{name:44} {med:10.3f} {p99:9.3f} {base / np.median(t):15.1f}x")


if __name__ == "__main__":
    main()
