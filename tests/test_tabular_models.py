"""The tabular families (LightGBM, logistic): they learn a planted signal, choose on validation,
round-trip through their files, export to ONNX with parity, and refuse bad input in one line."""

import json

import numpy as np
import pandas as pd
import pytest
from tabular_columns import NAMES, simple_columns

from fc.core.data.lags import lagged_rows
from fc.core.errors import FcError
from fc.core.learning.lightgbm_model import LightGBMModel, float32_floor, snap_thresholds
from fc.core.learning.logistic_model import LogisticModel, log_loss
from fc.export.tabular_graphs import lightgbm_onnx, logistic_onnx, parity

LAGS = 4
N_FEATURES = 3 * LAGS  # return, its sign, noise


def planted_series(n: int, seed: int) -> np.ndarray:
    """Log returns whose sign is up with probability 0.6 after a down candle, 0.4 after an up."""
    rng = np.random.default_rng(seed)
    up = np.empty(n, dtype=bool)
    up[0] = True
    draws = rng.uniform(size=n)
    for t in range(1, n):
        up[t] = draws[t] < (0.4 if up[t - 1] else 0.6)
    size = rng.exponential(0.002, n) + 1e-5
    return np.where(up, size, -size)


def tabular_split(n: int = 12_000, seed: int = 0):
    """Lagged rows of (return, its sign, noise), next-candle labels (1 = up); 70 % train."""
    ret = planted_series(n, seed)
    noise = np.random.default_rng(seed + 1).normal(size=n)
    ends = np.arange(LAGS - 1, n - 1)
    x = lagged_rows(np.column_stack([ret, np.sign(ret), noise]), ends, LAGS)
    up = (ret[ends + 1] >= 0).astype(np.int64)
    cut = int(0.7 * len(ends))
    return x[:cut], up[:cut], x[cut:], up[cut:]


@pytest.fixture(scope="module")
def split():
    return tabular_split()


@pytest.fixture(scope="module")
def lightgbm(split):
    return LightGBMModel(min_data_in_leaf=100, threads=1).fit(*split)


@pytest.fixture(scope="module")
def logistic(split):
    return LogisticModel().fit(*split)


def prior_log_loss(up_train, up_val) -> float:
    return log_loss(up_val, np.full(len(up_val), up_train.mean()))


@pytest.mark.parametrize("family", ["lightgbm", "logistic"])
def test_families_learn_the_planted_signal(family, split, request):
    model = request.getfixturevalue(family)
    x_train, up_train, x_val, up_val = split
    loss = log_loss(up_val, model.p_up(x_val))
    # the planted signal is worth ln 2 - H(0.6) = 0.0201 nats; the prior knows none of it
    assert loss < prior_log_loss(up_train, up_val) - 0.012
    after_down = x_val[:, LAGS - 1] < 0
    assert (model.p_up(x_val)[after_down] > 0.5).mean() > 0.95


def test_lightgbm_keeps_the_best_validation_round(lightgbm):
    history = np.array(lightgbm.history_)
    assert lightgbm.best_iteration_ == int(np.argmin(history)) + 1
    assert lightgbm.booster_.num_trees() == lightgbm.best_iteration_


def test_early_stopping_stops_on_noise():
    rng = np.random.default_rng(3)
    x, up = rng.normal(size=(4000, 6)), rng.integers(0, 2, 4000)
    model = LightGBMModel(lr=0.1, min_data_in_leaf=20, max_rounds=500, early_stopping=10,
                          threads=1).fit(x[:3000], up[:3000], x[3000:], up[3000:])  # fmt: skip
    assert model.best_iteration_ < 500
    assert len(model.history_) == model.best_iteration_ + 10  # stopped 10 rounds after the best


def test_lightgbm_is_deterministic_for_a_seed(split, lightgbm):
    again = LightGBMModel(min_data_in_leaf=100, threads=1).fit(*split)
    assert again.booster_.model_to_string() == lightgbm.booster_.model_to_string()


def test_logistic_chooses_the_c_with_the_lowest_validation_loss(split, logistic):
    x_train, up_train, x_val, up_val = split
    losses = [h["validation_log_loss"] for h in logistic.history_]
    assert [h["c"] for h in logistic.history_] == list(logistic.c_grid)
    assert logistic.c_ == logistic.c_grid[int(np.argmin(losses))]
    assert log_loss(up_val, logistic.p_up(x_val)) == pytest.approx(min(losses), abs=1e-15)


def test_logistic_p_up_is_the_formula_on_standardised_rows(split, logistic):
    x = split[2][:50]
    mean, std = split[0].mean(axis=0), split[0].std(axis=0)
    z = ((x - mean) / std) @ logistic.coef_ + logistic.intercept_
    np.testing.assert_allclose(logistic.p_up(x), 1 / (1 + np.exp(-z)), rtol=0, atol=1e-15)


def test_calibrated_mean_reversion_on_the_sign_of_the_last_candle():
    """The baseline: one column, sign(last change); on a mean-reverting series p_up after an up
    candle is below 0.5 and equals the training frequency (a one-binary-feature logistic MLE)."""
    ret = planted_series(20_000, seed=5)
    sign, up = np.sign(ret[:-1])[:, None], (ret[1:] >= 0).astype(np.int64)
    model = LogisticModel(c_grid=(1e4,)).fit(sign[:14_000], up[:14_000], sign[14_000:], up[14_000:])
    after_up, after_down = model.p_up(np.array([[1.0], [-1.0]]))
    assert after_up < 0.5 < after_down
    train_up = up[:14_000][sign[:14_000, 0] > 0].mean()
    assert after_up == pytest.approx(train_up, abs=1e-4)


@pytest.mark.parametrize("family", ["lightgbm", "logistic"])
def test_save_load_round_trip_gives_identical_p_up(family, split, tmp_path, request):
    model = request.getfixturevalue(family)
    model.save(tmp_path / family)
    loaded = type(model).load(tmp_path / family)
    np.testing.assert_array_equal(loaded.p_up(split[2]), model.p_up(split[2]))
    assert loaded.history_ == model.history_ and loaded.get_params() == model.get_params()


def test_coefficients_json_is_readable(logistic, tmp_path):
    state = json.loads((logistic.save(tmp_path) / "coefficients.json").read_text())
    assert state["family"] == "logistic" and state["n_features"] == N_FEATURES
    assert state["coef"] == logistic.coef_.tolist() and state["c"] == logistic.c_
    assert set(state["standardisation"]) == {"mean", "std"}


@pytest.mark.parametrize(
    ("family", "export", "tolerance"),
    [("lightgbm", lightgbm_onnx, 1e-6), ("logistic", logistic_onnx, 1e-12)],
)
def test_onnx_parity_on_all_validation_rows(family, export, tolerance, split, request):
    model = request.getfixturevalue(family)
    graph = export(model, N_FEATURES, {"lags": LAGS, "symbol": "SYNTH/USDT"})
    assert 0 < parity(model, graph, split[2]) < tolerance
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["family"] == family and meta["lags"] == "4" and meta["n_features"] == "12"
    assert [i.name for i in graph.graph.input] == ["rows"]
    assert [o.name for o in graph.graph.output] == ["p_up"]


def test_float32_floor_is_the_largest_float32_at_or_below():
    values = np.random.default_rng(4).normal(0, 1e-3, 10_000)
    floor = float32_floor(values)
    assert (floor.astype(np.float32).astype(np.float64) == floor).all()
    assert (floor <= values).all()
    above = np.nextafter(floor.astype(np.float32), np.float32(np.inf)).astype(np.float64)
    assert (above > values).all()


def test_graph_takes_lightgbms_branch_on_values_at_the_thresholds(lightgbm):
    """Rows whose values sit exactly on a threshold and on the next float32 above it: the graph's
    float32 comparisons send them where LightGBM's double comparisons do."""
    dump = lightgbm.booster_.dump_model()["tree_info"]
    splits = thresholds(dump)
    rng = np.random.default_rng(6)
    rows = rng.normal(0, 0.002, size=(2 * len(splits), N_FEATURES))
    for i, (feature, threshold) in enumerate(splits):
        at = np.float32(threshold)
        assert at == threshold  # snapped: a float32 already
        rows[2 * i, feature], rows[2 * i + 1, feature] = at, np.nextafter(at, np.float32(1))
    graph = lightgbm_onnx(lightgbm, N_FEATURES, {"lags": LAGS})
    assert parity(lightgbm, graph, rows) < 1e-6


def test_snapping_changes_no_prediction_on_float32_rows(split):
    """The unsnapped booster and the snapped one agree exactly, also on rows holding the float32
    nearest to each original threshold (where a rounded-to-nearest threshold would flip)."""
    import lightgbm as lgb

    x_train, up_train = split[0].astype(np.float32), split[1]
    params = LightGBMModel(min_data_in_leaf=100, threads=1).booster_params()
    raw = lgb.train(params, lgb.Dataset(x_train, up_train.astype(float)), num_boost_round=30)
    snapped = lgb.Booster(model_str=snap_thresholds(raw.model_to_string()))
    splits = thresholds(raw.dump_model()["tree_info"])
    rows = np.tile(x_train[:1], (len(splits), 1))
    for i, (feature, threshold) in enumerate(splits):
        rows[i, feature] = np.float32(threshold)
    moved = sum(float32_floor(np.array([t]))[0] != t for _, t in splits)
    assert moved > 0.9 * len(splits)  # nearly every threshold lies between two float32 values
    for r in (rows, x_train):
        np.testing.assert_array_equal(snapped.predict(r), raw.predict(r))


def thresholds(tree_info: list) -> list[tuple[int, float]]:
    """(feature, threshold) of every split of a LightGBM model dump."""
    splits = []

    def walk(node):
        if "split_feature" in node:
            splits.append((node["split_feature"], node["threshold"]))
            walk(node["left_child"]), walk(node["right_child"])

    for tree in tree_info:
        walk(tree["tree_structure"])
    return splits


def test_poisoned_future_changes_no_prediction_at_or_before_t(split, lightgbm, logistic):
    ret, noise = planted_series(3000, 9), np.random.default_rng(10).normal(size=3000)
    columns = np.column_stack([ret, np.sign(ret), noise])
    ends, T = np.arange(LAGS - 1, 3000), 2000
    poisoned = columns.copy()
    poisoned[T + 1 :] *= -50.0
    for model in (lightgbm, logistic):
        clean = model.p_up(lagged_rows(columns, ends, LAGS))
        dirty = model.p_up(lagged_rows(poisoned, ends, LAGS))
        np.testing.assert_array_equal(dirty[ends <= T], clean[ends <= T])
        assert (dirty[ends > T] != clean[ends > T]).any()


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: LightGBMModel(num_leaves=1), "--num-leaves 1"),
        (lambda: LightGBMModel(lr=0), "--lr 0"),
        (lambda: LightGBMModel(min_data_in_leaf=0), "--min-data-in-leaf 0"),
        (lambda: LightGBMModel(early_stopping=0), "early_stopping 0"),
        (lambda: LogisticModel(c_grid=()), "L2 grid"),
        (lambda: LogisticModel(c_grid=(1.0, -1.0)), "L2 grid"),
    ],
)
def test_bad_parameters_are_user_errors(build, words):
    with pytest.raises(FcError, match=words):
        build()


@pytest.mark.parametrize("family", [LightGBMModel, LogisticModel])
def test_bad_rows_and_labels_are_user_errors(family, split):
    x_train, up_train, x_val, up_val = split
    model = family(min_data_in_leaf=100) if family is LightGBMModel else family()
    with pytest.raises(FcError, match="the model needs"):
        model.fit(x_train, up_train, x_val[:, :3], up_val)
    with pytest.raises(FcError, match="NaN"):
        model.fit(np.where(x_train > 1, np.nan, x_train), up_train, x_val, up_val)
    with pytest.raises(FcError, match="0 or 1"):
        model.fit(x_train, up_train * 2, x_val, up_val)


def test_a_model_of_another_family_is_refused(logistic, tmp_path):
    logistic.save(tmp_path)
    (tmp_path / "lightgbm.json").write_text(json.dumps({"family": "xgboost"}))
    with pytest.raises(FcError, match="family 'xgboost'"):
        LightGBMModel.load(tmp_path)
    with pytest.raises(FcError, match="no such file"):
        LogisticModel.load(tmp_path / "absent")


@pytest.mark.slow
def test_onnx_parity_on_real_validation_decisions(shared_data):
    """8 simple columns x 16 lags of the real 30m candles, train before 2024, validation 2024:
    onnxruntime against each family's own p_up on every validation decision."""
    from fc.core.data.candles import load_candles

    candles = load_candles(shared_data / "btc_usdt_30m.parquet")
    columns, lags = simple_columns(candles), 16
    ends = np.arange(47 + lags - 1, len(candles) - 1)
    close = candles["close"].to_numpy()
    x, up = lagged_rows(columns, ends, lags), (close[ends + 1] >= close[ends]).astype(np.int64)
    times = candles.index[ends]
    train = times < pd.Timestamp("2024-01-01", tz="UTC")
    val = ~train & (times < pd.Timestamp("2025-01-01", tz="UTC"))
    n = len(NAMES) * lags
    for model, export in ((LightGBMModel(), lightgbm_onnx), (LogisticModel(), logistic_onnx)):
        model.fit(x[train], up[train], x[val], up[val])
        graph = export(model, n, {"lags": lags})
        assert parity(model, graph, x[val]) < 1e-6, model.family
