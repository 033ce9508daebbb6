"""The model-family seam: what a kind of model provides, and the registry of those fc knows.

A family (the GRU; LightGBM and logistic regression on lagged rows) is one module of
core/learning/ with one object satisfying `Family`, registered in _registry() by name. Studies
(training into a run folder, backtest, walk, sweep, tune), export and the prediction cache call
these methods and never branch on the family's name. The shape follows scikit-learn's
estimators: parameters come from the run config, learnt state is the returned model.
"""

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from fc.core.errors import FcError
from fc.core.learning.config import TrainConfig

BLOCK = 4096  # windows per call of a predictor that reports no progress itself
# predict(features, ends, progress=None) -> p_up at the decision indices `ends`, each decision
# reading only features up to and including its own bar
Predict = Callable[..., np.ndarray]


class Family(Protocol):
    name: str
    unused: tuple[str, ...]  # TrainConfig options that mean nothing to it: refused when given
    files: tuple[str, ...]  # glob patterns of the model files save() writes

    def check(self, config: TrainConfig) -> None:
        """Raise FcError for options that mean nothing to this family or are out of range."""

    def fit(self, config: TrainConfig, grid: pd.DataFrame, on_progress=None, on_validation=None,
            timing=None):  # fmt: skip
        """Fit on the config's training range, choosing (checkpoint, stopping, strength) on its
        validation range only; returns a core.learning.training.Trained."""

    def fit_universe(self, config: TrainConfig, grids: dict, on_progress=None,
                     on_validation=None, timing=None):  # fmt: skip
        """One model over every symbol of `grids` ({symbol: grid}, the order of config.symbols),
        each symbol's rows or windows from its own Series only; a Trained whose metrics hold
        the pooled validation and a block per symbol under `symbols`."""

    def save(self, model, folder: Path) -> None:
        """Write the model's own files into `folder` (the GRU: model.pt)."""

    def load(self, folder: Path, config: TrainConfig, device: str = "cpu"):
        """The model from the files save() wrote (and, for ensembles, its members' folders)."""

    def predictor(self, folder: Path, config: TrainConfig, device: str = "auto") -> Predict:
        """predict(features, ends, progress) for the model in `folder`, loaded at first call,
        computed however the family computes it fastest (the GRU: merged windows on the CPU)."""

    def reference_p_up(self, model, config: TrainConfig, features, ends, device: str = "cpu"):
        """p_up at `ends` of a loaded model, each from its own window or row computed the plain
        way (the reference the fast predictor is tested against; fc walk's fold predictions)."""

    def export_model(self, model):
        """What export/'s writers need: the torch module for the GRU."""

    def label(self, config: TrainConfig) -> str:
        """The run folder's name after its time stamp (the GRU: ce-h16-l3)."""


def refuse_unused(config: TrainConfig, names: tuple[str, ...], family: str, why: str = "") -> None:
    """FcError naming the first option in `names` given a value other than its default: it
    means nothing to `family` (a default cannot be told from an option not given)."""
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.name in names}
    for name in names:
        value = getattr(config, name)
        if value != defaults[name]:
            flag = "--" + name.replace("_", "-")
            raise FcError(
                f"{flag} {value} means nothing to --family {family}{why}; drop it or choose "
                "another family"
            )


def in_blocks(p_up_at, features, ends, progress=None):
    """p_up_at(features, ends) called on blocks of ends, reporting progress after each."""
    out = np.empty(len(ends), dtype=np.float64)
    for i in range(0, len(ends), BLOCK):
        out[i : i + BLOCK] = p_up_at(features, ends[i : i + BLOCK])
        if progress is not None:
            progress(min(i + BLOCK, len(ends)), len(ends))
    return out


def _registry() -> dict[str, Family]:
    from fc.core.learning.gru import GRU
    from fc.core.learning.tabular_family import LIGHTGBM, LOGISTIC

    return {family.name: family for family in (GRU, LIGHTGBM, LOGISTIC)}


def model_file_patterns() -> tuple[str, ...]:
    """Every family's model file patterns: what in a run folder is the model."""
    return tuple(dict.fromkeys(p for family in _registry().values() for p in family.files))


def family_names() -> tuple[str, ...]:
    return tuple(_registry())


def family_of(config: TrainConfig | str) -> Family:
    """The family a config (or a name) asks for; FcError for one this version does not know."""
    name = config if isinstance(config, str) else config.family
    families = _registry()
    if name not in families:
        raise FcError(
            f"model family {name!r} is not known to this fc (it knows {', '.join(families)}); "
            "use --family " + " or ".join(families) + ", or upgrade fc to read this run"
        )
    return families[name]
