"""Validation with the window semantics of SPEC §2 while training, and the one-line baselines."""

import numpy as np

from fc.core.evaluation.backtest import class_prior
from fc.core.evaluation.metrics import classifier
from fc.core.evaluation.significance import moments
from fc.core.learning.schemes import Series


def validation_sample(series: Series, size: int) -> np.ndarray:
    """A fixed, evenly spaced subsample of the validation decisions (all when size is 0 or more
    than there are), so repeated validations compare like with like and cost a bounded time."""
    ends = np.flatnonzero(series.validation)
    if size <= 0 or size >= len(ends):
        return ends
    return ends[np.unique(np.linspace(0, len(ends) - 1, size).round().astype(np.int64))]


def scores(p_up: np.ndarray, labels: np.ndarray) -> dict:
    """Log loss (as "ce") and accuracy of p_up against direction classes (0 up)."""
    m = classifier(p_up, labels)
    return {"ce": m["log_loss"], "accuracy": m["accuracy"]}


def evaluate(
    model, series, ends, scaling, seq_len, loss, cost=0.0, device="cpu", keep_p_up=False
) -> dict:
    """CE, accuracy, mean log growth of f = p_up - p_down and the moments of its per-bar returns
    (`returns`: n, sharpe, skewness, kurtosis) at the decisions `ends`, each from its exact
    window; `loss` is the number the run's loss minimises (ce, or -log growth). keep_p_up: the
    p_up predicted at `ends` too (key `p_up`, an array), so no caller predicts them twice."""
    from fc.core.learning.model import window_p_up

    p_up = window_p_up(model, series.features, ends, seq_len, scaling, device=device)
    f = 2.0 * p_up - 1.0
    growth = 1.0 + f * series.returns[ends]
    if cost:
        previous = (
            2.0 * window_p_up(model, series.features, ends - 1, seq_len, scaling, device=device)
            - 1.0
        )
        growth = growth - cost * np.abs(f - previous)
    out = p_up_result(p_up, series, ends, loss, growth)
    if keep_p_up:
        out["p_up"] = p_up
    return out


def p_up_result(p_up, series: Series, ends: np.ndarray, loss: str = "ce", growth=None) -> dict:
    """evaluate()'s numbers from p_up at the decisions `ends`; `growth` the wealth factors of
    f = p_up - p_down when they carry a cost (default: 1 + f R, no cost)."""
    if growth is None:
        growth = 1.0 + (2.0 * p_up - 1.0) * series.returns[ends]
    out = scores(p_up, series.labels[ends])
    out["log_growth"] = float(np.mean(np.log(growth)))
    # per-bar returns of f = p_up - p_down: what fc sweep's deflated Sharpe reads
    out["returns"] = moments(growth - 1.0)
    out["loss"] = out["ce"] if loss == "ce" else -out["log_growth"]
    return out


def baselines(series: Series, ends: np.ndarray, horizon: int = 1) -> dict:
    """On the same decisions, at the labels' horizon H: the class prior of the training
    decisions (accuracy and log loss), always up, the last move (the class of the H candles up
    to t: last direction at H = 1, momentum beyond), its opposite (mean reversion), and the log
    growth of buy and hold over the label's H candles. A universe's symbol without a training
    decision (listed after the training range) has no prior of its own: 0.5."""
    labels = series.labels[ends]
    prior_up = class_prior(series.labels[series.train])
    # labels[t-H] is the class of the move from t-H to t; before the data's start: none (up)
    last = np.where(ends >= horizon, series.labels[np.maximum(ends - horizon, 0)], 0)
    follow = "last_direction" if horizon == 1 else "momentum"
    return {
        "class_prior": {"p_up": prior_up, **scores(np.full(len(ends), prior_up), labels)},
        "always_up_accuracy": float(np.mean(labels == 0)),
        f"{follow}_accuracy": float(np.mean(last == labels)),
        "mean_reversion_accuracy": float(np.mean(last != labels)),
        # the profit loss's yardstick: always fully long, mean log(1 + R_{t+1})
        "buy_and_hold_log_growth": float(np.mean(np.log1p(series.returns[ends]))),
    }
