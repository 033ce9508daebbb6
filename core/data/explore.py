"""The workshop's exploration plots: candle change histogram with KDE, direction scatter of a
slice, class counts, and the price change of the last 300 bars."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fc.core.data.features import direction, price_change  # noqa: E402


def candle_change(df: pd.DataFrame) -> np.ndarray:
    """2 (close - open) / (close + open): the candle's own relative move."""
    o, c = df["open"].to_numpy(), df["close"].to_numpy()
    return 2 * (c - o) / (c + o)


def gaussian_kde(x: np.ndarray, grid: np.ndarray, max_points: int = 20_000) -> np.ndarray:
    """Density of x on grid with Silverman's bandwidth (a subsample keeps it fast)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) > max_points:
        x = np.random.default_rng(0).choice(x, max_points, replace=False)
    bw = 1.06 * x.std() * len(x) ** -0.2
    z = (grid[:, None] - x[None, :]) / bw
    return np.exp(-0.5 * z**2).sum(axis=1) / (len(x) * bw * np.sqrt(2 * np.pi))


def exploration_figures(df: pd.DataFrame, title: str) -> dict:
    """{file name: figure} for the four plots."""
    figs = {}
    change = candle_change(df)
    lo, hi = np.quantile(change, [0.001, 0.999])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(change, bins=200, range=(lo, hi), density=True, alpha=0.5, label="histogram")
    grid = np.linspace(lo, hi, 400)
    ax.plot(grid, gaussian_kde(change[(change >= lo) & (change <= hi)], grid), label="KDE")
    ax.set_xlabel("2 (close - open) / (close + open)")
    ax.set_ylabel("density")
    ax.set_title(f"Candle change: {title}")
    ax.legend()
    figs["change_histogram.png"] = fig

    d = direction(df["close"].to_numpy())
    part = slice(max(len(df) - 200, 0), len(df))
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.scatter(df.index[part], d[part], s=6, c=np.where(d[part] > 0, "tab:green", "tab:red"))
    ax.set_yticks([-1, 0, 1], ["down", "unchanged", "up"])
    ax.set_xlabel("time (UTC)")
    ax.set_title(f"Direction of the last 200 candles: {title}")
    figs["direction_scatter.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 4))
    counts = [(d > 0).sum(), (d == 0).sum(), (d < 0).sum()]
    bars = ax.bar(["up", "unchanged", "down"], counts, color=["tab:green", "grey", "tab:red"])
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts])
    ax.set_ylabel("candles")
    ax.set_title(f"Class counts: {title}")
    figs["class_counts.png"] = fig

    tail = slice(max(len(df) - 300, 0), len(df))
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(df.index[tail], price_change(df["close"].to_numpy())[tail], lw=1)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_ylabel("close / previous close")
    ax.set_xlabel("time (UTC)")
    ax.set_title(f"Price change, last 300 candles: {title}")
    figs["price_change.png"] = fig
    for fig in figs.values():
        fig.tight_layout()
    return figs
