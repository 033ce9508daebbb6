"""Permutation importance of feature groups: arrays in, numbers and a figure out.

A group's importance on a range is the mean increase in log loss over the range's decisions when
that group's columns are shuffled in time (the same permutation of bars for all its columns, so
a multi-column feature keeps its own structure), with a stationary block-bootstrap interval of
that mean from the paired per-decision differences.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fc.core.evaluation import metrics  # noqa: E402


def log_losses(p_up: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-decision log loss of p_up against direction classes (0 = up)."""
    p = np.clip(np.asarray(p_up, dtype=np.float64), 1e-12, 1 - 1e-12)
    return -np.where(np.asarray(labels) == 0, np.log(p), np.log1p(-p))


def shuffled(features: np.ndarray, columns: list[int], rng) -> np.ndarray:
    """A copy of the features with `columns` permuted in time (one permutation of the bars)."""
    out = np.array(features, dtype=np.float64, copy=True)
    order = rng.permutation(len(out))
    if out.ndim == 1:
        return out[order]
    out[:, columns] = out[order][:, columns]
    return out


def importance(base_p_up, shuffled_p_up, labels, reps: int = 500, mean_block: float = 48.0):
    """{"delta_log_loss", "ci95", "decisions"} of one group on one range."""
    diff = log_losses(shuffled_p_up, labels) - log_losses(base_p_up, labels)
    low, high = metrics.bootstrap_ci(diff, metrics.mean_rows, reps, mean_block)
    return {"delta_log_loss": float(diff.mean()), "ci95": [low, high], "decisions": len(diff)}


def importance_figure(report: dict, title: str = ""):
    """Horizontal bars per group, one panel per range, with the bootstrap intervals."""
    ranges = list(report)
    fig, axes = plt.subplots(1, len(ranges), figsize=(4.5 * len(ranges), 0.5 + 0.45 * max(
        len(report[r]) for r in ranges)), squeeze=False)  # fmt: skip
    for ax, name in zip(axes[0], ranges, strict=True):
        groups = list(report[name])
        mean = np.array([report[name][g]["delta_log_loss"] for g in groups])
        ci = np.array([report[name][g]["ci95"] for g in groups])
        y = np.arange(len(groups))
        ax.barh(y, mean, xerr=[mean - ci[:, 0], ci[:, 1] - mean], color="tab:blue", alpha=0.8)
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_yticks(y, groups)
        ax.invert_yaxis()
        ax.set_xlabel("log loss increase when shuffled (nats)")
        ax.set_title(f"{name} range", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
