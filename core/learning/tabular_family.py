"""The tabular families, LightGBM and logistic regression, behind core.learning.family.

Each decision reads one row: the last `--lags` values of every feature column (core.data.lags),
at exactly the GRU's decision bars for the same --seq-len (core.learning.training.
checked_series), the raw features as the run's feature spec computes them (trees need no scaling,
the logistic model standardises inside). The model fits on the training decisions and chooses on
the validation decisions only: LightGBM its boosting round by early stopping, the logistic model
its L2 strength. Files in the run folder: the model class's own (model.txt + lightgbm.json,
coefficients.json). `--seeds N > 1` is refused: LightGBM without bagging and lbfgs have no
randomness, so N members would be N copies of one model.
"""

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.data.lags import lagged_rows
from fc.core.errors import FcError
from fc.core.learning import lightgbm_model, logistic_model
from fc.core.learning.config import TrainConfig
from fc.core.learning.evaluation import baselines, p_up_result, validation_sample
from fc.core.learning.family import in_blocks, refuse_unused
from fc.core.learning.lightgbm_model import LightGBMModel
from fc.core.learning.logistic_model import LogisticModel

LIGHTGBM_LR = 0.05  # --lr 0: LightGBM's rate (LightGBMModel's default)
# options that only the GRU reads (the loss too: these families minimise log loss alone)
GRU_OPTIONS = (
    "loss", "hidden", "layers", "epochs", "batch_size", "scheme", "chunk", "grad_clip",
    "max_steps", "cost_bps", "scaling", "calibrate",
)  # fmt: skip


def feature_columns(features: np.ndarray) -> np.ndarray:
    """The grid's features as (bars, columns): one column of (n,) price_change is (n, 1)."""
    features = np.asarray(features, dtype=np.float64)
    return features[:, None] if features.ndim == 1 else features


def rows_at(features: np.ndarray, ends: np.ndarray, lags: int) -> np.ndarray:
    """The lagged rows a tabular model reads at the decision bars `ends`."""
    return lagged_rows(feature_columns(features), np.asarray(ends, dtype=np.int64), lags)


class TabularFamily:
    """A family over one of the tabular model classes (LightGBMModel, LogisticModel)."""

    def __init__(self, model_class, own: tuple[str, ...], history_x: str, files: tuple):
        self.model_class, self.name = model_class, model_class.family
        self.files = files  # what the model class's save() writes
        self.own = own  # the options of core.learning.config this family reads beyond lags
        self.history_x = history_x  # history.csv's x column: boosting round or C

    @property
    def unused(self) -> tuple[str, ...]:
        """Options that mean nothing to the family (refused when given)."""
        others = ("lr", "num_leaves", "min_data_in_leaf", "seed")
        return GRU_OPTIONS + tuple(o for o in others if o not in self.own)

    def check(self, config: TrainConfig) -> None:
        refuse_unused(config, self.unused, self.name)
        if config.seeds != 1:
            raise FcError(
                f"--seeds {config.seeds}: --family {self.name} has no randomness to average "
                "(no bagging), N members would be one model N times; give --seeds 1"
            )
        if int(config.lags) != config.lags or not 1 <= config.lags <= config.seq_len:
            raise FcError(
                f"--lags {config.lags}: give a whole number of bars from 1 to --seq-len "
                f"({config.seq_len}), so a row reads no more than the GRU's window"
            )
        self._model(config)  # parameters out of range: the model class's own one line

    def _model(self, config: TrainConfig):
        """An unfitted model with the config's parameters."""
        if "lr" not in self.own:
            return self.model_class()
        return self.model_class(
            lr=config.lr or LIGHTGBM_LR,
            num_leaves=config.num_leaves,
            min_data_in_leaf=config.min_data_in_leaf,
            seed=config.seed,
            # fixed, so a model is the same wherever it trains; a study of units may set it
            threads=int(config.extra.get("lightgbm_threads", 2)),
        )

    def fit(self, config, grid, on_progress=None, on_validation=None, timing=None):
        from fc.core.learning.training import Trained, checked_series, purge_record, resolved

        self.check(config)
        stamps = timing if timing is not None else {}
        started = time.perf_counter()
        series, test_start = checked_series(config, grid)
        config = self.with_lr(resolved(config, series, test_start))
        model = self.fit_rows(config, [series], stamps)
        block, p_up = self.symbol_block(model, series, config)
        history = self.history(model)
        self.report_fit(history, block["validation"], on_progress, on_validation)
        val = np.flatnonzero(series.validation)
        metrics = {
            "validation": block["validation"],
            "validation_sample_size": int(len(val)),  # every one: the fit chose on all of them
            "baselines": block["baselines"],
            "check": block["check"],
            **self.fit_record(model, history, started, [series]),
            **purge_record(series),
        }
        predictions = pd.DataFrame({"time": series.time[val], "p_up": p_up})
        return Trained(config, model, history, metrics, predictions)

    def fit_universe(self, config, grids, on_progress=None, on_validation=None, timing=None):
        """One model over a universe's lagged rows (core.learning.pooled_tabular)."""
        from fc.core.learning.pooled_tabular import fit_tabular_universe

        return fit_tabular_universe(self, config, grids, on_progress, on_validation, timing)

    def with_lr(self, config: TrainConfig) -> TrainConfig:
        """The learning rate as fitted (--lr 0: LightGBM's default) for a family that reads it."""
        return replace(config, lr=config.lr or LIGHTGBM_LR) if "lr" in self.own else config

    def fit_rows(self, config: TrainConfig, series: list, stamps: dict):
        """The model fitted on the training decisions' rows of every Series in `series` (one
        symbol's, or each symbol of a universe: a row cut from its own Series only, rows stacked
        in the given order), choosing on their validation decisions' rows. A Series without a
        decision in a range gives that range no row (a symbol listed after the training range)."""
        parts = {
            name: [(one, ends) for one in series if len(ends := np.flatnonzero(getattr(one, name)))]
            for name in ("train", "validation")
        }
        x = {n: np.concatenate([rows_at(o.features, e, config.lags) for o, e in p])
             for n, p in parts.items()}  # fmt: skip
        up = {n: np.concatenate([o.labels[e] == 0 for o, e in p]) for n, p in parts.items()}
        stamps.setdefault("first_step", time.time())
        model = self._model(config).fit(x["train"], up["train"], x["validation"], up["validation"])
        stamps["last_step"] = time.time()
        return model

    def symbol_block(self, model, series, config: TrainConfig) -> tuple[dict, np.ndarray]:
        """({validation, baselines, check} of one Series' validation decisions, their p_up)."""
        val = np.flatnonzero(series.validation)
        p_up = model.p_up(rows_at(series.features, val, config.lags))
        check = validation_sample(series, config.val_size)[:8]
        block = {
            "validation": {**p_up_result(p_up, series, val), "decisions": int(len(val))},
            "baselines": baselines(series, val, config.horizon),
            "check": {
                "time": [series.time[i].isoformat() for i in check],
                "p_up": [
                    float(p) for p in model.p_up(rows_at(series.features, check, config.lags))
                ],
            },
        }
        return block, p_up

    def fit_record(self, model, history: pd.DataFrame, started: float, series: list) -> dict:
        """metrics.json's record of the fit over the Series in `series`."""
        return {
            "selection": self.selection(model),
            "train_seconds": round(time.perf_counter() - started, 2),
            "steps": int(len(history)),  # boosting rounds run, or L2 strengths fitted
            # a count of dates: no test price read
            "test_decisions": int(sum(one.test.sum() for one in series)),
            "scored_targets": int(sum(one.train.sum() for one in series)),
        }

    @staticmethod
    def report_fit(history: pd.DataFrame, result: dict, on_progress, on_validation) -> None:
        """The one validation of a fit, to fc tune's pruning and the progress bar."""
        if on_validation:
            on_validation(1, result)
        if on_progress:
            on_progress(len(history), len(history), result["loss"], result["loss"])

    def history(self, model) -> pd.DataFrame:
        """Validation log loss per boosting round (LightGBM) or per C (logistic), in the columns
        core.learning.plots.loss_figure reads (no training loss: none is recorded)."""
        if self.history_x == "round":
            losses = model.history_
            return pd.DataFrame({"round": np.arange(1, len(losses) + 1), "val_loss": losses})
        c = [h["c"] for h in model.history_]
        return pd.DataFrame(
            {"c": c, "val_loss": [h["validation_log_loss"] for h in model.history_]}
        )

    def selection(self, model) -> dict:
        """What validation chose, for metrics.json."""
        if self.history_x == "round":
            return {"chosen_on": "validation", "best_round": model.best_iteration_,
                    "rounds_run": len(model.history_)}  # fmt: skip
        return {"chosen_on": "validation", "c": model.c_}

    def save(self, model, folder: Path) -> None:
        model.save(folder)

    def load(self, folder: Path, config: TrainConfig, device: str = "cpu"):
        model = self.model_class.load(folder)
        want = config.n_inputs * config.lags
        if model.n_features_ != want:
            raise FcError(
                f"{folder}: the model reads {model.n_features_} values a row, the config's "
                f"{config.n_inputs} feature columns x {config.lags} lags make {want}; the run "
                "folder is damaged"
            )
        return model

    def predictor(self, folder: Path, config: TrainConfig, device: str = "auto"):
        """p_up at `ends` from each decision's lagged row; the model loads at the first call."""

        def predict(features, ends, progress=None):
            model = self.load(folder, config)

            def p_up_at(features, ends):
                return model.p_up(rows_at(features, ends, config.lags))

            return in_blocks(p_up_at, features, np.asarray(ends), progress)

        return predict

    def reference_p_up(self, model, config: TrainConfig, features, ends, device: str = "cpu"):
        return model.p_up(rows_at(features, np.asarray(ends), config.lags))

    def export_model(self, model):
        return model

    def label(self, config: TrainConfig) -> str:
        return f"{self.name}-lags{config.lags}"


LIGHTGBM = TabularFamily(LightGBMModel, ("lr", "num_leaves", "min_data_in_leaf", "seed"), "round",
                         lightgbm_model.FILES)  # fmt: skip
LOGISTIC = TabularFamily(LogisticModel, (), "c", logistic_model.FILES)
