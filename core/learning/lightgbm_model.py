"""The LightGBM family: gradient-boosted trees on lagged rows, early-stopped on validation log loss.

Precision, chosen for the ONNX graph (export/tabular_graphs.py): ONNX's TreeEnsembleClassifier
compares float32 features with float32 thresholds. So the model reads every row rounded to
float32, in fit and in p_up alike, and after training each split threshold t is replaced by the
largest float32 <= t. For a float32 value x, `x <= t` and `x <= that float32` are the same test,
so LightGBM's own predictions do not change at all, and the graph takes every branch LightGBM
takes on any input, not only on the rows seen (a threshold rounded to nearest could sit exactly on
a future value and send it the other way). What is left between the two is float32 rounding of the
leaf sum and the sigmoid: ~1e-7 in p_up.

Labels: `up` is 1 for class "up" (fc's label 0: change >= 0), so p_up is LightGBM's probability.
"""

import json
import re
from pathlib import Path

import numpy as np

from fc.core.errors import FcError
from fc.core.learning.tabular import checked_rows, read_state, up_labels

MODEL_FILE, PARAMS_FILE = "model.txt", "lightgbm.json"
FILES = (MODEL_FILE, PARAMS_FILE)  # what save() writes
_THRESHOLD = re.compile(r"^threshold=(.*)$", re.MULTILINE)
_TREE_SIZES = re.compile(r"^tree_sizes=.*\n", re.MULTILINE)  # byte sizes: stale once snapped


def float32_floor(values: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 value (as float64): the same split for float32 rows."""
    values = np.asarray(values, dtype=np.float64)
    nearest = values.astype(np.float32)
    above = nearest.astype(np.float64) > values
    nearest[above] = np.nextafter(nearest[above], np.float32(-np.inf))
    return nearest.astype(np.float64)


def snap_thresholds(model_text: str) -> str:
    """A LightGBM text model with every numerical threshold moved down to a float32 (see above)."""

    def snap(match: re.Match) -> str:
        values = float32_floor(np.array(match.group(1).split(), dtype=np.float64))
        return "threshold=" + " ".join(repr(float(v)) for v in values)

    # without tree_sizes LightGBM reads the trees one after the other; save_model writes them anew
    return _TREE_SIZES.sub("", _THRESHOLD.sub(snap, model_text), count=1)


class LightGBMModel:
    """Binary LightGBM (scikit-learn style: parameters here, learnt state in `*_` attributes)."""

    family = "lightgbm"

    def __init__(
        self, lr: float = 0.05, num_leaves: int = 15, min_data_in_leaf: int = 200,
        max_rounds: int = 2000, early_stopping: int = 50, seed: int = 0, threads: int = 2,
    ):  # fmt: skip
        for name, value, ok, need in (
            ("--lr", lr, lr > 0, "> 0"),
            ("--num-leaves", num_leaves, num_leaves >= 2, ">= 2"),
            ("--min-data-in-leaf", min_data_in_leaf, min_data_in_leaf >= 1, ">= 1"),
            ("max_rounds", max_rounds, max_rounds >= 1, ">= 1"),
            ("early_stopping", early_stopping, early_stopping >= 1, ">= 1"),
            ("threads", threads, threads >= 1, ">= 1"),
        ):
            if not ok:
                raise FcError(f"{name} {value}: LightGBM needs {name} {need}")
        self.lr, self.num_leaves = float(lr), int(num_leaves)
        self.min_data_in_leaf, self.max_rounds = int(min_data_in_leaf), int(max_rounds)
        self.early_stopping, self.seed, self.threads = int(early_stopping), int(seed), int(threads)

    def get_params(self) -> dict:
        return {
            "lr": self.lr, "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf, "max_rounds": self.max_rounds,
            "early_stopping": self.early_stopping, "seed": self.seed, "threads": self.threads,
        }  # fmt: skip

    def booster_params(self) -> dict:
        """LightGBM's parameters; deterministic + force_row_wise make a seed reproduce a model
        (LightGBM's docs: set one of force_*_wise with deterministic), on the same thread count."""
        return {
            "objective": "binary", "metric": "binary_logloss", "learning_rate": self.lr,
            "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_data_in_leaf,
            "seed": self.seed, "deterministic": True, "force_row_wise": True,
            "num_threads": self.threads, "verbosity": -1,
        }  # fmt: skip

    def fit(self, x_train, up_train, x_val, up_val) -> "LightGBMModel":
        """Boost on train, stop when validation log loss has not improved for `early_stopping`
        rounds, keep the best round's trees."""
        import lightgbm as lgb

        x_train = checked_rows(x_train, np.float32)
        x_val = checked_rows(x_val, np.float32, x_train.shape[1])
        train = lgb.Dataset(x_train, up_labels(up_train, len(x_train)), free_raw_data=True)
        val = lgb.Dataset(x_val, up_labels(up_val, len(x_val)), reference=train)
        record: dict = {}
        booster = lgb.train(
            self.booster_params(), train, num_boost_round=self.max_rounds, valid_sets=[val],
            valid_names=["validation"], callbacks=[
                lgb.early_stopping(self.early_stopping, first_metric_only=True, verbose=False),
                lgb.record_evaluation(record),
            ],
        )  # fmt: skip
        self.history_ = [float(v) for v in record["validation"]["binary_logloss"]]
        self.best_iteration_ = int(booster.best_iteration or len(self.history_))
        self.n_features_ = x_train.shape[1]
        text = booster.model_to_string(num_iteration=self.best_iteration_)
        self.booster_ = lgb.Booster(model_str=snap_thresholds(text))
        return self

    def p_up(self, x: np.ndarray) -> np.ndarray:
        """P(up) of each row, float64 (LightGBM's own prediction on the float32 rows)."""
        return np.asarray(
            self.booster_.predict(
                checked_rows(x, np.float32, self.n_features_), num_threads=self.threads
            ),
            dtype=np.float64,
        )

    def save(self, folder: str | Path) -> Path:
        """model.txt (LightGBM's own text model, readable) and lightgbm.json beside it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(folder / MODEL_FILE))
        state = {
            "family": self.family, "params": self.get_params(), "n_features": self.n_features_,
            "best_iteration": self.best_iteration_, "validation_log_loss": self.history_,
        }  # fmt: skip
        (folder / PARAMS_FILE).write_text(json.dumps(state, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "LightGBMModel":
        import lightgbm as lgb

        folder = Path(folder)
        state = read_state(folder / PARAMS_FILE, cls.family)
        if not (folder / MODEL_FILE).is_file():
            raise FcError(f"{folder}: {MODEL_FILE} missing; train the run again")
        model = cls(**state["params"])
        model.booster_ = lgb.Booster(model_file=str(folder / MODEL_FILE))
        model.n_features_, model.best_iteration_ = state["n_features"], state["best_iteration"]
        model.history_ = state["validation_log_loss"]
        return model
