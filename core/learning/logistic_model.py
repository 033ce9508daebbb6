"""The logistic family: L2 logistic regression on lagged rows, its strength chosen on validation.

Features are standardised inside the model (mean and std fitted on the training rows, saved with
the coefficients), because one L2 strength only means the same thing for every column when the
columns share a scale, and lbfgs converges in a few steps on standardised inputs. `coef_` and
`intercept_` act on standardised rows; p_up does the whole computation in float64 numpy, and the
ONNX graph (export/tabular_graphs.py) does the same operations in double.

Fitted on one column, the sign of the last candle's change, it is the calibrated mean-reversion
baseline of issue 21 (`calibrated_mean_reversion`).
"""

import json
import warnings
from pathlib import Path

import numpy as np

from fc.core.errors import FcError
from fc.core.evaluation.metrics import classifier
from fc.core.learning.tabular import checked_rows, read_state, sigmoid, up_labels

COEF_FILE = "coefficients.json"
FILES = (COEF_FILE,)  # what save() writes
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # inverse L2 strength, as scikit-learn's C


def log_loss(up: np.ndarray, p_up: np.ndarray) -> float:
    """fc's classifier log loss (core.evaluation.metrics) of p_up against up = 1 labels."""
    return classifier(p_up, 1 - np.asarray(up, dtype=np.int64))["log_loss"]


class LogisticModel:
    """Standardise, then L2 logistic regression (lbfgs); C chosen by validation log loss."""

    family = "logistic"

    def __init__(self, c_grid: tuple[float, ...] = C_GRID):
        c_grid = tuple(float(c) for c in c_grid)
        if not c_grid or min(c_grid) <= 0 or not np.isfinite(c_grid).all():
            raise FcError(f"L2 grid {list(c_grid)}: give one or more finite C values > 0")
        self.c_grid = c_grid

    def get_params(self) -> dict:
        return {"c_grid": list(self.c_grid)}

    def fit(self, x_train, up_train, x_val, up_val) -> "LogisticModel":
        """Fit on train for each C of the grid; keep the C with the lowest validation log loss
        (the first on a tie); `history_` holds every C's validation log loss."""
        from sklearn.linear_model import LogisticRegression

        x_train = checked_rows(x_train, np.float64)
        x_val = checked_rows(x_val, np.float64, x_train.shape[1])
        up_train, up_val = up_labels(up_train, len(x_train)), up_labels(up_val, len(x_val))
        if np.unique(up_train).size < 2:
            raise FcError("the training range holds one class only; give a longer range")
        self.mean_ = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        self.std_ = np.where(std > 0, std, 1.0)  # a constant column stays 0 after centring
        z_train = (x_train - self.mean_) / self.std_
        best, self.history_ = None, []
        for c in self.c_grid:
            fit = LogisticRegression(C=c, solver="lbfgs", max_iter=1000)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a slow lbfgs at a tiny C: the loss judges it
                fit.fit(z_train, up_train)
            self.coef_, self.intercept_ = fit.coef_[0].astype(np.float64), float(fit.intercept_[0])
            loss = log_loss(up_val, self.p_up(x_val))
            self.history_.append({"c": c, "validation_log_loss": loss})
            if best is None or loss < best[0]:
                best = (loss, c, self.coef_, self.intercept_)
        _, self.c_, self.coef_, self.intercept_ = best
        self.n_features_ = x_train.shape[1]
        return self

    def p_up(self, x: np.ndarray) -> np.ndarray:
        """P(up) of each row in float64: sigmoid(((x - mean) / std) @ coef + intercept)."""
        z = (checked_rows(x, np.float64, len(self.coef_)) - self.mean_) / self.std_
        return sigmoid(z @ self.coef_ + self.intercept_)

    def save(self, folder: str | Path) -> Path:
        """coefficients.json: readable, and exact (floats written as round-trip decimals)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "family": self.family, "n_features": self.n_features_, "c": self.c_,
            "intercept": self.intercept_, "coef": self.coef_.tolist(),
            "standardisation": {"mean": self.mean_.tolist(), "std": self.std_.tolist()},
            "params": self.get_params(), "validation_log_loss": self.history_,
        }  # fmt: skip
        (folder / COEF_FILE).write_text(json.dumps(state, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "LogisticModel":
        path = Path(folder) / COEF_FILE
        state = read_state(path, cls.family)
        try:
            model = cls(**state["params"])
            model.n_features_, model.c_ = int(state["n_features"]), float(state["c"])
            model.intercept_ = float(state["intercept"])
            model.coef_ = np.array(state["coef"], dtype=np.float64)
            model.mean_ = np.array(state["standardisation"]["mean"], dtype=np.float64)
            model.std_ = np.array(state["standardisation"]["std"], dtype=np.float64)
            model.history_ = state["validation_log_loss"]
        except (KeyError, TypeError, ValueError):
            raise FcError(f"{path}: damaged coefficients; train the run again") from None
        if not (len(model.coef_) == len(model.mean_) == len(model.std_) == model.n_features_):
            raise FcError(f"{path}: damaged coefficients (lengths differ); train the run again")
        return model
