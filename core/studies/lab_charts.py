"""The lab report's charts, from a variant's stored summary (core.studies.lab_variant): each a
function of numbers that returns a matplotlib figure, and png_data turns one into the bytes the
page inlines. Small figures at a modest dpi keep a 20-variant page well under 5 MB."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fc.core.evaluation.backtest_plots import set_margins  # noqa: E402

SIZE = (6.4, 3.0)  # inches
DPI = 80
LINES = (
    ("discrete", "discrete (model)"),
    ("proportional", "proportional (model)"),
    ("buy_and_hold", "buy and hold"),
    ("mean_reversion", "mean reversion (one-liner)"),
)

# a pooled universe's books beside its baselines
BOOKS = (
    ("long_short", "long-short (model)"),
    ("equal_weight_discrete", "equal-weight discrete (model)"),
    ("equal_weight_proportional", "equal-weight proportional (model)"),
    ("buy_and_hold", "buy and hold of the universe"),
    ("cross_sectional_reversal", "cross-sectional reversal"),
    ("cross_sectional_momentum", "cross-sectional momentum"),
)


def png_data(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def _figure(title: str):
    fig, ax = plt.subplots(figsize=SIZE)
    set_margins(fig, left=0.7, right=0.15, top=0.35, bottom=0.5)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    return fig, ax


def equity_figure(equity: dict, title: str, lines=LINES):
    """The stitched walk's wealth of both policies beside buy-and-hold and mean reversion (or
    the `lines` given: a universe's BOOKS)."""
    fig, ax = _figure(title)
    times = pd.to_datetime(equity["time"], utc=True).tz_localize(None)
    for key, label in lines:
        if key in equity:
            ax.plot(times, equity[key], lw=1.0, label=label)
    ax.set_yscale("log")
    ax.set_ylabel("wealth (log scale, starts at 1)", fontsize=7)
    ax.legend(fontsize=6, loc="upper left")
    fig.autofmt_xdate()
    return fig


def sharpe_fee_figure(curve: dict, break_even: dict, title: str):
    """Each policy's annualised Sharpe against the fee, its break-even fee marked."""
    fig, ax = _figure(title)
    for (key, label), color in zip(LINES[:2], ("C0", "C1"), strict=True):
        ax.plot(curve["fee_bps"], curve[key], color=color, lw=1.2, label=label)
        fee = break_even.get(key)
        if fee is not None:
            ax.axvline(fee, color=color, ls="--", lw=0.8, label=f"break-even {fee:.2f} bps")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_xlabel("fee, bps per unit of position change", fontsize=7)
    ax.set_ylabel("Sharpe (annualised)", fontsize=7)
    ax.legend(fontsize=6)
    return fig


def fold_loss_figure(folds: list[dict], title: str):
    """Each fold's out-of-sample log loss against its class prior's."""
    fig, ax = _figure(title)
    x = np.arange(1, len(folds) + 1)
    ax.bar(x - 0.2, [f["log_loss"] for f in folds], 0.4, label="model")
    ax.bar(x + 0.2, [f["prior_log_loss"] for f in folds], 0.4, label="class prior")
    low = min(min(f["log_loss"], f["prior_log_loss"]) for f in folds)
    high = max(max(f["log_loss"], f["prior_log_loss"]) for f in folds)
    pad = max(high - low, 1e-4) * 0.5
    ax.set_ylim(low - pad, high + pad)
    ax.set_xticks(x, [f["start"][:10] for f in folds], fontsize=6, rotation=30)
    ax.set_ylabel("log loss, nats", fontsize=7)
    ax.legend(fontsize=6)
    return fig


def calibration_figure(bins: dict[str, dict], title: str):
    """Reliability of every variant's stitched predictions: mean p_up against the frequency of
    up, per bin with decisions."""
    fig, ax = _figure(title)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.6, ls=":", label="perfect")
    lo, hi = 1.0, 0.0
    for name, b in bins.items():
        full = [i for i, c in enumerate(b["count"]) if c]
        x = [b["mean_p_up"][i] for i in full]
        y = [b["frac_up"][i] for i in full]
        ax.plot(x, y, marker="o", ms=3, lw=1.0, label=name)
        lo, hi = min(lo, *x, *y), max(hi, *x, *y)
    pad = max(hi - lo, 0.02) * 0.1
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("mean p_up in the bin", fontsize=7)
    ax.set_ylabel("frequency of up", fontsize=7)
    ax.legend(fontsize=6)
    return fig
