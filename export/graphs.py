"""Writers of a run's graphs: the ONNX window and step graphs with fc metadata, and TorchScript.

Scaling sits inside every graph, so each reads the raw price_change (or, for a declared feature
spec, its raw columns: export/graph_input.py) as float64 and casts to float32 only after
(x - center) / scale, exactly as core.model.window_p_up does; a float32 input would lose the
feature's small changes to rounding before the subtraction. The inputs, outputs and metadata keys
are the contract fixed in live/predictor.py.

An Ensemble (members and/or a temperature) is written by export/ensemble_graphs.py as one graph
of the same inputs and outputs; its step graph's hidden is (layers, batch, members * hidden).
"""

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from fc import __version__
from fc.core.evaluation.policies import POLICIES, PolicyParams, params_json
from fc.core.learning.config import TrainConfig
from fc.core.learning.model import Ensemble, Forecast, Scaling
from fc.export.ensemble_graphs import EnsembleStepGraph, EnsembleWindowGraph
from fc.export.graph_input import feature_metadata, input_columns, input_name, input_scale, scaled
from fc.live.predictor import META_KEYS, STEP_OUTPUTS, WINDOW_OUTPUTS

# The legacy (TorchScript-based) exporter writes one ONNX GRU op per layer with
# linear_before_reset=1 in well under a second; the dynamo exporter also writes GRU ops but takes
# ~20 s and some torch releases got linear_before_reset wrong (pytorch#189225), so it is the
# `--exporter dynamo` fallback for a torch that no longer ships the legacy exporter.
OPSET = {"legacy": 17, "dynamo": 18}
ONNX_NAME, STEP_NAME, TORCHSCRIPT_NAME = "model.onnx", "model.step.onnx", "model.torchscript.pt"


class WindowGraph(nn.Module):
    """(batch, time, columns) raw features → logits and probabilities [up, down] of the last
    step, from a zero hidden state: window_p_up's computation as one module."""

    def __init__(self, model: Forecast, scaling: Scaling):
        super().__init__()
        self.gru, self.fc = model.gru, model.fc
        self.center, self.scale = input_scale(scaling)

    def forward(self, price_change: torch.Tensor):
        x = scaled(price_change, self.center, self.scale)
        out, _ = self.gru(x)
        logits = self.fc(out[:, -1])
        return logits, torch.softmax(logits, dim=-1)


class StepGraph(nn.Module):
    """(batch, 1, columns) raw features, hidden (layers, batch, hidden) → logits, next hidden."""

    def __init__(self, model: Forecast, scaling: Scaling):
        super().__init__()
        self.gru, self.fc = model.gru, model.fc
        self.center, self.scale = input_scale(scaling)

    def forward(self, price_change: torch.Tensor, hidden: torch.Tensor):
        x = scaled(price_change, self.center, self.scale)
        out, hidden_out = self.gru(x, hidden)
        return self.fc(out[:, -1]), hidden_out


def window_graph(model: Forecast | Ensemble, scaling: Scaling) -> nn.Module:
    """The window graph module of a run's model (what load_run returns), in eval mode."""
    graph = EnsembleWindowGraph if isinstance(model, Ensemble) else WindowGraph
    return graph(model, scaling).eval()


def step_graph(model: Forecast | Ensemble, scaling: Scaling) -> nn.Module:
    graph = EnsembleStepGraph if isinstance(model, Ensemble) else StepGraph
    return graph(model, scaling).eval()


def members(model: Forecast | Ensemble) -> int:
    return len(model.members) if isinstance(model, Ensemble) else 1


def graph_metadata(
    config: TrainConfig, graph: str, exporter: str, policy_params: dict | None = None
) -> dict[str, str]:
    """metadata_props of a graph: the run's identity and everything the live loop needs, with the
    policy parameters {policy: PolicyParams} the live service decides with (default: defaults)."""
    policy_params = policy_params or {p: PolicyParams() for p in POLICIES}
    meta = {
        "graph": graph,
        "fc_version": config.fc_version or __version__,
        "symbol": config.symbol,
        "timeframe": config.timeframe,
        "seq_len": str(config.seq_len),
        "feature": "",  # feature_metadata's, below: the key keeps its place in the file
        "classes": json.dumps(list(config.classes)),
        "train_range": json.dumps(list(config.train_range)),
        "validation_range": json.dumps(list(config.validation_range)),
        "hidden": str(config.hidden),  # of each member
        "layers": str(config.layers),
        "members": str(config.seeds),
        "temperature": repr(float(config.temperature)),
        "scale_center": "",
        "scale_scale": "",
        "loss": config.loss,
        "data_sha256": config.data_sha256,
        "exported_by": f"fc {__version__}",
        "exporter": f"torch {torch.__version__} {exporter}",
        "opset": str(OPSET[exporter]),
        "policy_params": params_json(policy_params),
    }
    meta.update(feature_metadata(config))  # a declared spec adds feature_spec, feature_hash
    meta.update(schedule_metadata(config))
    assert set(META_KEYS) <= set(meta)
    return meta


def schedule_metadata(config: TrainConfig) -> dict[str, str]:
    """`horizon`, and `cadence` or `sleeves`, only where not default: a default graph's metadata
    is what it was before horizons existed."""
    meta = {} if config.horizon == 1 else {"horizon": str(config.horizon)}
    return meta | {k: str(v) for k, v in config.schedule.to_dict().items()}


def _torch_export(module: nn.Module, args: tuple, path: Path, io_names, dynamic, exporter: str):
    """torch.onnx.export with its chatter kept off stdout (`fc export --json` owns stdout)."""
    inputs, outputs = io_names
    chatter = logging.getLogger("torch.onnx")  # the dynamo exporter's "torchvision missing" lines
    level = chatter.level
    chatter.setLevel(logging.ERROR)
    try:
        _run_torch_export(module, args, path, inputs, outputs, dynamic, exporter)
    finally:
        chatter.setLevel(level)


def _run_torch_export(module, args, path, inputs, outputs, dynamic, exporter: str) -> None:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and GRU batch notes
        if exporter == "legacy":
            torch.onnx.export(
                module, args, str(path), dynamo=False, opset_version=OPSET[exporter],
                input_names=list(inputs), output_names=list(outputs), dynamic_axes=dynamic,
            )  # fmt: skip
        else:
            shapes = {
                name: {
                    axis: torch.export.Dim(f"{name}_{label}", min=1) for axis, label in d.items()
                }
                for name, d in dynamic.items()
                if name in inputs
            }
            torch.onnx.export(
                module, args, str(path), dynamo=True, opset_version=OPSET[exporter],
                input_names=list(inputs), output_names=list(outputs), dynamic_shapes=shapes,
                optimize=True, verbose=False,
            )  # fmt: skip


def _stamp(path: Path, meta: dict[str, str]) -> None:
    """Write the metadata into the file and check the whole model."""
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name, model.producer_version = "fc", __version__
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def _sample_batch(exporter: str) -> int:
    """The legacy GRU export may bake a batch other than 1 into h0; torch.export makes a
    dimension of size 1 a constant, so the dynamo exporter needs 2."""
    return 1 if exporter == "legacy" else 2


def _check_model(model: Forecast | Ensemble, config: TrainConfig) -> None:
    """The metadata comes from the config: it must describe the model exported."""
    temperature = model.temperature if isinstance(model, Ensemble) else 1.0
    assert (members(model), temperature) == (config.seeds, config.temperature), "config != model"


def write_window_onnx(
    model: Forecast | Ensemble,
    scaling: Scaling,
    config: TrainConfig,
    path: Path,
    exporter: str = "legacy",
    policy_params: dict | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """The window graph at `path`; `extra` metadata keys (a universe's: export/universe_run.py)
    are stamped after fc's own, so a one-symbol graph's bytes do not change."""
    _check_model(model, config)
    graph = window_graph(model, scaling)
    name, columns = input_name(config), input_columns(config)
    sample = torch.ones(
        _sample_batch(exporter), min(config.seq_len, 8), columns, dtype=torch.float64
    )
    dynamic = {
        name: {0: "batch", 1: "time"},
        "logits": {0: "batch"},
        "probabilities": {0: "batch"},
    }
    _torch_export(graph, (sample,), path, ((name,), WINDOW_OUTPUTS), dynamic, exporter)
    _stamp(path, graph_metadata(config, "window", exporter, policy_params) | (extra or {}))
    return path


def write_step_onnx(
    model: Forecast | Ensemble,
    scaling: Scaling,
    config: TrainConfig,
    path: Path,
    exporter: str = "legacy",
    policy_params: dict | None = None,
) -> Path:
    _check_model(model, config)
    graph = step_graph(model, scaling)
    batch, name = _sample_batch(exporter), input_name(config)
    sample = (
        torch.ones(batch, 1, input_columns(config), dtype=torch.float64),
        torch.zeros(config.layers, batch, members(model) * config.hidden),
    )
    dynamic = {
        name: {0: "batch"},
        "hidden": {1: "batch"},
        "logits": {0: "batch"},
        "hidden_out": {1: "batch"},
    }
    _torch_export(graph, sample, path, ((name, "hidden"), STEP_OUTPUTS), dynamic, exporter)
    _stamp(path, graph_metadata(config, "step", exporter, policy_params))
    return path


def write_torchscript(
    model: Forecast | Ensemble,
    scaling: Scaling,
    config: TrainConfig,
    path: Path,
    policy_params=None,
) -> Path:
    """The window graph traced to TorchScript (nn.GRU is one aten op, so any batch and time run),
    with the same metadata as a JSON extra file `fc_meta.json`."""
    _check_model(model, config)
    graph = window_graph(model, scaling)
    sample = torch.ones(1, min(config.seq_len, 8), input_columns(config), dtype=torch.float64)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        traced = torch.jit.trace(graph, (sample,), check_trace=False)
    meta = graph_metadata(config, "window", "legacy", policy_params)
    meta["exporter"] = "torch.jit.trace"
    del meta["opset"]
    traced.save(str(path), _extra_files={"fc_meta.json": json.dumps(meta)})
    return path


def load_torchscript(path: Path):
    """(module, metadata) of a TorchScript file write_torchscript made."""
    extra = {"fc_meta.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), _extra_files=extra)
    return module.eval(), json.loads(extra["fc_meta.json"])
