"""Backtest figures: equity (log scale) and drawdown of both policies beside buy-and-hold and
mean reversion (the strongest one-line baseline)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

CURVES = (
    ("wealth_discrete", "discrete (all in)"),
    ("wealth_proportional", "proportional"),
    ("wealth_buy_and_hold", "buy and hold"),
    ("wealth_mean_reversion", "mean reversion (opposite of the last candle)"),
)


def set_margins(fig, left=0.8, right=0.2, top=0.45, bottom=0.55, gap=0.0) -> None:
    """Fixed margins in inches (and `gap` between panels side by side) instead of tight_layout,
    which lays every tick label out once more to measure it: half of a backtest's figure time.
    The labels here are short and known, so fixed margins fit them."""
    width, height = fig.get_size_inches()
    panels = len(fig.axes) or 1
    axes_width = (width - left - right - gap * (panels - 1)) / panels
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                        bottom=bottom / height, wspace=gap / axes_width)  # fmt: skip


def _times(positions: pd.DataFrame) -> np.ndarray:
    """The bar times as naive UTC datetime64: matplotlib converts 80k tz-aware pandas
    timestamps one by one (seconds), a datetime64 array at once."""
    return positions["time"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()


BUCKETS = 2000  # ~2 per pixel column of the 10-inch figures at 110 dpi


def _envelope(y: np.ndarray, buckets: int = BUCKETS) -> np.ndarray:
    """Indices of y worth drawing: per bucket of consecutive bars its first, lowest, highest and
    last point, in time order. The line then reaches the same pixels as through every bar, but
    matplotlib draws a few thousand points instead of 80k (most of a backtest's plot time)."""
    n = len(y)
    size = -(-n // buckets)
    if size <= 4:
        return np.arange(n)
    padded = np.concatenate([y, np.full(-n % size, y[-1])]).reshape(-1, size)
    first = np.arange(0, n, size)
    keep = [first, np.minimum(first + size - 1, n - 1)]
    keep += [first + padded.argmin(axis=1), first + padded.argmax(axis=1)]
    return np.unique(np.minimum(np.concatenate(keep), n - 1))


def _chained(positions: pd.DataFrame, column: str) -> np.ndarray:
    """Wealth over the whole frame: each range starts at 1.0, so chain them end to end."""
    out, carry = [], 1.0
    for _, part in positions.groupby("range", sort=False):
        out.append(carry * part[column].to_numpy())
        carry = out[-1][-1]
    return np.concatenate(out)


def _mark_split(ax, positions: pd.DataFrame, split: str) -> None:
    if (positions["range"] == "validation").any() and (positions["range"] == "train").any():
        ax.axvline(pd.Timestamp(split).to_datetime64(), color="grey", ls="--", lw=1)
        ax.text(
            pd.Timestamp(split).to_datetime64(),
            ax.get_ylim()[1],
            " validation →",
            va="top",
            fontsize=8,
            color="grey",
        )


def _mark_test(ax, positions: pd.DataFrame) -> None:
    test = positions.loc[positions["range"] == "test", "time"]
    if len(test) and (positions["range"] != "test").any():
        ax.axvline(test.iloc[0], color="tab:red", ls="--", lw=1)
        ax.text(test.iloc[0], ax.get_ylim()[1], " test (untouched) →", va="top", fontsize=8,
                color="tab:red")  # fmt: skip


def equity_figure(positions: pd.DataFrame, split: str, title: str):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    times = _times(positions)
    for column, label in CURVES:
        w = _chained(positions, column)
        keep = _envelope(w)
        ax.plot(times[keep], w[keep], label=label, lw=1)
    ax.set_yscale("log")
    ax.set_ylabel("wealth (start = 1, log scale)")
    return _finish(fig, ax, positions, split, title, "upper left")


def drawdown_figure(positions: pd.DataFrame, split: str, title: str):
    fig, ax = plt.subplots(figsize=(10, 3.5))
    times = _times(positions)
    for column, label in CURVES:
        w = _chained(positions, column)
        drawdown = 100 * (w / np.maximum.accumulate(w) - 1)
        keep = _envelope(drawdown)
        ax.plot(times[keep], drawdown[keep], label=label, lw=1)
    ax.set_ylabel("drawdown (%)")
    return _finish(fig, ax, positions, split, f"Drawdown: {title}", "lower left")


def _finish(fig, ax, positions: pd.DataFrame, split: str, title: str, legend: str):
    """What both time plots share: time axis, title, legend, grid, range marks, margins."""
    ax.set_xlabel("time (UTC)")
    ax.set_title(title)
    ax.legend(loc=legend)
    ax.grid(alpha=0.3)
    _mark_split(ax, positions, split)
    _mark_test(ax, positions)
    set_margins(fig)
    return fig


def save_figure(fig, path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)
