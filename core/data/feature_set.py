"""Declared inputs: the feature spec a run carries, and the columns, decisions and
normalisation built from it.

A spec such as `close,ret,volume:48,ret@ETH/USDT` names features (feature_registry.py) of the
decided symbol and of other symbols on the same grid. Training, backtest, export parity and live
all build their input columns here from candle grids: one definition per feature, pure numpy.
"""

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fc.core.data.candles import infer_timeframe, timeframe_delta
from fc.core.data.feature_registry import FEATURES, Feature, register
from fc.core.data.features import decision_mask
from fc.core.errors import FcError

__all__ = [
    "FEATURES",
    "Feature",
    "FeatureItem",
    "FeatureSpec",
    "register",
    "parse_features",
    "align_symbols",
    "build_columns",
    "feature_decision_mask",
    "fit_normalisation",
    "normalise",
]

_SYMBOL = re.compile(r"[A-Za-z0-9._-]+/[A-Za-z0-9._:-]+")


@dataclass(frozen=True)
class FeatureItem:
    """One declared feature: its name, its rolling length (None when it takes none) and the
    symbol whose candles it reads."""

    name: str
    param: int | None
    symbol: str


@dataclass(frozen=True)
class FeatureSpec:
    """What a run reads: the decided symbol and its feature items, in column order."""

    symbol: str
    items: tuple[FeatureItem, ...]

    @property
    def symbols(self) -> tuple[str, ...]:
        """The decided symbol first, then input symbols in order of first appearance."""
        return tuple(dict.fromkeys([self.symbol, *(item.symbol for item in self.items)]))

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(name for item in self.items for name in self._item_columns(item))

    @property
    def warmup(self) -> int:
        """The first index where every column is a real value (not a placeholder)."""
        return max(FEATURES[item.name].warmup(item.param) for item in self.items)

    def first_decision(self, seq_len: int) -> int:
        """The first t a decision may be made: its window [t-seq_len+1, t] holds real values
        only, t >= warmup + seq_len - 1, and never before decision_mask's t >= seq_len. The two
        agree when warmup <= 1 (`close` alone: today's runs, unchanged)."""
        return max(seq_len, self.warmup + seq_len - 1)

    def groups(self) -> dict[str, tuple[str, ...]]:
        """{item text: its column names}, in column order: one group per declared feature."""
        return {self._item_text(item): tuple(self._item_columns(item)) for item in self.items}

    @property
    def text(self) -> str:
        """The canonical `--features` text (defaults written out): parse_features reads it back."""
        return ",".join(self._item_text(item) for item in self.items)

    def to_dict(self) -> dict:
        body = self._body()
        return {**body, "hash": _hash(body)}

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of the spec (sorted keys, no spaces), first 16 hex."""
        return _hash(self._body())

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        """A spec saved by to_dict; a feature this fc does not know, or an edited spec, is an
        FcError (the model would read columns nobody can compute)."""
        try:
            symbol = data["symbol"]
            rows = [(row["name"], row["param"], row["symbol"]) for row in data["features"]]
        except (KeyError, TypeError):
            raise FcError("the run's feature spec is malformed; retrain the run") from None
        if not _SYMBOL.fullmatch(str(symbol)):
            raise FcError(f"the run's feature spec decides on {symbol!r}, not a ccxt symbol")
        for name, _, _ in rows:
            if name not in FEATURES:
                raise FcError(f"this fc does not know feature {name!r}; upgrade fc or retrain")
        items = [_item(name, None if p is None else str(p), s, symbol) for name, p, s in rows]
        spec = _spec(symbol, items)
        if "hash" in data and data["hash"] != spec.hash:
            raise FcError("the run's feature spec does not match its hash; retrain the run")
        return spec

    def _body(self) -> dict:
        rows = [{"name": i.name, "param": i.param, "symbol": i.symbol} for i in self.items]
        return {"symbol": self.symbol, "features": rows}

    def _item_text(self, item: FeatureItem) -> str:
        base = item.name if item.param is None else f"{item.name}:{item.param}"
        return base if item.symbol == self.symbol else f"{base}@{item.symbol}"

    def _item_columns(self, item: FeatureItem) -> list[str]:
        base = item.name if item.param is None else f"{item.name}:{item.param}"
        names = [f"{base}.{o}" for o in FEATURES[item.name].outputs] or [base]
        return names if item.symbol == self.symbol else [f"{n}@{item.symbol}" for n in names]


def _hash(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_features(text: str, symbol: str) -> FeatureSpec:
    """`name[:param][@SYMBOL]`, comma-separated, into a spec deciding on `symbol`."""
    if not _SYMBOL.fullmatch(str(symbol)):
        raise FcError(f"--symbol {symbol!r} is not a ccxt symbol like BTC/USDT")
    parts = [part.strip() for part in str(text).split(",")]
    if not any(parts):
        raise FcError("--features is empty; give e.g. close or close,ret,volume:48")
    items = []
    for part in parts:
        if not part:
            raise FcError(f"--features {text!r} has an empty item; separate names by one comma")
        head, at, other = part.partition("@")
        name, colon, param = head.partition(":")
        if at and not other:
            raise FcError(f"--features item {part!r}: no symbol after '@'; e.g. ret@ETH/USDT")
        items.append(_item(name, param if colon else None, other if at else symbol, symbol))
    return _spec(symbol, items)


def _item(name: str, param: str | None, item_symbol: str, symbol: str) -> FeatureItem:
    """One checked item; `param` as the user wrote it (None: not given)."""
    feature = FEATURES.get(name)
    if feature is None:
        known = ", ".join(sorted(FEATURES))
        raise FcError(f"unknown feature {name!r}; known features: {known}")
    if not _SYMBOL.fullmatch(str(item_symbol)):
        raise FcError(f"feature {name}@{item_symbol}: not a ccxt symbol like ETH/USDT")
    if feature.default is None:
        if param is not None:
            raise FcError(f"feature {name!r} takes no parameter; write {name} alone")
        return FeatureItem(name, None, item_symbol)
    if param is None:
        return FeatureItem(name, feature.default, item_symbol)
    if not re.fullmatch(r"\d+", param) or int(param) < 2:
        raise FcError(
            f"feature {name}:{param}: the rolling length must be a whole number of bars >= 2 "
            f"(e.g. {name}:{feature.default})"
        )
    return FeatureItem(name, int(param), item_symbol)


def _spec(symbol: str, items: list[FeatureItem]) -> FeatureSpec:
    spec = FeatureSpec(symbol, tuple(items))
    seen = set()
    for item in items:
        if item in seen:
            raise FcError(f"feature {spec._item_text(item)!r} is listed twice; give each once")
        seen.add(item)
    if not items:
        raise FcError("the feature spec names no feature; give e.g. close")
    return spec


def align_symbols(grids: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], np.ndarray]:
    """Cut every symbol's grid to the common overlap of their ranges; they must share one
    timeframe and, inside the overlap, the same timestamps. Returns the cut grids (same order)
    and the combined filled mask: a bar filled for any symbol is filled for the decision."""
    symbols = list(grids)
    steps = {s: infer_timeframe(grids[s]) for s in symbols}
    first = symbols[0]
    for s in symbols[1:]:
        if steps[s] != steps[first]:
            raise FcError(
                f"{first} candles are every {steps[first]}, {s} every {steps[s]}; "
                "give every symbol the same timeframe"
            )
    start = max(grids[s].index[0] for s in symbols)
    end = min(grids[s].index[-1] for s in symbols)
    if start > end:
        raise FcError(f"the candles of {', '.join(symbols)} do not overlap in time")
    cut = {s: grids[s].loc[start:end] for s in symbols}
    for s in symbols[1:]:
        a, b = cut[first].index, cut[s].index
        if not a.equals(b):
            when = a.symmetric_difference(b).min()
            raise FcError(
                f"{first} and {s} are on different grids: {when} is a bar of one and not the "
                "other; give candles of one timeframe on the exchange's bar boundaries"
            )
    filled = np.zeros(len(cut[first]), dtype=bool)
    for s in symbols:
        if "filled" in cut[s]:
            filled |= cut[s]["filled"].to_numpy(dtype=bool)
    return cut, filled


def build_columns(spec: FeatureSpec, grids: dict[str, pd.DataFrame], timeframe: str) -> np.ndarray:
    """The spec's columns, (n, len(spec.columns)) float64, finite everywhere: values before a
    feature's warm-up are placeholders (0, or 1.0 for `close`'s first). `grids` are
    align_symbols's cut grids, keyed by symbol."""
    step = timeframe_delta(timeframe)
    for s in spec.symbols:
        if s not in grids:
            raise FcError(f"the features read {s} but no candles of it were given; add them")
    n = len(grids[spec.symbol])
    if any(not grids[s].index.equals(grids[spec.symbol].index) for s in spec.symbols):
        raise ValueError("grids must share one index: cut them with align_symbols first")
    if spec.warmup >= n:
        raise FcError(f"the features need {spec.warmup + 1} bars to warm up; the data has {n}")
    parts = [FEATURES[i.name].compute(grids[i.symbol], i.param, step) for i in spec.items]
    return np.column_stack(parts) if parts else np.zeros((n, 0))


def feature_decision_mask(
    spec: FeatureSpec, n: int, seq_len: int, filled: np.ndarray | None = None
) -> np.ndarray:
    """decision_mask (a full window, a next candle, no filled bar at t or t+1) that also waits
    for spec.first_decision(seq_len); for `close` alone it is decision_mask itself."""
    mask = decision_mask(n, seq_len, filled)
    mask[: spec.first_decision(seq_len)] = False
    return mask


def fit_normalisation(
    columns: np.ndarray, spec: FeatureSpec, train_last: int, mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """(center, scale) per column, from training values only. `train_last` is the index of the
    last training decision. 'std': `close` columns keep today's rule (center 1.0, scale the std
    of indices 1..train_last, as training.fit_scaling); other columns the mean and std of
    indices warmup..train_last (what training windows read). A zero std scales by 1.
    'none': (0, 1), the raw columns."""
    k = columns.shape[1]
    if mode == "none":
        return np.zeros(k), np.ones(k)
    if mode != "std":
        raise FcError(f"--scaling {mode!r}: use std or none")
    if train_last < max(spec.warmup, 1):
        raise FcError("the training range ends before the features warm up; move the split later")
    centred = [FEATURES[i.name].centred_on_one for i in spec.items for _ in spec._item_columns(i)]
    center, scale = np.empty(k), np.empty(k)
    for j in range(k):
        first = 1 if centred[j] else spec.warmup
        values = np.ascontiguousarray(columns[first : train_last + 1, j])
        center[j] = 1.0 if centred[j] else float(np.mean(values))
        std = float(np.std(values))
        scale[j] = std if std > 0 else 1.0
    return center, scale


def normalise(columns: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(columns - center) / scale per column, as model.Scaling does for the one feature."""
    return (np.asarray(columns, dtype=np.float64) - center) / scale
