"""Seed ensembles' options and temperature calibration (`--seeds N --calibrate temperature`).

The temperature T is fitted on the validation decisions alone and applied to the logit of the
members' mean p_up: logit(p_up) = logit(mean p_up) / T (core.learning.model.Ensemble), for one
member or many alike. Training the members into one run folder is core.studies.train's.
"""

import numpy as np

from fc.core.errors import FcError
from fc.core.learning.config import TrainConfig

CALIBRATIONS = ("none", "temperature")
# the search interval of T: beyond it p_up is within 1e-3 of 0.5 or sharper than any logit
# a GRU of this size produces
T_BOUNDS = (0.01, 100.0)


def check_ensemble_options(config: TrainConfig) -> None:
    if config.seeds < 1:
        raise FcError(f"--seeds {config.seeds}: give the number of members, 1 or more")
    if config.calibrate not in CALIBRATIONS:
        raise FcError(f"--calibrate {config.calibrate!r}: use one of {', '.join(CALIBRATIONS)}")


def logit(p_up: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p_up, dtype=np.float64), 1e-15, 1 - 1e-15)
    return np.log(p) - np.log1p(-p)


def apply_temperature(p_up: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p_up) / T): what the Ensemble module and the exported graphs compute."""
    return 1.0 / (1.0 + np.exp(-logit(p_up) / temperature))


def temperature_log_loss(p_up: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean log loss of sigmoid(logit(p_up) / T) against direction classes (0 = up)."""
    sign = np.where(np.asarray(labels) == 0, 1.0, -1.0)
    return float(np.mean(np.logaddexp(0.0, -sign * logit(p_up) / temperature)))


def fit_temperature(p_up: np.ndarray, labels: np.ndarray, tol: float = 1e-10) -> float:
    """The T in T_BOUNDS minimising temperature_log_loss: golden-section search on log T. The
    loss is convex in 1/T (a logistic regression on logit(p_up) without intercept), so it is
    unimodal in log T and the search finds the minimum, or the bound it lies beyond."""
    p_up, labels = np.asarray(p_up), np.asarray(labels)
    if len(p_up) == 0:
        raise FcError("no validation decisions to fit a temperature on; move --split earlier")
    a, b = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0

    def loss(log_t: float) -> float:
        return temperature_log_loss(p_up, labels, float(np.exp(log_t)))

    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc_, fd = loss(c), loss(d)
    while b - a > tol:
        if fc_ <= fd:
            b, d, fd = d, c, fc_
            c = b - ratio * (b - a)
            fc_ = loss(c)
        else:
            a, c, fc_ = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return float(np.exp((a + b) / 2.0))
