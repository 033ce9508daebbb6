"""Permutation importance of a run's feature groups (`fc backtest RUN --importance`).

Each item of the run's feature spec (`ret`, `wicks`, `ret@ETH/USDT`, …) is one group: its columns
are shuffled in time, the run's own model predicts every decision of each reported range again,
and core.evaluation.importance scores the log loss it loses. Test first, as every report here.
"""

import numpy as np

from fc.core.evaluation.importance import importance, shuffled

ORDER = ("test", "validation", "train")


def feature_groups(spec) -> dict[str, list[int]]:
    """{group name: its column indices} in the spec's column order."""
    groups, at = {}, 0
    for name, columns in spec.groups().items():
        groups[name] = list(range(at, at + len(columns)))
        at += len(columns)
    return groups


def permutation_importance(predict, features, labels, base_p_up, parts: dict, spec, seed=0):
    """{range: {group: importance}} for the ranges in `parts` (bar masks of decisions), test
    first. predict(features, ends) -> p_up; base_p_up: the unshuffled p_up per bar."""
    ranges = [name for name in ORDER if name in parts and parts[name].any()]
    ends = np.flatnonzero(np.logical_or.reduce([parts[name] for name in ranges]))
    report = {name: {} for name in ranges}
    rng = np.random.default_rng(seed)
    for group, columns in feature_groups(spec).items():
        p_up = np.full(len(base_p_up), np.nan)
        p_up[ends] = predict(shuffled(features, columns, rng), ends)
        for name in ranges:
            at = np.flatnonzero(parts[name])
            report[name][group] = importance(base_p_up[at], p_up[at], labels[at])
    return report
