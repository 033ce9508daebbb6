"""The live loop's model: an exported ONNX graph run by onnxruntime, refused unless its metadata,
inputs, outputs and opset are what `fc export` writes. No torch here (SPEC §4, §7).

The contract with export/graphs.py (which imports these names):
- window graph: input `price_change` float64 (batch, time, 1), the raw feature, scaled inside the
  graph; outputs `logits` float32 (batch, 2) of the last step and `probabilities` = their softmax.
- step graph: inputs `price_change` float64 (batch, 1, 1) and `hidden` float32 (layers, batch,
  members * hidden); outputs `logits` (batch, 2) and `hidden_out` of the same shape as hidden.
- a graph of declared features (fc train --features other than `close`): the input is `features`
  (batch, time, c), the spec's c raw columns (core.data.feature_set.build_columns), each scaled
  inside the graph; metadata `feature` is "features", `feature_spec` the spec's JSON and
  `feature_hash` its hash, scale_center/scale_scale JSON lists. A spec naming a feature this fc
  does not know is refused (FeatureSpec.from_dict).
p_up = softmax(logits in float64)[0], as core.model.window_p_up computes it.
An ensemble graph (metadata `members` > 1) averages its members inside and a calibrated one
applies its `temperature` inside: logits = log(mean p) / T; the reader needs to know neither,
only that the step graph's state holds the members' states side by side (members * hidden).
Graphs without these keys are one member at temperature 1.
"""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from fc.core.data.feature_set import FeatureSpec
from fc.core.data.features import CLASSES, FEATURE
from fc.core.data.inputs import plain_close
from fc.core.errors import FcError
from fc.core.evaluation.policies import params_by_policy

SUPPORTED_OPSETS = (17, 18)  # what the exporter writes (legacy: 17, dynamo: 18) and tests run
WINDOW_INPUTS = ("price_change",)
WINDOW_OUTPUTS = ("logits", "probabilities")
STEP_INPUTS = ("price_change", "hidden")
STEP_OUTPUTS = ("logits", "hidden_out")
SPEC_FEATURE = SPEC_INPUT = "features"  # `feature` and the input name of a declared-feature graph
# metadata_props every fc graph carries; values are strings, lists and ranges are JSON
META_KEYS = (
    "graph", "fc_version", "symbol", "timeframe", "seq_len", "feature", "classes",
    "train_range", "validation_range", "hidden", "layers", "scale_center", "scale_scale",
)  # fmt: skip
_INTS = ("seq_len", "hidden", "layers", "members")
_FLOATS = ("temperature",)
_SCALES = ("scale_center", "scale_scale")  # a float, or a JSON list (one value a column)
_OPTIONAL = {"members": "1", "temperature": "1.0"}  # absent in graphs before ensembles
_JSON = ("classes", "train_range", "validation_range")
_BATCH_CHUNK = 4096  # windows per onnxruntime call in p_up_batch: bounds memory, not results


def p_up_from_logits(logits: np.ndarray) -> np.ndarray:
    """softmax over [up, down] in float64, class 0; the same arithmetic as window_p_up."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e[..., 0] / e.sum(axis=-1)


def read_graph(path: str | Path, graph: str) -> tuple[onnx.ModelProto, dict]:
    """The ONNX model at `path` and its parsed fc metadata, or an FcError saying what is wrong."""
    path = Path(path)
    redo = "export it again with `fc export RUN --onnx`"
    if not path.is_file():
        raise FcError(
            f"{path}: no such model file; give the model.onnx `fc export RUN --onnx` wrote"
        )
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError or RuntimeWarning-like types
        raise FcError(f"{path}: not a readable ONNX file ({type(exc).__name__}); {redo}") from None
    if not model.graph.node:
        raise FcError(f"{path}: not a readable ONNX file (empty graph); {redo}")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset not in SUPPORTED_OPSETS:
        raise FcError(
            f"{path}: ONNX opset {opset} is not supported (fc reads {SUPPORTED_OPSETS}); {redo}"
        )
    props = {p.key: p.value for p in model.metadata_props}
    family = props.get("family", "gru")  # GRU graphs carry no family key
    if family != "gru":  # a window-only graph of lagged rows (export/tabular_run.py)
        if graph == "step":
            raise FcError(f"{path}: a {family} graph has no step graph; give model.onnx")
        props = _row_graph_props(path, props, family)
    missing = [k for k in META_KEYS if k not in props]
    if missing:
        raise FcError(
            f"{path}: not a graph fc exported (metadata {', '.join(missing)} missing); {redo}"
        )
    try:
        meta = _parse_meta(props)
    except ValueError as exc:
        raise FcError(f"{path}: damaged fc metadata ({exc}); {redo}") from None
    if meta["graph"] != graph:
        name = "model.onnx" if graph == "window" else "model.step.onnx"
        raise FcError(f"{path}: a {meta['graph']} graph, not a {graph} graph; give {name}")
    if "feature_spec" in props and meta["feature"] == SPEC_FEATURE:
        meta["spec"] = _graph_spec(path, props, meta)
    elif meta["feature"] != FEATURE or tuple(meta["classes"]) != CLASSES:
        raise FcError(
            f"{path}: made for feature {meta['feature']} with classes {meta['classes']}, this fc "
            f"computes {FEATURE} with classes {list(CLASSES)}; {redo}"
        )
    if tuple(meta["classes"]) != CLASSES:
        raise FcError(f"{path}: made for classes {meta['classes']}, not {list(CLASSES)}; {redo}")
    spec = meta.get("spec")
    meta["columns"] = 1 if spec is None else len(spec.columns)
    meta["input"] = "price_change" if spec is None else SPEC_INPUT
    meta["family"] = props.get("family", "gru")
    if meta["family"] != "gru":
        meta["input"], meta["lags"] = "rows", int(props["lags"])
        if meta["columns"] * meta["lags"] != int(props["n_features"]):
            raise FcError(f"{path}: damaged fc metadata ({props['n_features']} values a row, "
                          f"{meta['columns']} columns x {meta['lags']} lags)")  # fmt: skip
    if len(meta["scale_center"]) != meta["columns"] or len(meta["scale_scale"]) != meta["columns"]:
        raise FcError(f"{path}: damaged fc metadata (a scale for each column expected); {redo}")
    return model, meta


# what a row graph (LightGBM, logistic) has no use for, given neutral values so one parser reads
# both kinds: no recurrent state, no scaling (rows go in raw), one member
_ROW_GRAPH_NEUTRAL = {"hidden": "1", "layers": "1", "members": "1", "temperature": "1.0",
                      "scale_center": "0.0", "scale_scale": "1.0"}  # fmt: skip
ROW_FAMILIES = ("lightgbm", "logistic")


def _row_graph_props(path: Path, props: dict, family: str) -> dict:
    """The metadata of a window-only row graph, checked: a family this fc knows, lags that
    divide the row; the GRU's keys it lacks filled with neutral values."""
    if family not in ROW_FAMILIES:
        raise FcError(f"{path}: a model of family {family!r}, which this fc does not know; "
                      "upgrade fc or export a gru, lightgbm or logistic run")  # fmt: skip
    try:
        lags, width = int(props["lags"]), int(props["n_features"])
    except (KeyError, ValueError):
        raise FcError(f"{path}: damaged fc metadata (lags, n_features); export it again") from None
    if lags < 1 or width % lags:
        raise FcError(f"{path}: damaged fc metadata ({width} values a row, {lags} lags)")
    try:
        spec = FeatureSpec.from_dict(json.loads(props.get("feature_spec", "")))
    except ValueError:
        raise FcError(f"{path}: damaged feature spec in its metadata; export it again") from None
    except FcError as exc:
        raise FcError(f"{path}: {exc}") from None
    if plain_close(spec):  # the workshop's price_change alone: the live loop's plain path
        props = {k: v for k, v in props.items() if k not in ("feature_spec", "feature_hash")}
    else:
        props = props | {"feature": SPEC_FEATURE}
    columns = width // lags  # no scaling inside a row graph: one neutral scale a column
    scales = {
        "scale_center": json.dumps([0.0] * columns),
        "scale_scale": json.dumps([1.0] * columns),
    }
    return _ROW_GRAPH_NEUTRAL | scales | props


def _graph_spec(path: Path, props: dict, meta: dict) -> FeatureSpec:
    """The graph's feature spec, checked against its hash; FeatureSpec.from_dict refuses a
    feature this fc does not compute (the graph would read columns nobody here can build)."""
    try:
        data = json.loads(props["feature_spec"])
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("hash") != props.get("feature_hash"):
        raise FcError(f"{path}: damaged feature spec in its metadata; export it again")
    try:
        spec = FeatureSpec.from_dict(data)
    except FcError as exc:
        raise FcError(f"{path}: {exc}") from None
    if spec.symbol != meta["symbol"]:
        raise FcError(f"{path}: its feature spec decides on {spec.symbol}, not {meta['symbol']}")
    return spec


def _parse_meta(props: dict) -> dict:
    """All metadata_props as strings, the ones fc reads converted to numbers and lists."""
    meta = _OPTIONAL | dict(props)
    for k in _INTS:
        meta[k] = int(meta[k])
    for k in _FLOATS:
        meta[k] = float(meta[k])
    for k in _SCALES:  # kept as tuples here, one value a column (Scaling reads either)
        value = json.loads(meta[k]) if meta[k].lstrip().startswith("[") else float(meta[k])
        meta[k] = tuple(float(v) for v in np.atleast_1d(value))
    for k in _JSON:
        meta[k] = json.loads(meta[k])
        if not isinstance(meta[k], list):
            raise ValueError(f"{k} is not a list")
    if min(meta["seq_len"], meta["hidden"], meta["layers"], meta["members"]) < 1:
        raise ValueError("seq_len, hidden, layers and members must be positive")
    scale = np.asarray(meta["scale_scale"])
    if not (np.all(np.isfinite(scale)) and np.all(scale != 0)):
        raise ValueError("scale_scale must be finite and non-zero")
    try:  # graphs exported before policy parameters existed: the workshop's policies
        meta["policy_params"] = params_by_policy(json.loads(props.get("policy_params", "{}")))
    except FcError as exc:
        raise ValueError(f"policy_params: {exc}") from None
    meta["schedule"] = graph_schedule(props)
    return meta


def graph_schedule(props: dict):
    """The Schedule of a graph's metadata (horizon, cadence or sleeves; absent: every candle,
    as graphs exported before horizons existed)."""
    from fc.core.evaluation.schedule import Schedule

    def number(key):
        return None if key not in props else int(props[key])

    try:
        return Schedule.of(number("horizon") or 1, number("cadence"), number("sleeves"))
    except FcError as exc:
        raise ValueError(f"schedule: {exc}") from None


def _check_market(path: Path, meta: dict, symbol: str | None, timeframe: str | None) -> None:
    wrong = (symbol is not None and symbol != meta["symbol"]) or (
        timeframe is not None and timeframe != meta["timeframe"]
    )
    if wrong:
        asked = f"{symbol or meta['symbol']} {timeframe or meta['timeframe']}"
        raise FcError(
            f"{path}: exported for {meta['symbol']} {meta['timeframe']}, not {asked}; "
            f"give a model trained on {asked} or trade {meta['symbol']} {meta['timeframe']}"
        )


def _session(path: Path, model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's concern
    try:
        return ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise FcError(f"{path}: onnxruntime cannot run it ({first}); export it again") from None


def _check_io(path: Path, session, inputs: dict, outputs: dict) -> None:
    """inputs/outputs: name -> (onnx type, dims): an int must match, None takes any size,
    "dynamic" must be a symbolic axis (a graph with a fixed batch cannot score a batch)."""
    for kind, want, got in (
        ("inputs", inputs, {a.name: a for a in session.get_inputs()}),
        ("outputs", outputs, {a.name: a for a in session.get_outputs()}),
    ):
        if set(got) != set(want):
            raise FcError(
                f"{path}: graph {kind} are {sorted(got)}, fc expects {sorted(want)}; "
                "this is another model, give one `fc export` wrote"
            )
        for name, (dtype, dims) in want.items():
            arg = got[name]
            ok = arg.type == dtype and len(arg.shape) == len(dims)
            ok = ok and all(_fits(s, d) for s, d in zip(arg.shape, dims, strict=False))
            if not ok:
                raise FcError(
                    f"{path}: {kind[:-1]} {name} is {arg.type} {arg.shape}, fc expects {dtype} "
                    f"with dims {['any' if d is None else d for d in dims]}; give one `fc export` "
                    "wrote"
                )


def _fits(size, want) -> bool:
    if want == "dynamic":
        return not isinstance(size, int)
    return want is None or size == want


class _Graph:
    """A checked onnxruntime session and the model's metadata. `spec` is the graph's feature spec
    (None: the workshop's price_change); windows are (seq_len,) for one column, else
    (seq_len, columns)."""

    def __init__(self, path: str | Path, session: ort.InferenceSession, meta: dict):
        self.path = Path(path)
        self.session = session
        self.meta = meta
        self.seq_len: int = meta["seq_len"]
        self.symbol: str = meta["symbol"]
        self.timeframe: str = meta["timeframe"]
        self.spec: FeatureSpec | None = meta.get("spec")
        self.columns: int = meta["columns"]
        self.input: str = meta["input"]

    def _windows(self, windows: np.ndarray) -> np.ndarray:
        """windows (n, seq_len) or (n, seq_len, columns) as the graph's (n, seq_len, columns)."""
        windows = np.asarray(windows, dtype=np.float64)
        if windows.ndim == 2:
            windows = windows[:, :, None]
        if windows.ndim != 3 or windows.shape[1:] != (self.seq_len, self.columns):
            raise ValueError(
                f"windows of shape {windows.shape}, expected (n, {self.seq_len}, {self.columns})"
            )
        return windows


class OnnxPredictor(_Graph):
    """p_up from the window graph: the last seq_len raw feature rows, zero hidden state."""

    def p_up(self, window: np.ndarray) -> float:
        window = np.asarray(window, dtype=np.float64)
        return float(self.p_up_batch(window[None])[0])

    def p_up_at(self, features: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """p_up at each index of `ends` from the seq_len features (rows) ending there:
        window_p_up's signature for a backtest or replay that predicts through this graph;
        bitwise the p_up the live loop gets from each window alone."""
        ends = np.asarray(ends, dtype=np.int64)
        features = np.asarray(features, dtype=np.float64)
        if len(ends) and (ends.min() < self.seq_len - 1 or ends.max() >= len(features)):
            raise ValueError("a window would reach outside the features")
        windows = np.lib.stride_tricks.sliding_window_view(features, self.seq_len, axis=0)
        if features.ndim == 2:
            windows = windows.swapaxes(1, 2)  # (windows, seq_len, columns)
        return self.p_up_batch(windows[ends - self.seq_len + 1])

    def p_up_batch(self, windows: np.ndarray) -> np.ndarray:
        """p_up of each window, (n, seq_len) or (n, seq_len, columns); row i's value does not
        depend on the others (tests/test_export.py checks it bitwise against one-window calls)."""
        windows = self._windows(windows)
        out = np.empty(len(windows), dtype=np.float64)
        for i in range(0, len(windows), _BATCH_CHUNK):
            block = np.ascontiguousarray(windows[i : i + _BATCH_CHUNK])
            logits = self.session.run(["logits"], {self.input: block})[0]
            out[i : i + len(block)] = p_up_from_logits(logits)
        return out


class RowPredictor(OnnxPredictor):
    """p_up from a window-only row graph (LightGBM, logistic): each window's last `lags` feature
    rows, laid out as core.data.lags.lagged_rows lays them (column by column, oldest first).
    One row a call: onnxruntime's MatMul sums a batch in another order than one row (the
    logistic p_up moved by 1e-16), and a backtest must get the live loop's bits."""

    def p_up_batch(self, windows: np.ndarray) -> np.ndarray:
        windows = self._windows(windows)[:, -self.meta["lags"] :, :]
        width = windows.shape[1] * windows.shape[2]  # no window (a symbol listed later): none
        rows = np.ascontiguousarray(windows.transpose(0, 2, 1).reshape(len(windows), width))
        run = self.session.run
        return np.array([run(["p_up"], {"rows": rows[i : i + 1]})[0][0] for i in range(len(rows))],
                        dtype=np.float64)  # fmt: skip


class OnnxStepPredictor(_Graph):
    """The step graph: one feature row and the hidden state in, logits and the next state out,
    for O(1) work per candle. Carrying the state from an older start is NOT the window semantics
    (SPEC §2); p_up(window) streams the window from a zero state and matches the window graph."""

    def zero_state(self, batch: int = 1) -> np.ndarray:
        """(layers, batch, members * hidden): the members' zero states side by side."""
        width = self.meta["members"] * self.meta["hidden"]
        return np.zeros((self.meta["layers"], batch, width), dtype=np.float32)

    def step(self, features: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """features (batch,) or (batch, columns) raw values, state zero_state's shape →
        (logits, state)."""
        x = np.asarray(features, dtype=np.float64).reshape(-1, 1, self.columns)
        logits, state = self.session.run(
            list(STEP_OUTPUTS), {self.input: x, "hidden": np.asarray(state, np.float32)}
        )
        return logits, state

    def p_up_batch(self, windows: np.ndarray) -> np.ndarray:
        windows = self._windows(windows)
        state = self.zero_state(len(windows))
        for t in range(self.seq_len):
            logits, state = self.step(windows[:, t], state)
        return p_up_from_logits(logits)

    def p_up(self, window: np.ndarray) -> float:
        return float(self.p_up_batch(np.asarray(window, dtype=np.float64)[None])[0])


def _open(path, kind: str, symbol, timeframe, threads: int):
    """(path, session, meta) of a checked graph of `kind` for the asked market."""
    path = Path(path)
    model, meta = read_graph(path, kind)
    _check_market(path, meta, symbol, timeframe)
    return path, _session(path, model, threads), meta


def load_predictor(
    path: str | Path, symbol: str | None = None, timeframe: str | None = None, threads: int = 1
) -> OnnxPredictor:
    """The window graph at `path`, checked; symbol/timeframe, when given, must be the model's."""
    path, session, meta = _open(path, "window", symbol, timeframe, threads)
    if meta["family"] != "gru":
        width = meta["columns"] * meta["lags"]
        _check_io(path, session, {"rows": ("tensor(double)", ("dynamic", width))},
                  {"p_up": ("tensor(double)", (None,))})  # fmt: skip
        return RowPredictor(path, session, meta)
    _check_io(
        path,
        session,
        {meta["input"]: ("tensor(double)", ("dynamic", "dynamic", meta["columns"]))},
        {"logits": ("tensor(float)", (None, 2)), "probabilities": ("tensor(float)", (None, 2))},
    )
    return OnnxPredictor(path, session, meta)


def load_step_predictor(
    path: str | Path, symbol: str | None = None, timeframe: str | None = None, threads: int = 1
) -> OnnxStepPredictor:
    """The step graph (model.step.onnx beside model.onnx), checked like load_predictor."""
    path, session, meta = _open(path, "step", symbol, timeframe, threads)
    state = ("tensor(float)", (meta["layers"], None, meta["members"] * meta["hidden"]))
    _check_io(
        path,
        session,
        {meta["input"]: ("tensor(double)", ("dynamic", 1, meta["columns"])), "hidden": state},
        {"logits": ("tensor(float)", (None, 2)), "hidden_out": state},
    )
    return OnnxStepPredictor(path, session, meta)
