"""What an exported graph reads: the workshop's one price_change column, or the c raw columns of
a declared feature spec (core.data.feature_set), scaled per column inside the graph.

A run of `--features close` keeps today's contract exactly (input `price_change`, float centre
and scale, metadata `feature` = price_change and no spec keys), so its graphs stay byte for byte
what fc wrote before feature specs; any other spec reads input `features` (batch, time, c) and
carries the spec and its hash in the metadata (the keys live/predictor.py reads).
"""

import json

import torch

from fc.core.data.features import FEATURE
from fc.core.data.inputs import plain_close
from fc.core.learning.config import TrainConfig
from fc.core.learning.model import Scaling
from fc.live.predictor import SPEC_FEATURE, SPEC_INPUT


def input_name(config: TrainConfig) -> str:
    return FEATURE if plain_close(config.spec) else SPEC_INPUT


def input_columns(config: TrainConfig) -> int:
    return len(config.spec.columns)


def input_scale(scaling: Scaling) -> tuple:
    """(center, scale) as a graph holds them: python floats for one value (traced as the same
    constants as before), float64 tensors of one value a column for several."""
    if isinstance(scaling.center, tuple | list):
        pair = (scaling.center, scaling.scale)
        return tuple(torch.tensor(_floats(v), dtype=torch.float64) for v in pair)
    return float(scaling.center), float(scaling.scale)


def _floats(value) -> list[float]:
    """A scale of one column (a float) or of several (a tuple or list) as a list of floats."""
    return [float(x) for x in (value if isinstance(value, tuple | list) else [value])]


def scaled(x: torch.Tensor, center, scale) -> torch.Tensor:
    """(raw - center) / scale in float64, then float32: core.learning.model.window_p_up's order,
    so a feature's small changes are not lost to float32 rounding before the subtraction."""
    return ((x.double() - center) / scale).float()


def feature_metadata(config: TrainConfig) -> dict[str, str]:
    """The metadata that says what the graph reads: `feature`, the scales, and for a declared
    spec `feature_spec` (its JSON, hash included) and `feature_hash`."""
    if plain_close(config.spec):
        return {
            "feature": config.feature,
            "scale_center": repr(float(config.scale_center)),
            "scale_scale": repr(float(config.scale_scale)),
        }
    spec = config.spec
    return {
        "feature": SPEC_FEATURE,
        "scale_center": json.dumps(_floats(config.scale_center)),
        "scale_scale": json.dumps(_floats(config.scale_scale)),
        "feature_spec": json.dumps(spec.to_dict(), sort_keys=True),
        "feature_hash": spec.hash,
    }
