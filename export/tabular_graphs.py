"""ONNX graphs of the tabular families, and their parity with the library's own p_up.

Both graphs read input `rows` float64 (batch, n_features), the lagged rows of core.data.lags, and
write one output `p_up` float64 (batch,), the probability of class "up"; there is no step graph.
- LightGBM: the booster converted by onnxmltools (TreeEnsembleClassifier, zipmap off) between a
  Cast of the rows to float32 and a Gather + Cast of P(up) to float64. The tree ensemble compares
  in float32, so the model trains and predicts on float32-rounded rows with thresholds moved to
  float32 (core.learning.lightgbm_model): every branch is the one LightGBM takes; p_up differs by
  the float32 leaf sum and sigmoid only (~1e-7, measured by `parity`).
- Logistic: a plain graph written with onnx.helper, Sub/Div (standardisation), MatMul, Add,
  Sigmoid, all in DOUBLE: the exact float64 arithmetic of LogisticModel.p_up (skl2onnx's
  converter computes in float32 unless told otherwise and adds a label and a ZipMap that fc does
  not read, and it knows nothing of the standardisation fitted outside scikit-learn).
Metadata: the caller's string key/values (the GRU graphs' keys from export/graphs.py, `lags`
among them) plus `family`, `n_features` and `exporter`, as metadata_props.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fc.core.learning.lightgbm_model import LightGBMModel
from fc.core.learning.logistic_model import LogisticModel

OPSET = 17  # the default-domain opset fc's predictor reads (live/predictor.py SUPPORTED_OPSETS)
CONVERTER_OPSET = 15  # the newest onnxmltools 1.16 writes; its ops mean the same at 17
INPUT, OUTPUT = "rows", "p_up"


def lightgbm_onnx(model: LightGBMModel, n_features: int, metadata: dict) -> onnx.ModelProto:
    """The booster's graph: rows float64 → p_up float64 (see the module docstring)."""
    import onnxmltools
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    _check_features(model, n_features)
    trees = convert_lightgbm(
        model.booster_, initial_types=[("rows_float32", FloatTensorType([None, n_features]))],
        zipmap=False, target_opset=CONVERTER_OPSET,
    )  # fmt: skip
    probabilities = trees.graph.output[1].name  # (batch, 2): P(class 0 = down), P(class 1 = up)
    nodes = [
        helper.make_node("Cast", [INPUT], ["rows_float32"], to=TensorProto.FLOAT),
        *trees.graph.node,
        helper.make_node("Gather", [probabilities, "up_column"], ["p_up_float32"], axis=1),
        helper.make_node("Cast", ["p_up_float32"], [OUTPUT], to=TensorProto.DOUBLE),
    ]
    up_column = numpy_helper.from_array(np.array(1, dtype=np.int64), "up_column")
    graph = helper.make_graph(
        nodes, "fc_lightgbm", [_rows(n_features)], [_p_up()],
        initializer=[*trees.graph.initializer, up_column],
    )  # fmt: skip
    ml = next(o.version for o in trees.opset_import if o.domain == "ai.onnx.ml")
    exporter = f"onnxmltools {onnxmltools.__version__}"
    return _finish(graph, {"": OPSET, "ai.onnx.ml": ml}, model, n_features, metadata, exporter)


def logistic_onnx(model: LogisticModel, n_features: int, metadata: dict) -> onnx.ModelProto:
    """sigmoid(((rows - mean) / std) @ coef + intercept), every step in float64."""
    _check_features(model, n_features)
    weights = {
        "mean": model.mean_, "std": model.std_, "coef": model.coef_,
        "intercept": np.array(model.intercept_),
    }  # fmt: skip
    initializers = [
        numpy_helper.from_array(np.asarray(v, np.float64), k) for k, v in weights.items()
    ]
    nodes = [
        helper.make_node("Sub", [INPUT, "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["standardised"]),
        helper.make_node("MatMul", ["standardised", "coef"], ["score"]),  # (batch, n) @ (n,)
        helper.make_node("Add", ["score", "intercept"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], [OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes, "fc_logistic", [_rows(n_features)], [_p_up()], initializer=initializers
    )
    return _finish(graph, {"": OPSET}, model, n_features, metadata, f"onnx {onnx.__version__}")


def parity(model: LightGBMModel | LogisticModel, graph: onnx.ModelProto, x: np.ndarray) -> float:
    """Max |p_up| difference between onnxruntime running `graph` and the model's own p_up on the
    rows x (0.0 for no rows)."""
    import onnxruntime as ort

    x = np.ascontiguousarray(x, dtype=np.float64)
    if not len(x):
        return 0.0
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the converter's fixed batch-1 label shape warns otherwise
    session = ort.InferenceSession(
        graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    (onnx_p_up,) = session.run([OUTPUT], {INPUT: x})
    return float(np.max(np.abs(onnx_p_up - model.p_up(x))))


def _check_features(model, n_features: int) -> None:
    if n_features != model.n_features_:
        raise ValueError(f"the model reads {model.n_features_} features, not {n_features}")


def _rows(n_features: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(INPUT, TensorProto.DOUBLE, ["batch", n_features])


def _p_up() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, ["batch"])


def _finish(graph, opsets: dict, model, n_features: int, metadata: dict, exporter: str):
    """The model proto with fc's metadata, checked whole."""
    if "lags" not in metadata:
        raise ValueError("metadata must name the lags the rows were built with")
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
        producer_name="fc",
    )  # fmt: skip
    proto.ir_version = 8  # the oldest IR that carries opset 17: older onnxruntimes read it too
    meta = {
        **{k: str(v) for k, v in metadata.items()},
        "family": model.family, "n_features": str(n_features), "exporter": exporter,
    }  # fmt: skip
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    return proto
