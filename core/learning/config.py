"""The run config: every choice behind a run, one frozen dataclass written to config.json.

core.studies.runs writes and reads it beside the model files; the model family named by
`family` (core.learning.family) reads the fields that concern it.
"""

import json
from dataclasses import asdict, dataclass, field, fields

from fc.core.data.features import CLASSES, FEATURE

UNWRITTEN_DEFAULTS = {"horizon": 1, "cadence": None, "sleeves": None, "pooled_scaling": ()}


@dataclass(frozen=True)
class TrainConfig:
    """Every choice behind a run; written to config.json and read back to reproduce it."""

    family: str = "gru"  # the model family (core.learning.family.FAMILIES)
    symbol: str = "BTC/USDT"
    timeframe: str = "30m"
    data: str = ""  # the candle file trained on
    data_sha256: str = ""
    loss: str = "ce"  # ce | profit
    hidden: int = 16
    layers: int = 3
    seq_len: int = 512
    epochs: int = 7
    batch_size: int = 0  # rows per step; 0 = the scheme's default (SCHEME_DEFAULTS in training)
    lr: float = 0.0  # Adam learning rate; 0 = the scheme's default
    split: str = "2024-01-01"  # train before, validation from
    # test range start: "" default rule, ISO date, or "none" (core.ranges); config.json holds
    # the resolved start ("none" when there is no test range)
    test_from: str = ""
    device: str = "auto"
    seed: int = 0
    scheme: str = "sequence"  # window (the workshop's loop) | sequence (default, see schemes.py)
    chunk: int = 512  # sequence scheme: scored steps per chunk after a seq_len - 1 burn-in
    grad_clip: float = 0.0  # max gradient norm, 0 = none
    max_steps: int = 0  # stop after this many optimiser steps, 0 = all epochs
    val_size: int = 2048  # validation decisions scored during training (0 = all)
    cost_bps: float = 0.0  # profit loss: cost per unit of position change
    scaling: str = "std"  # std: center 1, scale = train std of price_change | none: raw feature
    # model input = (feature - center) / scale: floats for one column, tuples (one a column) else
    scale_center: float | tuple = 0.0
    scale_scale: float | tuple = 1.0
    feature: str = FEATURE
    # --features (core.data.feature_set): the text asked for, and the resolved spec (names,
    # parameters, symbols, hash) that training wrote; inputs: {symbol: [file, sha256]} of the
    # other symbols the spec reads
    features: str = "close"
    feature_spec: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    classes: tuple = CLASSES
    train_range: tuple = ()  # (first, last) decision times, ISO UTC
    validation_range: tuple = ()
    test_range: tuple = ()  # (first, last) test decision times, ISO UTC; () without a test range
    fc_version: str = ""
    seeds: int = 1  # members trained with seeds seed .. seed + seeds - 1, probabilities averaged
    calibrate: str = "none"  # none | temperature (fitted on validation, core/learning/ensemble.py)
    temperature: float = 1.0  # logit(p_up) = logit(mean member p_up) / temperature
    # the tabular families (core.learning.tabular_family): the last `lags` values of every
    # feature column at a decision; LightGBM's leaves and rows a leaf (LightGBMModel's defaults)
    lags: int = 16
    num_leaves: int = 15
    min_data_in_leaf: int = 200
    # a universe (core.learning.pooled): the symbols one model is pooled over (empty: `symbol`
    # alone), the label (next: the symbol's next candle; relative: its next return against the
    # universe's equal-weight mean) and {symbol: [center, scale]} fitted per symbol on training
    symbols: tuple = ()
    target: str = "next"
    symbol_scaling: dict = field(default_factory=dict)
    # the symbols of a universe without a training candle, scaled with the universe's pooled
    # training statistics (core.learning.pooled.symbol_scalings); written only when some are
    pooled_scaling: tuple = ()
    extra: dict = field(default_factory=dict)
    # the label reads `horizon` candles ahead (core.data.features.horizon_labels); the book is
    # re-decided every `cadence` candles (None: the horizon), or held in `sleeves` overlapping
    # sub-books (core.evaluation.schedule). Written to config.json only when not default
    horizon: int = 1
    cadence: int | None = None
    sleeves: int | None = None

    def as_dict(self) -> dict:
        """The fields as config.json holds them: those of horizons and schedules only when not
        default, so a default run's config (and its hash in the ledger) is what it was."""
        out = asdict(self)
        for name, default in UNWRITTEN_DEFAULTS.items():
            if out[name] == default:
                del out[name]
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    @property
    def schedule(self):
        """The trading schedule of the run's horizon (core.evaluation.schedule.Schedule)."""
        from fc.core.evaluation.schedule import Schedule

        return Schedule.of(self.horizon, self.cadence, self.sleeves)

    @property
    def spec(self):
        """The FeatureSpec the run reads: the saved one (a feature this fc does not know is an
        FcError), else the one --features asks for."""
        from fc.core.data.feature_set import FeatureSpec, parse_features

        if self.feature_spec:
            return FeatureSpec.from_dict(self.feature_spec)
        return parse_features(self.features, self.symbol)

    @property
    def trained_files(self) -> dict:
        """{symbol: the candle file it was trained on}: the decided symbol's and every input's."""
        return {self.symbol: self.data} | {s: v[0] for s, v in self.inputs.items()}

    @property
    def first_decision(self) -> int:
        """The first bar index a decision may be made at: seq_len, later when a feature warms
        up (FeatureSpec.first_decision); every decision mask is cut there."""
        return self.spec.first_decision(self.seq_len)

    @property
    def n_inputs(self) -> int:
        return len(self.spec.columns)

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
        return cls(**values)
