"""Is p_up a probability? Expected calibration error and the reliability curve of a direction
classifier, and the figure that shows them per range beside the class prior.

ECE here is the binary one on p_up (not the top-label one on max(p_up, p_down)): the predictions
are cut into `bins` equal-width bins on [0, 1] (the last one closed), and
    ECE = sum over bins of (n_b / n) |mean(up in b) - mean(p_up in b)|,
the count-weighted distance of the reliability curve from the diagonal. A hard 0/1 predictor has
two bins, so its ECE is its error rate weighted by how often it says each side.
"""

import numpy as np


def _edges(bins) -> np.ndarray:
    if np.ndim(bins) == 0:
        return np.linspace(0.0, 1.0, int(bins) + 1)
    return np.asarray(bins, dtype=np.float64)


def reliability(p_up: np.ndarray, up: np.ndarray, bins=10) -> dict:
    """Per bin (an int: equal-width bins on [0, 1]; an array: its edges, values outside the
    outer edges fall in the outer bins): `lower`, `upper`, `count`, `mean_p_up` and
    `frac_up` (NaN in empty bins)."""
    p = np.asarray(p_up, dtype=np.float64)
    y = np.asarray(up, dtype=np.float64)
    edges = _edges(bins)
    k = len(edges) - 1
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, k - 1)
    count = np.bincount(which, minlength=k).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, weights=p, minlength=k) / count
        frac_up = np.bincount(which, weights=y, minlength=k) / count
    return {"lower": edges[:-1], "upper": edges[1:], "count": count, "mean_p_up": mean_p,
            "frac_up": frac_up}  # fmt: skip


def ece(p_up: np.ndarray, up: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of p_up against the outcomes up (bool or 0/1)."""
    r = reliability(p_up, up, bins)
    n = r["count"].sum()
    if n == 0:
        return float("nan")
    full = r["count"] > 0
    gap = np.abs(r["frac_up"][full] - r["mean_p_up"][full])
    return float(np.sum(r["count"][full] * gap) / n)


def calibration_figure(ranges: dict, prior_up: float, bins: int = 10, title: str = ""):
    """One panel per range: the reliability curve of the model (bins equal-width over the span of
    its predictions, since a market model's p_up rarely leaves 0.45..0.55), the count per bin,
    the diagonal, the class prior's constant prediction and the range's frequency of up.
    `ranges`: {name: (p_up, up)}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fc.core.evaluation.backtest_plots import set_margins

    names = [n for n, (p, _) in ranges.items() if len(p)]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(5 * max(1, len(names)), 4.6),
                             squeeze=False)  # fmt: skip
    pooled = np.concatenate([np.asarray(ranges[n][0], dtype=np.float64) for n in names] or [[0.5]])
    lo, hi = float(pooled.min()), float(pooled.max())
    if hi - lo < 1e-6:
        lo, hi = lo - 0.01, hi + 0.01
    edges = np.linspace(lo, hi, bins + 1)
    pad = 0.1 * (hi - lo)
    for ax, name in zip(axes[0], names, strict=False):
        p, up = (np.asarray(v, dtype=np.float64) for v in ranges[name])
        r = reliability(p, up, edges)
        full = r["count"] > 0
        low, high = min(lo, prior_up) - pad, max(hi, prior_up) + pad
        ax.plot([low, high], [low, high], color="grey", lw=1, ls="--", label="perfectly calibrated")
        ax.plot(r["mean_p_up"][full], r["frac_up"][full], "o-", color="tab:blue",
                label=f"model (ECE {ece(p, up, bins):.4f})")  # fmt: skip
        for x, y, c in zip(r["mean_p_up"][full], r["frac_up"][full], r["count"][full],
                           strict=True):  # fmt: skip
            ax.annotate(f"{c:,}", (x, y), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=7)  # fmt: skip
        ax.axvline(prior_up, color="tab:orange", lw=1, label=f"class prior p_up {prior_up:.3f}")
        ax.axhline(up.mean(), color="tab:green", lw=1, ls=":",
                   label=f"frequency of up {up.mean():.3f}")  # fmt: skip
        ax.set_xlim(low, high)
        ax.set_xlabel("predicted P(up) (bin mean)")
        ax.set_ylabel("observed frequency of up")
        ax.set_title(f"{name} ({len(p):,} candles)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title or "Reliability of p_up per range (counts per bin beside each point)")
    set_margins(fig, left=0.7, top=0.75, gap=0.75)
    return fig
